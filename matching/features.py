"""Pair features between one demand and candidate programmes.

All features are computed in the (demand, programme) orientation, whichever direction is being
matched, so one ranker serves both. Scores that depend on the catalogue are normalised per
demand (relative to the best programme, or as z-scores over the catalogue) so that a linear
ranker learned on some demands transfers to others.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from .levels import role_min_level
from .lexical import BM25, RowStack, char_bigrams, tokenize
from .types import Demand, Programme
from .units import EVIDENCE_KINDS, demand_units
from .vectors import Int8Vectors, StackedVectors, append_rows

__all__ = ["FEATURES", "INDICATOR_FEATURES", "DemandQuery", "ProgrammeIndex", "pair_features"]

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
    "neighbour_hybrid_mean",
    "neighbour_hybrid_max",
    "dense_prf_z",
    "title_prf_z",
    "req_profile_mean",
    "req_title_max",
    "description_profile",
    "description_unit_max",
    "unit_centroid_profile",
    "level_below_role",
)
#: 0/1 flags; a raised flag is also reported as an explanation note of the same name.
INDICATOR_FEATURES: tuple[str, ...] = ("level_below_role",)
#: Features available without an encoder.
LEXICAL_FEATURES = tuple(f for f in FEATURES if f.startswith(("bm25", "lex", "rank_lexical", "level")))


def _zscore(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if not ref.size:
        return np.zeros_like(values)
    std = float(ref.std())
    return (values - float(ref.mean())) / std if std > 1e-9 else np.zeros_like(values)


def _zscore_with(values: np.ndarray, mean_std: np.ndarray) -> np.ndarray:
    return (values - mean_std[0]) / mean_std[1] if mean_std[1] > 1e-9 else np.zeros_like(values)


def _rel_self(values: np.ndarray) -> np.ndarray:
    return _rel(values, values)


def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x), dtype=np.float32)
    r[np.argsort(-x, kind="stable")] = np.arange(len(x), dtype=np.float32)
    return r


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
    # One row per distinct text (after an incremental append, texts added since may repeat
    # earlier ones), None without encoder.
    vectors: Int8Vectors | StackedVectors | None
    vector_row: np.ndarray | None = None  # int32 row of ``vectors`` for each unit
    bigram_vocab: dict[str, int] = field(default_factory=dict)
    bigram_matrix: sparse.csr_matrix | RowStack | None = None  # binary (n_units, n_bigrams)


@dataclass
class ProgrammeIndex:
    """Everything precomputed about a programme catalogue.

    Built by :class:`~matching.pipeline.Matcher`; vectors are int8-coded (see
    :mod:`matching.vectors`).
    """

    programmes: list[Programme]
    title_vecs: Int8Vectors | StackedVectors | None
    profile_vecs: Int8Vectors | StackedVectors | None
    units: UnitTable
    bm25_all: BM25
    bm25_fields: dict[str, BM25]
    sample: np.ndarray | None = None  # programme rows whose scores give normalisation statistics
    sample_profile: np.ndarray | None = None  # their decoded vectors, float32
    sample_title: np.ndarray | None = None
    levels: np.ndarray | None = None  # int8 level rank per programme (see matching.levels), -1 unknown


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
    description_vec: np.ndarray | None = None
    conditions: list[str] = field(default_factory=list)  # requirements training cannot supply


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
    vocab: dict[str, int] = {}
    r_idx: list[int] = []
    c_idx: list[int] = []
    for i, t in enumerate(texts):
        for g in _bigram_set(t):
            r_idx.append(i)
            c_idx.append(vocab.setdefault(g, len(vocab)))
    matrix = sparse.csr_matrix(
        (np.ones(len(r_idx), dtype=np.float32), (r_idx, c_idx)), shape=(len(texts), max(len(vocab), 1))
    )
    return UnitTable(
        texts=texts,
        kinds=np.array(kinds, dtype=np.int8),
        owner=np.array(owner, dtype=np.int32),
        start=np.array(start, dtype=np.int64),
        vectors=None,
        bigram_vocab=vocab,
        bigram_matrix=matrix,
    )


def append_units(units: UnitTable, new: UnitTable, first_record: int) -> None:
    """Append ``new`` (the units of records ``first_record``, ``first_record + 1``...) to
    ``units`` in place; only the small per-unit arrays are copied whole."""
    if first_record != len(units.start) - 1:
        raise ValueError(f"records continue at {len(units.start) - 1}, not {first_record}")
    n_units = len(units.texts)
    units.texts.extend(new.texts)
    units.kinds = np.concatenate([units.kinds, new.kinds])
    units.owner = np.concatenate([units.owner, (new.owner + first_record).astype(np.int32)])
    units.start = np.concatenate([units.start, new.start[1:] + n_units])
    if units.vectors is not None and new.vectors is not None and new.vector_row is not None:
        n_vec = len(units.vectors)
        units.vectors = append_rows(units.vectors, new.vectors)  # type: ignore[arg-type]
        units.vector_row = np.concatenate([units.vector_row, (new.vector_row + n_vec).astype(np.int32)])
    if new.bigram_matrix is not None:
        vocab = units.bigram_vocab
        remap = np.zeros(max(len(new.bigram_vocab), 1), dtype=np.int64)
        for g, c in new.bigram_vocab.items():
            remap[c] = vocab.setdefault(g, len(vocab))
        m = new.bigram_matrix
        rows = sparse.csr_matrix(
            (m.data, remap[m.indices].astype(np.int32), m.indptr), shape=(m.shape[0], max(len(vocab), 1))
        )
        rows.has_sorted_indices = False
        rows.sort_indices()
        if not isinstance(units.bigram_matrix, RowStack):
            units.bigram_matrix = RowStack(units.bigram_matrix)
        units.bigram_matrix.append(rows)


def select_units(units: UnitTable, keep: np.ndarray) -> UnitTable:
    """Return the units of records ``keep`` (in that order) as a compact table.

    Each distinct text keeps one vector row (copied, not decoded), in order of first
    occurrence, so the table equals the one :func:`build_units` and encoding would build for
    those records.
    """
    keep = np.asarray(keep, dtype=np.int64)
    rows, counts = _gather_units(units, keep, None)
    texts = [units.texts[r] for r in rows]
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = UnitTable(
        texts=texts,
        kinds=units.kinds[rows],
        owner=np.repeat(np.arange(len(keep)), counts).astype(np.int32),
        start=start,
        vectors=None,
    )
    if units.vectors is not None and units.vector_row is not None:
        first: dict[str, int] = {}
        for t, r in zip(texts, rows.tolist()):
            first.setdefault(t, r)
        out.vectors = units.vectors.take(units.vector_row[list(first.values())])
        at = {t: i for i, t in enumerate(first)}
        out.vector_row = np.array([at[t] for t in texts], dtype=np.int32)
    if units.bigram_matrix is not None:
        m = units.bigram_matrix[rows] if len(rows) else sparse.csr_matrix((0, units.bigram_matrix.shape[1]), dtype=np.float32)
        used = np.unique(m.indices)
        remap = np.full(units.bigram_matrix.shape[1], -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        out.bigram_vocab = {g: int(remap[c]) for g, c in units.bigram_vocab.items() if c < len(remap) and remap[c] >= 0}
        out.bigram_matrix = sparse.csr_matrix(
            (m.data, remap[m.indices].astype(np.int32), m.indptr), shape=(len(rows), max(len(used), 1))
        )
    return out


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
    full = "；".join([units[0][1], *(t for t in d.text_fields().values() if t)])
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
    lo, hi = units.start[cand], units.start[np.asarray(cand) + 1]
    counts = hi - lo
    rows = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    if kinds is not None and rows.size:
        keep = np.isin(units.kinds[rows], kinds)
        seg = np.repeat(np.arange(len(cand)), counts)
        rows = rows[keep]
        counts = np.bincount(seg[keep], minlength=len(cand))
    return rows.astype(np.int64), counts.astype(np.int64)


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
    # Rows removed from an incrementally updated catalogue (still held until it is compacted)
    # take no part in the catalogue-wide statistics.
    live = catalogue_scores.get("_live")

    def ref(a: np.ndarray) -> np.ndarray:
        return a if live is None else a[live]

    if dense:
        V = index.profile_vecs[cand]
        T = index.title_vecs[cand]
        sp = catalogue_scores["dense_profile"]
        X[:, col["dense_profile"]] = sp[cand]
        X[:, col["dense_profile_z"]] = _zscore(sp[cand], ref(sp))
        # Scores that are not needed for retrieval are computed for the candidates only and
        # standardised with statistics from a fixed sample of the catalogue.
        stats = catalogue_scores["_stats"]
        st = T @ q.title_vec
        X[:, col["dense_title"]] = st
        X[:, col["dense_title_z"]] = _zscore_with(st, stats[0])
        X[:, col["dense_prf_z"]] = _zscore_with(V @ catalogue_scores["_prf_vec"], stats[1])
        X[:, col["title_prf_z"]] = _zscore_with(T @ catalogue_scores["_prf_title_vec"], stats[2])
        X[:, col["dense_title_profile"]] = V @ q.title_vec
        X[:, col["dense_profile_title"]] = T @ q.profile_vec
        E = units.vectors[units.vector_row[rows]]
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
            X[:, col["req_profile_mean"]] = (V @ q.req_vecs.T).mean(axis=1)
            X[:, col["req_title_max"]] = (T @ q.req_vecs.T).max(axis=1)
            arg = _best_rows(S, starts, counts)
            # Candidates without any evidence unit (a programme that is only a title) have no
            # row to point at: -1, and nothing to index when no candidate has one.
            best_unit = rows[np.clip(arg, 0, None)] if rows.size else np.full_like(arg, -1)
            detail = PairDetail(best_sim=best, best_unit=np.where(arg >= 0, best_unit, -1))
        else:
            detail = PairDetail(np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64))
        sq = np.stack([q.profile_vec, q.title_vec])
        pu = E @ sq.T  # (n_units, 2)
        X[:, col["profile_unit_max"]] = _segment_max(pu[:, :1], starts, counts, 0.0)[:, 0]
        X[:, col["title_unit_max"]] = _segment_max(pu[:, 1:], starts, counts, 0.0)[:, 0]
        X[:, col["profile_unit_top3"]] = _segment_topk_mean(pu[:, 0], starts, counts, 3)
        # Cluster hypothesis: programmes close to other well-scored candidates (the same trade
        # at another level, a sibling speciality) tend to be relevant too.
        h = _zscore(catalogue_scores["_hybrid"][cand], ref(catalogue_scores["_hybrid"]))
        if n > 1:
            sim = 0.5 * (V @ V.T + T @ T.T)
            np.fill_diagonal(sim, -np.inf)
            m = min(3, n - 1)
            nn = np.argpartition(-sim, m - 1, axis=1)[:, :m]
            w = np.clip(np.take_along_axis(sim, nn, axis=1), 0.0, None)
            X[:, col["neighbour_hybrid_mean"]] = (w * h[nn]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-6)
            X[:, col["neighbour_hybrid_max"]] = (w * h[nn]).max(axis=1)
        dq = q.description_vec if q.description_vec is not None else q.profile_vec
        X[:, col["description_profile"]] = V @ dq
        X[:, col["description_unit_max"]] = _segment_max((E @ dq)[:, None], starts, counts, 0.0)[:, 0]
        sums = np.zeros((n, E.shape[1]), dtype=np.float32)
        nonempty = counts > 0
        if E.shape[0]:
            sums[nonempty] = np.add.reduceat(E, starts[nonempty], axis=0)
        norms = np.linalg.norm(sums, axis=1)
        X[:, col["unit_centroid_profile"]] = np.where(norms > 0, (sums @ q.profile_vec) / np.maximum(norms, 1e-9), 0.0)
        back_q = np.vstack([q.req_vecs, sq]) if n_req else sq
        back = (E @ back_q.T).max(axis=1)
        X[:, col["unit_back_mean"]] = _segment_mean(back, starts, counts)
    else:
        detail = _lexical_detail(q, units, rows, counts, starts)

    b = catalogue_scores["bm25_all"]
    pool = catalogue_scores.get("_allowed")
    X[:, col["bm25_all_rel"]] = _rel(b[cand], b[pool] if pool is not None else b)
    X[:, col["bm25_all_z"]] = _zscore(b[cand], ref(b))
    for name in LEXICAL_FIELDS:
        X[:, col[f"bm25_{name}_rel"]] = _rel_self(index.bm25_fields[name].scores_rows(q.tokens, cand))
    X[:, col["bm25_qtitle_rel"]] = _rel_self(index.bm25_all.scores_rows(q.title_tokens, cand))
    lex = _lexical_detail(q, units, rows, counts, starts) if dense else detail
    if n_req:
        X[:, col["lex_req_overlap"]] = lex.best_sim.mean(axis=1)
    for j, c in enumerate(cand):
        X[j, col["lex_title_overlap"]] = overlap(q.title_bigrams, _bigram_set(index.programmes[c].title))
    # Ranks within the candidate set: candidates hold each channel's top, so for the places
    # that matter these equal ranks in the whole catalogue.
    X[:, col["rank_dense"]] = 1.0 / np.log2(2.0 + _ranks(sp[cand])) if dense else 0.0
    X[:, col["rank_lexical"]] = 1.0 / np.log2(2.0 + _ranks(b[cand]))
    min_level = role_min_level(q.demand)
    if min_level is not None and index.levels is not None:
        levels = index.levels[cand]
        X[:, col["level_below_role"]] = (levels >= 0) & (levels < min_level)
    return X, detail


def _best_rows(S: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Index (within ``S``) of the best unit per candidate and requirement, -1 if none."""
    out = np.full((len(counts), S.shape[1]), -1, dtype=np.int64)
    nonempty = counts > 0
    if not S.shape[0] or not nonempty.any():
        return out
    best = np.maximum.reduceat(S, starts[nonempty], axis=0)
    seg = np.repeat(np.arange(int(nonempty.sum())), counts[nonempty])
    pos = np.where(best[seg] == S, np.arange(S.shape[0])[:, None], S.shape[0])
    out[nonempty] = np.minimum.reduceat(pos, starts[nonempty], axis=0)
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
    """Best bigram overlap of each requirement with each candidate's units."""
    n, r = len(counts), len(q.req_texts)
    best = np.zeros((n, r), dtype=np.float32)
    best_unit = np.full((n, r), -1, dtype=np.int64)
    if not r or not rows.size or units.bigram_matrix is None:
        return PairDetail(best, best_unit)
    vocab = units.bigram_vocab
    r_idx, c_idx = [], []
    sizes = np.zeros(r, dtype=np.float32)
    for i, grams in enumerate(q.req_bigrams):
        sizes[i] = len(grams)
        for g in grams:
            col = vocab.get(g)
            if col is not None:
                r_idx.append(i)
                c_idx.append(col)
    R = sparse.csr_matrix(
        (np.ones(len(r_idx), dtype=np.float32), (r_idx, c_idx)), shape=(r, units.bigram_matrix.shape[1])
    )
    S = np.asarray((units.bigram_matrix[rows] @ R.T).todense(), dtype=np.float32) / np.maximum(sizes, 1.0)
    best = _segment_max(S, starts, counts, 0.0)
    arg = _best_rows(S, starts, counts)
    best_unit = np.where((arg >= 0) & (best > 0), rows[np.clip(arg, 0, None)], -1)
    return PairDetail(best, best_unit)


__all__ += ["PairDetail", "UnitTable", "append_units", "build_units", "overlap", "programme_field_texts", "select_units"]
