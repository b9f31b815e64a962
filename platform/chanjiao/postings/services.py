"""State changes of demands and programmes, and staff curation of the skill vocabulary.

Every function takes the acting user, checks that the actor may touch the object (another
organisation's posting is reported as :class:`NotFound`, so its existence does not leak),
validates, changes state, flushes and raises domain errors. Views and commands commit.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from flask_babel import gettext as _
from sqlalchemy import delete, exists, func, select, update

from .. import choices, search
from ..catalogue_jobs import after_publish_later, encode_later, record_status_change
from ..common import change_if, get_by_id, has_visible_character, visible_text
from ..errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..extensions import db
from ..models import Demand, Programme, SearchTerm, Skill, User, demand_skills, programme_skills
from ..models._common import utcnow
from ..models.audit import record
from ..skills import MAX_SKILL_LENGTH, find_skill, normalise_skill_name, resolve_skills

Posting = Demand | Programme
P = TypeVar("P", Demand, Programme)

# Limits shared by the forms and the services (the services re-check what the forms check, so
# that CLI commands and later features cannot store what a form would refuse).
MAX_TITLE = 100
MAX_OCCUPATION = 100
MAX_DESCRIPTION = 5000
MAX_LOCATION = 200
MAX_LINE = 200
MAX_LINES = 50
MAX_SKILLS = 30
MAX_SYNONYMS = 30
MAX_HEADCOUNT = 10000
MAX_BUDGET = 1_000_000
MAX_FEE = 1_000_000
MAX_CAPACITY = 10000
MAX_TOTAL_HOURS = 10000
MAX_MODULE_HOURS = 2000
MAX_CERTIFICATE_NAME = 100
MAX_SCHEDULE = 200


# --------------------------------------------------------------------------- inputs


log = logging.getLogger(__name__)


@dataclass
class DemandInput:
    """The editable fields of a demand, already parsed to Python types."""

    title: str
    district: str
    skill_level: str | None
    occupation: str = ""
    description: str = ""
    duties: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)  # typed tag names
    headcount: int = 1
    location: str = ""
    mode: str = "offline"
    desired_start: date | None = None
    budget_per_person: int | None = None


@dataclass
class ProgrammeInput:
    """The editable fields of a programme, already parsed to Python types."""

    title: str
    district: str
    total_hours: int
    level: str | None = None
    description: str = ""
    modules: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "hours"}]
    outcomes: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    certificate_kind: str = "none"
    certificate_name: str = ""
    mode: str = "offline"
    location: str = ""
    capacity: int = 1
    fee: int = 0
    subsidy_eligible: bool = False
    schedule: str = ""


# --------------------------------------------------------------------------- references

ReferenceCheck = Callable[[Demand | Programme], bool]
_reference_checks: list[ReferenceCheck] = []

# Link tables that belong to the posting itself and go with it.
_OWN_LINK_TABLES = {"demand_skill", "programme_skill"}


def register_reference_check(check: ReferenceCheck) -> ReferenceCheck:
    """Register ``check(posting) -> bool`` for references :func:`is_referenced` cannot see.

    Usable as a decorator. Foreign keys need no registration: they are found automatically.
    """
    _reference_checks.append(check)
    return check


def is_referenced(posting: Demand | Programme) -> bool:
    """True when anything outside the posting itself refers to it (then it is archived, not
    deleted). Covers every foreign key to the posting's table in the schema (matches,
    curation records added later) plus the registered checks."""
    if posting.id is None:
        return False
    target = type(posting).__table__
    for table in db.metadata.sorted_tables:
        if table.name in _OWN_LINK_TABLES or table is target:
            continue
        for fk in table.foreign_keys:
            if fk.column.table is target:
                stmt = select(exists().where(fk.parent == posting.id))
                if db.session.scalar(stmt):
                    return True
    return any(check(posting) for check in _reference_checks)


# --------------------------------------------------------------------------- lookups

def _member_posting(model: type[P], actor: User, posting_id: int) -> P:
    posting = get_by_id(model, posting_id)
    if (
        posting is None
        or actor.organisation_id is None
        or posting.organisation_id != actor.organisation_id
    ):
        raise NotFound(_("需求不存在。") if model is Demand else _("培训项目不存在。"))
    return posting


def get_own_demand(actor: User, demand_id: int) -> Demand:
    """The demand if it belongs to the actor's organisation, else :class:`NotFound`."""
    return _member_posting(Demand, actor, demand_id)


