"""Discrete Bayesian networks: the model, its structure and its checks."""
