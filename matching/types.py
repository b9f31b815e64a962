"""Value objects going into and out of the matching engine (frozen dataclasses)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import InputError

__all__ = [
    "Bundle",
    "Contribution",
    "Coverage",
    "Demand",
    "Explanation",
    "Match",
    "Module",
    "Programme",
    "Standing",
    "MAX_FIELD_CHARS",
    "MAX_ITEM_CHARS",
    "MAX_ITEMS",
]

# Limits far above any real posting, low enough that a pasted document or a runaway import is
# refused with a message instead of slowing every worker down.
MAX_FIELD_CHARS = 20_000
MAX_ITEM_CHARS = 1_000
MAX_ITEMS = 200

#: Standing of an institution: "good", "suspended", or any grade label the platform uses
#: ("A", "B", ...). Only "suspended" changes matching by default; grades act through
#: ``Matcher(standing_prior=...)``.
Standing = str


def _where(obj: object, name: str) -> str:
    ident = getattr(obj, "id", None)
    return f"{type(obj).__name__} {ident!r} field {name!r}"


def _clean_text(obj: object, name: str, value: Any, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"{_where(obj, name)} must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise InputError(f"{_where(obj, name)} is empty")
    if len(value) > MAX_FIELD_CHARS:
        raise InputError(f"{_where(obj, name)} has {len(value)} characters; the limit is {MAX_FIELD_CHARS}")
    return value


def _clean_items(obj: object, name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InputError(f"{_where(obj, name)} must be a list of strings, got {type(value).__name__}")
    items = list(value)
    if len(items) > MAX_ITEMS:
        raise InputError(f"{_where(obj, name)} has {len(items)} items; the limit is {MAX_ITEMS}")
    out: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InputError(f"{_where(obj, name)}[{i}] must be a string, got {type(item).__name__}")
        item = item.strip()
        if len(item) > MAX_ITEM_CHARS:
            raise InputError(
                f"{_where(obj, name)}[{i}] has {len(item)} characters; the limit is {MAX_ITEM_CHARS}"
            )
        if item:
            out.append(item)
    return tuple(out)


def _clean_number(obj: object, name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{_where(obj, name)} must be a number, got {type(value).__name__}")
    if value < 0:
        raise InputError(f"{_where(obj, name)} must not be negative, got {value}")
    return value


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Module:
    """A course module of a programme.

    Attributes
    ----------
    name : str
    hours : float, optional
    """

    name: str
    hours: float | None = None


@dataclass(frozen=True)
class Programme:
    """A training programme offered by an institution.

    Attributes
    ----------
    id : str
        Unique within a catalogue.
    title, description : str
    modules : tuple of Module
        Accepts ``Module`` objects, ``{"name", "hours"}`` mappings or plain strings.
    outcomes, skills, certificates : tuple of str
        Learning outcomes, skills taught, certificates obtainable (kind and name in one string,
        e.g. ``"职业技能等级证书：养老护理员（四级）"``).
    level : str, optional
        Training level or certificate grade (e.g. ``"初级"``, ``"四级"``, ``"高职专科"``).
    total_hours, capacity, fee : number, optional
    mode, district : str, optional
        Delivery mode (``"线下"``, ``"线上"``, ``"混合"``) and district.
    subsidy_eligible : bool, optional
    institution_id : str, optional
        Key into the standing mapping given to the matcher.
    """

    id: str
    title: str
    description: str = ""
    modules: tuple[Module, ...] = ()
    outcomes: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    certificates: tuple[str, ...] = ()
    level: str | None = None
    total_hours: float | None = None
    mode: str | None = None
    district: str | None = None
    capacity: int | None = None
    fee: float | None = None
    subsidy_eligible: bool | None = None
    institution_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InputError(f"Programme id must be a non-empty string, got {self.id!r}")
        _set(self, "id", self.id.strip())
        _set(self, "title", _clean_text(self, "title", self.title, required=True))
        _set(self, "description", _clean_text(self, "description", self.description))
        modules: list[Module] = []
        raw = self.modules or ()
        if isinstance(raw, (str, Mapping)) or not isinstance(raw, Iterable):
            raise InputError(f"{_where(self, 'modules')} must be a list")
        for i, m in enumerate(raw):
            if isinstance(m, str):
                m = Module(m)
            elif isinstance(m, Mapping):
                m = Module(m.get("name", ""), m.get("hours"))
            if not isinstance(m, Module):
                raise InputError(f"{_where(self, 'modules')}[{i}] must be a module, got {type(m).__name__}")
            name = _clean_text(self, f"modules[{i}].name", m.name)
            if len(name) > MAX_ITEM_CHARS:
                raise InputError(f"{_where(self, f'modules[{i}].name')} is longer than {MAX_ITEM_CHARS}")
            if name:
                modules.append(Module(name, _clean_number(self, f"modules[{i}].hours", m.hours)))
        if len(modules) > MAX_ITEMS:
            raise InputError(f"{_where(self, 'modules')} has {len(modules)} items; the limit is {MAX_ITEMS}")
        _set(self, "modules", tuple(modules))
        for name in ("outcomes", "skills", "certificates"):
            _set(self, name, _clean_items(self, name, getattr(self, name)))
        for name in ("level", "mode", "district", "institution_id"):
            value = getattr(self, name)
            _set(self, name, _clean_text(self, name, value) or None)
        for name in ("total_hours", "capacity", "fee"):
            _set(self, name, _clean_number(self, name, getattr(self, name)))

    def text_fields(self) -> dict[str, str]:
        """Return every free-text field as one string each (for lexical scoring)."""
        return {
            "title": self.title,
            "description": self.description,
            "modules": "；".join(m.name for m in self.modules),
            "outcomes": "；".join(self.outcomes),
            "skills": "；".join(self.skills),
            "certificates": "；".join(self.certificates),
        }


@dataclass(frozen=True)
class Demand:
    """An employer's skill demand (a job or training need).

    Attributes
    ----------
    id : str
    title : str
        Posting title.
    occupation : str
        Occupation name (e.g. from the national classification), may be empty.
    description : str
    duties, requirements, skills : tuple of str
        One item each; every item is a requirement that explanations and bundles cover.
    skill_level : str, optional
    headcount : int, optional
    district, mode : str, optional
    """

    id: str
    title: str
    occupation: str = ""
    description: str = ""
    duties: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    skill_level: str | None = None
    headcount: int | None = None
    district: str | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InputError(f"Demand id must be a non-empty string, got {self.id!r}")
        _set(self, "id", self.id.strip())
        _set(self, "title", _clean_text(self, "title", self.title, required=True))
        _set(self, "occupation", _clean_text(self, "occupation", self.occupation))
        _set(self, "description", _clean_text(self, "description", self.description))
        for name in ("duties", "requirements", "skills"):
            _set(self, name, _clean_items(self, name, getattr(self, name)))
        for name in ("skill_level", "district", "mode"):
            _set(self, name, _clean_text(self, name, getattr(self, name)) or None)
        _set(self, "headcount", _clean_number(self, "headcount", self.headcount))

    def requirement_items(self) -> tuple[tuple[str, str], ...]:
        """Return ``(kind, text)`` for every duty, requirement and skill, without repeats."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for kind, items in (("duty", self.duties), ("requirement", self.requirements), ("skill", self.skills)):
            for text in items:
                if text not in seen:
                    seen.add(text)
                    out.append((kind, text))
        return tuple(out)

    def text_fields(self) -> dict[str, str]:
        """Return every free-text field as one string each (for lexical scoring)."""
        return {
            "title": "；".join(t for t in (self.title, self.occupation) if t),
            "description": self.description,
            "duties": "；".join(self.duties + self.requirements),
            "skills": "；".join(self.skills),
        }


