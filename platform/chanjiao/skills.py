"""The skill vocabulary: normalised tags with synonyms, shared by forms, demo data and matching."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from flask_babel import gettext as _
from sqlalchemy import select

from .common import ZERO_WIDTH
from .errors import ValidationFailed
from .extensions import db
from .models import Skill

MAX_SKILL_LENGTH = 50
_SPACES = re.compile(r"\s+")


def normalise_skill_name(name: str) -> str:
    """NFKC (full-width to half-width), zero-width and control characters removed, trimmed, inner whitespace
    collapsed. (PostgreSQL refuses NUL in text, so a typed one must never reach a query.)"""
    name = unicodedata.normalize("NFKC", name).translate(ZERO_WIDTH)
    name = "".join(ch for ch in name if ch.isspace() or unicodedata.category(ch) != "Cc")
    return _SPACES.sub(" ", name).strip()


def _canonical(skill: Skill) -> Skill:
    seen = set()
    while skill.merged_into is not None and skill.id not in seen:
        seen.add(skill.id)
        skill = skill.merged_into
    return skill


def find_skill(name: str) -> Skill | None:
    """The live tag called ``name`` or having it as a synonym (merged tags resolve to survivors)."""
    name = normalise_skill_name(name)
    skill = db.session.scalar(select(Skill).where(Skill.name == name))
    if skill is not None:
        return _canonical(skill)
    # Synonym lists are short JSON arrays; the vocabulary is a few hundred tags, so a scan is
    # cheap and works the same on SQLite and PostgreSQL.
    for candidate in db.session.scalars(select(Skill).where(Skill.merged_into_id.is_(None))):
        if name in (candidate.synonyms or []):
            return candidate
    return None


def resolve_skills(names: Iterable[str], create: bool = True) -> list[Skill]:
    """Map typed tag names to canonical :class:`Skill` rows, creating unknown ones if allowed.

    Raises :class:`ValidationFailed` (field ``skills``) for an over-long name, or an unknown
    one when ``create`` is False. The result has no duplicates and keeps the typed order.
    """
    result: list[Skill] = []
    for raw in names:
        name = normalise_skill_name(raw)
        if not name:
            continue
        if len(name) > MAX_SKILL_LENGTH:
            raise ValidationFailed(
                _("技能“%(name)s”过长（最多 %(n)s 个字）。", name=name[:20] + "…", n=MAX_SKILL_LENGTH),
                field="skills",
            )
        skill = find_skill(name)
        if skill is None:
            if not create:
                raise ValidationFailed(_("未知技能：%(name)s", name=name), field="skills")
            skill = Skill(name=name, synonyms=[])
            db.session.add(skill)
            db.session.flush()
        if skill not in result:
            result.append(skill)
    return result


def seed_vocabulary(vocabulary: Iterable[tuple[str, Iterable[str]]]) -> int:
    """Add missing tags and synonyms from ``(name, synonyms)`` pairs; returns tags added."""
    added = 0
    for name, synonyms in vocabulary:
        name = normalise_skill_name(name)
        skill = db.session.scalar(select(Skill).where(Skill.name == name))
        if skill is None:
            skill = Skill(name=name, synonyms=[])
            db.session.add(skill)
            added += 1
        merged = list(skill.synonyms or [])
        for synonym in synonyms:
            synonym = normalise_skill_name(synonym)
            if synonym and synonym != name and synonym not in merged:
                merged.append(synonym)
        skill.synonyms = merged
    db.session.flush()
    return added
