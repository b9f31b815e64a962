"""The platform's bridge to the matching engine: the only module that imports ``matching``.

It turns ORM postings into the engine's value objects, keeps their vectors in the database
(:class:`~chanjiao.models.TextVector`, keyed by encoder and text hash), and keeps one
:class:`matching.Matcher` per worker process, rebuilt when the catalogue, an organisation's
standing or the active ranker changes.

Encoding happens when a posting is saved, inside a worker (or the CLI), never in gunicorn's
master: the encoder does not survive a fork once it has run OpenMP threads.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import logging
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flask import current_app, g, has_request_context
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

import matching as engine
from matching.calibration import ProbabilityCalibrator
from matching.encoders import encoder_by_name

from .extensions import db
from .models import (
    CatalogueChange,
    Demand,
    Organisation,
    Programme,
    RankerVersion,
    Skill,
    TextVector,
    demand_skills,
    programme_skills,
)

log = logging.getLogger(__name__)

# The engine reads levels, modes and certificates as Chinese words (its level prior knows
# 五级…一级 and 初级/中级/高级, and 职称 marks the professional track); codes are mapped here
# rather than through the UI's labels, which change with the visitor's language.
LEVEL_WORDS = {
    "L5": "五级/初级工", "L4": "四级/中级工", "L3": "三级/高级工", "L2": "二级/技师", "L1": "一级",
    "T_JUNIOR": "初级职称", "T_INTERMEDIATE": "中级职称", "T_SENIOR": "高级职称",
}
MODE_WORDS = {"offline": "线下", "online": "线上", "blended": "混合"}
CERTIFICATE_WORDS = {
    "skill_level": "职业技能等级证书",
    "special_operation": "特种作业操作证",
    "professional_qualification": "专业技术资格",
}


# --------------------------------------------------------------------------- conversion


def engine_programme(p: Programme, skills: Sequence[str] | None = None) -> engine.Programme:
    """The engine's view of a programme (``skills``: its skill names, when already loaded)."""
    certificates = ()
    if p.certificate_kind in CERTIFICATE_WORDS and p.certificate_name:
        certificates = (f"{CERTIFICATE_WORDS[p.certificate_kind]}：{p.certificate_name}",)
    return engine.Programme(
        id=str(p.id),
        title=p.title,
        description=p.description or "",
        modules=tuple(
            engine.Module(m.get("name", ""), m.get("hours")) for m in (p.modules or []) if m.get("name")
        ),
        outcomes=tuple(p.outcomes or ()),
        # Sorted here, not in the database's collation: a posting just saved holds its skills in
        # the order typed, one read back holds them by name, and the engine encodes only the
        # first few, so both must see one order or a saved programme lacks a vector.
        skills=tuple(sorted(skills if skills is not None else (s.name for s in p.skills))),
        certificates=certificates,
        level=LEVEL_WORDS.get(p.level or ""),
        total_hours=p.total_hours or None,
        mode=MODE_WORDS.get(p.mode),
        # Every posting is in Chaoyang; a different street (街道) is no reason to rank lower,
        # so the engine's district prior stays neutral here.
        district=None,
        capacity=p.capacity or None,
        fee=p.fee,
        subsidy_eligible=p.subsidy_eligible,
        institution_id=str(p.organisation_id),
    )


def engine_demand(d: Demand, skills: Sequence[str] | None = None) -> engine.Demand:
    """The engine's view of a demand (``skills`` as for :func:`engine_programme`)."""
    return engine.Demand(
        id=str(d.id),
        title=d.title,
        occupation=d.occupation or "",
        description=d.description or "",
        duties=tuple(d.duties or ()),
        requirements=tuple(d.requirements or ()),
        skills=tuple(sorted(skills if skills is not None else (s.name for s in d.skills))),  # see engine_programme
        skill_level=LEVEL_WORDS.get(d.skill_level or ""),
        headcount=d.headcount,
        district=None,  # see engine_programme
        mode=MODE_WORDS.get(d.mode),
    )


