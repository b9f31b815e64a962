"""Compact storage of unit vectors: int8 codes with one scale per row, in memory or in a file.

A 384-d vector takes 388 bytes instead of 768 (float16) or 1,536 (float32), so a 100k
programme catalogue's retrieval vectors fit in well under 100 MB. For unit-length vectors the
cosine error is about 1e-3, far below the differences that ranking depends on.

Vectors that are read a few rows at a time (the units of a query's candidates) can live in a
``.npy`` file opened memory-mapped: decoding selected rows reads only their pages, and worker
processes that open the same file share one copy in the operating system's page cache.
:func:`open_shared` names such files by their content, writes them atomically and removes the
files of earlier catalogues.
"""
from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Int8Vectors", "StackedVectors", "append_rows", "open_shared", "take_rows"]

_BLOCK = 16384
#: Rows decoded at a time by :meth:`Int8Vectors.dot`: their float32 copy (768 KB for 384-d)
#: stays in the CPU cache for the product, which halves the time of a whole-catalogue scan.
_DOT_BLOCK = 512

#: Temporary files older than this are left by writers that died; others may still be written.
_STALE_TMP_SECONDS = 3600


def _file_dtype(dim: int) -> np.dtype:
    # Scale and codes of a row side by side in one record: one file is replaced, mapped and
    # unlinked as a unit, so a reader can never pair codes with another catalogue's scales,
    # and decoding a row reads its scale from the same page.
    return np.dtype([("scale", "<f4"), ("codes", "i1", (dim,))])


class Int8Vectors:
    """Row vectors stored as int8 with a float32 scale per row.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, dim)`` array of any float dtype.
    rows : numpy.ndarray, optional
        Integer indices: store ``x[rows]`` (in that order) without making that copy first.

    Attributes
    ----------
    codes : numpy.ndarray
        ``(n, dim)`` int8.
    scale : numpy.ndarray
        ``(n,)`` float32; row ``i`` decodes to ``codes[i] * scale[i]``.
    path : pathlib.Path or None
        The file the vectors were opened from (:meth:`open`), None when built in memory.
    """

    def __init__(self, x: np.ndarray, rows: np.ndarray | None = None) -> None:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"expected a 2-d array, got shape {x.shape}")
        n = len(x) if rows is None else len(rows)
        self.scale = np.empty(n, dtype=np.float32)
        self.codes = np.empty((n, x.shape[1]), dtype=np.int8)
        # In blocks: the float32 temporaries of a whole catalogue's units would take gigabytes.
        for s in range(0, n, _BLOCK):
            block = x[s : s + _BLOCK] if rows is None else x[rows[s : s + _BLOCK]]
            block = np.asarray(block, dtype=np.float32)
            peak = np.abs(block).max(axis=1) if block.size else np.zeros(len(block), dtype=np.float32)
            scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
            self.scale[s : s + _BLOCK] = scale
            self.codes[s : s + _BLOCK] = np.rint(block / scale[:, None])
        self.path: Path | None = None
        self._mapped = False

    @classmethod
    def from_codes(cls, codes: np.ndarray, scale: np.ndarray) -> Int8Vectors:
        """Wrap codes and scales that are already quantised (no copy, in memory).

        Parameters
        ----------
        codes : numpy.ndarray
            ``(n, dim)`` int8.
        scale : numpy.ndarray
            ``(n,)`` float32.

        Returns
        -------
        Int8Vectors
        """
        self = cls.__new__(cls)
        self.codes = np.asarray(codes, dtype=np.int8)
        self.scale = np.asarray(scale, dtype=np.float32)
        if self.codes.ndim != 2 or self.scale.shape != (len(self.codes),):
            raise ValueError(f"codes {self.codes.shape} and scales {self.scale.shape} do not match")
        self.path = None
        self._mapped = False
        return self

    def take(self, rows: np.ndarray) -> Int8Vectors:
        """Copy the selected rows' codes and scales into memory (no decoding, no loss).

        Parameters
        ----------
        rows : numpy.ndarray
            Integer indices.

        Returns
        -------
        Int8Vectors
        """
        rows = np.asarray(rows, dtype=np.int64)
        return Int8Vectors.from_codes(self.codes[rows], self.scale[rows])

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vectors to a ``.npy`` file that :meth:`open` can map.

        The file holds one record per row, fields ``scale`` (``<f4``) and ``codes``
        (``i1``, ``dim``), readable with ``numpy.load`` without pickles. Writing is not atomic;
        :func:`open_shared` writes to a temporary name and renames.

        Parameters
        ----------
        path : str or path-like
        """
        out = np.lib.format.open_memmap(Path(path), mode="w+", dtype=_file_dtype(self.shape[1]), shape=(len(self),))
        try:
            for s in range(0, len(self), _BLOCK):
                out["scale"][s : s + _BLOCK] = self.scale[s : s + _BLOCK]
                out["codes"][s : s + _BLOCK] = self.codes[s : s + _BLOCK]
            out.flush()
        finally:
            del out

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> Int8Vectors:
        """Open vectors written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
        mmap : bool, default True
            Map the file read-only (``numpy.load(..., mmap_mode="r")``): rows are read from
            disk, or the page cache, when they are decoded. False reads the file into memory.

        Returns
        -------
        Int8Vectors

        Raises
        ------
        FileNotFoundError
        ValueError
            The file is not an Int8Vectors file (wrong fields) or is truncated.
        """
        path = Path(path)
        data = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        names = data.dtype.names or ()
        if (
            data.ndim != 1
            or names != ("scale", "codes")
            or data.dtype["scale"] != np.dtype("<f4")
            or data.dtype["codes"].base != np.dtype("i1")
            or len(data.dtype["codes"].shape) != 1
        ):
            raise ValueError(f"{path} does not hold Int8Vectors (dtype {data.dtype}, shape {data.shape})")
        self = cls.__new__(cls)
        # Field views of the records: nothing is copied, and a mapped file stays mapped.
        self.scale = data["scale"]
        self.codes = data["codes"]
        self.path = path
        self._mapped = mmap
        return self

    # ------------------------------------------------------------------ sizes
    @property
    def shape(self) -> tuple[int, int]:
        """``(n, dim)``."""
        return self.codes.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes of codes and scales, wherever they are held (see :attr:`resident_nbytes`)."""
        return int(self.codes.nbytes + self.scale.nbytes)

    @property
    def mapped(self) -> bool:
        """True when codes and scales are read from a memory-mapped file."""
        return self._mapped

    @property
    def resident_nbytes(self) -> int:
        """Bytes this object holds in the process's own memory: :attr:`nbytes` when built in
        memory or opened with ``mmap=False``, 0 when mapped (the operating system pages the
        file in, shared between processes, and may drop those pages again)."""
        return 0 if self._mapped else self.nbytes

    def __len__(self) -> int:
        return len(self.codes)

    # ------------------------------------------------------------------ decoding
    def __getitem__(self, idx: Any) -> np.ndarray:
        """Decode the selected rows to float32 (only their pages are read from a mapped file)."""
        codes = self.codes[idx]
        scale = self.scale[idx]
        out = codes.astype(np.float32) * (scale[..., None] if codes.ndim == 2 else scale)
        return np.asarray(out)  # a plain array, never a memmap subclass

    def dot(self, v: np.ndarray) -> np.ndarray:
        """Return ``rows @ v`` as float32, decoding in blocks to keep memory flat.

        Parameters
        ----------
        v : numpy.ndarray
            ``(dim,)`` vector.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` float32.
        """
        v = np.asarray(v, dtype=np.float32)
        out = np.empty(len(self.codes), dtype=np.float32)
        for s in range(0, len(self.codes), _DOT_BLOCK):
            e = s + _DOT_BLOCK
            out[s:e] = (self.codes[s:e].astype(np.float32) @ v) * self.scale[s:e]
        return out


