"""Demonstration platforms (产教融合示范平台): creation from accepted pairings, participants'
confirmations, the lifecycle draft → notice (公示) → published → completed, public objections.

Every transition is written to the audit log on the platform (who, when, why). Functions flush;
the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.orm import selectinload

from ..common import change_if, get_by_id, has_visible_character, visible_text
from ..errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from ..extensions import db
from ..models import (
    AuditLog,
    Demand,
    DemoPlatform,
    DemoPlatformPairing,
    DemoPlatformParticipant,
    Objection,
    Organisation,
    Pairing,
    Programme,
    User,
)
from ..models._common import utcnow
from ..models.audit import record

MAX_NAME = 100
MAX_DESCRIPTION = 5000
MAX_GOAL = 100_000
MAX_NOTICE_DAYS = 60
MAX_REASON_LENGTH = 1000
MAX_OBJECTION_NAME = 50
MAX_OBJECTION_CONTACT = 100
MAX_OBJECTION_TEXT = 2000
MIN_OBJECTION_TEXT = 10
OBJECTIONS_PER_CONTACT_PER_DAY = 5
OBJECTIONS_PER_PLATFORM_PER_DAY = 200
PUBLIC_STATUSES = ("notice", "published", "completed")
STATUSES = ("draft", "notice", "published", "completed")


def status_label(code: str) -> str:
    return {
        "draft": _("草稿"),
        "notice": _("公示中"),
        "published": _("已发布"),
        "completed": _("已完成"),
    }.get(code, code)


def objection_status_label(code: str) -> str:
    return {"open": _("待处理"), "upheld": _("异议成立"), "dismissed": _("不予采纳")}.get(code, code)


def action_label(action: str) -> str:
    return {
        "demo_platform.create": _("创建"),
        "demo_platform.update": _("修改草稿"),
        "demo_platform.confirm": _("参与机构确认"),
        "demo_platform.notice": _("开始公示"),
        "demo_platform.publish": _("结束公示并发布"),
        "demo_platform.complete": _("完成并登记成效"),
        "demo_platform.objection": _("收到异议"),
        "demo_platform.objection_upheld": _("异议成立，退回草稿"),
        "demo_platform.objection_dismissed": _("异议不予采纳"),
    }.get(action, action)


def _require_staff(actor: User) -> None:
    if actor is None or not actor.is_staff:
        raise PermissionDenied(_("只有协会工作人员可以执行此操作。"))


def _move(platform: DemoPlatform, expected: str | tuple[str, ...], **values) -> bool:
    """Change the platform's row only if its status is still ``expected``; True if it changed.

    Every transition goes through here, so that twenty clicks at once make one transition,
    one audit record and one round of notifications. The object is refreshed either way.
    """
    allowed = (expected,) if isinstance(expected, str) else expected
    return change_if(platform, DemoPlatform.status.in_(allowed), updated_at=utcnow(), **values)


def _changed_meanwhile() -> InvalidTransition:
    return InvalidTransition(_("状态已变化，请刷新页面。"))


def _clean_reason(reason: str | None, *, required: bool, message: str | None = None) -> str:
    reason = visible_text(reason, _("理由"), "reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(_("理由不能超过 %(n)s 个字符。", n=MAX_REASON_LENGTH), field="reason")
    if required and not reason:
        raise ValidationFailed(message or _("请填写理由。"), field="reason")
    return reason


def link(endpoint: str, **values) -> str:
    """A path for a notification link; empty outside a request (CLI)."""
    try:
        return url_for(endpoint, **values)
    except RuntimeError:
        return ""


def _notify_participants(platform: DemoPlatform, kind: str, title: str, body: str = "") -> None:
    from ..inbox.services import notify_organisation

    target = link("curation.org_platforms")
    for participant in platform.participants:
        notify_organisation(participant.organisation, kind, title, body, target)


# --------------------------------------------------------------------------- lookups


def get_platform(actor: User, platform_id: int) -> DemoPlatform:
    """Any platform, for staff."""
    _require_staff(actor)
    platform = get_by_id(DemoPlatform, platform_id)
    if platform is None:
        raise NotFound(_("示范平台不存在。"))
    return platform


def list_platforms(actor: User) -> list[DemoPlatform]:
    _require_staff(actor)
    return list(db.session.scalars(select(DemoPlatform).order_by(DemoPlatform.created_at.desc(), DemoPlatform.id.desc())))


def public_platform(platform_id: int) -> DemoPlatform:
    """A platform the public may see (in notice, published or completed); drafts are NotFound."""
    platform = get_by_id(DemoPlatform, platform_id)
    if platform is None or platform.status not in PUBLIC_STATUSES:
        raise NotFound(_("示范平台不存在。"))
    return platform


def public_platforms() -> list[DemoPlatform]:
    """Platforms in notice first, then published and completed ones, newest first."""
    order = {"notice": 0, "published": 1, "completed": 2}
    platforms = list(
        db.session.scalars(select(DemoPlatform).where(DemoPlatform.status.in_(PUBLIC_STATUSES)))
    )

    def newest(p: DemoPlatform) -> float:
        when = p.published_at or p.notice_started_at or p.created_at
        return -when.timestamp()

    return sorted(platforms, key=lambda p: (order[p.status], newest(p), -p.id))


def pairings_of(platform: DemoPlatform) -> list[Pairing]:
    return sorted((link.pairing for link in platform.pairings), key=lambda p: p.id)


def history(platform: DemoPlatform) -> list[AuditLog]:
    """The platform's audit trail, oldest first."""
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.object_type == DemoPlatform.__tablename__, AuditLog.object_id == platform.id)
            .options(selectinload(AuditLog.actor))
            .order_by(AuditLog.created_at, AuditLog.id)
        )
    )


