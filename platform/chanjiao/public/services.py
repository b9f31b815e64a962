"""Read-only queries behind the public pages: counts, browsing, filters and search."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from .. import choices, search
from ..common import clean_text, get_by_id
from ..errors import NotFound
from ..extensions import db
from ..models import Demand, Organisation, Programme, Skill, User
from ..postings.services import Page
from ..skills import find_skill

MAX_QUERY_LENGTH = 100

_PUBLIC_DEMAND = (Demand.status == "open", Organisation.status == "approved")
_PUBLIC_PROGRAMME = (Programme.status == "published", Organisation.status == "approved")


def live_counts() -> dict[str, int]:
    """Counts shown on the home page: approved organisations and publicly visible postings."""

    def count(stmt) -> int:
        return db.session.scalar(stmt) or 0

    approved = Organisation.status == "approved"
    return {
        "enterprises": count(
            select(func.count(Organisation.id)).where(approved, Organisation.kind == "enterprise")
        ),
        "institutions": count(
            select(func.count(Organisation.id)).where(approved, Organisation.kind == "institution")
        ),
        "open_demands": count(
            select(func.count(Demand.id)).join(Demand.organisation).where(*_PUBLIC_DEMAND)
        ),
        "published_programmes": count(
            select(func.count(Programme.id)).join(Programme.organisation).where(*_PUBLIC_PROGRAMME)
        ),
    }


@dataclass
class Filters:
    """Parsed browse parameters. ``ignored`` names the filters whose values were not understood."""

    q: str = ""
    skill: str = ""
    level: str = ""
    mode: str = ""
    district: str = ""
    industry: str = ""  # demands
    certificate: str = ""  # programmes
    subsidy: bool = False  # programmes
    ignored: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(
            self.q or self.skill or self.level or self.mode or self.district
            or self.industry or self.certificate or self.subsidy
        )


def parse_filters(args: Mapping[str, str], kind: str) -> Filters:
    """Read ``q`` and the filters from query-string ``args``; unknown codes are dropped and
    reported in ``ignored`` (never an error page)."""
    filters = Filters()
    filters.q = clean_text(args.get("q") or "").strip()[:MAX_QUERY_LENGTH]
    filters.skill = clean_text(args.get("skill") or "").strip()[:50]
    checks: list[tuple[str, dict, str]] = [
        ("level", choices.SKILL_LEVELS, _("技能等级")),
        ("mode", choices.TRAINING_MODES, _("培训方式")),
        ("district", choices.DISTRICTS, _("街道/地区")),
    ]
    if kind == "demand":
        checks.append(("industry", choices.INDUSTRIES, _("行业")))
    else:
        checks.append(("certificate", choices.CERTIFICATE_KINDS, _("证书类型")))
        filters.subsidy = args.get("subsidy") in ("1", "on", "true", "yes")
    for name, vocabulary, title in checks:
        value = clean_text(args.get(name) or "").strip()
        if not value:
            continue
        if value in vocabulary:
            setattr(filters, name, value)
        else:
            filters.ignored.append(title)
    if filters.ignored:
        filters.messages.append(
            _("以下筛选条件的取值无效，已忽略：%(names)s。", names="、".join(filters.ignored))
        )
    return filters


def _skill_condition(relationship_attr, filters: Filters):
    skill = find_skill(filters.skill)
    if skill is None:
        filters.messages.append(_("没有找到技能标签“%(name)s”。", name=filters.skill))
        return None
    filters.skill = skill.name
    return relationship_attr.any(Skill.id == skill.id)


def _ordered_page(kind: str, stmt, newest, filters: Filters, page: Any, loader) -> Page:
    """Apply search (relevance order) or newest-first order; return one page of rows."""
    ranked = search.ranked_ids(kind, filters.q) if filters.q else None
    if ranked is None:
        ids = list(db.session.scalars(stmt.order_by(*newest)))
    else:
        allowed = set(db.session.scalars(stmt))
        ids = [posting_id for posting_id in ranked if posting_id in allowed]
    result = Page.of_list(ids, page)
    rows = {row.id: row for row in loader(result.items)} if result.items else {}
    result.items = [rows[i] for i in result.items if i in rows]
    return result


def browse_demands(filters: Filters, page: Any) -> Page:
    """Open demands of approved enterprises matching ``filters``; one page."""
    stmt = select(Demand.id).join(Demand.organisation).where(*_PUBLIC_DEMAND)
    if filters.skill:
        condition = _skill_condition(Demand.skills, filters)
        if condition is None:
            return Page([], 1, 1, 0)
        stmt = stmt.where(condition)
    if filters.level:
        stmt = stmt.where(Demand.skill_level == filters.level)
    if filters.mode:
        stmt = stmt.where(Demand.mode == filters.mode)
    if filters.district:
        stmt = stmt.where(Demand.district == filters.district)
    if filters.industry:
        stmt = stmt.where(Organisation.industry == filters.industry)
    newest = (func.coalesce(Demand.published_at, Demand.created_at).desc(), Demand.id.desc())
    return _ordered_page("demand", stmt, newest, filters, page, _load_demands)


def browse_programmes(filters: Filters, page: Any) -> Page:
    """Published programmes of approved institutions matching ``filters``; one page."""
    stmt = select(Programme.id).join(Programme.organisation).where(*_PUBLIC_PROGRAMME)
    if filters.skill:
        condition = _skill_condition(Programme.skills, filters)
        if condition is None:
            return Page([], 1, 1, 0)
        stmt = stmt.where(condition)
    if filters.level:
        stmt = stmt.where(Programme.level == filters.level)
    if filters.mode:
        stmt = stmt.where(Programme.mode == filters.mode)
    if filters.district:
        stmt = stmt.where(Programme.district == filters.district)
    if filters.certificate:
        stmt = stmt.where(Programme.certificate_kind == filters.certificate)
    if filters.subsidy:
        stmt = stmt.where(Programme.subsidy_eligible.is_(True))
    newest = (func.coalesce(Programme.published_at, Programme.created_at).desc(), Programme.id.desc())
    return _ordered_page("programme", stmt, newest, filters, page, _load_programmes)


def _load_demands(ids: list[int]) -> list[Demand]:
    stmt = select(Demand).where(Demand.id.in_(ids)).options(
        selectinload(Demand.skills), selectinload(Demand.organisation)
    )
    return list(db.session.scalars(stmt))


def _load_programmes(ids: list[int]) -> list[Programme]:
    stmt = select(Programme).where(Programme.id.in_(ids)).options(
        selectinload(Programme.skills), selectinload(Programme.organisation)
    )
    return list(db.session.scalars(stmt))


def latest_demands(limit: int = 6) -> list[Demand]:
    """The newest public demands, for the home page."""
    return browse_demands(Filters(), 1).items[:limit]


def latest_programmes(limit: int = 6) -> list[Programme]:
    """The newest public programmes, for the home page."""
    return browse_programmes(Filters(), 1).items[:limit]


def is_public(posting: Demand | Programme) -> bool:
    """Whether anonymous visitors may see ``posting``."""
    live = "open" if isinstance(posting, Demand) else "published"
    return posting.status == live and posting.organisation.status == "approved"


def _visible(posting: Demand | Programme | None, viewer: User | None) -> bool:
    if posting is None:
        return False
    if is_public(posting):
        return True
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return False
    # Staff see everything; members see their own organisation's postings (preview).
    return viewer.is_staff or (
        viewer.organisation_id is not None and viewer.organisation_id == posting.organisation_id
    )


def visible_demand(demand_id: int, viewer: User | None) -> Demand:
    """The demand if ``viewer`` may see it (public, own organisation, or staff), else NotFound."""
    demand = get_by_id(Demand, demand_id)
    if not _visible(demand, viewer):
        raise NotFound(_("需求不存在。"))
    return demand


def visible_programme(programme_id: int, viewer: User | None) -> Programme:
    """The programme if ``viewer`` may see it (public, own organisation, or staff), else NotFound."""
    programme = get_by_id(Programme, programme_id)
    if not _visible(programme, viewer):
        raise NotFound(_("培训项目不存在。"))
    return programme
