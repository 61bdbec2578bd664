"""The differential harness of issue 15: one registry of model configurations (registry.py), each
with an independent float64 reference (references.py), run on every execution path of the engine
(paths.py) over a grid of shapes and chunk sizes (grid.py) and hypothesis-drawn shapes.

Lanes: cells without a mark are the fast slice (``make test``); ``@pytest.mark.verify`` cells are
the full grid (``make verify``). A disagreement that is not fixed yet is a strict xfail whose
reason describes it (grid.KNOWN, test_one_step.KNOWN_CELLS).
"""
