"""Accounts: password hashing, authentication with login throttling, password resets."""
from __future__ import annotations

import hashlib
import math
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.security import check_password_hash, generate_password_hash

from ..common import change_if, clean_text, has_visible_character, visible_text
from ..errors import DomainError, InvalidTransition, NotFound, PermissionDenied
from ..extensions import db
from ..models import LoginThrottle, PasswordResetToken, User
from ..models._common import UTCDateTime, utcnow
from ..models.audit import record

MIN_PASSWORD_LENGTH = 10


class LoginThrottled(DomainError):
    """Too many failed logins; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def hash_password(password: str) -> str:
    """Hash with scrypt (werkzeug's default KDF); the salt is random per hash."""
    return generate_password_hash(password, method="scrypt")


def session_fingerprint(user: User) -> str:
    """A value kept in the session at login and checked on every request. It changes with the
    password and with ``session_generation`` (see :func:`end_sessions`), and every session
    opened before the change stops working."""
    seed = f"{user.password_hash}:{user.session_generation or 0}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:24]


def end_sessions(user: User) -> None:
    """End every session of ``user`` on every device, at the next request each makes."""
    # In the database (not generation + 1 in Python): two at once must both count.
    db.session.execute(
        update(User).where(User.id == user.id)
        .values(session_generation=User.session_generation + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(user, ["session_generation"])


def end_sessions_of_organisation(organisation_id: int) -> None:
    """End every session of every account of an organisation (it was suspended)."""
    db.session.execute(
        update(User).where(User.organisation_id == organisation_id)
        .values(session_generation=User.session_generation + 1)
        .execution_options(synchronize_session=False)
    )


def revoke_api_tokens(user: User, reason: str) -> int:
    """Revoke every live API token of ``user`` (after a password change); returns how many."""
    from ..models import ApiToken

    result = db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        record(user, "token.revoke_all", user, reason, count=result.rowcount)
    return result.rowcount


def normalise_email(email: str) -> str:
    return clean_text(email).strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def _throttle_key(email: str, client_address: str | None) -> str:
    # One account from one address: a stranger's wrong guesses never lock the owner out from
    # elsewhere. (How many attempts one address may make at all is the limiter's job.)
    return f"login:{normalise_email(email)}|{client_address or '-'}"


def _check_not_delayed(key: str, now: datetime) -> None:
    row = db.session.get(LoginThrottle, key)
    if row is not None and row.locked_until is not None and row.locked_until > now:
        seconds = max(1, math.ceil((row.locked_until - now).total_seconds()))
        message = (
            _("登录失败次数过多，请 %(seconds)s 秒后再试。", seconds=seconds) if seconds < 60
            else _("登录失败次数过多，请 %(minutes)s 分钟后再试。", minutes=math.ceil(seconds / 60))
        )
        raise LoginThrottled(message, seconds)


def _record_failure(key: str, now: datetime) -> None:
    # Counted by the database in one statement: twenty wrong passwords at once count twenty (a
    # count read into Python and written back would lose the concurrent ones).
    config = current_app.config
    window_start = now - timedelta(seconds=config["LIMIT_LOGIN_FAILURE_WINDOW_SECONDS"])
    table = LoginThrottle.__table__
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    expired = table.c.window_started_at < literal(window_start, UTCDateTime())
    upsert = insert(table).values(key=key, failures=1, window_started_at=now, locked_until=None)
    db.session.execute(
        upsert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((expired, 1), else_=table.c.failures + 1),
                "window_started_at": case(
                    (expired, literal(now, UTCDateTime())), else_=table.c.window_started_at
                ),
                "locked_until": case(
                    (expired, literal(None, UTCDateTime())), else_=table.c.locked_until
                ),
            },
        )
    )
    failures = db.session.scalar(select(LoginThrottle.failures).where(LoginThrottle.key == key))
    free = config["LIMIT_LOGIN_FAILURES"]
    if failures is not None and failures >= free:
        # The 5th failure costs the base delay, each further one twice the one before.
        delay = min(
            config["LIMIT_LOGIN_DELAY_SECONDS"] * 2 ** (failures - free),
            config["LIMIT_LOGIN_MAX_DELAY_SECONDS"],
        )
        db.session.execute(
            update(LoginThrottle).where(LoginThrottle.key == key)
            .values(locked_until=now + timedelta(seconds=delay))
            .execution_options(synchronize_session=False)
        )


def _forget_failures(key: str) -> None:
    # A bulk delete: two logins at once must not trip over each other's ORM delete.
    db.session.execute(
        delete(LoginThrottle).where(LoginThrottle.key == key)
        .execution_options(synchronize_session=False)
    )


def _forget_all_failures(email: str) -> None:
    db.session.execute(
        delete(LoginThrottle).where(LoginThrottle.key.startswith(f"login:{normalise_email(email)}|"))
        .execution_options(synchronize_session=False)
    )


class EmailNotConfirmed(DomainError):
    """The password was right but the address was never confirmed."""


def authenticate(email: str, password: str, client_address: str | None) -> User:
    """Return the user for these credentials or raise :class:`DomainError`.

    Failures are counted per account and client address; from the 5th within the window each
    further attempt from that address must wait, twice as long after every failure. The caller
    commits, so that failures are stored even though no login happens.
    """
    now = utcnow()
    key = _throttle_key(email, client_address)
    _check_not_delayed(key, now)
    user = find_user_by_email(email)
    # Hash even for unknown addresses so that timing does not reveal which accounts exist.
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not check_password_hash(stored, password) or user is None:
        _record_failure(key, now)
        raise DomainError(_("邮箱或密码不正确。"))
    if not user.active:
        raise PermissionDenied(_("该账号已停用，请联系协会工作人员。"))
    if user.email_confirmed_at is None:
        raise EmailNotConfirmed(_(
            "您的邮箱尚未确认。请打开注册后收到的确认邮件中的链接；没有收到可用同一邮箱重新提交注册，我们会再发一次。"
        ))
    _forget_failures(key)
    user.last_login_at = now
    return user


_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def create_user(
    email: str,
    name: str,
    password: str,
    role: str,
    organisation_id: int | None = None,
    *,
    confirmed: bool = True,
) -> User:
    """Create an account; the caller commits. Raises :class:`DomainError` on bad input.
    An unconfirmed account logs in only after :func:`confirm_email`."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise DomainError(_("请输入有效的电子邮箱地址。"), field="email")
    if find_user_by_email(email) is not None:
        raise DomainError(_("该邮箱已注册。"), field="email")
    name = check_account_name(name)
    check_password_strength(password)
    if role in ("staff", "admin") and organisation_id is not None:
        raise DomainError(_("协会工作人员账号不属于任何机构。"), field="role")
    if role in ("org_admin", "org_member") and organisation_id is None:
        raise DomainError(_("机构账号必须属于一个机构。"), field="role")
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password),
        role=role,
        organisation_id=organisation_id,
        email_confirmed_at=utcnow() if confirmed else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def check_account_name(name: str) -> str:
    """The person's name as stored, or :class:`DomainError`."""
    name = visible_text(name, _("姓名"), "user_name")
    if not has_visible_character(name):
        raise DomainError(_("请输入您的姓名。"), field="user_name")
    return name


def check_password_strength(password: str) -> None:
    """Refuse passwords that are short or made of one kind of character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            _("密码至少需要 %(n)s 个字符。", n=MIN_PASSWORD_LENGTH), field="password"
        )
    if password.isdigit() or password.isalpha():
        raise DomainError(_("密码需同时包含字母和数字或符号。"), field="password")


# --- Lookups -----------------------------------------------------------------------------------

# --- One-time links (invitations and password resets) -----------------------------------------


def new_secret() -> tuple[str, str]:
    """Return ``(code, sha256 hex of code)``; only the hash is ever stored."""
    code = secrets.token_urlsafe(32)
    return code, hash_secret(code)


def hash_secret(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


# --- Password resets ----------------------------------------------------------------------------


def can_manage_user(actor: User, user: User) -> bool:
    """Whether ``actor`` may act on ``user``'s account (reset links, roles, deactivation).

    Staff manage every account except that only an admin manages admins; an organisation admin
    manages the accounts of their own organisation only.
    """
    if actor.is_staff:
        return user.role != "admin" or actor.role == "admin"
    return (
        actor.role == "org_admin"
        and actor.organisation_id is not None
        and user.organisation_id == actor.organisation_id
    )


def issue_password_reset(actor: User, user: User) -> tuple[PasswordResetToken, str]:
    """Issue a one-time reset link for ``user``; return the row and the raw token.

    Older unused tokens of the same user stop working. Raises :class:`NotFound` when the actor
    may not manage the user (an organisation admin must not learn of other organisations'
    accounts).
    """
    if not can_manage_user(actor, user):
        if actor.is_staff:
            raise PermissionDenied(_("只有系统管理员可以为管理员账号重置密码。"))
        raise NotFound(_("用户不存在。"))
    if not user.active:
        raise DomainError(_("该账号已停用，不能重置密码。"))
    return _new_reset(user, actor, "user.reset_issued")


def _new_reset(user: User, actor: User, action: str) -> tuple[PasswordResetToken, str]:
    """A fresh one-time reset link for ``user`` (older ones stop working), recorded as
    ``action`` by ``actor`` and e-mailed after the commit; the row and the raw token."""
    now = utcnow()
    _expire_open_resets(user, now)
    token, token_hash = new_secret()
    reset = PasswordResetToken(
        user_id=user.id,
        token_hash=token_hash,
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + timedelta(hours=current_app.config["PASSWORD_RESET_HOURS"]),
    )
    db.session.add(reset)
    db.session.flush()
    record(actor, action, user, expires_at=reset.expires_at.isoformat())
    from .. import mail

    mail.send_password_reset(reset, token, issued_by=actor)
    return reset, token


def _expire_open_resets(user: User, now: datetime) -> None:
    # The model has no "revoked" column: expiring them now has the same effect.
    open_tokens = db.session.scalars(
        select(PasswordResetToken).where(
            PasswordResetToken.user_id == user.id,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
    )
    for old in open_tokens:
        old.expires_at = now


def _check_reset_usable(reset: PasswordResetToken) -> None:
    if reset.used_at is not None:
        raise InvalidTransition(_("该重置链接已被使用，每个链接只能使用一次。"))
    if reset.expires_at <= utcnow():
        raise InvalidTransition(_("该重置链接已失效，请向管理员索取新的链接。"))
    if not reset.user.active:
        raise PermissionDenied(_("该账号已停用，请联系协会工作人员。"))


def find_password_reset(token: str) -> PasswordResetToken:
    """Return the usable reset row for ``token`` or raise :class:`DomainError` saying why not."""
    reset = db.session.scalar(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == hash_secret(token))
    )
    if reset is None:
        raise NotFound(_("重置链接无效，请向管理员索取新的链接。"))
    _check_reset_usable(reset)
    return reset


def reset_password(token: str, password: str) -> User:
    """Set a new password with a one-time token; the token is spent. The caller commits."""
    reset = find_password_reset(token)
    check_password_strength(password)
    now = utcnow()
    # Spend the token first, conditionally: of two submissions at once (SQLite has no row
    # locks, so a SELECT ... FOR UPDATE would not serialise them) exactly one changes it.
    if not change_if(
        reset, PasswordResetToken.used_at.is_(None), PasswordResetToken.expires_at > now, used_at=now
    ):
        _check_reset_usable(reset)  # says why: used, or expired by a newer link
        raise InvalidTransition(_("该重置链接已被使用，每个链接只能使用一次。"))
    user = reset.user
    user.password_hash = hash_password(password)
    # Whoever knew the old password may hold a session or a token made with it.
    end_sessions(user)
    revoke_api_tokens(user, _("密码已重置"))
    # A reset link reached the address: it is confirmed, as a confirmation link would.
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now
    _expire_open_resets(user, now)
    # A delayed user who just proved control of a fresh link may try again at once.
    _forget_all_failures(user.email)
    db.session.flush()
    record(user, "user.password_reset", user)
    return user


# --- Self-service: confirming an address, forgetting a password ---------------------------------

CONFIRMATION_SALT = "chanjiao.email-confirmation"


def _confirmation_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CONFIRMATION_SALT)


def confirmation_token(user: User) -> str:
    """A signed link token for ``user``'s address. It names the address too, so a link sent to
    an address the account no longer has does nothing; nothing needs storing."""
    return _confirmation_serializer().dumps({"user": user.id, "email": user.email})


def find_unconfirmed(token: str) -> User:
    """The account a confirmation token is for, or :class:`DomainError` saying why not."""
    hours = current_app.config["EMAIL_CONFIRMATION_HOURS"]
    try:
        payload = _confirmation_serializer().loads(token, max_age=hours * 3600)
    except SignatureExpired:
        raise InvalidTransition(_(
            "确认链接已过期（有效期 %(hours)s 小时）。请用同一邮箱重新提交注册，我们会再发一封确认邮件。",
            hours=hours,
        )) from None
    except BadSignature:
        raise NotFound(_("确认链接无效，请检查邮件中的链接是否完整。")) from None
    user = db.session.get(User, payload.get("user")) if isinstance(payload, dict) else None
    if user is None or user.email != payload.get("email"):
        raise NotFound(_("确认链接无效，请检查邮件中的链接是否完整。"))
    if not user.active:
        raise PermissionDenied(_("该账号已停用，请联系协会工作人员。"))
    return user


def confirm_email(token: str) -> User:
    """Confirm the address a token names; confirming twice is harmless. The caller commits."""
    user = find_unconfirmed(token)
    if change_if(user, User.email_confirmed_at.is_(None), email_confirmed_at=utcnow()):
        record(user, "user.email_confirmed", user)
    return user


def request_password_reset(email: str) -> None:
    """A visitor forgot their password: e-mail a reset link if the address has a usable account.

    The caller shows the same answer either way, so the form does not tell who has an account.
    An unknown or deactivated address gets no e-mail: that would let anyone send mail to anyone.
    """
    user = find_user_by_email(email)
    if user is None or not user.active:
        hash_password("same-time-either-way-1")  # the answer takes as long as for an account
        return
    _new_reset(user, user, "user.reset_requested")