class StackedVectors:
    """Int8 vectors in two segments: ``base`` (in memory or memory-mapped) and then ``extra``
    rows added since, in memory.

    Rows are appended to a catalogue's vectors without copying (or rewriting the file of) the
    base; only the extra segment is copied when it grows. Reads behave like one
    :class:`Int8Vectors` of ``len(base) + len(extra)`` rows and decode the same values.

    Parameters
    ----------
    base, extra : Int8Vectors
    """

    def __init__(self, base: Int8Vectors, extra: Int8Vectors) -> None:
        if base.shape[1] != extra.shape[1]:
            raise ValueError(f"dimensions differ: {base.shape[1]} and {extra.shape[1]}")
        self.base = base
        self.extra = extra

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, dim)``."""
        return len(self), self.base.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes of both segments' codes and scales."""
        return self.base.nbytes + self.extra.nbytes

    @property
    def resident_nbytes(self) -> int:
        """Bytes held in this process's memory (the base's are 0 when it is mapped)."""
        return self.base.resident_nbytes + self.extra.resident_nbytes

    @property
    def mapped(self) -> bool:
        """True when the base segment is memory-mapped."""
        return self.base.mapped

    @property
    def path(self) -> Path | None:
        """The base segment's file, if any."""
        return self.base.path

    def __len__(self) -> int:
        return len(self.base) + len(self.extra)

    def __getitem__(self, idx: Any) -> np.ndarray:
        """Decode the selected rows to float32 (integer or integer-array indices)."""
        nb = len(self.base)
        if isinstance(idx, slice):
            idx = np.arange(len(self))[idx]
        if np.ndim(idx) == 0:
            i = int(idx)
            i = i + len(self) if i < 0 else i
            return self.base[i] if i < nb else self.extra[i - nb]
        idx = np.asarray(idx, dtype=np.int64)
        idx = np.where(idx < 0, idx + len(self), idx)
        out = np.empty(idx.shape + (self.shape[1],), dtype=np.float32)
        in_base = idx < nb
        out[in_base] = self.base[idx[in_base]]
        out[~in_base] = self.extra[idx[~in_base] - nb]
        return out

    def dot(self, v: np.ndarray) -> np.ndarray:
        """Return ``rows @ v`` as float32 (see :meth:`Int8Vectors.dot`)."""
        return np.concatenate([self.base.dot(v), self.extra.dot(v)])

    def take(self, rows: np.ndarray) -> Int8Vectors:
        """Copy the selected rows into one in-memory :class:`Int8Vectors` (no decoding)."""
        rows = np.asarray(rows, dtype=np.int64)
        nb = len(self.base)
        codes = np.empty((len(rows), self.shape[1]), dtype=np.int8)
        scale = np.empty(len(rows), dtype=np.float32)
        in_base = rows < nb
        codes[in_base] = self.base.codes[rows[in_base]]
        scale[in_base] = self.base.scale[rows[in_base]]
        codes[~in_base] = self.extra.codes[rows[~in_base] - nb]
        scale[~in_base] = self.extra.scale[rows[~in_base] - nb]
        return Int8Vectors.from_codes(codes, scale)


