"""Row counts rounded up to a few sizes, padded with rows of weight 0, so that nearby sizes (the
folds of a cross-validation, a check suite's small data sets) share one compiled program.

A row of weight 0 changes no statistic, no standardisation and no seed (the engine's contract,
see :mod:`emjax.core.chunking`), so the fit is that of the unpadded rows; densities and posteriors are
computed per row and the padding is cut off.
"""
from __future__ import annotations

import numpy as np

from ..engine.row_buckets import bucket_rows

#: Every count up to this many rows is padded to it (an E-step over so few rows costs
#: microseconds; a compilation costs seconds).
SMALLEST_BUCKET = 256
#: Counts of at least this many rows are not padded (compiling is then a small part of a fit,
#: and a padded copy of the data would cost memory).
PAD_BELOW = 1 << 16


def bucket_size(n: int) -> int:
    """``n`` rounded up to the engine's bucket (:func:`emjax.engine.row_buckets.bucket_rows`: four sizes
    per octave, at most 25% more rows), at least :data:`SMALLEST_BUCKET`; ``n`` itself from
    :data:`PAD_BELOW` on (the engine pads a fit's data only up to 8,192 rows; the shell pads
    ``predict``/``score`` inputs too)."""
    if n >= PAD_BELOW:
        return n
    return max(SMALLEST_BUCKET, bucket_rows(n))


def padded(x: np.ndarray, weights: np.ndarray | None = None):
    """``x`` with zero rows appended up to :func:`bucket_size`, and the weights with zeros (or
    None when ``weights`` is None)."""
    n = x.shape[0]
    extra = bucket_size(n) - n
    if extra == 0:
        return x, weights
    x = np.concatenate([x, np.zeros((extra,) + x.shape[1:], x.dtype)])
    if weights is not None:
        weights = np.concatenate([weights, np.zeros(extra, weights.dtype)])
    return x, weights
