"""Match alerts: "有合适的新项目/新需求时通知我".

An enterprise subscribes on one of its demands when no programme reaches the engine's match
threshold (tau) yet; an institution on one of its programmes when no demand does. When a
posting of the other side is published (or a public one edited) and the engine offers it as a
match for a subscribed posting, the subscriber's organisation gets one inbox notification per
(alert, posting).

Functions here validate, change state, ``flush()`` and write audit records; views commit.
"""
from __future__ import annotations

import logging

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from .. import matchmaking
from ..common import change_if
from ..errors import InvalidTransition, PermissionDenied, ValidationFailed
from ..extensions import db
from ..inbox.services import notify
from ..matches import labels
from ..matchmaking import Recommendation
from ..models import Demand, Organisation, Programme, User
from ..models._common import utcnow
from ..models.alerts import MatchAlert, MatchAlertDelivery
from ..models.audit import record
from ..postings.services import get_own_demand, get_own_programme

log = logging.getLogger(__name__)

# How deep in a demand's list a new posting is looked for. A subscribed posting had no match
# when it subscribed, so a new one that reaches tau is near the top; the depth only bounds
# the work of one check.
ALERT_K = 100
DEMAND_STATUSES = ("draft", "open")  # a demand that may subscribe and be notified


# --------------------------------------------------------------------------- lookups


def _active(where) -> MatchAlert | None:
    return db.session.scalar(select(MatchAlert).where(where, MatchAlert.cancelled_at.is_(None)))


def demand_alert(demand: Demand) -> MatchAlert | None:
    """The active alert on a demand, if any."""
    return _active(MatchAlert.demand_id == demand.id)


def programme_alert(programme: Programme) -> MatchAlert | None:
    """The active alert on a programme, if any."""
    return _active(MatchAlert.programme_id == programme.id)


def _require_kind(actor: User, kind: str) -> Organisation:
    organisation = actor.organisation
    if actor.role not in ("org_admin", "org_member") or organisation is None or organisation.kind != kind:
        raise PermissionDenied(_("您所在的机构类型不能执行此操作。"))
    return organisation


# --------------------------------------------------------------------------- subscribing


def _create(actor: User, organisation: Organisation, duplicate_message: str, **target: int) -> MatchAlert:
    alert = MatchAlert(organisation_id=organisation.id, created_by_id=actor.id, **target)
    try:
        with db.session.begin_nested():
            db.session.add(alert)
            db.session.flush()
    except IntegrityError:  # pressed twice at once: the other request's alert is the one
        raise ValidationFailed(duplicate_message) from None
    record(actor, "alert.subscribe", alert, **target)
    return alert


def subscribe_demand(actor: User, demand_id: int) -> MatchAlert:
    """Ask to be notified when a programme reaching the match threshold is published for one
    of the actor's enterprise's demands (draft or open)."""
    organisation = _require_kind(actor, "enterprise")
    demand = get_own_demand(actor, demand_id)
    if demand.status not in DEMAND_STATUSES:
        raise InvalidTransition(_("该需求已关闭或归档，不能开启新项目提醒。"))
    duplicate = _("已开启提醒，有合适的新培训项目时会通知您，无需重复开启。")
    if demand_alert(demand) is not None:
        raise ValidationFailed(duplicate)
    return _create(actor, organisation, duplicate, demand_id=demand.id)


def subscribe_programme(actor: User, programme_id: int) -> MatchAlert:
    """Ask to be notified when an open demand that one of the actor's institution's published
    programmes fits is published."""
    organisation = _require_kind(actor, "institution")
    programme = get_own_programme(actor, programme_id)
    if programme.status != "published":
        raise InvalidTransition(_("培训项目发布后才能开启新需求提醒。"))
    duplicate = _("已开启提醒，有合适的新需求时会通知您，无需重复开启。")
    if programme_alert(programme) is not None:
        raise ValidationFailed(duplicate)
    return _create(actor, organisation, duplicate, programme_id=programme.id)


def _cancel(actor: User, alert: MatchAlert | None, **target: int) -> MatchAlert:
    gone = InvalidTransition(_("提醒未开启或已经取消。"))
    if alert is None:
        raise gone
    # Conditional on still being active, so that two cancels at once make one change and one
    # audit record; the loser is told it is already cancelled.
    if not change_if(
        alert, MatchAlert.cancelled_at.is_(None), refresh_unchanged=False,
        cancelled_at=utcnow(), cancelled_by_id=actor.id,
    ):
        raise gone
    record(actor, "alert.cancel", alert, **target)
    return alert


def cancel_demand_alert(actor: User, demand_id: int) -> MatchAlert:
    """Stop the new-programme alert of one of the actor's enterprise's demands."""
    _require_kind(actor, "enterprise")
    demand = get_own_demand(actor, demand_id)
    return _cancel(actor, demand_alert(demand), demand_id=demand.id)


