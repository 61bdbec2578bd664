"""Exact inference routines: pure functions of arrays, usable without a model or the driver
(HMM forward-backward and Viterbi, the batched scaled HMM forward-backward, Bayesian-network
contraction)."""
from . import hmm, hmm_scaled

__all__ = ["hmm", "hmm_scaled"]
