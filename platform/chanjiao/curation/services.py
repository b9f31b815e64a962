"""Curation of (demand, programme) pairings by association staff.

The matching engine proposes pairings (status "suggested"); staff accept or reject them with a
reason. Decided pairings are the labelled pairs the ranker retrains on, and matching never
changes them. Functions flush; the caller (view or CLI command) commits.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased, selectinload

from .. import choices, matchmaking
from ..common import change_if, clean_text, get_by_id, visible_text
from ..errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..extensions import db
from ..matches.labels import level_label as member_level_label
from ..models import (
    AuditLog,
    Demand,
    DemoPlatform,
    DemoPlatformPairing,
    InterestRequest,
    Organisation,
    Pairing,
    Programme,
    Skill,
    User,
)
from ..models._common import utcnow
from ..models.audit import record

MAX_REASON_LENGTH = 1000
DECISIONS = ("accept", "reject")
QUEUE_STATUSES = ("suggested", "accepted", "rejected", "review")
# How far down the engine's ranking a staff-created pairing is looked up for its explanation.
EXPLAIN_DEPTH = 50


def _require_staff(actor: User) -> None:
    if actor is None or not actor.is_staff:
        raise PermissionDenied(_("只有协会工作人员可以执行此操作。"))


def _json_safe(value: Any) -> Any:
    # The engine may hand back numpy scalars; the JSON column needs plain floats.
    def default(obj: Any) -> Any:
        try:
            number = float(obj)
        except (TypeError, ValueError):
            return str(obj)
        return number if math.isfinite(number) else 0.0

    return json.loads(json.dumps(value, default=default))


def _insert_pairing(**values: Any) -> int | None:
    """Insert a pairing unless the pair has one (the unique constraint decides, so two
    inserts at once make one row); return the new id, or None when the pair had one."""
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return db.session.scalar(
        insert(Pairing)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["demand_id", "programme_id"])
        .returning(Pairing.id)
    )


# --------------------------------------------------------------------------- suggestions


@dataclass
class RefreshCounts:
    demands: int = 0
    inserted: int = 0
    updated: int = 0
    kept: int = 0  # decided pairings the engine proposed again and left alone
    withdrawn: int = 0  # engine suggestions no longer offered (below tau or out of the top k)
    below: int = 0  # candidates of the top k not proposed: their probability is below tau

    @property
    def total(self) -> int:
        return self.inserted + self.updated


def _not_engine_made(pairings: list[Pairing]) -> set[int]:
    """Ids of the suggested pairings that people asked for: added by staff, or a pair both
    parties want (an accepted interest request). Refreshing never withdraws those."""
    if not pairings:
        return set()
    ids = [p.id for p in pairings]
    added = set(
        db.session.scalars(
            select(AuditLog.object_id).where(
                AuditLog.action == "pairing.create",
                AuditLog.object_type == Pairing.__tablename__,
                AuditLog.object_id.in_(ids),
            )
        )
    )
    wanted = set(
        db.session.scalars(
            select(Pairing.id).where(
                Pairing.id.in_(ids), _mutual_interest(Pairing.demand_id, Pairing.programme_id)
            )
        )
    )
    return added | wanted


def _refresh(demand: Demand, k: int, counts: RefreshCounts) -> None:
    # The engine returns the top k as ranked, including candidates below tau (no level): those
    # are never proposed to staff, however few matches a demand has.
    recommendations = matchmaking.recommend_programmes(demand, k=k)
    offered = [rec for rec in recommendations if rec.offered]
    counts.below += len(recommendations) - len(offered)
    existing = {
        p.programme_id: p
        for p in db.session.scalars(select(Pairing).where(Pairing.demand_id == demand.id))
    }
    counts.demands += 1
    # Suggestions are the engine's current proposals: one it no longer offers (its probability
    # fell below tau after a catalogue change or a retrain, or it left the top k) is withdrawn.
    # Nothing references a suggested pairing (platforms take accepted ones only); pairings
    # staff decided or added, and pairs both parties want, stay.
    proposed = {rec.programme.id for rec in offered}
    stale = [p for pid, p in existing.items() if p.status == "suggested" and pid not in proposed]
    asked_for = _not_engine_made(stale)
    for pairing in stale:
        if pairing.id not in asked_for:
            db.session.delete(pairing)
            counts.withdrawn += 1
    for rec in offered:
        snapshot = _json_safe(rec.as_dict())
        score = float(rec.score)
        pairing = existing.get(rec.programme.id)
        if pairing is None:
            # Another refresh (a publish elsewhere) may insert the pair at the same moment.
            if _insert_pairing(
                demand_id=demand.id,
                programme_id=rec.programme.id,
                score=score,
                explanation=snapshot,
                suggested_at=utcnow(),
                status="suggested",
            ) is not None:
                counts.inserted += 1
        elif pairing.status == "suggested":
            pairing.score = score
            pairing.explanation = snapshot
            pairing.suggested_at = utcnow()
            counts.updated += 1
        else:
            # Matching proposes; people decide: a staff decision is never overwritten.
            counts.kept += 1
    db.session.flush()


def refresh_all(per_demand: int = 5) -> RefreshCounts:
    """Refresh suggested pairings for every open demand; returns the counts."""
    counts = RefreshCounts()
    per_demand = max(1, min(int(per_demand), 50))
    for demand in list(db.session.scalars(matchmaking.open_demands_query())):
        _refresh(demand, per_demand, counts)
    return counts


def refresh_suggestions(per_demand: int = 5) -> int:
    """Store the top ``per_demand`` programmes of every open demand as suggested pairings.

    Only programmes offered as matches (probability at least tau) are suggested. New pairs
    are inserted; suggested ones get the new score and explanation (with probability and
    level); suggestions the engine no longer offers are withdrawn; pairings staff decided or
    added are left untouched. Returns the number of pairings inserted or updated.
    """
    return refresh_all(per_demand).total


def refresh_for_demand(demand: Demand, per_demand: int = 5) -> int:
    """Refresh the suggested pairings of one demand (when it is published). Returns the number
    of pairings inserted or updated; a demand that is not open has none."""
    if demand.status != "open" or demand.organisation.status != "approved":
        return 0
    counts = RefreshCounts()
    _refresh(demand, max(1, min(int(per_demand), 50)), counts)
    return counts.total


# --------------------------------------------------------------------------- the queue


@dataclass(frozen=True)
class QueueFilters:
    industry: str = ""
    skill: str = ""
    district: str = ""
    status: str = ""


def parse_filters(args: Any) -> QueueFilters:
    """Queue filters from query arguments; unknown values are ignored."""
    industry = args.get("industry", "") or ""
    district = args.get("district", "") or ""
    status = args.get("status", "") or ""
    skill = clean_text(args.get("skill", "") or "").strip()[:50]
    return QueueFilters(
        industry=industry if industry in choices.INDUSTRIES else "",
        skill=skill,
        district=district if district in choices.CHAOYANG_AREAS else "",
        status=status if status in QUEUE_STATUSES else "",
    )


def _mutual_interest(demand_id_col, programme_id_col):
    return exists().where(
        InterestRequest.demand_id == demand_id_col,
        InterestRequest.programme_id == programme_id_col,
        InterestRequest.status == "accepted",
    )


def queue(actor: User, filters: QueueFilters, page: int, per_page: int) -> Pagination:
    """Pairings for staff: flagged ones first, then those both parties want, then by score.

    Suggested pairings only while both postings are live; accepted and flagged ones always;
    rejected ones only when asked for.
    """
    _require_staff(actor)
    enterprise = aliased(Organisation)
    institution = aliased(Organisation)
    mutual = _mutual_interest(Pairing.demand_id, Pairing.programme_id)
    live = and_(
        Demand.status == "open",
        Programme.status == "published",
        enterprise.status == "approved",
        institution.status == "approved",
    )
    query = (
        select(Pairing)
        .join(Demand, Pairing.demand_id == Demand.id)
        .join(Programme, Pairing.programme_id == Programme.id)
        .join(enterprise, Demand.organisation_id == enterprise.id)
        .join(institution, Programme.organisation_id == institution.id)
        .options(
            selectinload(Pairing.demand).selectinload(Demand.organisation),
            selectinload(Pairing.programme).selectinload(Programme.organisation),
            selectinload(Pairing.decided_by),
        )
    )
    if filters.status == "suggested":
        query = query.where(Pairing.status == "suggested", live)
    elif filters.status == "accepted":
        query = query.where(Pairing.status == "accepted")
    elif filters.status == "rejected":
        query = query.where(Pairing.status == "rejected")
    elif filters.status == "review":
        query = query.where(Pairing.needs_review.is_(True))
    else:
        query = query.where(
            or_(
                Pairing.needs_review.is_(True),
                Pairing.status == "accepted",
                and_(Pairing.status == "suggested", live),
            )
        )
    if filters.industry:
        query = query.where(enterprise.industry == filters.industry)
    if filters.district:
        query = query.where(or_(Demand.district == filters.district, Programme.district == filters.district))
    if filters.skill:
        query = query.where(
            or_(
                Demand.skills.any(Skill.name == filters.skill),
                Programme.skills.any(Skill.name == filters.skill),
            )
        )
    # Ranker scores are comparable only within one demand's list; the calibrated probability
    # in the snapshot is comparable across demands (-1: a snapshot from before calibration).
    probability = func.coalesce(Pairing.explanation["probability"].as_float(), -1.0)
    query = query.order_by(
        Pairing.needs_review.desc(),
        case((mutual, 0), else_=1),
        case((Pairing.status == "accepted", 0), else_=1),
        probability.desc(),
        Pairing.score.desc(),
        Pairing.id,
    )
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def interest_summary(pairings: list[Pairing]) -> dict[int, dict[str, str]]:
    """Each pairing's interest per side: none | requested | interested | declined | withdrawn.

    An accepted interest request, whichever side sent it, means both sides are interested.
    """
    if not pairings:
        return {}
    keys = {(p.demand_id, p.programme_id) for p in pairings}
    requests = list(
        db.session.scalars(
            select(InterestRequest)
            .where(InterestRequest.demand_id.in_({d for d, _p in keys}))
            .order_by(InterestRequest.created_at, InterestRequest.id)
        )
    )
    out: dict[int, dict[str, str]] = {}
    for pairing in pairings:
        mine = [
            r for r in requests
            if (r.demand_id, r.programme_id) == (pairing.demand_id, pairing.programme_id)
        ]
        sides = {}
        enterprise_id = pairing.demand.organisation_id
        institution_id = pairing.programme.organisation_id
        if any(r.status == "accepted" for r in mine):
            sides = {"enterprise": "interested", "institution": "interested"}
        else:
            for side, org_id in (("enterprise", enterprise_id), ("institution", institution_id)):
                state = "none"
                for r in mine:  # the latest request decides
                    if r.from_organisation_id == org_id:
                        state = {"pending": "requested", "withdrawn": "withdrawn"}.get(r.status, state)
                    elif r.to_organisation_id == org_id and r.status == "declined":
                        state = "declined"
                sides[side] = state
        sides["mutual"] = "yes" if sides["enterprise"] == "interested" else "no"
        out[pairing.id] = sides
    return out


def level_label(level: str | None) -> str:
    """The words for a match level, the same as on members' pages (None: below tau)."""
    return member_level_label(level) if level else _("低于推荐门槛")


