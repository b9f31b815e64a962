"""Explained recommendations for members, and interest requests (申请对接) between an
enterprise's demand and an institution's programme.

Functions here validate, change state, ``flush()`` and write audit records; views commit.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from .. import matchmaking
from ..common import clean_text, get_by_id
from ..errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..extensions import db
from ..inbox.services import notify
from ..matchmaking import BundleOffer, Recommendation
from ..models import Demand, Organisation, Programme, User
from ..models._common import utcnow
from ..models.audit import record
from ..models.curation import InterestRequest
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


@dataclass
class ExplainedMatch:
    """A recommendation with what a page shows of it."""

    recommendation: Recommendation
    strength: int  # 0..100, relative to the best match of the same list
    top_contributions: list[tuple[str, float]]  # (label, contribution), largest first
    note_sentences: list[str]

    @property
    def demand(self) -> Demand:
        return self.recommendation.demand

    @property
    def programme(self) -> Programme:
        return self.recommendation.programme

    @property
    def covered_count(self) -> int:
        return len(self.recommendation.covered)

    @property
    def total_count(self) -> int:
        return len(self.recommendation.covered) + len(self.recommendation.gaps)


@dataclass
class DemandMatches:
    demand: Demand
    matches: list[ExplainedMatch]
    bundles: list[BundleOffer]
    can_request: bool  # the demand is open and its organisation approved
    existing: dict[int, InterestRequest] = field(default_factory=dict)  # programme id -> request


@dataclass
class ProgrammeOpportunities:
    programme: Programme
    public: bool
    matches: list[ExplainedMatch]
    existing: dict[int, InterestRequest] = field(default_factory=dict)  # demand id -> request


def _strength(score: float, best: float) -> int:
    # Ranker scores are only comparable within a list: the best match is 100 and the others
    # fall off smoothly with their distance below it (a readable, monotone 1..100 scale).
    gap = min(0.0, score - best)
    return max(1, min(100, round(200 / (1 + math.exp(-0.5 * gap)))))


def explain(recommendations: list[Recommendation], top: int = 3) -> list[ExplainedMatch]:
    """Wrap recommendations with a relative strength, labelled contributions and note sentences."""
    if not recommendations:
        return []
    best = max(r.score for r in recommendations)
    out = []
    for r in recommendations:
        positive = [(f, c) for f, c in r.contributions if c > 0] or list(r.contributions)
        contributions = [
            (labels.feature_label(f), c) for f, c in sorted(positive, key=lambda fc: -fc[1])[:top]
        ]
        notes = [s for s in (labels.note_sentence(n) for n in r.notes) if s]
        out.append(ExplainedMatch(r, _strength(r.score, best), contributions, notes))
    return out


def _pending_or_accepted(where) -> list[InterestRequest]:
    return list(
        db.session.scalars(
            select(InterestRequest).where(where, InterestRequest.status.in_(OPEN_STATUSES))
        )
    )


def demand_matches(actor: User, demand_id: int, k: int = DEFAULT_K) -> DemandMatches:
    """The best public programmes for one of the actor's demands, explained, with bundles.

    A draft demand sees recommendations too (they come from the public catalogue).
    """
    demand = get_own_demand(actor, demand_id)
    _require_org_kind(actor, "enterprise")
    recommendations = matchmaking.recommend_programmes(demand, k=k)
    bundles = matchmaking.recommend_bundles(demand)
    existing = {
        r.programme_id: r for r in _pending_or_accepted(InterestRequest.demand_id == demand.id)
    }
    return DemandMatches(
        demand=demand,
        matches=explain(recommendations),
        bundles=bundles,
        can_request=demand.status == "open" and demand.organisation.is_approved,
        existing=existing,
    )


def programme_opportunities(
    actor: User, programme_id: int, k: int = DEFAULT_K
) -> ProgrammeOpportunities:
    """The open demands one of the actor's programmes fits (商机); none until it is public."""
    programme = get_own_programme(actor, programme_id)
    _require_org_kind(actor, "institution")
    public = programme.status == "published" and programme.organisation.is_approved
    recommendations = matchmaking.recommend_demands(programme, k=k) if public else []
    existing = {
        r.demand_id: r for r in _pending_or_accepted(InterestRequest.programme_id == programme.id)
    }
    return ProgrammeOpportunities(programme, public, explain(recommendations), existing)


def explain_pair(demand: Demand, programme: Programme, k: int = 50) -> ExplainedMatch | None:
    """The explanation of one (demand, programme) pair, if the programme is among the demand's
    ``k`` best public matches; otherwise None."""
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
    text = clean_text(value or "").strip()
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
    duplicate = db.session.scalar(
        select(InterestRequest.id).where(
            InterestRequest.demand_id == demand.id,
            InterestRequest.programme_id == programme.id,
            InterestRequest.status.in_(OPEN_STATUSES),
        )
    )
    if duplicate is not None:
        raise ValidationFailed(_("这两项之间已有待处理或已接受的对接申请，无需重复提交。"))

    request = InterestRequest(
        demand_id=demand.id,
        programme_id=programme.id,
        from_organisation_id=organisation.id,
        to_organisation_id=to_organisation.id,
        message=message,
        status="pending",
        response="",
        created_by_id=actor.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(request)
            db.session.flush()
    except IntegrityError:  # the same pair submitted twice at once: the other one won
        raise ValidationFailed(_("这两项之间已有待处理或已接受的对接申请，无需重复提交。")) from None
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


def _decide(actor: User, request_id: int, status: str, response: str) -> InterestRequest:
    _require_member(actor)
    request = get_interest(actor, request_id)
    if request.to_organisation_id != actor.organisation_id:
        raise PermissionDenied(_("只有收到申请的一方可以接受或拒绝。"))
    if request.status != "pending":
        raise InvalidTransition(_("该申请已处理（当前状态：%(status)s），不能再次处理。",
                                  status=status_label(request.status)))
    request.status = status
    request.response = response
    request.decided_by_id = actor.id
    request.decided_at = utcnow()
    db.session.flush()
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
    request.status = "withdrawn"
    request.decided_by_id = actor.id
    request.decided_at = utcnow()
    db.session.flush()
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
