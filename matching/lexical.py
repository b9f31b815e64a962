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
from collections.abc import Iterable, Sequence
from pathlib import Path
from sys import intern

import numpy as np
from scipy import sparse

__all__ = ["BM25", "tokenize", "char_bigrams"]

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+#.\-]*|\d+(?:\.\d+)?")
_jieba_lock = threading.Lock()
_jieba = None

# Words that carry no topic in programme and posting texts; they would otherwise add noise to
# every pair because descriptions are written from the same templates.
STOPWORDS = frozenset(
    "的 和 与 及 等 或 在 对 并 为 了 具有 能够 能力 进行 相关 从事 工作 掌握 熟悉 了解 基本 基础 "
    "知识 技能 要求 主要 方面 一定 良好 运用 使用 各种 有关 一般 以及 其他 负责".split()
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


class BM25:
    """Okapi BM25 with a sparse document-term matrix.

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
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def index(self, texts: Sequence[str] | None = None, tokens: Sequence[Sequence[str]] | None = None) -> "BM25":
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
        n_docs = len(tokens)
        # Straight into arrays: Python lists of a large catalogue's tens of millions of token
        # occurrences took several gigabytes on the way.
        lengths = np.fromiter((len(toks) for toks in tokens), dtype=np.int64, count=n_docs)
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        cols = np.fromiter(
            (vocab.setdefault(tok, len(vocab)) for toks in tokens for tok in toks), dtype=np.int64, count=len(rows)
        )
        tf = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(n_docs, max(len(vocab), 1)),
        )
        tf.sum_duplicates()
        self.vocabulary_ = vocab
        self.weights_ = self._weigh(tf)
        return self

    def _weigh(self, tf: sparse.csr_matrix) -> sparse.csr_matrix:
        n_docs = tf.shape[0]
        doc_len = np.asarray(tf.sum(axis=1)).ravel()
        avg = doc_len.mean() if n_docs and doc_len.mean() > 0 else 1.0
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = tf.tocoo()
        norm = self.k1 * (1 - self.b + self.b * doc_len[tf.row] / avg)
        data = idf[tf.col] * tf.data * (self.k1 + 1) / (tf.data + norm)
        return sparse.csr_matrix((data.astype(np.float32), (tf.row, tf.col)), shape=tf.shape)

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
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(self.weights_.shape[1], n)
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
            return np.asarray(self.weights_ @ q, dtype=np.float32)[None, :]
        return np.asarray((self.weights_ @ self.query_matrix(queries)).T.todense(), dtype=np.float32)

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
        return np.asarray((self.weights_[rows] @ self.query_matrix([tokens])).todense(), dtype=np.float32).ravel()

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
    def load(cls, directory: str | os.PathLike[str]) -> "BM25":
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