def notice_period_over(platform: DemoPlatform) -> bool:
    return platform.notice_ends_at is not None and utcnow() >= platform.notice_ends_at


def open_objections(platform: DemoPlatform) -> list[Objection]:
    return [o for o in platform.objections if o.status == "open"]


# --------------------------------------------------------------------------- create and edit


@dataclass
class PlatformInput:
    name: str = ""
    description: str = ""
    goal_trainees: int | None = 0
    period_start: date | None = None
    period_end: date | None = None
    notice_days: int | None = 7
    pairing_ids: list = field(default_factory=list)


def _validate(data: PlatformInput) -> tuple[dict, list[Pairing]]:
    name = visible_text(data.name, _("平台名称"), "name")
    if not has_visible_character(name):
        raise ValidationFailed(_("请填写平台名称。"), field="name")
    if len(name) > MAX_NAME:
        raise ValidationFailed(_("平台名称不能超过 %(n)s 个字。", n=MAX_NAME), field="name")
    description = visible_text(data.description, _("简介"), "description")
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(_("简介不能超过 %(n)s 个字。", n=MAX_DESCRIPTION), field="description")
    goal = data.goal_trainees if data.goal_trainees is not None else 0
    if not isinstance(goal, int) or not 0 <= goal <= MAX_GOAL:
        raise ValidationFailed(_("培训人数目标应为 0 到 %(n)s 之间的整数。", n=MAX_GOAL), field="goal_trainees")
    days = data.notice_days
    if not isinstance(days, int) or not 0 <= days <= MAX_NOTICE_DAYS:
        raise ValidationFailed(_("公示天数应为 0 到 %(n)s 之间的整数。", n=MAX_NOTICE_DAYS), field="notice_days")
    if data.period_start and data.period_end and data.period_end < data.period_start:
        raise ValidationFailed(_("结束日期不能早于开始日期。"), field="period_end")
    ids: set[int] = set()
    for raw in data.pairing_ids or []:
        try:
            ids.add(int(raw))
        except (TypeError, ValueError):
            raise ValidationFailed(_("所选对接无效。"), field="pairing_ids") from None
    if not ids:
        raise ValidationFailed(_("请至少选择一个已通过的对接。"), field="pairing_ids")
    pairings = []
    for pairing_id in sorted(ids):
        pairing = get_by_id(Pairing, pairing_id)
        if pairing is None:
            raise ValidationFailed(_("所选对接不存在。"), field="pairing_ids")
        if pairing.status != "accepted":
            raise ValidationFailed(_("只能选择协会已通过的对接。"), field="pairing_ids")
        pairings.append(pairing)
    values = {
        "name": name,
        "description": description,
        "goal_trainees": goal,
        "period_start": data.period_start,
        "period_end": data.period_end,
        "notice_days": days,
    }
    return values, pairings


