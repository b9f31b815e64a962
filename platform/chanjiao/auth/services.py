"""Accounts: password hashing, authentication with login throttling."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import DomainError, PermissionDenied
from ..extensions import db
from ..models import LoginThrottle, User
from ..models._common import utcnow

MIN_PASSWORD_LENGTH = 10


class LoginThrottled(DomainError):
    """Too many failed logins; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def hash_password(password: str) -> str:
    """Hash with scrypt (werkzeug's default KDF); the salt is random per hash."""
    return generate_password_hash(password, method="scrypt")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def _throttle_keys(email: str, client_address: str | None) -> list[str]:
    keys = [f"email:{normalise_email(email)}"]
    if client_address:
        keys.append(f"ip:{client_address}")
    return keys


def _check_not_locked(keys: list[str], now: datetime) -> None:
    for key in keys:
        row = db.session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            seconds = int((row.locked_until - now).total_seconds()) + 1
            minutes = max(1, (seconds + 59) // 60)
            raise LoginThrottled(
                _("登录失败次数过多，请 %(minutes)s 分钟后再试。", minutes=minutes), seconds
            )


def _record_failure(keys: list[str], now: datetime) -> None:
    config = current_app.config
    window = timedelta(seconds=config["LOGIN_FAILURE_WINDOW_SECONDS"])
    for key in keys:
        row = db.session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
            db.session.add(row)
        if now - row.window_started_at > window:
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        # The per-address limit is looser: many people may share one office NAT.
        limit = config["LOGIN_MAX_FAILURES"] * (4 if key.startswith("ip:") else 1)
        if row.failures >= limit:
            row.locked_until = now + timedelta(seconds=config["LOGIN_LOCKOUT_SECONDS"])


def authenticate(email: str, password: str, client_address: str | None) -> User:
    """Return the user for these credentials or raise :class:`DomainError`.

    Failures are counted per e-mail address and per client address; past the limit every
    attempt, right or wrong, is refused until the lockout ends. The caller commits, so that
    failures are stored even though no login happens.
    """
    now = utcnow()
    keys = _throttle_keys(email, client_address)
    _check_not_locked(keys, now)
    user = find_user_by_email(email)
    # Hash even for unknown addresses so that timing does not reveal which accounts exist.
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not check_password_hash(stored, password) or user is None:
        _record_failure(keys, now)
        raise DomainError(_("邮箱或密码不正确。"))
    if not user.active:
        raise PermissionDenied(_("该账号已停用，请联系协会工作人员。"))
    throttle = db.session.get(LoginThrottle, keys[0])
    if throttle is not None:
        db.session.delete(throttle)
    user.last_login_at = now
    return user


_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def create_user(
    email: str,
    name: str,
    password: str,
    role: str,
    organisation_id: int | None = None,
) -> User:
    """Create an account; the caller commits. Raises :class:`DomainError` on bad input."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise DomainError(_("请输入有效的电子邮箱地址。"), field="email")
    if find_user_by_email(email) is not None:
        raise DomainError(_("该邮箱已注册。"), field="email")
    check_password_strength(password)
    if role in ("staff", "admin") and organisation_id is not None:
        raise DomainError(_("协会工作人员账号不属于任何机构。"), field="role")
    if role in ("org_admin", "org_member") and organisation_id is None:
        raise DomainError(_("机构账号必须属于一个机构。"), field="role")
    user = User(
        email=email,
        name=name.strip(),
        password_hash=hash_password(password),
        role=role,
        organisation_id=organisation_id,
    )
    db.session.add(user)
    db.session.flush()
    return user


def check_password_strength(password: str) -> None:
    """Refuse passwords that are short or made of one kind of character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            _("密码至少需要 %(n)s 个字符。", n=MIN_PASSWORD_LENGTH), field="password"
        )
    if password.isdigit() or password.isalpha():
        raise DomainError(_("密码需同时包含字母和数字或符号。"), field="password")