def append_rows(vectors: Int8Vectors | StackedVectors, more: Int8Vectors) -> StackedVectors:
    """Return ``vectors`` followed by ``more``, copying only the rows added since the base.

    Parameters
    ----------
    vectors : Int8Vectors or StackedVectors
    more : Int8Vectors

    Returns
    -------
    StackedVectors
    """
    if isinstance(vectors, StackedVectors):
        extra = Int8Vectors.from_codes(
            np.concatenate([vectors.extra.codes, more.codes]), np.concatenate([vectors.extra.scale, more.scale])
        )
        return StackedVectors(vectors.base, extra)
    return StackedVectors(vectors, Int8Vectors.from_codes(np.asarray(more.codes), np.asarray(more.scale)))


def take_rows(vectors: Int8Vectors | StackedVectors, rows: np.ndarray) -> Int8Vectors:
    """Copy selected rows of either kind of vectors into one in-memory :class:`Int8Vectors`."""
    return vectors.take(rows)


def open_shared(
    directory: str | os.PathLike[str], name: str, build: Callable[[], Int8Vectors], prefix: str = "units-"
) -> Int8Vectors:
    """Open ``<directory>/<prefix><name>.npy`` memory-mapped, writing it first if it is absent.

    Several processes indexing the same content pass the same ``name`` (a content hash), so
    they map one file and share its pages. A new file is written under a temporary name and
    renamed into place, so readers never see a partial file; when two processes write the
    same name at once, the second rename replaces an identical file. After writing, the other
    ``<prefix>*.npy`` files of the directory (earlier catalogues) are removed: processes that
    still map one keep reading it, because an unlinked file lives on while it is mapped
    (POSIX). Temporary files of writers that died are removed after an hour.

    Parameters
    ----------
    directory : str or path-like
        Created if missing.
    name : str
        Content hash; characters safe in a file name.
    build : callable
        Returns the vectors to write; called only when the file is missing or unreadable.
    prefix : str, default "units-"
        Files of this kind in the directory; cleanup touches nothing else.

    Returns
    -------
    Int8Vectors
        Mapped from the file; in memory (``build()``, with a ``RuntimeWarning``) when the
        directory cannot be written.
    """
    directory = Path(directory)
    path = directory / f"{prefix}{name}.npy"
    try:
        return Int8Vectors.open(path)
    except (OSError, ValueError, EOFError):
        pass  # missing, or truncated or foreign and replaced below
    vectors = build()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{prefix}", suffix=".tmp")
        os.close(fd)
        try:
            vectors.save(tmp)
            with open(tmp, "rb") as fh:
                # Durable before it gets its final name: after a crash the name never points
                # at a file whose pages were not written.
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(
            f"cannot write unit vectors to {directory} ({exc}); they stay in this process's memory",
            RuntimeWarning,
            stacklevel=2,
        )
        return vectors
    try:
        opened = Int8Vectors.open(path)
    except FileNotFoundError:
        # Another process indexing a different catalogue removed it in the meantime: the
        # vectors just built serve as well.
        return vectors
    _remove_others(directory, prefix, keep=path.name)
    return opened


def _remove_others(directory: Path, prefix: str, keep: str) -> None:
    now = time.time()
    for other in directory.glob(f"{prefix}*.npy"):
        if other.name != keep:
            other.unlink(missing_ok=True)
    for tmp in directory.glob(f".{prefix}*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