def _participant_ids(pairings: list[Pairing]) -> list[int]:
    ids = set()
    for pairing in pairings:
        ids.add(pairing.demand.organisation_id)
        ids.add(pairing.programme.organisation_id)
    return sorted(ids)


def create_platform(actor: User, data: PlatformInput) -> DemoPlatform:
    """Create a draft platform from accepted pairings; their organisations become participants."""
    _require_staff(actor)
    values, pairings = _validate(data)
    platform = DemoPlatform(created_by_id=actor.id, status="draft", **values)
    platform.pairings = [DemoPlatformPairing(pairing_id=p.id) for p in pairings]
    platform.participants = [DemoPlatformParticipant(organisation_id=i) for i in _participant_ids(pairings)]
    db.session.add(platform)
    db.session.flush()
    record(actor, "demo_platform.create", platform, pairings=[p.id for p in pairings])
    with force_locale("zh_CN"):
        title = _("请确认参与示范平台“%(name)s”", name=platform.name)
    db.session.refresh(platform)
    _notify_participants(platform, "platform.confirm_request", title)
    return platform


def _require_draft(platform: DemoPlatform) -> None:
    if platform.status != "draft":
        raise InvalidTransition(_("示范平台进入公示后不能再修改；如需修改，须有异议成立使其退回草稿。"))


def update_platform(actor: User, platform_id: int, data: PlatformInput) -> DemoPlatform:
    """Edit a draft platform. A change resets the participants' confirmations."""
    platform = get_platform(actor, platform_id)
    _require_draft(platform)
    values, pairings = _validate(data)
    old_pairings = sorted(link.pairing_id for link in platform.pairings)
    changed = [k for k, v in values.items() if getattr(platform, k) != v]
    if old_pairings != [p.id for p in pairings]:
        changed.append("pairings")
    if not changed:
        return platform
    # Claim the draft first: an edit racing the start of the notice period loses cleanly.
    if not _move(platform, "draft"):
        raise _changed_meanwhile()
    for key, value in values.items():
        setattr(platform, key, value)
    if "pairings" in changed:
        keep = {p.id for p in pairings}
        for link in [link for link in platform.pairings if link.pairing_id not in keep]:
            platform.pairings.remove(link)
        present_pairings = {link.pairing_id for link in platform.pairings}
        platform.pairings.extend(
            DemoPlatformPairing(pairing_id=i) for i in sorted(keep) if i not in present_pairings
        )
        wanted = _participant_ids(pairings)
        for participant in [p for p in platform.participants if p.organisation_id not in wanted]:
            platform.participants.remove(participant)
        present = {p.organisation_id for p in platform.participants}
        platform.participants.extend(
            DemoPlatformParticipant(organisation_id=i) for i in wanted if i not in present
        )
    for participant in platform.participants:
        participant.confirmed_at = None
        participant.confirmed_by_id = None
    platform.updated_at = utcnow()
    db.session.flush()
    db.session.refresh(platform)
    record(actor, "demo_platform.update", platform, changed=changed)
    with force_locale("zh_CN"):
        title = _("示范平台“%(name)s”已修改，请重新确认参与", name=platform.name)
    _notify_participants(platform, "platform.confirm_request", title)
    return platform