@dataclass(frozen=True)
class Coverage:
    """How one demand requirement is met (or not) by one programme.

    Attributes
    ----------
    requirement : str
        The duty, requirement or skill text of the demand.
    requirement_kind : {"duty", "requirement", "skill"}
    evidence : str or None
        The best programme text for it, None when the programme has nothing close.
    evidence_kind : str or None
        ``"module"``, ``"outcome"``, ``"skill"`` or ``"certificate"``.
    similarity : float
        Cosine similarity (dense) or lexical overlap in [0, 1] when no encoder is available.
    covered : bool
        ``similarity`` passed the matcher's coverage threshold.
    status : {"covered", "partial", "uncovered"}
        ``partial`` when the similarity passed the lower, partial-coverage threshold only.
    """

    requirement: str
    requirement_kind: str
    evidence: str | None
    evidence_kind: str | None
    similarity: float
    covered: bool
    status: str = "uncovered"


@dataclass(frozen=True)
class Contribution:
    """One feature's part in a match score (``weight * standardised value``)."""

    feature: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why a programme matches a demand.

    Attributes
    ----------
    covered : tuple of Coverage
        Requirements met, best first.
    gaps : tuple of Coverage
        Requirements not met (with the closest evidence found, if any).
    contributions : tuple of Contribution
        Largest contributions to the score first.
    notes : tuple of str
        Machine-readable remarks for the platform to translate, e.g. ``"level_mismatch"``,
        ``"mode_mismatch"``, ``"district_mismatch"``, ``"capacity_below_headcount"``, and
        ``"level_below_role"`` (a programme below 高职专科 for a professional or technical role).
    conditions : tuple of str
        The demand's requirements that training cannot supply (experience, shifts, age,
        health, availability: see :mod:`matching.conditions`); never counted as gaps.
    """

    covered: tuple[Coverage, ...]
    gaps: tuple[Coverage, ...]
    contributions: tuple[Contribution, ...]
    notes: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()

    @property
    def coverage(self) -> float:
        """Share of requirements covered, 0 when the demand lists none."""
        total = len(self.covered) + len(self.gaps)
        return len(self.covered) / total if total else 0.0


@dataclass(frozen=True)
class Match:
    """A ranked programme–demand pair.

    Attributes
    ----------
    demand_id, programme_id : str
    score : float
        Ranker output (higher is better); comparable within one result list only.
    rank : int
        1-based position in the result list (lists are ordered by probability, then score).
    explanation : Explanation or None
    probability : float
        Calibrated probability that the pair is relevant; comparable across demands and in
        both directions (see :mod:`matching.calibration`).
    level : str or None
        ``"high"``, ``"good"`` or ``"partial"`` (:data:`matching.calibration.LEVELS`); None when
        the probability is below the model's ``min_probability``: not a match to offer.
    """

    demand_id: str
    programme_id: str
    score: float
    rank: int
    explanation: Explanation | None = None
    probability: float = 0.0
    level: str | None = None


@dataclass(frozen=True)
class Bundle:
    """A set of at most three programmes that together cover a demand's requirements.

    Attributes
    ----------
    programme_ids : tuple of str
    covered : tuple of str
        Requirements covered by at least one programme of the bundle.
    missing : tuple of str
        Requirements still not covered.
    score : float
        Sum of the programmes' match scores (the tie-breaker).
    by_programme : mapping
        ``{programme_id: requirements it covers}``.
    """

    programme_ids: tuple[str, ...]
    covered: tuple[str, ...]
    missing: tuple[str, ...]
    score: float
    by_programme: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of requirements covered."""
        total = len(self.covered) + len(self.missing)
        return len(self.covered) / total if total else 0.0


def field_names(cls: type) -> tuple[str, ...]:
    """Return the dataclass field names of ``cls`` (used by loaders to reject unknown keys)."""
    return tuple(f.name for f in fields(cls))
