"""Association staff: platform counts, the approval queue and decisions on organisations.

Every decision changes the organisation's status, reason and decision time and is written to the
audit log with the deciding staff user, so that the history of an organisation is complete.
Functions flush; the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import func, or_, select

from .. import choices
from ..auth import services as accounts
from ..common import clean_text, get_by_id
from ..errors import DomainError, InvalidTransition, NotFound, PermissionDenied
from ..extensions import db
from ..models import AuditLog, Demand, Organisation, Programme, User
from ..models._common import utcnow
from ..models.audit import record

MAX_REASON_LENGTH = 1000
BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Decision:
    """A staff decision on an organisation: where it may start, where it ends."""

    name: str
    from_statuses: tuple[str, ...]
    to_status: str
    reason_required: bool


DECISIONS: dict[str, Decision] = {
    "approve": Decision("approve", ("pending", "rejected"), "approved", False),
    "reject": Decision("reject", ("pending",), "rejected", True),
    "suspend": Decision("suspend", ("approved",), "suspended", True),
    "reinstate": Decision("reinstate", ("suspended",), "approved", False),
}


def decision_label(name: str) -> str:
    return {
        "approve": _("审核通过"),
        "reject": _("驳回"),
        "suspend": _("暂停"),
        "reinstate": _("恢复"),
        "register": _("提交注册"),
        "resubmit": _("重新提交审核"),
        "membership": _("会员信息"),
        "profile": _("修改资料"),
    }.get(name, name)


def _require_staff(actor: User) -> None:
    if not actor.is_staff:
        raise PermissionDenied(_("只有协会工作人员可以执行此操作。"))


def _counts(column, statuses) -> dict[str, int]:
    rows = db.session.execute(select(column, func.count()).group_by(column)).all()
    found = {status: count for status, count in rows}
    return {status: found.get(status, 0) for status in statuses}


def platform_counts() -> dict[str, object]:
    """Organisations by kind and status, postings by status, users by role."""
    org_rows = db.session.execute(
        select(Organisation.kind, Organisation.status, func.count()).group_by(
            Organisation.kind, Organisation.status
        )
    ).all()
    organisations = {
        kind: {status: 0 for status in choices.ORG_STATUSES} for kind in choices.ORG_KINDS
    }
    for kind, status, count in org_rows:
        organisations.setdefault(kind, {})[status] = count
    users = _counts(User.role, choices.ROLES)
    return {
        "organisations": organisations,
        "demands": _counts(Demand.status, choices.DEMAND_STATUSES),
        "programmes": _counts(Programme.status, choices.PROGRAMME_STATUSES),
        "users": users,
        "users_total": sum(users.values()),
    }


def approval_queue() -> list[Organisation]:
    """Pending organisations, oldest application first."""
    return list(
        db.session.scalars(
            select(Organisation)
            .where(Organisation.status == "pending")
            .order_by(Organisation.created_at, Organisation.id)
        )
    )


def list_organisations(
    status: str | None, kind: str | None, page: int, per_page: int
) -> Pagination:
    """Organisations filtered by status and kind; unknown filter values are ignored."""
    query = select(Organisation)
    if status in choices.ORG_STATUSES:
        query = query.where(Organisation.status == status)
    if kind in choices.ORG_KINDS:
        query = query.where(Organisation.kind == kind)
    query = query.order_by(Organisation.created_at.desc(), Organisation.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def list_users(search: str, page: int, per_page: int) -> Pagination:
    """All accounts, optionally filtered by a fragment of the name or e-mail address."""
    query = select(User)
    search = clean_text(search).strip()[:100]
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(User.email.ilike(pattern, escape="\\"), User.name.ilike(pattern, escape="\\"))
        )
    query = query.order_by(User.created_at.desc(), User.id.desc())
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def get_organisation(actor: User, organisation_id: int) -> Organisation:
    _require_staff(actor)
    organisation = get_by_id(Organisation, organisation_id)
    if organisation is None:
        raise NotFound(_("机构不存在。"))
    return organisation


def get_user(actor: User, user_id: int) -> User:
    _require_staff(actor)
    user = get_by_id(User, user_id)
    if user is None:
        raise NotFound(_("用户不存在。"))
    return user


def issue_user_reset(actor: User, user_id: int) -> tuple[User, str]:
    """Issue a one-time password-reset link for any account (admins only by an admin)."""
    user = get_user(actor, user_id)
    _reset, token = accounts.issue_password_reset(actor, user)
    return user, token


def posting_counts(organisation: Organisation) -> dict[str, dict[str, int]]:
    """Counts of the organisation's demands and programmes by status."""

    def count(model, statuses) -> dict[str, int]:
        rows = db.session.execute(
            select(model.status, func.count())
            .where(model.organisation_id == organisation.id)
            .group_by(model.status)
        ).all()
        found = dict(rows)
        return {status: found.get(status, 0) for status in statuses}

    return {
        "demands": count(Demand, choices.DEMAND_STATUSES),
        "programmes": count(Programme, choices.PROGRAMME_STATUSES),
    }


def history(organisation: Organisation) -> list[AuditLog]:
    """Every recorded decision and change on the organisation, newest first."""
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(
                AuditLog.object_type == Organisation.__tablename__,
                AuditLog.object_id == organisation.id,
            )
            .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        )
    )


def decide(actor: User, organisation: Organisation, decision: str, reason: str = "") -> Organisation:
    """Approve, reject, suspend or reinstate an organisation, recording who, when and why."""
    _require_staff(actor)
    rule = DECISIONS.get(decision)
    if rule is None:
        raise NotFound(_("未知的操作。"))
    reason = reason.strip()
    if rule.reason_required and not reason:
        raise DomainError(_("请填写%(decision)s的理由。", decision=decision_label(decision)), field="reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise DomainError(
            _("理由不能超过 %(n)s 个字符。", n=MAX_REASON_LENGTH), field="reason"
        )
    if organisation.status not in rule.from_statuses:
        raise InvalidTransition(
            _(
                "状态为“%(status)s”的机构不能%(decision)s。",
                status=choices.label(choices.ORG_STATUSES, organisation.status),
                decision=decision_label(decision),
            )
        )
    old = organisation.status
    organisation.status = rule.to_status
    organisation.status_reason = reason
    organisation.status_decided_at = utcnow()
    db.session.flush()
    if rule.to_status == "suspended":
        accounts.end_sessions_of_organisation(organisation.id)
    record(actor, f"organisation.{decision}", organisation, reason, old=old, new=rule.to_status)
    return organisation


def set_membership(
    actor: User, organisation: Organisation, member_since: date | None, founding_member: bool
) -> Organisation:
    """Record the organisation's association membership."""
    _require_staff(actor)
    if member_since is not None and member_since > datetime.now(BEIJING).date():
        raise DomainError(_("入会日期不能晚于今天。"), field="member_since")
    if founding_member and member_since is None:
        raise DomainError(_("创始会员须填写入会日期。"), field="member_since")
    organisation.member_since = member_since
    organisation.founding_member = founding_member
    db.session.flush()
    record(
        actor,
        "organisation.membership",
        organisation,
        member_since=member_since.isoformat() if member_since else None,
        founding_member=founding_member,
    )
    return organisation
