"""Pair features between one demand and candidate programmes.

All features are computed in the (demand, programme) orientation, whichever direction is being
matched, so one ranker serves both. Scores that depend on the catalogue are normalised per
demand (relative to the best programme, or as z-scores over the catalogue) so that a linear
ranker learned on some demands transfers to others.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lexical import BM25, char_bigrams, tokenize
from .types import Demand, Programme
from .units import EVIDENCE_KINDS, demand_units, programme_units

__all__ = ["FEATURES", "DemandQuery", "ProgrammeIndex", "pair_features"]

KIND_CODES = {k: i for i, k in enumerate(("title", "profile", *EVIDENCE_KINDS, "duty", "requirement", "skill_req"))}
LEXICAL_FIELDS = ("title", "description", "skills", "modules")

#: Feature names, in column order. Dense features are 0 when no encoder is available.
FEATURES: tuple[str, ...] = (
    "dense_profile",
    "dense_profile_z",
    "dense_title",
    "dense_title_z",
    "dense_title_profile",
    "dense_profile_title",
    "req_maxsim_mean",
    "req_maxsim_skill",
    "req_maxsim_module",
    "req_maxsim_top",
    "req_coverage",
    "profile_unit_max",
    "profile_unit_top3",
    "title_unit_max",
    "unit_back_mean",
    "bm25_all_rel",
    "bm25_all_z",
    "bm25_title_rel",
    "bm25_description_rel",
    "bm25_skills_rel",
    "bm25_modules_rel",
    "bm25_qtitle_rel",
    "lex_req_overlap",
    "lex_title_overlap",
    "rank_dense",
    "rank_lexical",
)
LEXICAL_FEATURES = tuple(f for f in FEATURES if f.startswith(("bm25", "lex", "rank_lexical")))


def _zscore(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    std = float(ref.std())
    return (values - float(ref.mean())) / std if std > 1e-9 else np.zeros_like(values)


def _rel(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    top = float(ref.max()) if ref.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _bigram_set(text: str) -> frozenset[str]:
    return frozenset(char_bigrams(text))


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of ``a``'s bigrams found in ``b`` (lexical stand-in for a similarity)."""
    return len(a & b) / len(a) if a else 0.0


@dataclass
class UnitTable:
    """Encoded units of a record set, stored contiguously per record."""

    texts: list[str]
    kinds: np.ndarray  # int8 kind codes
    owner: np.ndarray  # int32 record index, non-decreasing
    start: np.ndarray  # int64 offsets, len = n_records + 1
    vectors: np.ndarray | None  # float16 (n_units, dim), None without encoder
    bigrams: list[frozenset[str]] = field(default_factory=list)


@dataclass
class ProgrammeIndex:
    """Everything precomputed about a programme catalogue.

    Built by :class:`~matching.pipeline.Matcher`; title and profile vectors are float16 to halve
    memory (the cosine error is below 1e-3).
    """

    programmes: list[Programme]
    title_vecs: np.ndarray | None
    profile_vecs: np.ndarray | None
    units: UnitTable
    bm25_all: BM25
    bm25_fields: dict[str, BM25]


@dataclass
class DemandQuery:
    """A demand prepared for scoring: vectors, tokens and requirement units."""

    demand: Demand
    title_vec: np.ndarray | None
    profile_vec: np.ndarray | None
    req_texts: list[str]
    req_kinds: list[str]
    req_vecs: np.ndarray | None
    tokens: list[str]
    title_tokens: list[str]
    req_bigrams: list[frozenset[str]]
    title_bigrams: frozenset[str]


def build_units(records_units: list[list[tuple[str, str]]], keep: tuple[str, ...]) -> UnitTable:
    """Collect the units of the given kinds from per-record unit lists (vectors added later)."""
    texts: list[str] = []
    kinds: list[int] = []
    owner: list[int] = []
    start = [0]
    for i, units in enumerate(records_units):
        for kind, text in units:
            if kind in keep:
                texts.append(text)
                kinds.append(KIND_CODES[kind])
                owner.append(i)
        start.append(len(texts))
    return UnitTable(
        texts=texts,
        kinds=np.array(kinds, dtype=np.int8),
        owner=np.array(owner, dtype=np.int32),
        start=np.array(start, dtype=np.int64),
        vectors=None,
        bigrams=[_bigram_set(t) for t in texts],
    )


