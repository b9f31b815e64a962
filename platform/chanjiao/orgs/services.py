"""Organisations: registration, profile, members and invitations.

Every function takes the acting user and checks at object level that the actor may touch the
object; objects of another organisation are reported as not found. Functions flush; the caller
commits (or rolls back on a :class:`DomainError`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import choices
from ..auth import services as accounts
from ..common import change_if, get_by_id, has_visible_character, visible_text
from ..errors import DomainError, InvalidTransition, NotFound, PermissionDenied
from ..extensions import db
from ..models import Invitation, Organisation, User
from ..models._common import utcnow
from ..models.audit import record
from ..validators import credit_code_problem, is_valid_phone, normalise_credit_code


@dataclass(frozen=True)
class OrganisationData:
    """What a registering organisation tells us about itself."""

    kind: str
    name: str
    credit_code: str
    district: str
    address: str
    industry: str | None
    category: str | None
    description: str
    contact_name: str
    contact_phone: str


@dataclass(frozen=True)
class AccountData:
    """The first (or an invited) user's account."""

    name: str
    email: str
    password: str


# --- Registration -------------------------------------------------------------------------------


def credit_code_message(problem: str) -> str:
    """The user-facing message for a :func:`credit_code_problem` result."""
    return {
        "length": _("统一社会信用代码应为 18 位。"),
        "chars": _("统一社会信用代码含有无效字符（只允许数字和除 I、O、S、V、Z 以外的大写字母）。"),
        "check": _("统一社会信用代码校验位不正确，请核对后重新输入。"),
    }[problem]


def _visible_fields(values: dict) -> dict[str, str]:
    """The organisation's free-text fields as stored text (:func:`visible_text`)."""
    labels = {
        "name": _("机构名称"), "address": _("地址"), "description": _("机构简介"),
        "contact_name": _("联系人"),
    }
    return {
        key: visible_text(values.get(key), label, key)
        for key, label in labels.items() if key in values
    }


def _check_organisation(data: OrganisationData) -> None:
    # The form checks all of this too; the service must not trust its callers.
    if data.kind not in choices.ORG_KINDS:
        raise DomainError(_("请选择机构类型。"), field="kind")
    problem = credit_code_problem(data.credit_code)
    if problem:
        raise DomainError(credit_code_message(problem), field="credit_code")
    if data.district not in choices.DISTRICTS:
        raise DomainError(_("请从列表中选择所在街道/地区。"), field="district")
    if data.kind == "enterprise" and data.industry not in choices.INDUSTRIES:
        raise DomainError(_("请从列表中选择所属行业。"), field="industry")
    if data.kind == "institution" and data.category not in choices.INSTITUTION_CATEGORIES:
        raise DomainError(_("请从列表中选择机构类别。"), field="category")
    if not is_valid_phone(data.contact_phone):
        raise DomainError(_("请输入有效的手机号或固定电话。"), field="contact_phone")
    if not has_visible_character(data.name):
        raise DomainError(_("请输入机构名称。"), field="name")


def credit_code_taken(code: str, exclude_id: int | None = None) -> bool:
    query = select(Organisation.id).where(Organisation.credit_code == code)
    if exclude_id is not None:
        query = query.where(Organisation.id != exclude_id)
    return db.session.scalar(query) is not None


def apply_for_registration(data: OrganisationData, account: AccountData) -> User | None:
    """A visitor's registration, answered the same whether or not the address has an account.

    A new address gets a pending organisation, its first admin (unconfirmed) and an e-mail with
    the confirmation link; an address with an account gets nothing written and an e-mail saying
    that someone tried to register with it (with the way to log in or reset the password). The
    page cannot tell the two apart, nor can the time it takes: the password is hashed either
    way. Returns the new user, or None. Raises :class:`DomainError` on bad input, in both cases.
    """
    from .. import mail

    existing = accounts.find_user_by_email(account.email)
    if existing is None:
        _organisation, user = register_organisation(data, account)
        mail.send_registration_confirmation(user)
        return user
    # The same checks as a new registration, so that errors do not tell the cases apart either.
    _checked_registration(data, account)
    accounts.hash_password(account.password)
    if existing.email_confirmed_at is None and existing.active:
        mail.send_registration_confirmation(existing)  # they may have lost the first e-mail
    else:
        mail.send_registration_attempt(existing)
    return None


