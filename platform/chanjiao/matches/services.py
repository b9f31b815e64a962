"""Explained recommendations for members, and interest requests (申请对接) between an
enterprise's demand and an institution's programme.

Functions here validate, change state, ``flush()`` and write audit records; views commit.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .. import matchmaking
from ..alerts import services as alert_services
from ..common import change_if, get_by_id, visible_text
from ..errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..extensions import db
from ..inbox.services import notify
from ..matchmaking import BundleOffer, Recommendation, Requirement
from ..models import Demand, Organisation, Programme, User
from ..models._common import utcnow
from ..models.alerts import MatchAlert
from ..models.audit import record
from ..models.curation import LIVE_PAIR_WHERE, InterestRequest
from ..postings.services import get_own_demand, get_own_programme
from . import labels

log = logging.getLogger(__name__)

MAX_MESSAGE = 1000
MAX_RESPONSE = 1000
DEFAULT_K = 10
INTERESTS_LINK = "/interests"
OPEN_STATUSES = ("pending", "accepted")  # a pair has at most one of these at a time

# Called with (request, actor) after an acceptance is flushed: curation registers here to
# turn accepted interest into a pairing for staff review.
AcceptanceHook = Callable[[InterestRequest, User], None]
_acceptance_hooks: list[AcceptanceHook] = []


def register_acceptance_hook(hook: AcceptanceHook) -> AcceptanceHook:
    """Run ``hook(request, actor)`` inside :func:`accept_interest` (usable as a decorator)."""
    _acceptance_hooks.append(hook)
    return hook


# --------------------------------------------------------------------------- explanations

NEAREST = 3  # "相关度较低，仅供参考": at most this many when nothing reaches the threshold
TECHNICAL_CONTRIBUTIONS = 8  # ranker contributions in the staff's technical details


@dataclass
class ExplainedMatch:
    """A recommendation with what a page shows of it.

    ``level`` and ``probability`` come from the engine's calibration and mean the same on
    every page and in both directions; a match below the threshold has no level and is only
    ever shown as "nearest". ``contributions`` (labelled ranker weights) and the requirements'
    raw similarities are technical details for association staff.
    """

    recommendation: Recommendation
    contributions: list[tuple[str, float]]  # (label, contribution), largest magnitude first
    note_sentences: list[str]

    @property
    def demand(self) -> Demand:
        return self.recommendation.demand

    @property
    def programme(self) -> Programme:
        return self.recommendation.programme

    @property
    def level(self) -> str | None:
        return self.recommendation.level

    @property
    def offered(self) -> bool:
        return self.recommendation.offered

    @property
    def probability(self) -> float:
        return self.recommendation.probability

    @property
    def percent(self) -> int:
        return labels.probability_percent(self.recommendation.probability)

    @property
    def covered(self) -> list[Requirement]:
        return list(self.recommendation.covered)

    @property
    def partial(self) -> list[Requirement]:
        return [r for r in self.recommendation.gaps if r.status == "partial"]

    @property
    def uncovered(self) -> list[Requirement]:
        return [r for r in self.recommendation.gaps if r.status != "partial"]

    @property
    def conditions(self) -> list[str]:
        return list(self.recommendation.conditions)

    @property
    def covered_count(self) -> int:
        return len(self.recommendation.covered)

    @property
    def total_count(self) -> int:
        """Requirements training can supply (conditions excluded); 0 for a title-only demand."""
        return len(self.recommendation.covered) + len(self.recommendation.gaps)


@dataclass
class BundleView:
    """A bundle as the page shows it: what it covers, and what training still leaves open."""

    programmes: list[Programme]
    covered: list[str]
    missing: list[str]
    by_programme: dict[int, list[str]]


@dataclass
class DemandMatches:
    demand: Demand
    matches: list[ExplainedMatch]  # offered only (level set), in the engine's order
    nearest: list[ExplainedMatch]  # when nothing is offered: the closest few, without a level
    bundles: list[BundleView]  # never when nothing is offered
    conditions: list[str]  # the demand's requirements training cannot supply
    can_request: bool  # the demand is open and its organisation approved
    existing: dict[int, InterestRequest] = field(default_factory=dict)  # programme id -> request
    alert: MatchAlert | None = None
    can_subscribe: bool = False  # the demand may have a new-programme alert (draft or open)


@dataclass
class ProgrammeOpportunities:
    programme: Programme
    public: bool
    matches: list[ExplainedMatch]
    nearest: list[ExplainedMatch] = field(default_factory=list)
    existing: dict[int, InterestRequest] = field(default_factory=dict)  # demand id -> request
    alert: MatchAlert | None = None


def level_bounds() -> dict[str, int]:
    """Lower bound of each match level of the model in use, in whole percent ({} when the
    engine cannot say: the page then explains the probability without the bounds)."""
    try:
        return {level: round(bound * 100) for level, bound in matchmaking.level_thresholds().items()}
    except Exception:  # a hint must never break the page
        log.exception("could not read the match level thresholds")
        return {}


def explain(recommendations: list[Recommendation]) -> list[ExplainedMatch]:
    """Wrap recommendations with labelled contributions and note sentences (order kept)."""
    out = []
    for r in recommendations:
        contributions = [
            (labels.feature_label(f), c)
            for f, c in sorted(r.contributions, key=lambda fc: -abs(fc[1]))[:TECHNICAL_CONTRIBUTIONS]
        ]
        notes = [s for s in (labels.note_sentence(n) for n in r.notes) if s]
        out.append(ExplainedMatch(r, contributions, notes))
    return out


def split_offered(
    recommendations: list[Recommendation], nearest: int = NEAREST
) -> tuple[list[ExplainedMatch], list[ExplainedMatch]]:
    """``(offered, nearest)``: the matches that reach the threshold, in the engine's order,
    and, only when there are none, the ``nearest`` closest others (shown without a level)."""
    offered = [r for r in recommendations if r.offered]
    if offered:
        return explain(offered), []
    return [], explain(recommendations[:nearest])


def _bundle_views(bundles: list[BundleOffer], conditions: list[str]) -> list[BundleView]:
    # The engine leaves conditions out of bundles already; a condition is never shown as
    # something a bundle fails to cover, even if a future engine version slipped one in.
    not_training = set(conditions)
    return [
        BundleView(
            programmes=list(b.programmes),
            covered=[r for r in b.covered if r not in not_training],
            missing=[r for r in b.missing if r not in not_training],
            by_programme={pid: [r for r in reqs if r not in not_training] for pid, reqs in b.by_programme.items()},
        )
        for b in bundles
    ]


def _pending_or_accepted(where) -> list[InterestRequest]:
    return list(
        db.session.scalars(
            select(InterestRequest).where(where, InterestRequest.status.in_(OPEN_STATUSES))
        )
    )


def _demand_matches(demand: Demand, k: int, *, can_request: bool, existing: dict) -> DemandMatches:
    recommendations = matchmaking.recommend_programmes(demand, k=k)
    offered, nearest = split_offered(recommendations)
    conditions = list(recommendations[0].conditions) if recommendations else []
    # Bundles take offered programmes only (the engine sees to that); none in the empty state.
    bundles = _bundle_views(matchmaking.recommend_bundles(demand), conditions) if offered else []
    return DemandMatches(
        demand=demand,
        matches=offered,
        nearest=nearest,
        bundles=bundles,
        conditions=conditions,
        can_request=can_request,
        existing=existing,
        alert=alert_services.demand_alert(demand),
        can_subscribe=demand.status in alert_services.DEMAND_STATUSES,
    )


def demand_matches(actor: User, demand_id: int, k: int = DEFAULT_K) -> DemandMatches:
    """The public programmes offered as matches for one of the actor's demands, explained,
    with bundles; or, when none reaches the threshold, the nearest few and the alert.

    A draft demand sees recommendations too (they come from the public catalogue).
    """
    demand = get_own_demand(actor, demand_id)
    _require_org_kind(actor, "enterprise")
    existing = {
        r.programme_id: r for r in _pending_or_accepted(InterestRequest.demand_id == demand.id)
    }
    return _demand_matches(
        demand, k,
        can_request=demand.status == "open" and demand.organisation.is_approved,
        existing=existing,
    )


def _programme_opportunities(programme: Programme, k: int, existing: dict) -> ProgrammeOpportunities:
    public = programme.status == "published" and programme.organisation.is_approved
    recommendations = matchmaking.recommend_demands(programme, k=k) if public else []
    offered, nearest = split_offered(recommendations)
    return ProgrammeOpportunities(
        programme, public, offered, nearest, existing, alert_services.programme_alert(programme)
    )


def programme_opportunities(
    actor: User, programme_id: int, k: int = DEFAULT_K
) -> ProgrammeOpportunities:
    """The open demands one of the actor's programmes is offered for (商机), or the nearest
    few when none reaches the threshold; none until the programme is public."""
    programme = get_own_programme(actor, programme_id)
    _require_org_kind(actor, "institution")
    existing = {
        r.demand_id: r for r in _pending_or_accepted(InterestRequest.programme_id == programme.id)
    }
    return _programme_opportunities(programme, k, existing)


def _require_staff(actor: User) -> None:
    if not actor.is_staff:
        raise PermissionDenied(_("只有协会工作人员可以查看。"))


def staff_demand_matches(actor: User, demand_id: int, k: int = DEFAULT_K) -> DemandMatches:
    """What an enterprise sees for any demand, for association staff (with technical details)."""
    _require_staff(actor)
    demand = get_by_id(Demand, demand_id)
    if demand is None:
        raise NotFound(_("需求不存在。"))
    return _demand_matches(demand, k, can_request=False, existing={})


def staff_programme_opportunities(actor: User, programme_id: int, k: int = DEFAULT_K) -> ProgrammeOpportunities:
    """What an institution sees for any programme (商机), for association staff."""
    _require_staff(actor)
    programme = get_by_id(Programme, programme_id)
    if programme is None:
        raise NotFound(_("培训项目不存在。"))
    return _programme_opportunities(programme, k, {})


def explain_pair(demand: Demand, programme: Programme, k: int = 50) -> ExplainedMatch | None:
    """The explanation of one (demand, programme) pair, if the programme is among the demand's
    ``k`` closest public programmes (offered or not: see ``offered``); otherwise None."""
    for match in explain(matchmaking.recommend_programmes(demand, k=k)):
        if match.programme.id == programme.id:
            return match
    return None

# --------------------------------------------------------------------------- interest requests


def _require_org_kind(actor: User, kind: str) -> None:
    organisation = actor.organisation
    if organisation is None or organisation.kind != kind:
        raise PermissionDenied(_("您所在的机构类型不能执行此操作。"))


def _require_member(actor: User) -> Organisation:
    if actor.role not in ("org_admin", "org_member") or actor.organisation is None:
        raise PermissionDenied(_("只有企业或培训机构的会员可以申请对接。"))
    return actor.organisation


def _clean(value: str | None, limit: int, field_name: str) -> str:
    label = _("留言") if field_name == "message" else _("回复")
    text = visible_text(value, label, field_name)
    if len(text) > limit:
        raise ValidationFailed(_("最多 %(n)s 个字。", n=limit), field=field_name)
    return text


def _public_demand(demand_id: int) -> Demand:
    demand = get_by_id(Demand, demand_id)
    if demand is None:
        raise NotFound(_("需求不存在。"), field="demand_id")
    return demand


def _public_programme(programme_id: int) -> Programme:
    programme = get_by_id(Programme, programme_id)
    if programme is None:
        raise NotFound(_("培训项目不存在。"), field="programme_id")
    return programme


def _others(organisation: Organisation, actor: User) -> list[User]:
    return list(
        db.session.scalars(
            select(User).where(User.organisation_id == organisation.id, User.id != actor.id)
        )
    )


def _members(organisation: Organisation) -> list[User]:
    return list(db.session.scalars(select(User).where(User.organisation_id == organisation.id)))


def _pair_text(request: InterestRequest) -> str:
    return _("需求“%(demand)s”与培训项目“%(programme)s”",
             demand=request.demand.title, programme=request.programme.title)


def create_interest(
    actor: User, demand_id: int, programme_id: int, message: str = ""
) -> InterestRequest:
    """Send an interest request (申请对接) for a (demand, programme) pair.

    An enterprise member asks about a programme for its own demand; an institution member
    proposes its own programme for a demand. Both postings must be public (open demand,
    published programme, approved organisations) and the pair must have no pending or
    accepted request already.
    """
    organisation = _require_member(actor)
    message = _clean(message, MAX_MESSAGE, "message")
    demand = _public_demand(demand_id)
    programme = _public_programme(programme_id)
    if organisation.kind == "enterprise":
        if demand.organisation_id != organisation.id:
            raise NotFound(_("需求不存在。"), field="demand_id")
        to_organisation = programme.organisation
        if programme.status != "published" or not to_organisation.is_approved:
            raise NotFound(_("培训项目不存在或未发布。"), field="programme_id")
        if demand.status != "open":
            raise InvalidTransition(_("需求发布（征集中）后才能申请对接。"), field="demand_id")
    elif organisation.kind == "institution":
        if programme.organisation_id != organisation.id:
            raise NotFound(_("培训项目不存在。"), field="programme_id")
        to_organisation = demand.organisation
        if demand.status != "open" or not to_organisation.is_approved:
            raise NotFound(_("需求不存在或已停止征集。"), field="demand_id")
        if programme.status != "published":
            raise InvalidTransition(_("培训项目发布后才能推荐给企业。"), field="programme_id")
    else:  # pragma: no cover - organisations are enterprises or institutions
        raise PermissionDenied(_("只有企业或培训机构的会员可以申请对接。"))
    if not organisation.is_approved:
        raise PermissionDenied(_("贵机构尚未通过协会审核（或已被暂停），暂时不能申请对接。"))
    already = ValidationFailed(_("这两项之间已有待处理或已接受的对接申请，无需重复提交。"))
    duplicate = db.session.scalar(
        select(InterestRequest.id).where(
            InterestRequest.demand_id == demand.id,
            InterestRequest.programme_id == programme.id,
            InterestRequest.status.in_(OPEN_STATUSES),
        )
    )
    if duplicate is not None:
        raise already
    # A conditional insert on the partial unique index of live pairs: of two requests sent
    # at once exactly one row is inserted; the other inserts nothing and is told why. (No
    # savepoint: the transaction stays usable on PostgreSQL and whole on SQLite.)
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    request_id = db.session.scalar(
        insert(InterestRequest)
        .values(
            demand_id=demand.id,
            programme_id=programme.id,
            from_organisation_id=organisation.id,
            to_organisation_id=to_organisation.id,
            message=message,
            status="pending",
            response="",
            created_by_id=actor.id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["demand_id", "programme_id"], index_where=LIVE_PAIR_WHERE
        )
        .returning(InterestRequest.id)
    )
    if request_id is None:  # the same pair submitted twice at once: the other one won
        raise already
    request = db.session.get(InterestRequest, request_id)
    record(actor, "interest.create", request, demand_id=demand.id, programme_id=programme.id,
           to_organisation_id=to_organisation.id)
    with force_locale("zh_CN"):  # notifications are stored in the platform's language
        pair = _pair_text(request)
        notify(_members(to_organisation), "interest.received",
               _("收到对接申请：%(org)s", org=organisation.name), pair, INTERESTS_LINK)
        notify(_others(organisation, actor), "interest.sent",
               _("本机构已发出对接申请：%(org)s", org=to_organisation.name), pair, INTERESTS_LINK)
    return request


def get_interest(actor: User, request_id: int) -> InterestRequest:
    """A request the actor's organisation sent or received; anything else is NotFound."""
    request = get_by_id(InterestRequest, request_id)
    if (
        request is None
        or actor.organisation_id is None
        or actor.organisation_id not in (request.from_organisation_id, request.to_organisation_id)
    ):
        raise NotFound(_("对接申请不存在。"))
    return request