def get_own_programme(actor: User, programme_id: int) -> Programme:
    """The programme if it belongs to the actor's organisation, else :class:`NotFound`."""
    return _member_posting(Programme, actor, programme_id)


def list_own_demands(actor: User) -> list[Demand]:
    """The actor's organisation's demands, newest first (archived last)."""
    if actor.organisation_id is None:
        return []
    stmt = (
        select(Demand)
        .where(Demand.organisation_id == actor.organisation_id)
        .order_by((Demand.status == "archived").asc(), Demand.updated_at.desc(), Demand.id.desc())
    )
    return list(db.session.scalars(stmt))


def list_own_programmes(actor: User) -> list[Programme]:
    """The actor's organisation's programmes, newest first (archived last)."""
    if actor.organisation_id is None:
        return []
    stmt = (
        select(Programme)
        .where(Programme.organisation_id == actor.organisation_id)
        .order_by(
            (Programme.status == "archived").asc(), Programme.updated_at.desc(), Programme.id.desc()
        )
    )
    return list(db.session.scalars(stmt))


def _require_org_kind(actor: User, kind: str) -> None:
    organisation = actor.organisation
    if organisation is None or organisation.kind != kind:
        raise PermissionDenied(
            _("只有企业会员可以发布技能需求。")
            if kind == "enterprise"
            else _("只有培训机构会员可以发布培训项目。")
        )


# --------------------------------------------------------------------------- validation


def _check_text(
    value: str, max_length: int, field_name: str, label: str, *, required: bool = False
) -> str:
    value = visible_text(value, label, field_name)
    if required and not has_visible_character(value):
        raise ValidationFailed(_("此项为必填项。"), field=field_name)
    if len(value) > max_length:
        raise ValidationFailed(_("最多 %(n)s 个字。", n=max_length), field=field_name)
    return value


def _check_lines(lines: Iterable[str], field_name: str, label: str) -> list[str]:
    texts = (visible_text(line, label, field_name) for line in lines if line)
    cleaned = [text for text in texts if has_visible_character(text)]
    if len(cleaned) > MAX_LINES:
        raise ValidationFailed(_("最多 %(n)s 行。", n=MAX_LINES), field=field_name)
    for number, line in enumerate(cleaned, 1):
        if len(line) > MAX_LINE:
            raise ValidationFailed(
                _("第 %(line)s 行过长（每行最多 %(n)s 个字）。", line=number, n=MAX_LINE),
                field=field_name,
            )
    return cleaned


def _check_choice(value: str | None, vocabulary: Any, field_name: str, *, optional: bool = False) -> str | None:
    if optional and not value:
        return None
    if value not in vocabulary:
        raise ValidationFailed(_("请选择列表中的选项。"), field=field_name)
    return value


