"""Exact inference routines: pure functions of arrays, usable without a model or the driver."""
