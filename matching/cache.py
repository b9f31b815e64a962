"""Vector stores and a caching encoder: nothing is encoded twice.

A vector is keyed by a *namespace* (encoder name plus role, ``query`` or ``document``, because
e5 encodes the same text differently in each role) and the SHA-256 of the text. The platform can
keep vectors in its database under the same keys and hand them over through any object with
``get_many`` / ``put_many`` (see :class:`VectorStore`).
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .encoders import Encoder, l2_normalise

__all__ = [
    "CachedEncoder",
    "DirectoryVectorStore",
    "MemoryVectorStore",
    "VectorStore",
    "default_cache_dir",
    "namespace",
    "text_key",
]

CACHE_ENV = "CHANJIAO_VECTOR_CACHE"


def text_key(text: str) -> str:
    """Return the cache key of a text: the hex SHA-256 of its UTF-8 bytes.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def namespace(encoder_name: str, role: str) -> str:
    """Return the namespace of an encoder's vectors in one role.

    Parameters
    ----------
    encoder_name : str
        ``Encoder.name``.
    role : {"query", "document"}

    Returns
    -------
    str
    """
    if role not in ("query", "document"):
        raise ValueError(f"role must be 'query' or 'document', got {role!r}")
    return f"{encoder_name}/{role}"


def default_cache_dir() -> Path:
    """Return ``$CHANJIAO_VECTOR_CACHE`` or ``~/.cache/chanjiao/vectors``.

    Returns
    -------
    pathlib.Path
    """
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "chanjiao" / "vectors"


@runtime_checkable
class VectorStore(Protocol):
    """Storage of vectors by (namespace, text key)."""

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the stored vectors among ``keys`` (missing keys are simply absent)."""
        ...

    def put_many(self, ns: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors (float32 or float16 rows) under their keys."""
        ...