# --------------------------------------------------------------------------- participants


def platforms_of_organisation(actor: User) -> list[tuple[DemoPlatform, DemoPlatformParticipant]]:
    """The platforms the actor's organisation takes part in, with its participation."""
    if actor.organisation_id is None:
        return []
    rows = db.session.execute(
        select(DemoPlatform, DemoPlatformParticipant)
        .join(DemoPlatformParticipant, DemoPlatformParticipant.platform_id == DemoPlatform.id)
        .where(DemoPlatformParticipant.organisation_id == actor.organisation_id)
        .order_by(DemoPlatform.created_at.desc(), DemoPlatform.id.desc())
    )
    return [(platform, participant) for platform, participant in rows]


def confirm_participation(actor: User, platform_id: int) -> DemoPlatformParticipant:
    """The actor's organisation (its admin) confirms taking part in a draft platform."""
    platform = get_by_id(DemoPlatform, platform_id)
    participant = None
    if platform is not None and actor.organisation_id is not None:
        participant = db.session.get(DemoPlatformParticipant, (platform.id, actor.organisation_id))
    if participant is None:
        raise NotFound(_("示范平台不存在。"))
    if actor.role != "org_admin":
        raise PermissionDenied(_("只有机构管理员可以确认参与。"))
    if platform.status != "draft":
        raise InvalidTransition(_("示范平台已进入公示或发布，无需再确认。"))
    already = InvalidTransition(_("贵机构已确认参与该示范平台。"))
    if participant.confirmed_at is not None:
        raise already
    # Conditional on not being confirmed yet and on the platform still being a draft: two
    # admins confirming at once make one confirmation.
    if not change_if(
        participant,
        DemoPlatformParticipant.confirmed_at.is_(None),
        exists().where(DemoPlatform.id == platform.id, DemoPlatform.status == "draft"),
        confirmed_at=utcnow(),
        confirmed_by_id=actor.id,
    ):
        raise already if participant.confirmed_at is not None else _changed_meanwhile()
    record(actor, "demo_platform.confirm", platform, organisation_id=actor.organisation_id)
    from ..inbox.services import notify_staff

    with force_locale("zh_CN"):
        title = _("%(org)s 已确认参与示范平台“%(name)s”", org=participant.organisation.name, name=platform.name)
    notify_staff("platform.confirmed", title, "", link("curation.platform_detail", platform_id=platform.id))
    return participant


# --------------------------------------------------------------------------- lifecycle


def start_notice(actor: User, platform_id: int, reason: str = "") -> DemoPlatform:
    """draft → notice (公示), once every participant has confirmed."""
    platform = get_platform(actor, platform_id)
    reason = _clean_reason(reason, required=False)
    if platform.status != "draft":
        raise InvalidTransition(_("只有草稿状态的示范平台可以开始公示。"))
    if not platform.pairings:
        raise InvalidTransition(_("示范平台至少要包含一个对接。"))
    if any(link.pairing.status != "accepted" for link in platform.pairings):
        raise InvalidTransition(_("平台中有对接已不再是“已通过”状态，请先修改草稿。"))
    if not platform.participants or any(p.confirmed_at is None for p in platform.participants):
        raise InvalidTransition(_("所有参与机构确认参与后才能开始公示。"))
    now = utcnow()
    if not _move(platform, "draft", status="notice", notice_started_at=now,
                 notice_ends_at=now + timedelta(days=platform.notice_days)):
        raise _changed_meanwhile()
    record(actor, "demo_platform.notice", platform, reason,
           notice_days=platform.notice_days, notice_ends_at=platform.notice_ends_at.isoformat())
    with force_locale("zh_CN"):
        title = _("示范平台“%(name)s”已开始公示", name=platform.name)
    _notify_participants(platform, "platform.notice", title)
    return platform