def _check_int(value: Any, low: int, high: int, field_name: str, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(
            _("请输入 %(low)s 到 %(high)s 之间的整数。", low=low, high=high), field=field_name
        )
    return value


def _resolve_tags(names: Iterable[str]) -> list[Skill]:
    names = [visible_text(n, _("技能标签"), "skills") for n in names if n]
    typed = [normalise_skill_name(n) for n in names if normalise_skill_name(n)]
    if len(dict.fromkeys(typed)) > MAX_SKILLS:
        raise ValidationFailed(_("技能标签最多 %(n)s 个。", n=MAX_SKILLS), field="skills")
    return resolve_skills(typed, create=True)


def _validate_demand(data: DemandInput) -> dict[str, Any]:
    values = {
        "title": _check_text(data.title, MAX_TITLE, "title", _("岗位名称"), required=True),
        "occupation": _check_text(data.occupation, MAX_OCCUPATION, "occupation", _("职业（工种）")),
        "description": _check_text(data.description, MAX_DESCRIPTION, "description", _("需求说明")),
        "duties": _check_lines(data.duties, "duties", _("岗位职责")),
        "requirements": _check_lines(data.requirements, "requirements", _("任职要求")),
        "skill_level": _check_choice(data.skill_level, choices.SKILL_LEVELS, "skill_level"),
        "headcount": _check_int(data.headcount, 1, MAX_HEADCOUNT, "headcount"),
        "district": _check_choice(data.district, choices.DISTRICTS, "district"),
        "location": _check_text(data.location, MAX_LOCATION, "location", _("培训/工作地点")),
        "mode": _check_choice(data.mode, choices.TRAINING_MODES, "mode"),
        "desired_start": data.desired_start,
        "budget_per_person": _check_int(
            data.budget_per_person, 0, MAX_BUDGET, "budget_per_person", optional=True
        ),
    }
    if data.desired_start is not None and not isinstance(data.desired_start, date):
        raise ValidationFailed(_("请输入有效日期。"), field="desired_start")
    return values


def _validate_programme(data: ProgrammeInput) -> dict[str, Any]:
    modules: list[dict[str, Any]] = []
    if len(data.modules) > MAX_LINES:
        raise ValidationFailed(_("最多 %(n)s 个课程模块。", n=MAX_LINES), field="modules")
    for number, module in enumerate(data.modules, 1):
        name = visible_text(str(module.get("name", "")), _("课程模块"), "modules")
        hours = module.get("hours")
        if not name or len(name) > MAX_LINE:
            raise ValidationFailed(_("第 %(line)s 个模块名称为空或过长。", line=number), field="modules")
        if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_MODULE_HOURS:
            raise ValidationFailed(
                _("第 %(line)s 个模块的学时应为 1 到 %(n)s 之间的整数。", line=number, n=MAX_MODULE_HOURS),
                field="modules",
            )
        modules.append({"name": name, "hours": hours})
    total_hours = _check_int(data.total_hours, 1, MAX_TOTAL_HOURS, "total_hours")
    module_hours = sum(m["hours"] for m in modules)
    if total_hours is not None and module_hours > total_hours:
        raise ValidationFailed(
            _("总学时（%(total)s）不能少于各模块学时之和（%(sum)s）。", total=total_hours, sum=module_hours),
            field="total_hours",
        )
    certificate_kind = _check_choice(data.certificate_kind, choices.CERTIFICATE_KINDS, "certificate_kind")
    certificate_name = _check_text(
        data.certificate_name, MAX_CERTIFICATE_NAME, "certificate_name", _("证书名称")
    )
    if certificate_kind != "none" and not certificate_name:
        raise ValidationFailed(_("请填写证书名称。"), field="certificate_name")
    if certificate_kind == "none":
        certificate_name = ""
    return {
        "title": _check_text(data.title, MAX_TITLE, "title", _("项目名称"), required=True),
        "description": _check_text(data.description, MAX_DESCRIPTION, "description", _("项目简介")),
        "modules": modules,
        "outcomes": _check_lines(data.outcomes, "outcomes", _("学习成果")),
        "level": _check_choice(data.level, choices.SKILL_LEVELS, "level", optional=True),
        "certificate_kind": certificate_kind,
        "certificate_name": certificate_name,
        "total_hours": total_hours,
        "mode": _check_choice(data.mode, choices.TRAINING_MODES, "mode"),
        "district": _check_choice(data.district, choices.DISTRICTS, "district"),
        "location": _check_text(data.location, MAX_LOCATION, "location", _("上课地点")),
        "capacity": _check_int(data.capacity, 1, MAX_CAPACITY, "capacity"),
        "fee": _check_int(data.fee, 0, MAX_FEE, "fee"),
        "subsidy_eligible": bool(data.subsidy_eligible),
        "schedule": _check_text(data.schedule, MAX_SCHEDULE, "schedule", _("开班安排")),
    }


# --------------------------------------------------------------------------- indexing


def _index(posting: Demand | Programme) -> None:
    """Refresh the search index now and queue the encoding of the posting's texts.

    The encoding job runs after the commit; it never fails the user's edit, and the live
    catalogue keeps the posting's previous version until its new vectors are stored.
    """
    if isinstance(posting, Demand):
        search.index_demand(posting)
    else:
        search.index_programme(posting)
    encode_later(posting)


# --------------------------------------------------------------------------- demands


def create_demand(actor: User, data: DemandInput) -> Demand:
    """Create a draft demand for the actor's enterprise and index it."""
    _require_org_kind(actor, "enterprise")
    values = _validate_demand(data)
    skills = _resolve_tags(data.skills)
    demand = Demand(
        organisation_id=actor.organisation_id,
        created_by_id=actor.id,
        status="draft",
        **values,
    )
    demand.skills = skills
    db.session.add(demand)
    db.session.flush()
    _index(demand)
    return demand


def update_demand(actor: User, demand_id: int, data: DemandInput) -> Demand:
    """Change a demand of the actor's organisation (not archived ones) and re-index it."""
    demand = get_own_demand(actor, demand_id)
    if demand.status == "archived":
        raise InvalidTransition(_("已归档的需求不能再编辑。"))
    values = _validate_demand(data)
    skills = _resolve_tags(data.skills)
    for name, value in values.items():
        setattr(demand, name, value)
    demand.skills = skills
    demand.updated_at = utcnow()
    db.session.flush()
    _index(demand)
    from ..curation.services import flag_for_review

    flag_for_review(demand, actor)
    if demand.status == "open":
        after_publish_later(demand, alerts_only=True)
    return demand


def _require_can_publish(actor: User) -> None:
    organisation = actor.organisation
    if organisation is None or not organisation.can_publish:
        raise PermissionDenied(
            _("贵机构尚未通过协会审核（或已被暂停），可以保存草稿，但暂时不能发布。")
        )


_DEMAND_TRANSITIONS = {
    "publish": ({"draft", "closed"}, "open"),
    "close": ({"open"}, "closed"),
    "archive": ({"draft", "open", "closed"}, "archived"),
}
_PROGRAMME_TRANSITIONS = {
    "publish": ({"draft"}, "published"),
    "archive": ({"draft", "published"}, "archived"),
}


def _refuse_status(posting: Demand | Programme) -> InvalidTransition:
    status_labels = choices.DEMAND_STATUSES if isinstance(posting, Demand) else choices.PROGRAMME_STATUSES
    return InvalidTransition(
        _("当前状态为“%(status)s”，不能执行此操作。", status=choices.label(status_labels, posting.status))
    )


def _transition(actor: User, posting: P, action: str, table: dict, reason: str = "") -> P:
    allowed, target = table[action]
    if posting.status not in allowed:
        raise _refuse_status(posting)
    now = utcnow()
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "publish":
        _require_can_publish(actor)
        values["published_at"] = now
    before = posting.status
    # Conditional on the status the actor saw: of twenty clicks at once exactly one changes
    # the row and writes the audit record; the others are told the status it has now.
    if not change_if(posting, type(posting).status == before, **values):
        raise _refuse_status(posting)
    kind = "demand" if isinstance(posting, Demand) else "programme"
    record(actor, f"{kind}.{action}", posting, reason, before=before, after=target)
    record_status_change(posting, before, target)
    return posting


def publish_demand(actor: User, demand_id: int) -> Demand:
    """Open a draft or closed demand to the public (approved organisations only)."""
    demand = _transition(actor, get_own_demand(actor, demand_id), "publish", _DEMAND_TRANSITIONS)
    after_publish_later(demand)
    return demand


def close_demand(actor: User, demand_id: int) -> Demand:
    """Stop collecting offers for an open demand."""
    return _transition(actor, get_own_demand(actor, demand_id), "close", _DEMAND_TRANSITIONS)


def archive_demand(actor: User, demand_id: int) -> Demand:
    """Archive a demand: it leaves every list but is kept for the records."""
    return _transition(actor, get_own_demand(actor, demand_id), "archive", _DEMAND_TRANSITIONS)


def _delete_or_archive(actor: User, posting: P, table: dict) -> str:
    kind = "demand" if isinstance(posting, Demand) else "programme"
    if posting.status != "draft":
        raise InvalidTransition(_("只能删除草稿；已发布过的内容请关闭或归档。"))
    if is_referenced(posting):
        # Something else points at it: keep the row, take it out of circulation.
        _transition(actor, posting, "archive", table, reason="referenced; archived instead of deleted")
        return "archived"
    record(actor, f"{kind}.delete", posting, title=posting.title)
    db.session.execute(
        delete(SearchTerm).where(SearchTerm.posting_kind == kind, SearchTerm.posting_id == posting.id)
    )
    db.session.delete(posting)
    db.session.flush()
    return "deleted"


def delete_demand(actor: User, demand_id: int) -> str:
    """Delete a draft demand; a referenced one is archived instead.

    Returns ``"deleted"`` or ``"archived"``.
    """
    return _delete_or_archive(actor, get_own_demand(actor, demand_id), _DEMAND_TRANSITIONS)


# --------------------------------------------------------------------------- programmes


def create_programme(actor: User, data: ProgrammeInput) -> Programme:
    """Create a draft programme for the actor's institution and index it."""
    _require_org_kind(actor, "institution")
    values = _validate_programme(data)
    skills = _resolve_tags(data.skills)
    programme = Programme(
        organisation_id=actor.organisation_id,
        created_by_id=actor.id,
        status="draft",
        **values,
    )
    programme.skills = skills
    db.session.add(programme)
    db.session.flush()
    _index(programme)
    return programme


def update_programme(actor: User, programme_id: int, data: ProgrammeInput) -> Programme:
    """Change a programme of the actor's organisation (not archived ones) and re-index it."""
    programme = get_own_programme(actor, programme_id)
    if programme.status == "archived":
        raise InvalidTransition(_("已归档的培训项目不能再编辑。"))
    values = _validate_programme(data)
    skills = _resolve_tags(data.skills)
    for name, value in values.items():
        setattr(programme, name, value)
    programme.skills = skills
    programme.updated_at = utcnow()
    db.session.flush()
    _index(programme)
    from ..curation.services import flag_for_review

    flag_for_review(programme, actor)
    if programme.status == "published":
        after_publish_later(programme, alerts_only=True)
    return programme


def publish_programme(actor: User, programme_id: int) -> Programme:
    """Publish a draft programme (approved organisations only)."""
    programme = _transition(
        actor, get_own_programme(actor, programme_id), "publish", _PROGRAMME_TRANSITIONS
    )
    # Suggestions and alerts follow once the programme is in the live catalogue.
    after_publish_later(programme)
    return programme


def archive_programme(actor: User, programme_id: int) -> Programme:
    """Archive a programme: it leaves every list but is kept for the records."""
    return _transition(
        actor, get_own_programme(actor, programme_id), "archive", _PROGRAMME_TRANSITIONS
    )


def delete_programme(actor: User, programme_id: int) -> str:
    """Delete a draft programme; a referenced one is archived instead.

    Returns ``"deleted"`` or ``"archived"``.
    """
    return _delete_or_archive(actor, get_own_programme(actor, programme_id), _PROGRAMME_TRANSITIONS)


# --------------------------------------------------------------------------- skill vocabulary


def _require_staff(actor: User) -> None:
    if not actor.is_staff:
        raise PermissionDenied(_("只有协会工作人员可以维护技能标签。"))


def _live_skill(skill_id: int) -> Skill:
    skill = get_by_id(Skill, skill_id)
    if skill is None or skill.merged_into_id is not None:
        raise NotFound(_("技能标签不存在或已被合并。"))
    return skill


def skill_usage() -> dict[int, tuple[int, int]]:
    """``{skill_id: (demands, programmes)}`` for every tag in use."""
    usage: dict[int, list[int]] = {}
    for table, slot in ((demand_skills, 0), (programme_skills, 1)):
        stmt = select(table.c.skill_id, func.count()).group_by(table.c.skill_id)
        for skill_id, count in db.session.execute(stmt):
            usage.setdefault(skill_id, [0, 0])[slot] = count
    return {skill_id: (d, p) for skill_id, (d, p) in usage.items()}


def suggest_skills(query: str, limit: int = 20) -> list[str]:
    """Live tag names, and matching synonyms, containing ``query``; prefix matches first."""
    query = normalise_skill_name(query or "").lower()
    if not query:
        return []
    scored: list[tuple[int, int, str]] = []
    live = db.session.scalars(select(Skill).where(Skill.merged_into_id.is_(None)).order_by(Skill.name))
    for skill in live:
        names = [(skill.name, 0)] + [(s, 1) for s in (skill.synonyms or [])]
        hits = [(name, rank) for name, rank in names if query in name.lower()]
        if not hits:
            continue
        # Show the canonical name whenever a synonym matched, so the tag itself is offered.
        best = min(0 if name.lower().startswith(query) else 1 for name, _rank in hits)
        scored.append((best, 0, skill.name))
        for name, rank in hits:
            if rank:
                scored.append((best, 1, name))
    out: list[str] = []
    for _best, _kind, name in sorted(scored, key=lambda item: item[0]):
        if name not in out:
            out.append(name)
        if len(out) >= limit:
            break
    return out


def _clean_synonyms(skill: Skill, synonyms: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in synonyms:
        name = normalise_skill_name(raw)
        if not name or name == skill.name or name in cleaned:
            continue
        if len(name) > MAX_SKILL_LENGTH:
            raise ValidationFailed(
                _("同义词“%(name)s”过长（最多 %(n)s 个字）。", name=name[:20], n=MAX_SKILL_LENGTH),
                field="synonyms",
            )
        owner = find_skill(name)
        if owner is not None and owner.id != skill.id:
            raise ValidationFailed(
                _("“%(name)s”已属于技能标签“%(owner)s”，请先合并或从那里移除。", name=name, owner=owner.name),
                field="synonyms",
            )
        cleaned.append(name)
    if len(cleaned) > MAX_SYNONYMS:
        raise ValidationFailed(_("同义词最多 %(n)s 个。", n=MAX_SYNONYMS), field="synonyms")
    return cleaned


def update_synonyms(actor: User, skill_id: int, synonyms: Iterable[str]) -> Skill:
    """Replace a live tag's synonyms (staff only); a synonym may belong to one tag only."""
    _require_staff(actor)
    skill = _live_skill(skill_id)
    before = list(skill.synonyms or [])
    skill.synonyms = _clean_synonyms(skill, synonyms)
    db.session.flush()
    record(actor, "skill.synonyms", skill, before=before, after=skill.synonyms)
    return skill


def merge_skills(actor: User, source_id: int, target_id: int) -> Skill:
    """Merge tag ``source`` into ``target`` (staff only) and return the survivor.

    Postings linked to the source are linked to the target instead (never twice); the
    source's name and synonyms become synonyms of the target; the source keeps existing with
    ``merged_into`` set, so that old names still resolve.
    """
    _require_staff(actor)
    source, target = _live_skill(source_id), _live_skill(target_id)
    if source.id == target.id:
        raise ValidationFailed(_("不能把标签合并到它自己。"), field="target")

    demand_ids = _move_links(demand_skills, "demand_id", source.id, target.id)
    programme_ids = _move_links(programme_skills, "programme_id", source.id, target.id)

    merged = list(target.synonyms or [])
    for name in [source.name, *(source.synonyms or [])]:
        if name != target.name and name not in merged:
            merged.append(name)
    target.synonyms = merged
    source.synonyms = []
    source.merged_into = target
    # Tags earlier merged into the source now point straight at the survivor.
    db.session.execute(
        update(Skill).where(Skill.merged_into_id == source.id).values(merged_into_id=target.id)
    )
    db.session.flush()
    db.session.expire_all()
    for demand in db.session.scalars(select(Demand).where(Demand.id.in_(demand_ids))):
        _index(demand)
    for programme in db.session.scalars(select(Programme).where(Programme.id.in_(programme_ids))):
        _index(programme)
    target = db.session.get(Skill, target_id)
    record(
        actor,
        "skill.merge",
        target,
        source_id=source_id,
        source_name=db.session.get(Skill, source_id).name,
        demands=len(demand_ids),
        programmes=len(programme_ids),
    )
    db.session.flush()
    return target


def _move_links(table, owner_column: str, source_id: int, target_id: int) -> list[int]:
    owner = table.c[owner_column]
    owners = list(db.session.scalars(select(owner).where(table.c.skill_id == source_id)))
    if not owners:
        return []
    already = set(
        db.session.scalars(
            select(owner).where(table.c.skill_id == target_id, owner.in_(owners))
        )
    )
    db.session.execute(delete(table).where(table.c.skill_id == source_id))
    fresh = [o for o in owners if o not in already]
    if fresh:
        db.session.execute(table.insert(), [{owner_column: o, "skill_id": target_id} for o in fresh])
    return owners


def live_skill_by_name(name: str) -> Skill:
    """The live tag called exactly ``name`` (after normalisation), else :class:`NotFound`."""
    name = normalise_skill_name(name or "")
    skill = db.session.scalar(select(Skill).where(Skill.name == name))
    if skill is None or skill.merged_into_id is not None:
        raise NotFound(_("没有名为“%(name)s”的技能标签。", name=name[:MAX_SKILL_LENGTH]))
    return skill


def skill_page(query: str, page: int, per_page: int | None = None) -> Page:
    """Live tags, alphabetical, whose name or synonyms contain ``query``, one page of them."""
    query = normalise_skill_name(query or "").lower()
    live = db.session.scalars(select(Skill).where(Skill.merged_into_id.is_(None)).order_by(Skill.name))
    matches = [
        skill
        for skill in live
        if not query
        or query in skill.name.lower()
        or any(query in synonym.lower() for synonym in skill.synonyms or [])
    ]
    return Page.of_list(matches, page, per_page)


# --------------------------------------------------------------------------- paging


@dataclass
class Page:
    """One page of results, with the attributes ``_macros.html``'s ``pagination`` reads."""

    items: list[Any]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None

    @staticmethod
    def clamp(page: Any, total: int, per_page: int) -> int:
        """A usable page number: bad or out-of-range input lands on the first or last page."""
        try:
            page = int(page)
        except (TypeError, ValueError):
            page = 1
        last = max(1, -(-total // per_page))
        return min(max(page, 1), last)

    @classmethod
    def of_list(cls, items: list[Any], page: Any, per_page: int | None = None) -> Page:
        per_page = per_page or _page_size()
        number = cls.clamp(page, len(items), per_page)
        start = (number - 1) * per_page
        return cls(items[start:start + per_page], number, per_page, len(items))


def _page_size() -> int:
    from flask import current_app

    return int(current_app.config.get("PAGE_SIZE", 20))
