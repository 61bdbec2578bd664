"""Fits built on the engine: online EM and streaming over data that does not fit in
memory. Import the engine and the core, never a model."""