def _settle(actor: User, request: InterestRequest, status: str, response: str | None) -> None:
    """Move a pending request to ``status``, conditionally on it still being pending: of two
    decisions at once (or a decision and a withdrawal) exactly one changes the row; the
    other raises :class:`InvalidTransition` and writes nothing."""
    values = {"status": status, "decided_by_id": actor.id, "decided_at": utcnow()}
    if response is not None:
        values["response"] = response
    if not change_if(request, InterestRequest.status == "pending", **values):
        raise InvalidTransition(_("该申请已处理（当前状态：%(status)s），不能再次处理。",
                                  status=status_label(request.status)))


def _decide(actor: User, request_id: int, status: str, response: str) -> InterestRequest:
    _require_member(actor)
    request = get_interest(actor, request_id)
    if request.to_organisation_id != actor.organisation_id:
        raise PermissionDenied(_("只有收到申请的一方可以接受或拒绝。"))
    if request.status != "pending":
        raise InvalidTransition(_("该申请已处理（当前状态：%(status)s），不能再次处理。",
                                  status=status_label(request.status)))
    _settle(actor, request, status, response)
    return request


def accept_interest(actor: User, request_id: int, response: str = "") -> InterestRequest:
    """The receiving organisation accepts a pending request; contact details become visible."""
    response = _clean(response, MAX_RESPONSE, "response")
    request = _decide(actor, request_id, "accepted", response)
    record(actor, "interest.accept", request, reason=response)
    with force_locale("zh_CN"):  # notifications are stored in the platform's language
        pair = _pair_text(request)
        notify(_members(request.from_organisation), "interest.accepted",
               _("对接申请已被接受：%(org)s", org=request.to_organisation.name), pair, INTERESTS_LINK)
        notify(_others(request.to_organisation, actor), "interest.accepted",
               _("本机构已接受对接申请：%(org)s", org=request.from_organisation.name), pair, INTERESTS_LINK)
    for hook in _acceptance_hooks:
        hook(request, actor)
    return request