# --------------------------------------------------------------------------- vectors


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class DatabaseVectorStore:
    """:class:`matching.VectorStore` over the ``text_vector`` table (float16 rows)."""

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(keys)):
            rows = db.session.execute(
                select(TextVector.key, TextVector.data).where(
                    TextVector.namespace == ns, TextVector.key.in_(chunk)
                )
            )
            for key, data in rows:
                found[key] = np.frombuffer(data, dtype="<f2").astype(np.float32)
        return found

    def present_keys(self, ns: str, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` that has a stored vector (reads keys only, not vectors)."""
        present: set[str] = set()
        for chunk in _chunks(list(keys)):
            present.update(
                db.session.scalars(
                    select(TextVector.key).where(TextVector.namespace == ns, TextVector.key.in_(chunk))
                )
            )
        return present

    def put_many(self, ns: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        rows = []
        for key, vector in vectors.items():
            v = np.asarray(vector, dtype="<f2").ravel()
            rows.append({"namespace": ns, "key": key, "dim": int(v.shape[0]), "data": v.tobytes()})
        # Two workers may encode the same text at once; the first row wins, both are equal.
        dialect = db.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        db.session.execute(insert(TextVector).values(rows).on_conflict_do_nothing())


# --------------------------------------------------------------------------- process state

_lock = threading.RLock()
_encoders: dict[str, engine.Encoder | None] = {}


def encoder() -> engine.Encoder | None:
    """This process's encoder for the configured ``MATCHING_ENCODER`` (None: lexical only)."""
    name = current_app.config["MATCHING_ENCODER"]
    with _lock:
        if name not in _encoders:
            _encoders[name] = encoder_by_name(name)
        return _encoders[name]


def encoder_name() -> str:
    enc = encoder()
    return enc.name if enc is not None else "lexical"


_encoding_matchers: dict[str, engine.Matcher] = {}


def _encoding_matcher() -> engine.Matcher:
    # Only its required_texts() is used, which keeps no state; building one loads the shipped
    # ranker from disk, so each process keeps one per encoder.
    name = current_app.config["MATCHING_ENCODER"]
    with _lock:
        if name not in _encoding_matchers:
            _encoding_matchers[name] = engine.Matcher(
                encoder(), store=DatabaseVectorStore(), require_chinese=False
            )
        return _encoding_matchers[name]


def ensure_encoded(
    programmes: Iterable[Programme] = (), demands: Iterable[Demand] = ()
) -> int:
    """Encode and store whatever texts of these postings have no vector yet.

    Returns the number of texts encoded. The caller commits.
    """
    enc = encoder()
    if enc is None:
        return 0
    programmes, demands = list(programmes), list(demands)
    needed = _encoding_matcher().required_texts(
        [engine_programme(p) for p in programmes], [engine_demand(d) for d in demands]
    )
    cached = engine.CachedEncoder(enc, DatabaseVectorStore())
    for ns, texts in needed.items():
        if ns.endswith("/query"):
            cached.encode_queries(list(texts.values()))
        else:
            cached.encode_documents(list(texts.values()))
    for posting in [*programmes, *demands]:
        _mark_encoded(posting, vectors_key(posting))
    return cached.misses


def vectors_key(posting: Programme | Demand, skills: Sequence[str] | None = None) -> str | None:
    """A hash of the encoder and the keys of the texts this posting needs vectors for (None in
    lexical mode, which needs none). Equal to ``posting.vectors_key`` exactly when its current
    texts are encoded, so the live catalogue can tell without reading the vector table."""
    enc = encoder()
    if enc is None:
        return None
    if isinstance(posting, Programme):
        needed = _encoding_matcher().required_texts(programmes=[engine_programme(posting, skills)])
    else:
        needed = _encoding_matcher().required_texts(demands=[engine_demand(posting, skills)])
    keys = sorted(f"{ns}|{key}" for ns, texts in needed.items() for key in texts)
    return hashlib.sha1("\n".join([enc.name, *keys]).encode("utf-8")).hexdigest()


def _mark_encoded(posting: Programme | Demand, key: str | None) -> None:
    if key is None or posting.vectors_key == key:
        return
    model = type(posting)
    # A Core update that keeps updated_at: encoding is not an edit the organisation made.
    db.session.execute(
        update(model)
        .where(model.id == posting.id)
        .values(vectors_key=key, updated_at=model.updated_at)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(posting, "vectors_key", key)
    if is_public(posting):
        # Its new texts can now be matched: every worker picks the new version up.
        record_change(CATALOGUE_KIND[type(posting)], posting.id)


def is_ready(posting: Programme | Demand, skills: Sequence[str] | None = None) -> bool:
    """Whether the posting's current texts have stored vectors (always, in lexical mode)."""
    return encoder() is None or posting.vectors_key == vectors_key(posting, skills)


def stale_postings(batch: Sequence[Programme | Demand]) -> list[Programme | Demand]:
    """The postings of ``batch`` that have texts without a stored vector.

    One key lookup per namespace for the whole batch: the live catalogue checks every public
    posting whenever it is rebuilt.
    """
    if encoder() is None:
        return []
    matcher = _encoding_matcher()
    needs = [
        matcher.required_texts(programmes=[engine_programme(p)])
        if isinstance(p, Programme)
        else matcher.required_texts(demands=[engine_demand(p)])
        for p in batch
    ]
    wanted: dict[str, set[str]] = {}
    for needed in needs:
        for ns, texts in needed.items():
            wanted.setdefault(ns, set()).update(texts)
    store = DatabaseVectorStore()
    present = {ns: store.present_keys(ns, sorted(keys)) for ns, keys in wanted.items()}
    return [
        posting
        for posting, needed in zip(batch, needs)
        if any(not present[ns].issuperset(texts) for ns, texts in needed.items())
    ]


# --------------------------------------------------------------------------- ranker versions


def _active_version() -> RankerVersion | None:
    return db.session.scalar(select(RankerVersion).where(RankerVersion.active.is_(True)))


def active_ranker(version: RankerVersion | None = None) -> tuple[int | None, engine.PairwiseLinearRanker | None]:
    """The active trained ranker (id, model), or (None, None) for the shipped default."""
    version = version or _active_version()
    if version is None:
        return None, None
    return version.id, ranker_from_files(version.files)


def active_calibrator(version: RankerVersion | None = None) -> ProbabilityCalibrator | None:
    """The calibrator kept with the active trained ranker, None for the shipped one.

    A version trained before any calibrator was refitted from decisions carries the
    calibrator that was in use when it was trained, so a rollback restores both together.
    """
    version = version or _active_version()
    if version is None or "calibrator.json" not in version.files:
        return None
    return calibrator_from_files(version.files)


def _unpacked(files: dict[str, str], tmp: str) -> Path:
    for name, content in files.items():
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad model file name {name!r}")
        (Path(tmp) / name).write_bytes(base64.b64decode(content))
    return Path(tmp)


def ranker_from_files(files: dict[str, str]) -> engine.PairwiseLinearRanker:
    """Rebuild a ranker from the base64 files kept in :class:`RankerVersion`."""
    with tempfile.TemporaryDirectory() as tmp:
        return engine.PairwiseLinearRanker.load(_unpacked(files, tmp))


def calibrator_from_files(files: dict[str, str]) -> ProbabilityCalibrator:
    """Rebuild a calibrator from the base64 files kept in :class:`RankerVersion`."""
    with tempfile.TemporaryDirectory() as tmp:
        return ProbabilityCalibrator.load(_unpacked(files, tmp))


def _files(directory: str) -> dict[str, str]:
    return {p.name: base64.b64encode(p.read_bytes()).decode("ascii") for p in Path(directory).iterdir()}


def ranker_to_files(
    ranker: engine.PairwiseLinearRanker,
    meta: dict[str, Any],
    calibrator: ProbabilityCalibrator | None = None,
) -> dict[str, str]:
    """The files of a saved ranker (and its calibrator), base64-encoded for :class:`RankerVersion`."""
    with tempfile.TemporaryDirectory() as tmp:
        ranker.save(tmp, meta=meta)
        if calibrator is not None:
            calibrator.save(tmp, meta=getattr(calibrator, "meta_", {}))
        return _files(tmp)


# --------------------------------------------------------------------------- the live matcher


# How the live catalogue follows changes. Between statistics refreshes, new and edited
# postings are scored with the collection statistics of the last refresh (BM25 IDF and
# length norms, the normalisation sample). The worker's catalogue thread refreshes them
# once the changes applied since reach the engine's interval (``Matcher.refresh_interval``:
# ``matching.REFRESH_EVERY_CHANGES`` = 16, or 2 % of the catalogue when that is more), or
# REFRESH_AFTER_SECONDS after the last refresh when any change is pending.
REFRESH_AFTER_SECONDS = 300.0
GAP_WINDOW = 1000
# Changes applied in one round at most (a bulk import takes several rounds).
MAX_INCREMENTAL_CHANGES = 200


@dataclass
class _Catalogue:
    """A worker's matcher over the public catalogue at ``version`` (the last
    ``catalogue_change`` applied)."""

    version: int
    matcher: engine.Matcher | None
    programmes: set[int] = field(default_factory=set)  # row ids in the matcher
    demands: set[int] = field(default_factory=set)
    # Change ids applied within GAP_WINDOW of ``version``: on PostgreSQL a change can commit
    # after one with a higher id (sequence values are taken before the commit), so a worker
    # also looks back that far for ids it has not applied.
    recent: set[int] = field(default_factory=set)

    @property
    def floor(self) -> int:
        return max(self.version - GAP_WINDOW, 0)

    def behind(self, state: tuple[int, int]) -> bool:
        newest, count_above_floor = state
        return newest > self.version or count_above_floor != len(self.recent)

    @property
    def ready(self) -> bool:
        """False for the placeholder a request gets while its worker's first build runs."""
        return self.matcher is not None


_catalogues: dict[str, _Catalogue] = {}
catalogue_wakeup = threading.Event()  # set by a request that saw a newer version
# Set on an app whose process runs the catalogue thread (a gunicorn worker): its requests
# leave the changes to that thread.
BACKGROUND_UPKEEP = "chanjiao.catalogue_thread"


# The status that puts a posting in the live catalogue (with its organisation approved).
PUBLIC_STATUS = {Programme: "published", Demand: "open"}
CATALOGUE_KIND = {Programme: "programme", Demand: "demand"}  # catalogue_change.kind


def _public(model):
    return (model.status == PUBLIC_STATUS[model]) & (Organisation.status == "approved")


def public_programmes_query():
    return select(Programme).join(Programme.organisation).where(_public(Programme)).order_by(Programme.id)


def open_demands_query():
    return select(Demand).join(Demand.organisation).where(_public(Demand)).order_by(Demand.id)


def is_public(posting: Programme | Demand) -> bool:
    """Whether the posting belongs in the live catalogue (its organisation approved, the
    programme published or the demand open)."""
    return posting.status == PUBLIC_STATUS[type(posting)] and posting.organisation.status == "approved"


def institution_standing() -> dict[str, str]:
    """Standing per institution id, as the engine takes it.

    Today: approved institutions are "good" and suspended ones "suspended" (never
    recommended). The association's grading and red/black list plug in here later.
    """
    rows = db.session.execute(
        select(Organisation.id, Organisation.status).where(Organisation.kind == "institution")
    )
    return {str(org_id): "suspended" if status == "suspended" else "good" for org_id, status in rows}


def catalogue_version() -> int:
    """The newest catalogue change."""
    return int(db.session.scalar(select(func.max(CatalogueChange.id))) or 0)


def _change_state(floor: int) -> tuple[int, int]:
    """(newest change id, changes above ``floor``): the one query a request makes."""
    newest, count = db.session.execute(
        select(func.max(CatalogueChange.id), func.count(CatalogueChange.id)).where(CatalogueChange.id > floor)
    ).one()
    return int(newest or floor), int(count or 0)


def _load(model, ids: Iterable[int] | None = None) -> list[tuple[Any, list[str]]]:
    """Public postings (all, or those of ``ids``) with their skill names, in two queries
    whatever the catalogue's size: no lazy loads, one posting at a time."""
    link = programme_skills if model is Programme else demand_skills
    column = link.c.programme_id if model is Programme else link.c.demand_id
    chosen = select(model.id).join(model.organisation).where(_public(model))
    if ids is not None:
        chosen = chosen.where(model.id.in_(list(ids)))
    rows = list(db.session.scalars(
        select(model).where(model.id.in_(chosen)).order_by(model.id)
    ))
    skills: dict[int, list[str]] = {}
    for posting_id, name in db.session.execute(
        select(column, Skill.name).join(Skill, Skill.id == link.c.skill_id).where(column.in_(chosen))
    ):
        skills.setdefault(posting_id, []).append(name)
    return [(row, skills.get(row.id, [])) for row in rows]


def _new_matcher() -> engine.Matcher:
    version = _active_version()
    _, ranker = active_ranker(version)
    enc = encoder()
    # Unit vectors (about six per programme) are read only for a query's candidates: one
    # mapped file shared by every worker instead of a copy in each (lexical mode has none).
    unit_dir = current_app.config.get("MATCHING_UNIT_VECTOR_DIR") if enc is not None else None
    return engine.Matcher(
        enc,
        ranker=ranker,
        store=DatabaseVectorStore(),
        encode_missing=False,
        standing=institution_standing(),
        require_chinese=False,
        unit_vectors_dir=unit_dir or None,
        calibrator=active_calibrator(version),
        score_cache_bytes=int(current_app.config["MATCHING_SCORE_CACHE_BYTES"]),
    )


def _build() -> _Catalogue:
    """A new catalogue from the database: a fixed number of queries whatever its size."""
    version = catalogue_version()  # read first: changes after it are applied later
    recent = set(db.session.scalars(
        select(CatalogueChange.id).where(CatalogueChange.id > max(version - GAP_WINDOW, 0), CatalogueChange.id <= version)
    ))
    matcher = _new_matcher()
    programmes = [(p, skills) for p, skills in _load(Programme) if is_ready(p, skills)]
    demands = [(d, skills) for d, skills in _load(Demand) if is_ready(d, skills)]
    if programmes:
        matcher.index_programmes([engine_programme(p, skills) for p, skills in programmes])
    if demands:
        matcher.index_demands([engine_demand(d, skills) for d, skills in demands])
    return _Catalogue(version, matcher, {p.id for p, _ in programmes}, {d.id for d, _ in demands}, recent)


def _apply(catalogue: _Catalogue) -> bool:
    """Apply the changes not applied yet in place; False when they need a new catalogue (the
    change log went backwards: a database restored or emptied)."""
    rows = db.session.execute(
        select(CatalogueChange.id, CatalogueChange.kind, CatalogueChange.entity_id)
        .where(CatalogueChange.id > catalogue.floor)
        .order_by(CatalogueChange.id)
        .limit(GAP_WINDOW + MAX_INCREMENTAL_CHANGES + 1)
    ).all()
    if rows and rows[-1][0] < catalogue.version or (not rows and catalogue.version > catalogue.floor):
        return False
    # A bulk import is applied a slice at a time; the rest follows on the next round.
    changes = [row for row in rows if row[0] not in catalogue.recent][:MAX_INCREMENTAL_CHANGES]
    if not changes:
        return True
    if any(kind == "all" for _, kind, _ in changes):
        return False
    matcher = catalogue.matcher
    if any(kind == "model" for _, kind, _ in changes):
        # A retrain or rollback swaps the ranker and calibrator in place: the indexes stay.
        version = _active_version()
        matcher.set_model(active_ranker(version)[1], active_calibrator(version))
    programme_ids = {e for _, kind, e in changes if kind == "programme"}
    demand_ids = {e for _, kind, e in changes if kind == "demand"}
    organisations = {e for _, kind, e in changes if kind == "standing"}
    if organisations:
        programme_ids |= set(db.session.scalars(select(Programme.id).where(Programme.organisation_id.in_(organisations))))
        demand_ids |= set(db.session.scalars(select(Demand.id).where(Demand.organisation_id.in_(organisations))))
        matcher.set_standing(institution_standing())
    for model, ids, current, upsert, remove, convert in (
        (Programme, programme_ids, catalogue.programmes,
         matcher.upsert_programmes, matcher.remove_programmes, engine_programme),
        (Demand, demand_ids, catalogue.demands, matcher.upsert_demands, matcher.remove_demands, engine_demand),
    ):
        if not ids:
            continue
        public = _load(model, ids)
        # An edit whose texts are not encoded yet keeps its previous version in the catalogue
        # until the encoding job has run (and recorded another change).
        ready = [(p, skills) for p, skills in public if is_ready(p, skills)]
        gone = (ids - {p.id for p, _ in public}) & current
        if gone:
            remove([str(i) for i in sorted(gone)])
            current -= gone
        if ready:
            upsert([convert(p, skills) for p, skills in ready])
            current |= {p.id for p, _ in ready}
    catalogue.version = max(catalogue.version, changes[-1][0])
    catalogue.recent.update(change_id for change_id, _, _ in changes)
    catalogue.recent = {i for i in catalogue.recent if i > catalogue.floor}
    return True


def refresh_due(catalogue: _Catalogue) -> bool:
    matcher = catalogue.matcher
    return matcher is not None and matcher.refresh_due(max_seconds=REFRESH_AFTER_SECONDS)


def refresh_statistics(catalogue: _Catalogue) -> None:
    with _lock:
        if catalogue.matcher is not None:
            catalogue.matcher.refresh_statistics()


def _catalogue_key() -> str:
    return current_app.config["SQLALCHEMY_DATABASE_URI"]


def update_catalogue(force_refresh: bool = False) -> _Catalogue:
    """Bring this worker's catalogue up to the newest change (building it the first time, or
    when the change log went backwards), refreshing statistics when due. Runs on the worker's catalogue
    thread in gunicorn, inline elsewhere (commands, jobs, tests)."""
    key = _catalogue_key()
    with _lock:
        catalogue = _catalogues.get(key)
        if (catalogue is not None and catalogue.behind(_change_state(catalogue.floor))
                and not _apply(catalogue)):
            catalogue = None
    if catalogue is None:
        # Built outside the lock: the previous catalogue serves until the swap.
        fresh = _build()
        with _lock:
            _catalogues[key] = catalogue = fresh
            _apply(fresh)
    if force_refresh or refresh_due(catalogue):
        refresh_statistics(catalogue)
    return catalogue


def live_catalogue() -> _Catalogue:
    """This worker's matcher over the public catalogue.

    A request never waits for it to change: it reads the state of the change log (one
    query) and, when its worker's catalogue is behind, wakes the worker's catalogue thread
    and serves the catalogue it has. Without that thread (commands, jobs, tests) the changes
    are applied here, in place.
    """
    if has_request_context() and current_app.extensions.get(BACKGROUND_UPKEEP):
        # One catalogue (and one query) per request, however many lists its page shows.
        if "chanjiao_catalogue" in g:
            return g.chanjiao_catalogue
        with _lock:
            catalogue = _catalogues.get(_catalogue_key())
        if catalogue is None:
            catalogue_wakeup.set()
            catalogue = _Catalogue(0, None)
        elif catalogue.behind(_change_state(catalogue.floor)):
            catalogue_wakeup.set()
        g.chanjiao_catalogue = catalogue
        return catalogue
    return update_catalogue()


def warm_up(app, heartbeat=None) -> None:
    """Build the worker's catalogue before it takes requests (gunicorn's post_worker_init),
    calling ``heartbeat`` while it builds so that a large catalogue is not mistaken for a
    hung worker."""
    done = threading.Event()
    failure: list[BaseException] = []

    def build() -> None:
        try:
            with app.app_context():
                try:
                    update_catalogue()
                finally:
                    db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported below, the worker still serves
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=build, name="chanjiao-catalogue-warmup", daemon=True).start()
    while not done.wait(1.0):
        if heartbeat is not None:
            heartbeat()
    if failure:
        log.error("could not build the live catalogue at start-up; the catalogue thread retries",
                  exc_info=failure[0])


# --------------------------------------------------------------------------- recommendations


@dataclass(frozen=True)
class Requirement:
    """One demand requirement and the programme text that best meets it."""

    text: str
    kind: str  # duty | requirement | skill
    evidence: str | None
    evidence_kind: str | None  # title | profile | skill | module | outcome | certificate
    similarity: float
    covered: bool
    status: str = "uncovered"  # covered | partial | uncovered


@dataclass
class Recommendation:
    """A ranked (demand, programme) pair with its explanation, ready to render."""

    demand: Demand
    programme: Programme
    score: float
    rank: int
    covered: list[Requirement]
    gaps: list[Requirement]
    contributions: list[tuple[str, float]]  # (feature name, contribution to the score)
    notes: list[str]  # priors that applied: level_mismatch, mode_mismatch, ...
    probability: float = 0.0  # calibrated P(relevant), comparable across lists and directions
    level: str | None = None  # high | good | partial; None below tau: not offered as a match
    conditions: list[str] = field(default_factory=list)  # requirements training cannot supply

    @property
    def offered(self) -> bool:
        """Reaches tau: shown as a match with its level (otherwise at most as 'nearest')."""
        return self.level is not None

    @property
    def partial(self) -> list[Requirement]:
        return [r for r in self.gaps if r.status == "partial"]

    @property
    def coverage(self) -> float | None:
        """Share of requirements covered; None when the demand lists none (only a title)."""
        total = len(self.covered) + len(self.gaps)
        return len(self.covered) / total if total else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready explanation (API responses, pairing snapshots)."""
        coverage = self.coverage
        return {
            "probability": round(self.probability, 4),
            "level": self.level,
            "score": round(self.score, 4),
            "rank": self.rank,
            "coverage": None if coverage is None else round(coverage, 4),
            "covered": [r.__dict__ for r in self.covered],
            "gaps": [r.__dict__ for r in self.gaps],
            "conditions": list(self.conditions),
            "contributions": [{"feature": f, "contribution": c} for f, c in self.contributions],
            "notes": list(self.notes),
        }


@dataclass
class BundleOffer:
    """Programmes (possibly of several institutions) that together cover a demand."""

    programmes: list[Programme]
    covered: list[str]
    missing: list[str]
    score: float
    by_programme: dict[int, list[str]]


def _requirements(items: Iterable[engine.Coverage]) -> list[Requirement]:
    return [
        Requirement(c.requirement, c.requirement_kind, c.evidence, c.evidence_kind, c.similarity, c.covered,
                    c.status)
        for c in items
    ]


def _recommendations(matches: Sequence[engine.Match]) -> list[Recommendation]:
    programme_ids = {int(m.programme_id) for m in matches}
    demand_ids = {int(m.demand_id) for m in matches}
    programmes = {
        p.id: p for p in db.session.scalars(select(Programme).where(Programme.id.in_(programme_ids)))
    }
    demands = {d.id: d for d in db.session.scalars(select(Demand).where(Demand.id.in_(demand_ids)))}
    out = []
    for m in matches:
        programme, demand = programmes.get(int(m.programme_id)), demands.get(int(m.demand_id))
        if programme is None or demand is None:  # removed since the catalogue was built
            continue
        explanation = m.explanation
        out.append(
            Recommendation(
                demand=demand,
                programme=programme,
                score=m.score,
                rank=m.rank,
                covered=_requirements(explanation.covered) if explanation else [],
                gaps=_requirements(explanation.gaps) if explanation else [],
                contributions=[(c.feature, c.contribution) for c in explanation.contributions]
                if explanation
                else [],
                notes=list(explanation.notes) if explanation else [],
                probability=m.probability,
                level=m.level,
                conditions=list(explanation.conditions) if explanation else [],
            )
        )
    return out


def awaiting_vectors(posting: Programme | Demand) -> bool:
    """Whether the posting's latest texts still wait for the encoding job (its page says so
    instead of showing an empty list: requests never call the encoder)."""
    return not is_ready(posting)


def _query(demand: Demand) -> engine.Demand | None:
    return engine_demand(demand) if is_ready(demand) else None


def level_thresholds() -> dict[str, float]:
    """Lower bound of each match level of the model in use, best first; the last one,
    ``partial``, is tau."""
    catalogue = live_catalogue()
    if catalogue.matcher is not None:
        return catalogue.matcher.level_thresholds()  # the calibrator's, fixed per catalogue
    return (active_calibrator() or _shipped_calibrator(_mode())).thresholds()


def min_probability() -> float:
    """``tau`` of the model in use: the lowest probability offered as a match."""
    return level_thresholds()["partial"]


@functools.lru_cache(maxsize=2)
def _shipped_calibrator(mode: str) -> ProbabilityCalibrator:
    from matching.ranking import MODEL_DIR

    return ProbabilityCalibrator.load(MODEL_DIR / mode)


def recommend_programmes(demand: Demand, k: int = 10) -> list[Recommendation]:
    """The ``k`` best public programmes for a demand, explained, best first, each with its
    probability and level; those below tau (``level`` None) are for "nearest" lists only."""
    catalogue = live_catalogue()
    query = _query(demand)
    if catalogue.matcher is None or not catalogue.programmes or query is None:
        return []
    with _lock:
        matches = catalogue.matcher.match_demand(query, k=k)
    return _recommendations(matches)


def recommend_bundles(demand: Demand, n: int = 3) -> list[BundleOffer]:
    """Sets of up to three programmes covering the demand's requirements best, or [] when the
    best single programme already covers everything."""
    catalogue = live_catalogue()
    query = _query(demand)
    if catalogue.matcher is None or not catalogue.programmes or query is None:
        return []
    with _lock:
        bundles = catalogue.matcher.bundles(query, n=n)
    if not bundles or (len(bundles[0].programme_ids) == 1 and not bundles[0].missing):
        return []
    ids = {int(pid) for b in bundles for pid in b.programme_ids}
    programmes = {p.id: p for p in db.session.scalars(select(Programme).where(Programme.id.in_(ids)))}
    offers = []
    for b in bundles:
        members = [programmes[int(pid)] for pid in b.programme_ids if int(pid) in programmes]
        if len(members) != len(b.programme_ids) or len(members) < 2:
            continue
        offers.append(
            BundleOffer(
                programmes=members,
                covered=list(b.covered),
                missing=list(b.missing),
                score=b.score,
                by_programme={int(pid): list(reqs) for pid, reqs in b.by_programme.items()},
            )
        )
    return offers


def recommend_demands(programme: Programme, k: int = 10) -> list[Recommendation]:
    """The ``k`` open demands a public programme fits best (商机), explained, best first,
    with the same probability and level as on each demand's page.

    A programme that is not public (draft, archived, organisation not approved) has none.
    """
    catalogue = live_catalogue()
    if catalogue.matcher is None or not catalogue.demands or programme.id not in catalogue.programmes:
        return []
    with _lock:
        matches = catalogue.matcher.match_programme(str(programme.id), k=k)
    return _recommendations(matches)


# --------------------------------------------------------------------------- retraining


@dataclass(frozen=True)
class TrainingOutcome:
    """What ``flask matching train`` did: the measurements and whether the new models are live.

    ``version`` holds the newly trained ranker (active when ``switched``). When the ranker was
    not switched to but the refitted calibrator was, ``calibration_version`` is a second new
    version, active, pairing the ranker in use with the new calibrator (every version carries
    the calibrator used with it, so that a rollback restores both).
    """

    before: dict[str, float]
    after: dict[str, float]
    decisions: int
    demands: int
    folds: int
    version: RankerVersion
    switched: bool
    calibration: Any = None  # matching.retrain.RecalibrationReport
    calibrator_switched: bool = False
    calibration_version: RankerVersion | None = None


def _mode() -> str:
    return "dense" if encoder() is not None else "lexical"


def _coverage_meta(ranker: engine.PairwiseLinearRanker, coverage_threshold: float) -> dict[str, Any]:
    # The matcher reads its coverage thresholds from the ranker's meta: a new version keeps
    # those of the ranker in use, so a retrain does not silently fall back to the defaults.
    meta = {k: v for k, v in getattr(ranker, "meta_", {}).items() if "coverage_threshold" in k}
    meta["coverage_threshold"] = coverage_threshold
    return meta


def _activate(version: RankerVersion) -> None:
    db.session.execute(
        RankerVersion.__table__.update().where(RankerVersion.active.is_(True)).values(active=False)
    )
    version.active = True
    record_change("model")


def record_change(kind: str, entity_id: int | None = None) -> None:
    """Tell every worker's live catalogue, in the current unit of work, that something it
    holds changed (``programme`` / ``demand`` / ``standing`` with its id, or ``model``)."""
    db.session.add(CatalogueChange(kind=kind, entity_id=entity_id))


def train_ranker(decisions: Sequence[tuple[int, int, int]], force: bool = False) -> TrainingOutcome:
    """Retrain the ranker, and refit the probability calibrator, on staff decisions
    ``(demand_id, programme_id, label)``.

    The new ranker version is stored; it becomes active only when cross-validation grouped by
    demand scores it at least as well as the ranker in use, or when ``force`` is set.

    The calibrator is refitted only from at least 200 decisions with at least 50 accepted and
    50 rejected: a quarter of the decisions, grouped by demand, is held back (fixed seed), a
    new calibrator is fitted on the rest from the scores of the ranker that will be active
    (each pair scored in its demand's own list), and the expected calibration error of the
    calibrator in use and of the new one is measured on the held-back decisions. The new one
    replaces the one in use only when its ECE is lower, or with ``force``; it keeps tau and the
    level thresholds. Decided pairs are a biased sample (staff decide the pairs the engine
    suggested, above tau, and those both parties asked for), so the refit learns how often
    suggested pairs are accepted rather than anything about the long tail.

    Every new version stores the calibrator used with it (the one in use unless the new one
    was switched to). The previous active version stays stored for :func:`rollback_ranker`.
    The caller commits.

    Raises :class:`matching.InputError` when the decisions cannot train a ranker (too few,
    one kind of label only, a single demand).
    """
    from matching.retrain import refit_calibrator, retrain_from_decisions

    demand_ids = sorted({d for d, _, _ in decisions})
    programme_ids = sorted({p for _, p, _ in decisions})
    demands = list(db.session.scalars(select(Demand).where(Demand.id.in_(demand_ids))))
    # Decided programmes may have been archived since; the index needs them all.
    programmes = {p.id: p for p in db.session.scalars(public_programmes_query())}
    public = set(programmes)
    programmes.update(
        (p.id, p) for p in db.session.scalars(select(Programme).where(Programme.id.in_(programme_ids)))
    )
    known_demands, known_programmes = {d.id for d in demands}, set(programmes)
    usable = [(d, p, y) for d, p, y in decisions if d in known_demands and p in known_programmes]
    current_id, current = active_ranker()
    in_use = active_calibrator() or _shipped_calibrator(_mode())
    # Unit vectors stay in this short-lived command's memory: its catalogue includes archived
    # programmes, and writing it to the shared directory would remove the live catalogue's file.
    matcher = engine.Matcher(
        encoder(),
        ranker=current,
        store=DatabaseVectorStore(),
        encode_missing=True,
        require_chinese=False,
        standing=institution_standing(),
        calibrator=in_use,
    )
    matcher.index_programmes([engine_programme(p) for p in programmes.values()])
    engine_demands = [engine_demand(d) for d in demands]
    engine_decisions = [(str(d), str(p), y) for d, p, y in usable]
    report = retrain_from_decisions(matcher, engine_demands, engine_decisions, matcher.ranker)
    switched = report.improved or force
    # Scores as the live catalogue computes them: retrieval over public programmes only.
    calibration = refit_calibrator(
        matcher,
        engine_demands,
        engine_decisions,
        in_use,
        ranker=report.ranker if switched else matcher.ranker,
        exclude=[str(pid) for pid in programmes if pid not in public],
    )
    calibrator_switched = calibration.refitted and (calibration.improved or force)
    new_calibrator = calibration.calibrator if calibrator_switched else in_use
    def new_version(
        ranker: engine.PairwiseLinearRanker, meta: dict[str, Any], calibrator: ProbabilityCalibrator,
        metrics_after: dict[str, float], forced: bool,
    ) -> RankerVersion:
        version = RankerVersion(
            mode=_mode(),
            encoder=encoder_name(),
            files=ranker_to_files(ranker, meta, calibrator=calibrator),
            metrics_before=report.before,
            metrics_after=metrics_after,
            decisions=report.decisions,
            active=False,
            forced=forced,
            previous_id=current_id,
        )
        db.session.add(version)
        return version

    version = new_version(
        report.ranker, _coverage_meta(matcher.ranker, matcher.coverage_threshold),
        new_calibrator if switched else in_use, report.after, force and not report.improved,
    )
    calibration_version = None
    if switched:
        _activate(version)
    elif calibrator_switched:
        # The ranker in use stays, with the new calibrator (fitted on its scores).
        calibration_version = new_version(
            matcher.ranker, dict(getattr(matcher.ranker, "meta_", {})), new_calibrator, report.before,
            force and not calibration.improved,
        )
        _activate(calibration_version)
    db.session.flush()
    return TrainingOutcome(
        report.before, report.after, report.decisions, report.demands, report.folds, version, switched,
        calibration, calibrator_switched, calibration_version,
    )


def rollback_ranker() -> tuple[RankerVersion, RankerVersion | None]:
    """Deactivate the active trained ranker and restore the one it replaced, with the
    calibrator stored with that version (a version from before calibrators were stored, or
    none at all, means the shipped calibrator).

    Returns ``(deactivated, restored)``; ``restored`` None means the ranker and calibrator
    shipped with the engine are in use again. Raises LookupError when no trained ranker is
    active.
    """
    current = db.session.scalar(select(RankerVersion).where(RankerVersion.active.is_(True)))
    if current is None:
        raise LookupError("no trained ranker is active; the shipped ranker is already in use")
    current.active = False
    restored = db.session.get(RankerVersion, current.previous_id) if current.previous_id else None
    if restored is not None:
        restored.active = True
    record_change("model")
    db.session.flush()
    return current, restored
