"""Probabilistic latent semantic analysis and its sparse corpus."""