def decline_interest(actor: User, request_id: int, reason: str = "") -> InterestRequest:
    """The receiving organisation declines a pending request, optionally saying why."""
    reason = _clean(reason, MAX_RESPONSE, "response")
    request = _decide(actor, request_id, "declined", reason)
    record(actor, "interest.decline", request, reason=reason)
    with force_locale("zh_CN"):  # notifications are stored in the platform's language
        pair = _pair_text(request)
        notify(_members(request.from_organisation), "interest.declined",
               _("对接申请未被接受：%(org)s", org=request.to_organisation.name), pair, INTERESTS_LINK)
        notify(_others(request.to_organisation, actor), "interest.declined",
               _("本机构已拒绝对接申请：%(org)s", org=request.from_organisation.name), pair, INTERESTS_LINK)
    return request


def withdraw_interest(actor: User, request_id: int) -> InterestRequest:
    """The sending organisation withdraws its request while it is still pending."""
    _require_member(actor)
    request = get_interest(actor, request_id)
    if request.from_organisation_id != actor.organisation_id:
        raise PermissionDenied(_("只有发出申请的一方可以撤回。"))
    if request.status != "pending":
        raise InvalidTransition(_("该申请已处理（当前状态：%(status)s），不能撤回。",
                                  status=status_label(request.status)))
    _settle(actor, request, "withdrawn", None)
    record(actor, "interest.withdraw", request)
    with force_locale("zh_CN"):  # notifications are stored in the platform's language
        pair = _pair_text(request)
        notify(_members(request.to_organisation), "interest.withdrawn",
               _("对方已撤回对接申请：%(org)s", org=request.from_organisation.name), pair, INTERESTS_LINK)
        notify(_others(request.from_organisation, actor), "interest.withdrawn",
               _("本机构已撤回对接申请：%(org)s", org=request.to_organisation.name), pair, INTERESTS_LINK)
    return request


