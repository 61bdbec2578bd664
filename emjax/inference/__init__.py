"""Exact inference routines: pure functions of arrays, usable without a model or the driver
(HMM forward-backward and Viterbi, Bayesian-network contraction)."""
from . import hmm

__all__ = ["hmm"]
