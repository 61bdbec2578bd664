"""Host-side sources for :func:`emjax.stream_fit`: chunks of rows that can be read once per pass.

A source becomes a function returning a fresh iterator of chunks. A ``.npy`` path is re-opened and
re-checked at every pass and read with explicit reads at computed offsets, never through a
long-lived memory map: a file that is replaced, modified or truncated while a fit runs gives a
:class:`SourceError` naming the file (a memory map would kill the process with SIGBUS when its
pages vanish). :class:`ChunkReader` validates every chunk in every pass and checks that each pass
reads the same rows (count and total weight).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ..core.chunking import n_rows
from ..core.tree import float_dtype, row_signature, row_signature_difference
from ..core.validation import check_positive_int, check_weights

#: Elements per host chunk when the source is an array or a file (64 MiB of float32).
DEFAULT_HOST_CHUNK = 1 << 24


class SourceError(ValueError):
    """The data source cannot be read, or changed while a streamed fit was reading it."""


def host_step(row_shape, rows_per_chunk) -> int:
    """Rows per host chunk: ``rows_per_chunk``, or by default :data:`DEFAULT_HOST_CHUNK` elements'
    worth of rows of shape ``row_shape`` (at least 1024 rows)."""
    return rows_per_chunk or max(1024, DEFAULT_HOST_CHUNK // max(1, int(np.prod(row_shape))))


def chunk_iterable(source, rows_per_chunk):
    """A function returning a fresh iterator over the chunks of ``source``."""
    check_positive_int(rows_per_chunk, "rows_per_chunk", optional=True)
    if isinstance(source, (str, os.PathLike)):
        return NpyFile(source, rows_per_chunk)
    if isinstance(source, (list, tuple)):
        return lambda: iter(source)
    if callable(source):
        return source
    if isinstance(source, Iterator) or not (isinstance(source, np.ndarray) or _is_row_tree(source)):
        raise TypeError("source must be an array, a .npy path, a list of chunks or a function "
                        "returning an iterator of chunks (an iterator can be read only once); "
                        f"got {type(source).__name__}.")
    rows = jax.tree_util.tree_leaves(source)[0]
    if rows.ndim == 0:
        raise ValueError("source must be an array of rows; got a 0-d array.")
    step = host_step(rows.shape[1:], rows_per_chunk)
    take = lambda i: jax.tree_util.tree_map(lambda a: a[i:i + step], source)
    return lambda: (take(i) for i in range(0, rows.shape[0], step))


def _is_row_tree(source) -> bool:
    """A pytree of arrays sharing a leading row axis (e.g. an :class:`emjax.Corpus`)."""
    leaves = jax.tree_util.tree_leaves(source)
    return (bool(leaves) and not isinstance(source, dict)
            and all(isinstance(a, (np.ndarray, jax.Array)) and a.ndim >= 1 for a in leaves)
            and len({a.shape[0] for a in leaves}) == 1)


class NpyFile:
    """Row chunks of a ``.npy`` file; each call (pass) re-opens the file and checks that its
    header, size, modification time and inode are those of the first pass."""

    def __init__(self, path, rows_per_chunk):
        self.path, self.rows_per_chunk = os.fspath(path), rows_per_chunk
        self.layout = None

    def __call__(self):
        with open(self.path, "rb") as file:
            layout = self._layout(file)
            if self.layout is None:
                self.layout = layout
            elif layout != self.layout:
                raise SourceError(f"source {self.path!r} changed during stream_fit: it is now "
                                  f"{_describe(layout)}; the first pass read {_describe(self.layout)}. "
                                  "A streamed fit needs the same rows in every pass.")
            shape, dtype, fortran, offset = layout[:4]
            step = host_step(shape[1:], self.rows_per_chunk)
            for start in range(0, shape[0], step):
                yield self._read(file, start, min(step, shape[0] - start), shape, dtype, fortran, offset)

    def _layout(self, file):
        """``(shape, dtype, fortran_order, data offset, size, mtime_ns, inode)``, checked."""
        try:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, EOFError, SyntaxError) as err:
            raise SourceError(f"source {self.path!r} is not a readable .npy file ({err}).") from None
        if dtype.hasobject or dtype.fields is not None or dtype.itemsize == 0:
            raise SourceError(f"source {self.path!r} holds dtype {dtype}; stream_fit reads arrays of "
                              "numbers (no Python objects or structured records).")
        if len(shape) == 0:
            raise SourceError(f"source {self.path!r} holds a 0-d array; it must be an array of rows.")
        offset, stat = file.tell(), os.fstat(file.fileno())
        expected = offset + int(np.prod(shape)) * dtype.itemsize
        if stat.st_size < expected:
            raise SourceError(f"source {self.path!r} is truncated: its header describes shape {shape} "
                              f"{dtype} ({expected} bytes in all) but the file has {stat.st_size} bytes.")
        return shape, dtype, fortran, offset, stat.st_size, stat.st_mtime_ns, stat.st_ino

    def _read(self, file, start, rows, shape, dtype, fortran, offset):
        """Rows ``start:start + rows`` (a fresh array in native byte order)."""
        if not fortran:
            out = np.empty((rows, *shape[1:]), dtype)
            self._read_into(file, offset + start * out[:1].nbytes, out)
        else:  # column-major: each of the prod(shape[1:]) columns holds the rows contiguously
            columns = np.empty((int(np.prod(shape[1:])), rows), dtype)
            for c in range(columns.shape[0]):
                self._read_into(file, offset + (c * shape[0] + start) * dtype.itemsize, columns[c])
            out = columns.T.reshape((rows, *shape[1:]), order="F")
        return out if dtype.isnative else out.astype(dtype.newbyteorder("="))

    def _read_into(self, file, position, out):
        view = memoryview(out).cast("B")
        file.seek(position)
        done = 0
        while done < len(view):
            got = file.readinto(view[done:])
            if not got:
                raise SourceError(f"source {self.path!r} ended at byte {position + done} while "
                                  f"{len(view) - done} more bytes were expected: it was truncated "
                                  "during stream_fit.")
            done += got


def _describe(layout) -> str:
    shape, dtype, _, _, size, mtime_ns, inode = layout
    return f"shape {shape} {dtype}, {size} bytes, modified at {mtime_ns} ns, inode {inode}"


class ChunkReader:
    """Validated device chunks of a re-readable source, pass after pass.

    Every chunk of every pass goes through ``model.validate_chunk`` (an error names the chunk
    and the pass, counted from 0 as :attr:`emjax.PassReport.index`); every pass must read as many
    rows, of the same total weight, as the first. Chunks shorter than the first are padded to
    its length with rows of weight 0, so a ragged source compiles the E-step once.
    """

    def __init__(self, model, iterable):
        self.model, self.iterable = model, iterable
        self.first = None  # (x, w) of the first chunk, as placed on the device
        self.signature = None
        self.passes = self.rows_read = 0
        self.totals = None  # (rows, total weight) of the first pass

    def first_chunk(self):
        """``(x, w)`` of the first chunk (read once, before any pass when no pass has run)."""
        if self.first is None:
            chunks = self._validated(self.passes)
            next(chunks, None)
            chunks.close()
            if self.first is None:
                raise ValueError("the data source yielded no rows (an empty iterator or empty chunks).")
        return self.first

    def chunks(self):
        """The chunks of one pass, padded to the first chunk's rows."""
        rows, weight = 0, 0.0
        for x, w, chunk_weight in self._validated(self.passes):
            rows, weight = rows + n_rows(x), weight + chunk_weight
            yield _padded(x, w, n_rows(self.first[0]))
        self.rows_read = rows
        if rows == 0:
            raise ValueError("the data source yielded no rows (an empty iterator or empty chunks).")
        if self.totals is None:
            self.totals = (rows, weight)
        elif rows != self.totals[0] or not np.isclose(weight, self.totals[1], rtol=1e-9, atol=0):
            raise ValueError(f"the data source changed between passes: pass {self.passes} read {rows} "
                             f"rows of total weight {weight:.17g}, pass 0 read {self.totals[0]} rows "
                             f"of total weight {self.totals[1]:.17g}. A streamed fit needs the same "
                             "rows in every pass.")
        self.passes += 1

    def _validated(self, pass_index):
        """``(x, w, host sum of w)`` per chunk, each checked."""
        try:
            for i, chunk in enumerate(self.iterable()):
                x, w = chunk if isinstance(chunk, tuple) and len(chunk) == 2 else (chunk, None)
                where = f"chunk {i} of the data source (pass {pass_index})"
                x, w, chunk_weight = self._checked(where, x, w)
                if self.first is None:
                    self.first = (x, w)
                yield x, w, chunk_weight
        except SourceError as err:
            raise SourceError(f"{err} (pass {pass_index})") from None

    def _checked(self, where, raw, w):
        if isinstance(raw, list) or jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(raw)):
            raw = np.asarray(raw)
        self._check_signature(where, raw)
        try:
            x = self.model.validate_chunk(raw)
            n = n_rows(x)
            chunk_weight = float(n) if w is None else float(np.sum(np.asarray(w, np.float64)))
            w = check_weights(w, n, float_dtype(x))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        return x, w, chunk_weight

    def _check_signature(self, where, raw):
        """Every chunk has the first one's structure, row shape and dtype (before conversion)."""
        signature = row_signature(raw)
        if self.signature is None:
            self.signature = signature
        elif (difference := row_signature_difference(signature, self.signature)):
            what, this, first = difference
            raise ValueError(f"{where} has the {what} {this}; the first chunk has the {what} "
                             f"{first}: every chunk needs the same {what}.")


def _padded(x, w, rows):
    """A short chunk padded to ``rows`` with zero rows of weight 0 (one compiled shape)."""
    pad = rows - n_rows(x)
    if pad <= 0:
        return x, w
    grow = lambda a: jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)])
    return jax.tree_util.tree_map(grow, x), grow(w)