# --------------------------------------------------------------------------- listing


STATUS_LABELS = {
    "pending": _l("待处理"),
    "accepted": _l("已接受"),
    "declined": _l("已拒绝"),
    "withdrawn": _l("已撤回"),
}


def status_label(status: str) -> str:
    """The display label of a request status."""
    return str(STATUS_LABELS.get(status, status))


@dataclass
class Contact:
    """What each side sees of the other once a request is accepted."""

    organisation: str
    contact_name: str
    contact_phone: str
    requester_name: str
    requester_email: str


@dataclass
class InterestView:
    request: InterestRequest
    direction: str  # sent | received
    other: Organisation
    contact: Contact | None  # only after acceptance
    explanation: ExplainedMatch | None


def contact_for(actor: User, request: InterestRequest) -> Contact | None:
    """The other side's contact details, or None while the request is not accepted."""
    if request.status != "accepted" or actor.organisation_id not in (
        request.from_organisation_id, request.to_organisation_id
    ):
        return None
    other = (
        request.to_organisation
        if request.from_organisation_id == actor.organisation_id
        else request.from_organisation
    )
    return Contact(
        organisation=other.name,
        contact_name=other.contact_name,
        contact_phone=other.contact_phone,
        requester_name=request.created_by.name,
        requester_email=request.created_by.email,
    )