def _checked_registration(data: OrganisationData, account: AccountData) -> OrganisationData:
    """``data`` as stored (visible text, the credit code normalised), or :class:`DomainError`."""
    code = normalise_credit_code(data.credit_code)
    data = OrganisationData(**{**data.__dict__, **_visible_fields(data.__dict__), "credit_code": code})
    _check_organisation(data)
    if credit_code_taken(code):
        raise DomainError(_("该统一社会信用代码已注册，请直接登录或联系协会。"), field="credit_code")
    accounts.check_password_strength(account.password)
    accounts.check_account_name(account.name)
    return data


def register_organisation(
    data: OrganisationData, account: AccountData
) -> tuple[Organisation, User]:
    """Create a pending organisation and its first admin together (the admin's address
    unconfirmed). Visitors come through :func:`apply_for_registration`.

    Raises :class:`DomainError` (with ``field`` naming the form field) and leaves the caller to
    roll back, so that nothing is written when anything is wrong.
    """
    data = _checked_registration(data, account)
    organisation = Organisation(
        kind=data.kind,
        name=data.name.strip(),
        credit_code=data.credit_code,
        district=data.district,
        address=data.address.strip(),
        industry=data.industry if data.kind == "enterprise" else None,
        category=data.category if data.kind == "institution" else None,
        description=data.description,
        contact_name=data.contact_name.strip(),
        contact_phone=data.contact_phone.strip(),
        status="pending",
    )
    db.session.add(organisation)
    try:
        db.session.flush()
        user = accounts.create_user(
            account.email, account.name, account.password, "org_admin", organisation.id,
            confirmed=False,
        )
    except IntegrityError:
        # Two registrations raced on the same code or address; the unique indexes decided.
        raise DomainError(_("该机构或邮箱刚刚已被注册，请检查后重试。")) from None
    record(user, "organisation.register", organisation, kind=organisation.kind)
    return organisation, user


# --- Profile ------------------------------------------------------------------------------------


def identity_editable(organisation: Organisation) -> bool:
    """Name and credit code may change only before the association has approved them."""
    return organisation.status in ("pending", "rejected")


def update_profile(
    actor: User,
    organisation: Organisation,
    *,
    contact_name: str,
    contact_phone: str,
    address: str,
    description: str,
    name: str | None = None,
    credit_code: str | None = None,
) -> bool:
    """Update the organisation's profile; return True if a rejected application was resubmitted."""
    _require_org_admin(actor, organisation)
    typed = _visible_fields({
        "contact_name": contact_name, "address": address, "description": description,
        **({"name": name} if name is not None else {}),
    })
    name = typed.get("name")  # stripped: None when not sent, "" when blank
    contact_name, address, description = typed["contact_name"], typed["address"], typed["description"]
    if not is_valid_phone(contact_phone):
        raise DomainError(_("请输入有效的手机号或固定电话。"), field="contact_phone")
    changes: dict[str, str] = {}
    if identity_editable(organisation):
        if name and name != organisation.name:
            changes["name"] = name
        if credit_code is not None:
            code = normalise_credit_code(credit_code)
            if code != organisation.credit_code:
                problem = credit_code_problem(code)
                if problem:
                    raise DomainError(credit_code_message(problem), field="credit_code")
                if credit_code_taken(code, exclude_id=organisation.id):
                    raise DomainError(_("该统一社会信用代码已注册。"), field="credit_code")
                changes["credit_code"] = code
    elif (name is not None and name != organisation.name) or (
        credit_code is not None and normalise_credit_code(credit_code) != organisation.credit_code
    ):
        raise PermissionDenied(_("机构审核通过后，名称和统一社会信用代码不能修改。"))
    for key, value in (
        ("contact_name", contact_name),
        ("contact_phone", contact_phone.strip()),
        ("address", address),
        ("description", description),
    ):
        if getattr(organisation, key) != value:
            changes[key] = value
    for key, value in changes.items():
        setattr(organisation, key, value)
    resubmitted = organisation.status == "rejected"
    if resubmitted:
        # Editing a rejected application is how an organisation asks to be reviewed again.
        organisation.status = "pending"
        organisation.status_decided_at = None
    db.session.flush()
    record(actor, "organisation.profile", organisation, fields=sorted(changes))
    if resubmitted:
        record(actor, "organisation.resubmit", organisation)
    return resubmitted