def programme_field_texts(programmes: list[Programme]) -> dict[str, list[str]]:
    """Return the per-field texts that the lexical indexes hold."""
    out: dict[str, list[str]] = {f: [] for f in LEXICAL_FIELDS}
    for p in programmes:
        fields = p.text_fields()
        out["title"].append(fields["title"])
        out["description"].append(fields["description"])
        out["skills"].append("；".join(x for x in (fields["skills"], fields["outcomes"]) if x))
        out["modules"].append("；".join(x for x in (fields["modules"], fields["certificates"]) if x))
    return out


def prepare_demand_tokens(d: Demand) -> tuple[list[str], list[str]]:
    """Return the BM25 tokens of a demand's full text and of its title."""
    units = demand_units(d)
    full = "；".join(t for k, t in units if k != "profile")
    return tokenize(full), tokenize(units[0][1])


def _segment_max(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, fill: float) -> np.ndarray:
    """Max over contiguous row segments; ``fill`` for empty segments."""
    out = np.full((len(counts),) + values.shape[1:], fill, dtype=np.float32)
    nonempty = counts > 0
    if values.shape[0] and nonempty.any():
        out[nonempty] = np.maximum.reduceat(values, starts[nonempty], axis=0)
    return out


def _gather_units(units: UnitTable, cand: np.ndarray, kinds: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Return unit row indices of the candidates (grouped by candidate) and per-candidate counts."""
    rows: list[np.ndarray] = []
    counts = np.zeros(len(cand), dtype=np.int64)
    for j, c in enumerate(cand):
        r = np.arange(units.start[c], units.start[c + 1])
        if kinds is not None and r.size:
            r = r[np.isin(units.kinds[r], kinds)]
        rows.append(r)
        counts[j] = r.size
    return (np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)), counts


@dataclass
class PairDetail:
    """Per-requirement best evidence for each candidate, kept for explanations."""

    best_sim: np.ndarray  # (n_cand, n_req)
    best_unit: np.ndarray  # (n_cand, n_req) global unit row, -1 if none


def pair_features(
    q: DemandQuery,
    index: ProgrammeIndex,
    cand: np.ndarray,
    catalogue_scores: dict[str, np.ndarray],
    coverage_threshold: float,
) -> tuple[np.ndarray, PairDetail]:
    """Compute the feature matrix of one demand against candidate programmes.

    Parameters
    ----------
    q : DemandQuery
    index : ProgrammeIndex
    cand : numpy.ndarray
        Programme indices.
    catalogue_scores : dict
        Scores of the demand against the whole catalogue (``dense_profile``, ``dense_title``,
        ``bm25_all`` and the ranks), as produced during retrieval; used for normalisation.
    coverage_threshold : float
        Similarity above which a requirement counts as covered.

    Returns
    -------
    (numpy.ndarray, PairDetail)
        ``(len(cand), len(FEATURES))`` float32 and the evidence detail.
    """
    n = len(cand)
    X = np.zeros((n, len(FEATURES)), dtype=np.float32)
    col = {f: i for i, f in enumerate(FEATURES)}
    units = index.units
    ev_kinds = tuple(KIND_CODES[k] for k in EVIDENCE_KINDS)
    rows, counts = _gather_units(units, cand, ev_kinds)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    n_req = len(q.req_texts)
    dense = q.profile_vec is not None and index.profile_vecs is not None and units.vectors is not None

    if dense:
        sp = catalogue_scores["dense_profile"]
        st = catalogue_scores["dense_title"]
        X[:, col["dense_profile"]] = sp[cand]
        X[:, col["dense_profile_z"]] = _zscore(sp[cand], sp)
        X[:, col["dense_title"]] = st[cand]
        X[:, col["dense_title_z"]] = _zscore(st[cand], st)
        X[:, col["dense_title_profile"]] = index.profile_vecs[cand].astype(np.float32) @ q.title_vec
        X[:, col["dense_profile_title"]] = index.title_vecs[cand].astype(np.float32) @ q.profile_vec
        E = units.vectors[rows].astype(np.float32)
        kinds = units.kinds[rows]
        if n_req:
            S = E @ q.req_vecs.T  # (n_units, n_req)
            best = _segment_max(S, starts, counts, 0.0)  # (n, n_req)
            X[:, col["req_maxsim_mean"]] = best.mean(axis=1)
            X[:, col["req_maxsim_top"]] = np.sort(best, axis=1)[:, -3:].mean(axis=1)
            X[:, col["req_coverage"]] = (best >= coverage_threshold).mean(axis=1)
            for kind, name in (("skill", "req_maxsim_skill"), ("module", "req_maxsim_module")):
                masked = np.where((kinds == KIND_CODES[kind])[:, None], S, -1.0)
                kb = _segment_max(masked, starts, counts, 0.0)
                X[:, col[name]] = np.clip(kb, 0.0, None).mean(axis=1)
            arg = _best_rows(S, starts, counts)
            detail = PairDetail(best_sim=best, best_unit=np.where(arg >= 0, rows[np.clip(arg, 0, None)], -1))
        else:
            detail = PairDetail(np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64))
        sq = np.stack([q.profile_vec, q.title_vec])
        pu = E @ sq.T  # (n_units, 2)
        X[:, col["profile_unit_max"]] = _segment_max(pu[:, :1], starts, counts, 0.0)[:, 0]
        X[:, col["title_unit_max"]] = _segment_max(pu[:, 1:], starts, counts, 0.0)[:, 0]
        X[:, col["profile_unit_top3"]] = _segment_topk_mean(pu[:, 0], starts, counts, 3)
        back_q = np.vstack([q.req_vecs, sq]) if n_req else sq
        back = (E @ back_q.T).max(axis=1)
        X[:, col["unit_back_mean"]] = _segment_mean(back, starts, counts)
    else:
        detail = _lexical_detail(q, units, rows, counts, starts)

    b = catalogue_scores["bm25_all"]
    X[:, col["bm25_all_rel"]] = _rel(b[cand], b)
    X[:, col["bm25_all_z"]] = _zscore(b[cand], b)
    for name in LEXICAL_FIELDS:
        s = catalogue_scores[f"bm25_{name}"]
        X[:, col[f"bm25_{name}_rel"]] = _rel(s[cand], s)
    bt = catalogue_scores["bm25_qtitle"]
    X[:, col["bm25_qtitle_rel"]] = _rel(bt[cand], bt)
    lex = _lexical_detail(q, units, rows, counts, starts) if dense else detail
    if n_req:
        X[:, col["lex_req_overlap"]] = lex.best_sim.mean(axis=1)
    for j, c in enumerate(cand):
        X[j, col["lex_title_overlap"]] = overlap(q.title_bigrams, _bigram_set(index.programmes[c].title))
    X[:, col["rank_dense"]] = 1.0 / np.log2(2.0 + catalogue_scores["rank_dense"][cand]) if dense else 0.0
    X[:, col["rank_lexical"]] = 1.0 / np.log2(2.0 + catalogue_scores["rank_lexical"][cand])
    return X, detail


def _best_rows(S: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Index (within ``S``) of the best unit per candidate and requirement, -1 if none."""
    out = np.full((len(counts), S.shape[1]), -1, dtype=np.int64)
    for j, (s0, c) in enumerate(zip(starts, counts)):
        if c:
            out[j] = s0 + S[s0 : s0 + c].argmax(axis=0)
    return out


def _segment_mean(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), dtype=np.float32)
    nonempty = counts > 0
    if values.size and nonempty.any():
        out[nonempty] = np.add.reduceat(values, starts[nonempty]) / counts[nonempty]
    return out


def _segment_topk_mean(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(len(counts), dtype=np.float32)
    for j, (s0, c) in enumerate(zip(starts, counts)):
        if c:
            seg = values[s0 : s0 + c]
            out[j] = np.sort(seg)[-k:].mean()
    return out


def _lexical_detail(
    q: DemandQuery, units: UnitTable, rows: np.ndarray, counts: np.ndarray, starts: np.ndarray
) -> PairDetail:
    n, r = len(counts), len(q.req_texts)
    best = np.zeros((n, r), dtype=np.float32)
    best_unit = np.full((n, r), -1, dtype=np.int64)
    for j, (s0, c) in enumerate(zip(starts, counts)):
        for u in rows[s0 : s0 + c]:
            ub = units.bigrams[u]
            for i in range(r):
                s = overlap(q.req_bigrams[i], ub)
                if s > best[j, i]:
                    best[j, i] = s
                    best_unit[j, i] = u
    return PairDetail(best, best_unit)


__all__ += ["PairDetail", "UnitTable", "build_units", "overlap", "programme_field_texts", "programme_units"]