def snapshot_level(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"level", "probability"}`` from a pairing's snapshot; None for a snapshot taken
    before matches had a calibrated probability (or none at all)."""
    if not snapshot or not isinstance(snapshot.get("probability"), (int, float)):
        return None
    return {"level": snapshot.get("level"), "probability": float(snapshot["probability"])}


def interest_label(state: str) -> str:
    return {
        "none": _("未表达意向"),
        "requested": _("已申请对接，待回复"),
        "interested": _("双方有意向"),
        "declined": _("已婉拒"),
        "withdrawn": _("已撤回申请"),
    }.get(state, state)


def unpaired_interest(actor: User, limit: int = 50) -> list[InterestRequest]:
    """Accepted interest requests whose (demand, programme) pair has no pairing yet."""
    _require_staff(actor)
    paired = exists().where(
        Pairing.demand_id == InterestRequest.demand_id,
        Pairing.programme_id == InterestRequest.programme_id,
    )
    return list(
        db.session.scalars(
            select(InterestRequest)
            .where(InterestRequest.status == "accepted", ~paired)
            .options(
                selectinload(InterestRequest.demand).selectinload(Demand.organisation),
                selectinload(InterestRequest.programme).selectinload(Programme.organisation),
            )
            .order_by(InterestRequest.decided_at.desc(), InterestRequest.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- decisions


def get_pairing(actor: User, pairing_id: int) -> Pairing:
    _require_staff(actor)
    pairing = get_by_id(Pairing, pairing_id)
    if pairing is None:
        raise NotFound(_("对接不存在。"))
    return pairing


def create_pairing(actor: User, demand_id: int, programme_id: int) -> Pairing:
    """Put a (demand, programme) pair staff picked into curation as a suggested pairing.

    Its score and explanation come from the engine when it ranks the programme for the demand.
    A pair that already has a pairing (however it got one, even a moment ago from another
    click) raises :class:`InvalidTransition` and writes nothing.
    """
    _require_staff(actor)
    demand = get_by_id(Demand, demand_id)
    programme = get_by_id(Programme, programme_id)
    if demand is None or programme is None:
        raise NotFound(_("所选的需求或培训项目不存在。"))
    already = InvalidTransition(_("该对接已在遴选中。"))
    existing = db.session.scalar(
        select(Pairing.id).where(Pairing.demand_id == demand.id, Pairing.programme_id == programme.id)
    )
    if existing is not None:
        raise already
    score, snapshot = 0.0, {}
    if demand.status == "open":
        for rec in matchmaking.recommend_programmes(demand, k=EXPLAIN_DEPTH):
            if rec.programme.id == programme.id:
                score, snapshot = float(rec.score), _json_safe(rec.as_dict())
                break
    pairing_id = _insert_pairing(
        demand_id=demand.id,
        programme_id=programme.id,
        score=score,
        explanation=snapshot,
        suggested_at=utcnow(),
        status="suggested",
    )
    if pairing_id is None:
        raise already
    pairing = db.session.get(Pairing, pairing_id)
    record(actor, "pairing.create", pairing, demand_id=demand.id, programme_id=programme.id)
    return pairing


def _locked_by_platform(pairing: Pairing) -> bool:
    return bool(
        db.session.scalar(
            select(
                exists()
                .where(DemoPlatformPairing.pairing_id == pairing.id)
                .where(DemoPlatformPairing.platform_id == DemoPlatform.id)
                .where(DemoPlatform.status != "draft")
            )
        )
    )


def _refuse_repeat(pairing: Pairing, new_status: str) -> None:
    if pairing.status == new_status and not pairing.needs_review:
        raise InvalidTransition(
            _("该对接已通过。") if new_status == "accepted" else _("该对接已驳回。")
        )


def decide(actor: User, pairing_id: int, decision: str, reason: str = "") -> Pairing:
    """Accept or reject a pairing with a reason (required to reject).

    Stores the decision on the pairing, clears a re-review flag, writes the audit log and
    tells both organisations.
    """
    pairing = get_pairing(actor, pairing_id)
    if decision not in DECISIONS:
        raise ValidationFailed(_("未知的操作。"))
    reason = visible_text(reason, _("理由"), "reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(_("理由不能超过 %(n)s 个字符。", n=MAX_REASON_LENGTH), field="reason")
    if decision == "reject" and not reason:
        raise ValidationFailed(_("驳回对接时必须填写理由。"), field="reason")
    new_status = "accepted" if decision == "accept" else "rejected"
    _refuse_repeat(pairing, new_status)
    if new_status == "rejected" and _locked_by_platform(pairing):
        raise InvalidTransition(_("该对接已纳入公示中或已发布的示范平台，不能驳回。"))
    previous = pairing.status
    # Conditional on the pairing still being as the staff member saw it: of two decisions at
    # once (the same or opposite ones) exactly one changes it, writes the audit record and
    # notifies; the other is told the pairing was decided meanwhile.
    if not change_if(
        pairing,
        Pairing.status == previous,
        Pairing.needs_review.is_(pairing.needs_review),
        status=new_status,
        decision_reason=reason,
        decided_by_id=actor.id,
        decided_at=utcnow(),
        needs_review=False,
    ):
        _refuse_repeat(pairing, new_status)  # the same decision, made a moment ago
        raise InvalidTransition(_("状态已变化，请刷新页面。"))
    record(
        actor, f"pairing.{decision}", pairing, reason,
        previous=previous, demand_id=pairing.demand_id, programme_id=pairing.programme_id,
    )
    _notify_decision(pairing)
    return pairing


def _notify_decision(pairing: Pairing) -> None:
    from ..inbox.services import notify_organisation

    with force_locale("zh_CN"):
        if pairing.status == "accepted":
            title = _("协会已遴选通过对接：%(demand)s ↔ %(programme)s",
                      demand=pairing.demand.title, programme=pairing.programme.title)
        else:
            title = _("协会未通过对接：%(demand)s ↔ %(programme)s",
                      demand=pairing.demand.title, programme=pairing.programme.title)
        body = _("理由：%(reason)s", reason=pairing.decision_reason) if pairing.decision_reason else ""
    from ..platforms.services import link

    for organisation in {pairing.demand.organisation, pairing.programme.organisation}:
        notify_organisation(organisation, "curation.decision", title, body,
                            link("public.demand_detail", demand_id=pairing.demand_id)
                            if organisation.id == pairing.demand.organisation_id
                            else link("public.programme_detail", programme_id=pairing.programme_id))


def labelled_pairs() -> list[tuple[int, int, int]]:
    """Staff decisions as training labels: (demand_id, programme_id, 1 accepted | 0 rejected)."""
    rows = db.session.execute(
        select(Pairing.demand_id, Pairing.programme_id, Pairing.status)
        .where(Pairing.status.in_(("accepted", "rejected")))
        .order_by(Pairing.id)
    )
    return [(d, p, 1 if status == "accepted" else 0) for d, p, status in rows]


# --------------------------------------------------------------------------- re-review


def flag_for_review(posting: Demand | Programme, actor: User | None) -> int:
    """Flag the accepted pairings of an edited posting for staff re-review; notify staff.

    Returns the number of pairings flagged.
    """
    column = Pairing.demand_id if isinstance(posting, Demand) else Pairing.programme_id
    pairings = list(
        db.session.scalars(select(Pairing).where(column == posting.id, Pairing.status == "accepted"))
    )
    if not pairings:
        return 0
    from ..inbox.services import notify_staff

    now = utcnow()
    with force_locale("zh_CN"):
        kind = _("需求") if isinstance(posting, Demand) else _("培训项目")
        note = _(
            "%(who)s 于 %(when)s 编辑了%(kind)s“%(title)s”，请重新审核。",
            who=(actor.name if actor is not None else _("系统")),
            when=now.astimezone(_beijing()).strftime("%Y-%m-%d %H:%M"),
            kind=kind,
            title=posting.title,
        )
        title = _("已通过的对接需重新审核：%(title)s", title=posting.title)
    for pairing in pairings:
        pairing.needs_review = True
        pairing.review_note = note
        record(actor, "pairing.flag", pairing, note, posting=type(posting).__tablename__, posting_id=posting.id)
    db.session.flush()
    from ..platforms.services import link

    notify_staff("curation.review", title, note, link("curation.queue", status="review"))
    return len(pairings)


def _beijing():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def accepted_pairings() -> list[Pairing]:
    """Accepted pairings, for building demonstration platforms."""
    return list(
        db.session.scalars(
            select(Pairing)
            .where(Pairing.status == "accepted")
            .options(
                selectinload(Pairing.demand).selectinload(Demand.organisation),
                selectinload(Pairing.programme).selectinload(Programme.organisation),
            )
            .order_by(Pairing.decided_at.desc(), Pairing.id.desc())
        )
    )