# --- Members ------------------------------------------------------------------------------------


def _require_org_admin(actor: User, organisation: Organisation) -> None:
    if actor.organisation_id != organisation.id:
        raise NotFound(_("机构不存在。"))
    if actor.role != "org_admin":
        raise PermissionDenied(_("只有机构管理员可以执行此操作。"))


def get_member(actor: User, user_id: int) -> User:
    """Return a user of the actor's organisation, or raise :class:`NotFound`."""
    user = get_by_id(User, user_id)
    if user is None or actor.organisation_id is None or user.organisation_id != actor.organisation_id:
        raise NotFound(_("用户不存在。"))
    return user


def issue_member_reset(actor: User, user_id: int) -> tuple[User, str]:
    """Issue a one-time password-reset link for a member of the actor's organisation."""
    user = get_member(actor, user_id)
    _require_org_admin(actor, user.organisation)
    _reset, token = accounts.issue_password_reset(actor, user)
    return user, token


def members(organisation: Organisation) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .where(User.organisation_id == organisation.id)
            .order_by(User.active.desc(), User.created_at, User.id)
        )
    )


def _active_admin_count(organisation_id: int) -> int:
    return db.session.scalar(
        select(func.count(User.id)).where(
            User.organisation_id == organisation_id,
            User.role == "org_admin",
            User.active.is_(True),
        )
    ) or 0


def change_role(actor: User, user_id: int, role: str) -> User:
    """Make a member an organisation admin or a plain member."""
    user = get_member(actor, user_id)
    _require_org_admin(actor, user.organisation)
    if role not in choices.ORG_ROLES:
        raise DomainError(_("请选择有效的角色。"), field="role")
    if user.id == actor.id:
        raise PermissionDenied(_("不能修改自己的角色，请由另一位管理员操作。"))
    if user.role == role:
        return user
    if user.role == "org_admin" and user.active and _active_admin_count(user.organisation_id) <= 1:
        raise InvalidTransition(_("机构至少需要一位管理员。"))
    old = user.role
    user.role = role
    accounts.end_sessions(user)  # pages already open were authorised for the old role
    db.session.flush()
    record(actor, "user.role", user, old=old, new=role)
    return user


def set_member_active(actor: User, user_id: int, active: bool) -> User:
    """Deactivate (or reactivate) a member of the actor's organisation."""
    user = get_member(actor, user_id)
    _require_org_admin(actor, user.organisation)
    if user.id == actor.id:
        raise PermissionDenied(_("不能停用自己的账号。"))
    if user.active == active:
        return user
    if not active and user.role == "org_admin" and _active_admin_count(user.organisation_id) <= 1:
        raise InvalidTransition(_("不能停用机构的最后一位管理员。"))
    user.active = active
    # Reactivating must not bring back a session from before the deactivation.
    accounts.end_sessions(user)
    db.session.flush()
    record(actor, "user.activate" if active else "user.deactivate", user)
    return user


# --- Invitations --------------------------------------------------------------------------------


def invitation_state(invitation: Invitation, now: datetime | None = None) -> str:
    """One of "open", "used", "revoked", "expired"."""
    now = now or utcnow()
    if invitation.used_at is not None:
        return "used"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at <= now:
        return "expired"
    return "open"