def cancel_programme_alert(actor: User, programme_id: int) -> MatchAlert:
    """Stop the new-demand alert of one of the actor's institution's programmes."""
    _require_kind(actor, "institution")
    programme = get_own_programme(actor, programme_id)
    return _cancel(actor, programme_alert(programme), programme_id=programme.id)


# --------------------------------------------------------------------------- firing


def check_new_posting(posting: Demand | Programme) -> int:
    """Notify the alerts that a just-published (or edited public) posting answers; returns the
    number notified.

    Runs in the ``matching.after_publish`` outbox job, after the publish has committed: an
    engine or database failure raises, the job's unit of work rolls back, and the queue tries
    again later (deliveries already made are never repeated).
    """
    if isinstance(posting, Programme):
        return _programme_published(posting)
    return _demand_published(posting)


def _encoded(demand: Demand) -> bool:
    # Requests never encode: a demand whose latest texts wait for the encoding job is
    # checked when that job has run (its alert follows the next matching posting).
    if not matchmaking.is_ready(demand):
        log.warning("demand %s waits for its vectors; its alert is checked later", demand.id)
        return False
    return True


def _programme_published(programme: Programme) -> int:
    if not matchmaking.is_public(programme):
        return 0
    delivered = exists().where(
        MatchAlertDelivery.alert_id == MatchAlert.id,
        MatchAlertDelivery.found_programme_id == programme.id,
    )
    alerts = list(db.session.scalars(
        select(MatchAlert)
        .join(Demand, MatchAlert.demand_id == Demand.id)
        .where(MatchAlert.cancelled_at.is_(None), Demand.status.in_(DEMAND_STATUSES), ~delivered)
        .order_by(MatchAlert.id)
    ))
    fired = 0
    for alert in alerts:
        if not _encoded(alert.demand):
            continue
        match = next(
            (r for r in matchmaking.recommend_programmes(alert.demand, k=ALERT_K) if r.programme.id == programme.id),
            None,
        )
        if match is not None and match.offered and _deliver(alert, match, found_programme_id=programme.id):
            fired += 1
    return fired


def _demand_published(demand: Demand) -> int:
    if not matchmaking.is_public(demand):
        return 0
    delivered = exists().where(
        MatchAlertDelivery.alert_id == MatchAlert.id,
        MatchAlertDelivery.found_demand_id == demand.id,
    )
    alerts = list(db.session.scalars(
        select(MatchAlert)
        .join(Programme, MatchAlert.programme_id == Programme.id)
        .where(MatchAlert.cancelled_at.is_(None), Programme.status == "published", ~delivered)
        .order_by(MatchAlert.id)
    ))
    if not alerts or not _encoded(demand):
        return 0
    # A pair's probability and level are those of the demand's list, in both directions.
    offered = {r.programme.id: r for r in matchmaking.recommend_programmes(demand, k=ALERT_K) if r.offered}
    fired = 0
    for alert in alerts:
        match = offered.get(alert.programme_id)
        if match is not None and _deliver(alert, match, found_demand_id=demand.id):
            fired += 1
    return fired


def _deliver(alert: MatchAlert, match: Recommendation, **found: int) -> bool:
    delivery = MatchAlertDelivery(alert_id=alert.id, probability=float(match.probability), **found)
    try:
        with db.session.begin_nested():
            db.session.add(delivery)
            db.session.flush()
    except IntegrityError:  # another worker reported this posting already
        return False
    demand, programme = match.demand, match.programme
    with force_locale("zh_CN"):  # notifications are stored in the platform's language
        level = labels.level_label(match.level)
        percent = labels.probability_percent(match.probability)
        if alert.demand_id is not None:
            title = _("有合适的新培训项目：%(programme)s", programme=programme.title)
            body = _("适合您的需求“%(demand)s”：%(level)s，匹配概率 %(percent)s%%。培训机构：%(org)s。",
                     demand=demand.title, level=level, percent=percent, org=programme.organisation.name)
            link = f"/my/demands/{demand.id}/matches"
            kind = "alert.programme"
        else:
            title = _("有合适的新需求：%(demand)s", demand=demand.title)
            body = _("适合您的培训项目“%(programme)s”：%(level)s，匹配概率 %(percent)s%%。企业：%(org)s。",
                     programme=programme.title, level=level, percent=percent, org=demand.organisation.name)
            link = f"/my/programmes/{programme.id}/opportunities"
            kind = "alert.demand"
    members = db.session.scalars(select(User).where(User.organisation_id == alert.organisation_id))
    notify(members, kind, title, body, link)
    record(None, "alert.notify", alert, probability=round(float(match.probability), 4), level=match.level,
           **found)
    return True
