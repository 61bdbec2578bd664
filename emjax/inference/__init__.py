"""Inference for structured latent variables (pure functions, usable without a model)."""
from . import hmm

__all__ = ["hmm"]