def list_interests(actor: User, limit: int = 100, explain_pairs: bool = True) -> dict[str, list[InterestView]]:
    """The actor's organisation's sent and received requests, newest first, each explained
    when the engine can (``{"sent": [...], "received": [...]}``)."""
    _require_member(actor)
    org_id = actor.organisation_id
    requests = list(
        db.session.scalars(
            select(InterestRequest)
            .where(or_(InterestRequest.from_organisation_id == org_id,
                       InterestRequest.to_organisation_id == org_id))
            .order_by(InterestRequest.created_at.desc(), InterestRequest.id.desc())
            .limit(limit)
        )
    )
    by_demand: dict[int, dict[int, ExplainedMatch]] = {}
    result: dict[str, list[InterestView]] = {"sent": [], "received": []}
    for request in requests:
        explanation = None
        if explain_pairs:
            if request.demand_id not in by_demand:
                by_demand[request.demand_id] = _explanations(request.demand)
            explanation = by_demand[request.demand_id].get(request.programme_id)
        sent = request.from_organisation_id == org_id
        result["sent" if sent else "received"].append(
            InterestView(
                request=request,
                direction="sent" if sent else "received",
                other=request.to_organisation if sent else request.from_organisation,
                contact=contact_for(actor, request),
                explanation=explanation,
            )
        )
    return result