class MemoryVectorStore:
    """A vector store in a dictionary; useful for tests and for vectors read from a database.

    Parameters
    ----------
    data : mapping, optional
        ``{namespace: {text_key: vector}}`` to start with.
    """

    def __init__(self, data: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> None:
        self._data: dict[str, dict[str, np.ndarray]] = {
            ns: {k: np.asarray(v, dtype=np.float16) for k, v in d.items()} for ns, d in (data or {}).items()
        }

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the stored vectors among ``keys``.

        Parameters
        ----------
        ns : str
        keys : sequence of str

        Returns
        -------
        dict
            ``{key: vector}`` for the keys present.
        """
        d = self._data.get(ns, {})
        return {k: d[k] for k in keys if k in d}

    def put_many(self, ns: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors.

        Parameters
        ----------
        ns : str
        vectors : mapping of str to numpy.ndarray
        """
        d = self._data.setdefault(ns, {})
        for k, v in vectors.items():
            d[k] = np.asarray(v, dtype=np.float16)

    def __len__(self) -> int:
        return sum(len(d) for d in self._data.values())


class DirectoryVectorStore:
    """Vectors as float16 ``.npz`` packs under a directory, one sub-directory per namespace.

    Each ``put_many`` writes a new pack through a temporary file and an atomic rename, so
    concurrent writers (several evaluations, workers) never corrupt each other, and an
    interrupted encoding keeps what it finished. Packs are loaded without pickle.

    Parameters
    ----------
    directory : path-like, optional
        Defaults to :func:`default_cache_dir`.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self._loaded: dict[str, dict[str, np.ndarray]] = {}
        self._seen_packs: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def _ns_dir(self, ns: str) -> Path:
        # Namespace names come from encoder names, which may hold '/' or ':' (model paths).
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", ns)
        return self.directory / safe

    def _refresh(self, ns: str) -> dict[str, np.ndarray]:
        d = self._loaded.setdefault(ns, {})
        seen = self._seen_packs.setdefault(ns, set())
        folder = self._ns_dir(ns)
        if not folder.is_dir():
            return d
        for pack in sorted(folder.glob("*.npz")):
            if pack.name in seen:
                continue
            try:
                with np.load(pack, allow_pickle=False) as z:
                    keys = z["keys"].astype(str)
                    vecs = z["vectors"]
            except (OSError, ValueError, KeyError) as exc:
                raise OSError(f"vector cache pack {pack} is unreadable ({exc}); delete it") from exc
            for k, v in zip(keys, vecs):
                d[str(k)] = v
            seen.add(pack.name)
        return d

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the stored vectors among ``keys``.

        Parameters
        ----------
        ns : str
        keys : sequence of str

        Returns
        -------
        dict
            ``{key: float16 vector}`` for the keys present.
        """
        with self._lock:
            d = self._loaded.get(ns)
            if d is None or any(k not in d for k in keys):
                d = self._refresh(ns)
            return {k: d[k] for k in keys if k in d}

    def put_many(self, ns: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Write vectors as one new float16 pack.

        Parameters
        ----------
        ns : str
        vectors : mapping of str to numpy.ndarray
        """
        if not vectors:
            return
        keys = list(vectors)
        arr = np.stack([np.asarray(vectors[k], dtype=np.float16) for k in keys])
        folder = self._ns_dir(ns)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.npz"
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="S64"), vectors=arr)
        os.replace(tmp, folder / name)
        with self._lock:
            d = self._loaded.setdefault(ns, {})
            for k, v in zip(keys, arr):
                d[k] = v
            self._seen_packs.setdefault(ns, set()).add(name)


class CachedEncoder:
    """An encoder that asks a :class:`VectorStore` first and stores what it had to encode.

    Parameters
    ----------
    encoder : Encoder
        The encoder doing the work on cache misses.
    store : VectorStore, optional
        Defaults to a :class:`DirectoryVectorStore` at :func:`default_cache_dir`.
    chunk_size : int, default 256
        Misses are encoded and stored in chunks of this size, so long runs keep progress.

    Attributes
    ----------
    hits, misses : int
        Texts not encoded (found in the store, or repeated within a call) and texts encoded,
        since construction.
    """

    def __init__(self, encoder: Encoder, store: VectorStore | None = None, chunk_size: int = 256) -> None:
        self.encoder = encoder
        self.store = store if store is not None else DirectoryVectorStore()
        self.chunk_size = chunk_size
        self.name = encoder.name
        self.dim = encoder.dim
        self.hits = 0
        self.misses = 0

    def _get(self, texts: Sequence[str], role: str) -> np.ndarray:
        ns = namespace(self.name, role)
        keys = [text_key(t) for t in texts]
        found = self.store.get_many(ns, list(dict.fromkeys(keys)))
        missing: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in found and k not in missing:
                missing[k] = t
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        todo = list(missing.items())
        encode = self.encoder.encode_queries if role == "query" else self.encoder.encode_documents
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            vecs = encode([t for _, t in chunk])
            # Round to the stored precision now, so a first call and a cached call agree exactly.
            new = {k: np.asarray(v, dtype=np.float16) for (k, _), v in zip(chunk, vecs)}
            self.store.put_many(ns, new)
            found.update(new)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Stacked as stored (float16 in most stores) and converted once: a float32 copy of each
        # row first would double a large catalogue's peak memory. The values are the same.
        return l2_normalise(np.stack([found[k] for k in keys]))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode demand-side texts, from the store where possible.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        numpy.ndarray
            ``(len(texts), dim)`` float32, rows of norm 1.
        """
        return self._get(list(texts), "query")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Encode programme-side texts, from the store where possible.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        numpy.ndarray
            ``(len(texts), dim)`` float32, rows of norm 1.
        """
        return self._get(list(texts), "document")


def iter_keys(texts: Iterable[str]) -> list[str]:
    """Return the cache keys of texts, in order (a convenience for the platform)."""
    return [text_key(t) for t in texts]
