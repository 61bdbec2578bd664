"""Emission components shared by mixtures and HMMs (pure functions)."""