def _explanations(demand: Demand, k: int = 50) -> dict[int, ExplainedMatch]:
    try:
        return {m.programme.id: m for m in explain(matchmaking.recommend_programmes(demand, k=k))}
    except Exception:  # an explanation is a courtesy; the list must still show
        log.exception("could not explain interest requests of %r", demand)
        return {}


def own_open_demands(actor: User) -> list[Demand]:
    """The actor's organisation's open demands (choices for a new request)."""
    if actor.organisation_id is None:
        return []
    return list(db.session.scalars(
        select(Demand).where(Demand.organisation_id == actor.organisation_id, Demand.status == "open")
        .order_by(Demand.id.desc())
    ))


def own_published_programmes(actor: User) -> list[Programme]:
    """The actor's organisation's published programmes (choices for a new request)."""
    if actor.organisation_id is None:
        return []
    return list(db.session.scalars(
        select(Programme)
        .where(Programme.organisation_id == actor.organisation_id, Programme.status == "published")
        .order_by(Programme.id.desc())
    ))


def counterpart(actor: User, demand_id: int | None, programme_id: int | None) -> Demand | Programme:
    """The other side's public posting a new request is about (from the public detail pages)."""
    organisation = _require_member(actor)
    if organisation.kind == "enterprise":
        programme = get_by_id(Programme, programme_id) if programme_id else None
        if programme is None or programme.status != "published" or not programme.organisation.is_approved:
            raise NotFound(_("培训项目不存在或未发布。"))
        return programme
    demand = get_by_id(Demand, demand_id) if demand_id else None
    if demand is None or demand.status != "open" or not demand.organisation.is_approved:
        raise NotFound(_("需求不存在或已停止征集。"))
    return demand
