"""Lexical scoring: BM25 over Chinese character bigrams and jieba words.

Always available (no model, no AVX2), so it is both a retrieval channel next to the dense
encoder and the whole engine when no encoder can run.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from sys import intern

import numpy as np
from scipy import sparse

__all__ = ["BM25", "RowStack", "tokenize", "char_bigrams"]

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*|\d+(?:\.\d+)?")
_jieba_lock = threading.Lock()
_jieba = None

# Words that carry no topic in programme and posting texts; they would otherwise add noise to
# every pair because descriptions are written from the same templates.
STOPWORDS = frozenset(
    ["的", "和", "与", "及", "等", "或", "在", "对", "并", "为", "了", "具有", "能够", "能力", "进行", "相关", "从事", "工作", "掌握", "熟悉", "了解", "基本", "基础", "知识", "技能", "要求", "主要", "方面", "一定", "良好", "运用", "使用", "各种", "有关", "一般", "以及", "其他", "负责"]
)


def _get_jieba():  # noqa: ANN202 - jieba has no type information
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import jieba

            # jieba announces its dictionary loading on the root logger; keep library quiet.
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
    return _jieba


def char_bigrams(text: str) -> list[str]:
    """Return the overlapping character bigrams of every run of Chinese characters.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
        A run of one character yields that character.
    """
    out: list[str] = []
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def tokenize(text: str) -> list[str]:
    """Tokenise mixed Chinese/Latin text for BM25.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
        Character bigrams (prefixed ``b:``), jieba words of two or more characters (``w:``),
        and lower-cased Latin words and numbers (``w:``); stop words removed.
    """
    # Interned: a catalogue repeats the same few hundred thousand tokens tens of millions of
    # times, and one string object per occurrence made the index build's peak memory several
    # times the size of the index.
    tokens = [intern("b:" + g) for g in char_bigrams(text)]
    jieba = _get_jieba()
    for run in _CJK_RUN.findall(text):
        tokens.extend(intern("w:" + w) for w in jieba.lcut(run) if len(w) > 1 and w not in STOPWORDS)
    tokens.extend(intern("w:" + w.lower()) for w in _WORD.findall(text))
    return tokens


class RowStack:
    """A CSR matrix that grows by rows: added rows live in a second, small matrix.

    Appending to one CSR matrix copies all of it; here only the small matrix of rows added
    since the last :meth:`compact` is copied, so adding a few rows to a large index is cheap.
    Columns can be added too (:meth:`widen`): the matrices are re-wrapped with a larger shape,
    without copying.

    Parameters
    ----------
    base : scipy.sparse.csr_matrix
    """

    def __init__(self, base: sparse.csr_matrix) -> None:
        self.base = base
        self.extra: sparse.csr_matrix | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the whole stack."""
        n = self.base.shape[0] + (self.extra.shape[0] if self.extra is not None else 0)
        return n, self.base.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes of the matrices' arrays."""
        return sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in self._parts())

    def _parts(self) -> list[sparse.csr_matrix]:
        return [self.base] if self.extra is None else [self.base, self.extra]

    @staticmethod
    def _wrap(m: sparse.csr_matrix, n_cols: int) -> sparse.csr_matrix:
        if m.shape[1] == n_cols:
            return m
        return sparse.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], n_cols), copy=False)

    def widen(self, n_cols: int) -> None:
        """Give the stack ``n_cols`` columns (no fewer than now), without copying."""
        if n_cols < self.shape[1]:
            raise ValueError(f"cannot narrow {self.shape[1]} columns to {n_cols}")
        self.base = self._wrap(self.base, n_cols)
        if self.extra is not None:
            self.extra = self._wrap(self.extra, n_cols)

    def append(self, rows: sparse.csr_matrix) -> None:
        """Add rows at the end (their column count may exceed the stack's; it widens)."""
        self.widen(max(self.shape[1], rows.shape[1]))
        rows = self._wrap(rows.tocsr(), self.shape[1])
        self.extra = rows if self.extra is None else sparse.vstack([self.extra, rows], format="csr")

    def compact(self) -> sparse.csr_matrix:
        """Return the whole stack as one CSR matrix (the base itself when nothing was added)."""
        if self.extra is None:
            return self.base
        return sparse.vstack([self.base, self.extra], format="csr")

    def __getitem__(self, rows: np.ndarray) -> sparse.csr_matrix:
        """The selected rows, in the given order, as one CSR matrix."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.extra is None:
            return self.base[rows]
        nb = self.base.shape[0]
        in_base = rows < nb
        if in_base.all():
            return self.base[rows]
        if not in_base.any():
            return self.extra[rows - nb]
        m = sparse.vstack([self.base[rows[in_base]], self.extra[rows[~in_base] - nb]], format="csr")
        perm = np.empty(len(rows), dtype=np.int64)
        n_in = int(in_base.sum())
        perm[np.flatnonzero(in_base)] = np.arange(n_in)
        perm[np.flatnonzero(~in_base)] = n_in + np.arange(len(rows) - n_in)
        return m[perm]

    def dot(self, q: np.ndarray) -> np.ndarray:
        """``stack @ q`` for a dense vector, as float32."""
        return np.concatenate([np.asarray(m @ q, dtype=np.float32) for m in self._parts()])

    def matmul(self, q: sparse.spmatrix) -> sparse.csr_matrix:
        """``stack @ q`` for a sparse matrix."""
        parts = [m @ q for m in self._parts()]
        return parts[0] if len(parts) == 1 else sparse.vstack(parts, format="csr")


class BM25:
    """Okapi BM25 with a sparse document-term matrix.

    Documents can be added after :meth:`index` (:meth:`add`) with the collection statistics
    (IDF, average document length) frozen, and the statistics recomputed later
    (:meth:`refresh`), which can also drop documents.

    Parameters
    ----------
    k1 : float, default 1.2
    b : float, default 0.75

    Attributes
    ----------
    vocabulary_ : dict
        Token to column.
    weights_ : scipy.sparse.csr_matrix
        ``(n_docs, n_terms)`` BM25 term weights, so that a query's scores are one product.
    idf_ : numpy.ndarray
        ``(n_terms,)`` float32 IDF the weights were computed with.
    avgdl_ : float
        Average document length the weights were computed with.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def index(
        self,
        texts: Sequence[str] | None = None,
        tokens: Sequence[Sequence[str]] | None = None,
    ) -> BM25:
        """Build the index.

        Parameters
        ----------
        texts : sequence of str, optional
            Raw documents, tokenised with :func:`tokenize`.
        tokens : sequence of token lists, optional
            Pre-tokenised documents instead of ``texts``.

        Returns
        -------
        BM25
            ``self``.
        """
        if tokens is None:
            if texts is None:
                raise ValueError("give texts or tokens")
            tokens = [tokenize(t) for t in texts]
        vocab: dict[str, int] = {}
        tf = self._counts(tokens, vocab)
        self.vocabulary_ = vocab
        self._tf = RowStack(tf)
        self.idf_, self.avgdl_ = self._statistics(tf)
        self._weights = RowStack(self._weigh(tf, self.idf_, self.avgdl_))
        return self

    @staticmethod
    def _counts(tokens: Sequence[Sequence[str]], vocab: dict[str, int]) -> sparse.csr_matrix:
        """Term counts (uint16) of documents; new tokens are added to ``vocab``."""
        n_docs = len(tokens)
        # Straight into arrays: Python lists of a large catalogue's tens of millions of token
        # occurrences took several gigabytes on the way.
        lengths = np.fromiter((len(toks) for toks in tokens), dtype=np.int64, count=n_docs)
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        cols = np.fromiter(
            (vocab.setdefault(tok, len(vocab)) for toks in tokens for tok in toks), dtype=np.int64, count=len(rows)
        )
        # Counts kept as uint16 (a token never occurs 65,536 times in one document): the
        # statistics can be recomputed from them without tokenising again.
        tf = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.uint16), (rows, cols)), shape=(n_docs, max(len(vocab), 1))
        )
        tf.sum_duplicates()
        return tf

    def _statistics(self, tf: sparse.csr_matrix) -> tuple[np.ndarray, float]:
        n_docs = tf.shape[0]
        doc_len = self._lengths(tf)
        avg = doc_len.mean() if n_docs and doc_len.mean() > 0 else np.float32(1.0)
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        return idf, float(avg)

    @staticmethod
    def _lengths(tf: sparse.csr_matrix) -> np.ndarray:
        rows = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        # Whole numbers: exact in float32 whatever the order of the sum.
        return np.bincount(rows, weights=tf.data, minlength=tf.shape[0]).astype(np.float32)

    def _weigh(self, tf: sparse.csr_matrix, idf: np.ndarray, avg: float) -> sparse.csr_matrix:
        doc_len = self._lengths(tf)
        rows = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
        counts = tf.data.astype(np.float32)
        norm = self.k1 * (1 - self.b + self.b * doc_len[rows] / np.float32(avg))
        data = idf[tf.indices] * counts * (self.k1 + 1) / (counts + norm)
        # The counts' index arrays are shared, not copied: the weights cost only their values.
        return sparse.csr_matrix((data.astype(np.float32), tf.indices, tf.indptr), shape=tf.shape, copy=False)

    @property
    def weights_(self) -> sparse.csr_matrix:
        return self._weights.compact()

    @weights_.setter
    def weights_(self, value: sparse.csr_matrix) -> None:
        self._weights = RowStack(value.tocsr())
        self._tf = None

    @property
    def n_docs(self) -> int:
        """Documents held, including those added since the last :meth:`refresh`."""
        return self._weights.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes of the weights and the term counts kept for :meth:`refresh`."""
        own = self._weights.nbytes + (self._tf.nbytes if self._tf is not None else 0)
        # The counts share their index arrays with the weights.
        shared = sum(m.indices.nbytes + m.indptr.nbytes for m in self._weights._parts()) if self._tf is not None else 0
        return own - shared

    def _require_counts(self) -> RowStack:
        if getattr(self, "_tf", None) is None:
            raise ValueError("this index holds no term counts (loaded from disk); index it again")
        return self._tf

    def add(self, tokens: Sequence[Sequence[str]]) -> np.ndarray:
        """Add documents, weighed with the current statistics (which stay as they are).

        A term that the index has not seen gets an IDF from the documents of this call (its
        document frequency among them, against the number of documents held), kept until the
        next :meth:`refresh`.

        Parameters
        ----------
        tokens : sequence of token lists

        Returns
        -------
        numpy.ndarray
            Row indices of the new documents.
        """
        counts = self._require_counts()
        n_before = self.n_docs
        n_terms = len(self.vocabulary_)
        tf = self._counts(tokens, self.vocabulary_)
        if len(self.vocabulary_) > n_terms:
            df = np.bincount(tf.indices, minlength=tf.shape[1])[n_terms : len(self.vocabulary_)]
            n = n_before + len(tokens)
            new_idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
            self.idf_ = np.concatenate([self.idf_[:n_terms], new_idf])
        width = max(len(self.vocabulary_), 1, counts.shape[1])
        tf = RowStack._wrap(tf, width)
        idf = self.idf_ if len(self.idf_) >= width else np.concatenate(
            [self.idf_, np.zeros(width - len(self.idf_), np.float32)]
        )
        counts.append(tf)
        self._weights.append(self._weigh(tf, idf, self.avgdl_))
        return np.arange(n_before, self.n_docs)

    def refresh(
        self,
        keep: np.ndarray | None = None,
        tokens_of: Callable[[np.ndarray], Sequence[Sequence[str]]] | None = None,
    ) -> BM25:
        """Recompute the statistics and the weights, optionally keeping only some documents.

        Terms are numbered again in order of first occurrence in the kept documents, as
        :meth:`index` numbers them, which fixes the order in which a score's terms are summed.
        Where a term's first occurrence moves to another document (the document that had it
        first was dropped, or an added one comes first), its place among that document's terms
        is not in the counts: ``tokens_of`` returns the tokens of those few documents again.

        Parameters
        ----------
        keep : numpy.ndarray, optional
            Row indices of the documents kept, in their new order; all of them by default.
        tokens_of : callable, optional
            Given row indices (of the current rows), returns those documents' tokens as they
            were indexed. Without it, such terms keep their relative order from before.

        Returns
        -------
        BM25
            ``self``; with ``tokens_of``, exactly as indexing the kept documents' tokens in that
            order would have built it.
        """
        counts = self._require_counts()
        old = counts.compact()
        n_old, n_cols = old.shape
        keep = np.arange(n_old, dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
        tf = old[keep]
        n = len(keep)
        # First (old) row holding each column: within one row, index() and add() numbered the
        # terms that row introduced in order of occurrence, so for them the old numbering is
        # the occurrence order.
        old_first = np.full(n_cols, n_old, dtype=np.int64)
        np.minimum.at(old_first, old.indices, np.repeat(np.arange(n_old), np.diff(old.indptr)))
        first = np.full(n_cols, n, dtype=np.int64)
        np.minimum.at(first, tf.indices, np.repeat(np.arange(n), np.diff(tf.indptr)))
        used = np.flatnonzero(first < n)
        rank = np.arange(n_cols, dtype=np.int64)
        moved = used[old_first[used] != keep[first[used]]]
        if tokens_of is not None and moved.size:
            docs = np.unique(first[moved])
            for r, toks in zip(docs.tolist(), tokens_of(keep[docs])):
                for i, tok in enumerate(dict.fromkeys(toks)):
                    c = self.vocabulary_.get(tok)
                    if c is not None and first[c] == r:
                        rank[c] = i
        order = used[np.lexsort((rank[used], first[used]))]
        terms: list[str] = [""] * n_cols
        for t, c in self.vocabulary_.items():
            terms[c] = t
        self.vocabulary_ = {terms[c]: i for i, c in enumerate(order.tolist())}
        remap = np.full(n_cols, -1, dtype=np.int64)
        remap[order] = np.arange(len(order))
        tf = sparse.csr_matrix(
            (tf.data, remap[tf.indices].astype(np.int32), tf.indptr), shape=(n, max(len(order), 1))
        )
        tf.has_sorted_indices = False
        tf.sort_indices()
        self._tf = RowStack(tf)
        self.idf_, self.avgdl_ = self._statistics(tf)
        self._weights = RowStack(self._weigh(tf, self.idf_, self.avgdl_))
        return self

    def query_matrix(self, queries: Iterable[Sequence[str]]) -> sparse.csr_matrix:
        """Turn tokenised queries into a ``(n_terms, n_queries)`` matrix of term counts.

        Parameters
        ----------
        queries : iterable of token lists

        Returns
        -------
        scipy.sparse.csr_matrix
        """
        rows: list[int] = []
        cols: list[int] = []
        n = 0
        for j, toks in enumerate(queries):
            n = j + 1
            for tok in set(toks):
                col = self.vocabulary_.get(tok)
                if col is not None:
                    rows.append(col)
                    cols.append(j)
        return sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(self._weights.shape[1], n)
        )

    def scores(self, queries: Sequence[Sequence[str]]) -> np.ndarray:
        """Score every document for every tokenised query.

        Parameters
        ----------
        queries : sequence of token lists

        Returns
        -------
        numpy.ndarray
            ``(n_queries, n_docs)`` float32.
        """
        if len(queries) == 1:
            # One query (every request): a dense 0/1 term vector makes this a single pass over
            # the weights, several times faster than the sparse product's two passes and the
            # sparse result; the sums are taken in the same order, so the scores are the same.
            q = np.asarray(self.query_matrix(queries).todense(), dtype=np.float32).ravel()
            return self._weights.dot(q)[None, :]
        return np.asarray(self._weights.matmul(self.query_matrix(queries)).T.todense(), dtype=np.float32)

    def scores_rows(self, tokens: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """Score only some documents for one tokenised query.

        Parameters
        ----------
        tokens : sequence of str
        rows : numpy.ndarray
            Document indices.

        Returns
        -------
        numpy.ndarray
            ``(len(rows),)`` float32.
        """
        return np.asarray((self._weights[rows] @ self.query_matrix([tokens])).todense(), dtype=np.float32).ravel()

    def retrieve(self, query: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Return the top-``k`` documents for a raw query.

        Parameters
        ----------
        query : str
        k : int, default 10

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            Document indices and scores, best first.
        """
        s = self.scores([tokenize(query)])[0]
        k = min(k, len(s))
        top = np.argpartition(-s, k - 1)[:k] if k else np.zeros(0, dtype=np.int64)
        top = top[np.argsort(-s[top], kind="stable")]
        return top, s[top]

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Save as ``params.json`` plus ``.npy`` arrays (no pickle).

        Parameters
        ----------
        directory : path-like
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)
        (d / "params.json").write_text(
            json.dumps({"k1": self.k1, "b": self.b, "terms": terms}, ensure_ascii=False), encoding="utf-8"
        )
        w = self.weights_.tocsr()
        np.save(d / "data.npy", w.data)
        np.save(d / "indices.npy", w.indices)
        np.save(d / "indptr.npy", w.indptr)
        np.save(d / "shape.npy", np.array(w.shape, dtype=np.int64))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> BM25:
        """Load an index written by :meth:`save`.

        Parameters
        ----------
        directory : path-like

        Returns
        -------
        BM25
        """
        d = Path(directory)
        params = json.loads((d / "params.json").read_text(encoding="utf-8"))
        obj = cls(k1=params["k1"], b=params["b"])
        obj.vocabulary_ = {t: i for i, t in enumerate(params["terms"])}
        arrays = {n: np.load(d / f"{n}.npy", allow_pickle=False) for n in ("data", "indices", "indptr", "shape")}
        obj.weights_ = sparse.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
        )
        return obj