def pending_invitations(organisation: Organisation) -> list[Invitation]:
    now = utcnow()
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.organisation_id == organisation.id,
                Invitation.used_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def create_invitation(
    actor: User, role: str = "org_member", email: str | None = None
) -> tuple[Invitation, str]:
    """Create an invitation into the actor's organisation; return it and the one-time code."""
    if actor.organisation is None:
        raise NotFound(_("机构不存在。"))
    _require_org_admin(actor, actor.organisation)
    if role not in choices.ORG_ROLES:
        raise DomainError(_("请选择有效的角色。"), field="role")
    email = accounts.normalise_email(email) if email else None
    if email is not None and accounts.find_user_by_email(email) is not None:
        raise DomainError(_("该邮箱已注册。"), field="email")
    code, code_hash = accounts.new_secret()
    now = utcnow()
    invitation = Invitation(
        organisation_id=actor.organisation_id,
        code_hash=code_hash,
        email=email,
        role=role,
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + timedelta(days=current_app.config["INVITATION_DAYS"]),
    )
    db.session.add(invitation)
    db.session.flush()
    record(actor, "invitation.create", invitation, role=role, email=email or "")
    from .. import mail

    mail.send_invitation(invitation, code, actor)  # to invitation.email, after the commit
    return invitation, code


def revoke_invitation(actor: User, invitation_id: int) -> Invitation:
    """Revoke an unused invitation of the actor's organisation."""
    invitation = get_by_id(Invitation, invitation_id)
    if invitation is None or invitation.organisation_id != actor.organisation_id:
        raise NotFound(_("邀请不存在。"))
    _require_org_admin(actor, invitation.organisation)
    state = invitation_state(invitation)
    if state == "used":
        raise InvalidTransition(_("该邀请已被使用，不能撤销。"))
    if state == "revoked":
        return invitation
    # Conditional on still being unused, so that a revocation racing an acceptance never
    # revokes an invitation that already made an account (nor revokes twice).
    if not change_if(
        invitation, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None), revoked_at=utcnow()
    ):
        if invitation.used_at is not None:
            raise InvalidTransition(_("该邀请已被使用，不能撤销。"))
        return invitation
    record(actor, "invitation.revoke", invitation)
    return invitation


def _check_invitation_open(invitation: Invitation) -> None:
    state = invitation_state(invitation)
    if state == "used":
        raise InvalidTransition(_("该邀请链接已被使用，每个链接只能使用一次。"))
    if state == "revoked":
        raise InvalidTransition(_("该邀请链接已被机构管理员撤销。"))
    if state == "expired":
        raise InvalidTransition(_("该邀请链接已过期，请向机构管理员索取新的链接。"))


def find_invitation(code: str) -> Invitation:
    """Return the open invitation for ``code`` or raise a :class:`DomainError` saying why not."""
    invitation = db.session.scalar(
        select(Invitation).where(Invitation.code_hash == accounts.hash_secret(code))
    )
    if invitation is None:
        raise NotFound(_("邀请链接无效，请向机构管理员索取新的链接。"))
    _check_invitation_open(invitation)
    return invitation


def accept_invitation(code: str, account: AccountData) -> User:
    """Create the invited user in the inviting organisation; the invitation is spent."""
    invitation = find_invitation(code)
    email = accounts.normalise_email(account.email)
    if invitation.email and invitation.email != email:
        raise DomainError(_("此邀请仅限邮箱 %(email)s 使用。", email=invitation.email), field="email")
    accounts.check_password_strength(account.password)
    # Spend the invitation first, conditionally on it still being open: of twenty submissions
    # at once exactly one changes the row and goes on to create an account (SQLite has no row
    # locks, so a SELECT ... FOR UPDATE would not serialise them).
    now = utcnow()
    if not change_if(
        invitation,
        Invitation.used_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
        used_at=now,
    ):
        _check_invitation_open(invitation)  # says why: used, revoked or expired meanwhile
        raise InvalidTransition(_("该邀请链接已被使用，每个链接只能使用一次。"))
    try:
        with db.session.begin_nested():
            user = accounts.create_user(
                email, account.name, account.password, invitation.role, invitation.organisation_id
            )
    except IntegrityError:  # the address registered at the same moment by another way in
        raise DomainError(_("该邮箱已注册。"), field="email") from None
    invitation.used_by_id = user.id
    db.session.flush()
    record(user, "invitation.accept", invitation, user_id=user.id)
    return user