def publish(actor: User, platform_id: int, reason: str = "") -> DemoPlatform:
    """notice → published, after the notice period and with no open objection."""
    platform = get_platform(actor, platform_id)
    reason = _clean_reason(reason, required=False)
    if platform.status != "notice":
        raise InvalidTransition(_("只有公示中的示范平台可以结束公示并发布。"))
    if not notice_period_over(platform):
        raise InvalidTransition(_("公示期尚未结束，不能发布。"))
    if open_objections(platform):
        raise InvalidTransition(_("尚有未处理的异议，不能发布。"))
    if not _move(platform, "notice", status="published", published_at=utcnow()):
        raise _changed_meanwhile()
    record(actor, "demo_platform.publish", platform, reason)
    with force_locale("zh_CN"):
        title = _("示范平台“%(name)s”已发布", name=platform.name)
    _notify_participants(platform, "platform.published", title)
    return platform


@dataclass
class Outcomes:
    enrolled: int | None
    certified: int | None
    hired: int | None


def complete(actor: User, platform_id: int, outcomes: Outcomes, reason: str = "") -> DemoPlatform:
    """published → completed, with trainees enrolled, certified and hired."""
    platform = get_platform(actor, platform_id)
    reason = _clean_reason(reason, required=False)
    if platform.status != "published":
        raise InvalidTransition(_("只有已发布的示范平台可以登记成效并完成。"))
    for name, value in (("enrolled", outcomes.enrolled), ("certified", outcomes.certified), ("hired", outcomes.hired)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000_000:
            raise ValidationFailed(_("人数应为不小于 0 的整数。"), field=name)
    if outcomes.certified > outcomes.enrolled:
        raise ValidationFailed(_("取证人数不能多于参训人数。"), field="certified")
    if outcomes.hired > outcomes.enrolled:
        raise ValidationFailed(_("就业人数不能多于参训人数。"), field="hired")
    if not _move(platform, "published", status="completed", completed_at=utcnow(),
                 trainees_enrolled=outcomes.enrolled, trainees_certified=outcomes.certified,
                 trainees_hired=outcomes.hired):
        raise _changed_meanwhile()
    record(actor, "demo_platform.complete", platform, reason,
           enrolled=outcomes.enrolled, certified=outcomes.certified, hired=outcomes.hired)
    with force_locale("zh_CN"):
        title = _("示范平台“%(name)s”已完成", name=platform.name)
    _notify_participants(platform, "platform.completed", title)
    return platform


# --------------------------------------------------------------------------- objections


def _normalise_contact(contact: str) -> str:
    return "".join(contact.split()).lower()


def can_object(platform: DemoPlatform) -> bool:
    return platform.status == "notice" and not notice_period_over(platform)


def submit_objection(platform_id: int, name: str, contact: str, text: str) -> Objection:
    """Record an anonymous visitor's objection to a platform in notice; notify staff."""
    platform = public_platform(platform_id)
    if not can_object(platform):
        raise InvalidTransition(_("该示范平台当前不在公示期，不能提出异议。"))
    name = visible_text(name, _("姓名"), "name")
    contact = visible_text(contact, _("联系方式"), "contact")
    text = visible_text(text, _("异议内容"), "text")
    if not has_visible_character(name) or len(name) > MAX_OBJECTION_NAME:
        raise ValidationFailed(_("请填写姓名（不超过 %(n)s 个字）。", n=MAX_OBJECTION_NAME), field="name")
    if not contact or len(contact) > MAX_OBJECTION_CONTACT:
        raise ValidationFailed(_("请填写联系方式（不超过 %(n)s 个字）。", n=MAX_OBJECTION_CONTACT), field="contact")
    if not MIN_OBJECTION_TEXT <= len(text) <= MAX_OBJECTION_TEXT:
        raise ValidationFailed(
            _("异议内容应为 %(low)s 到 %(high)s 个字。", low=MIN_OBJECTION_TEXT, high=MAX_OBJECTION_TEXT),
            field="text",
        )
    since = utcnow() - timedelta(days=1)
    recent = list(
        db.session.scalars(
            select(Objection.contact).where(Objection.platform_id == platform.id, Objection.created_at >= since)
        )
    )
    key = _normalise_contact(contact)
    if sum(1 for c in recent if _normalise_contact(c) == key) >= OBJECTIONS_PER_CONTACT_PER_DAY:
        raise ValidationFailed(_("同一联系方式每天对同一平台最多提交 %(n)s 条异议，请明天再试。", n=OBJECTIONS_PER_CONTACT_PER_DAY))
    if len(recent) >= OBJECTIONS_PER_PLATFORM_PER_DAY:
        raise ValidationFailed(_("今天收到的异议已达上限，请明天再试。"))
    objection = Objection(platform_id=platform.id, name=name, contact=contact, text=text, status="open")
    db.session.add(objection)
    db.session.flush()
    record(None, "demo_platform.objection", platform, objection_id=objection.id)
    from ..inbox.services import notify_staff

    with force_locale("zh_CN"):
        title = _("示范平台“%(name)s”收到一条异议", name=platform.name)
    notify_staff("platform.objection", title, text[:500], link("curation.platform_detail", platform_id=platform.id))
    return objection


def get_objection(actor: User, objection_id: int) -> Objection:
    """Any objection, for staff."""
    _require_staff(actor)
    objection = get_by_id(Objection, objection_id)
    if objection is None:
        raise NotFound(_("异议不存在。"))
    return objection


def resolve_objection(actor: User, objection_id: int, decision: str, reason: str) -> Objection:
    """Uphold an objection (the platform returns to draft, confirmations reset) or dismiss it."""
    objection = get_objection(actor, objection_id)
    if decision not in ("uphold", "dismiss"):
        raise ValidationFailed(_("未知的操作。"))
    reason = _clean_reason(reason, required=True, message=_("处理异议时必须填写理由。"))
    handled = InvalidTransition(_("该异议已处理。"))
    if objection.status != "open":
        raise handled
    # Conditional on the objection still being open: it is resolved once, whoever clicks.
    if not change_if(
        objection,
        Objection.status == "open",
        status="upheld" if decision == "uphold" else "dismissed",
        resolution=reason,
        resolved_by_id=actor.id,
        resolved_at=utcnow(),
    ):
        raise handled
    platform = objection.platform
    if decision == "uphold":
        previous = platform.status
        # Another objection upheld at the same moment may have sent it back already.
        if _move(platform, ("notice", "published"), status="draft", notice_started_at=None,
                 notice_ends_at=None, published_at=None):
            for participant in platform.participants:
                participant.confirmed_at = None
                participant.confirmed_by_id = None
        db.session.flush()
        record(actor, "demo_platform.objection_upheld", platform, reason,
               objection_id=objection.id, previous=previous)
        with force_locale("zh_CN"):
            title = _("示范平台“%(name)s”因异议成立退回草稿", name=platform.name)
            body = _("理由：%(reason)s", reason=reason)
        _notify_participants(platform, "platform.objection_upheld", title, body)
    else:
        db.session.flush()
        record(actor, "demo_platform.objection_dismissed", platform, reason, objection_id=objection.id)
    return objection


def organisations_of(platform: DemoPlatform) -> dict[str, list[Organisation]]:
    """Participants grouped by kind."""
    grouped: dict[str, list[Organisation]] = {"enterprise": [], "institution": []}
    for participant in sorted(platform.participants, key=lambda p: p.organisation.name):
        grouped.setdefault(participant.organisation.kind, []).append(participant.organisation)
    return grouped


def is_public_posting(posting: Demand | Programme) -> bool:
    live = "open" if isinstance(posting, Demand) else "published"
    return posting.status == live and posting.organisation.status == "approved"

