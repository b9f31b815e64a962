"""Two-factor sign-in: TOTP enrolment, code checks with replay protection, recovery codes and
the admin's reset.

Required for association staff and admins (they decide ratings, cases and sanctions), optional
for organisation users. Services flush and audit; the views commit.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp
import segno
from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select

from ..common import change_if, clean_text
from ..errors import DomainError, NotFound, PermissionDenied
from ..extensions import db
from ..models import RecoveryCode, TwoFactorCredential, User
from ..models._common import utcnow
from ..models.audit import record

ISSUER = "产教融合对接平台"
RECOVERY_CODE_COUNT = 10
PENDING_LOGIN_SECONDS = 5 * 60
MAX_CODE_FAILURES = 5
REQUIRED_ROLES = ("staff", "admin")
MAX_REASON = 500
# Authenticator clocks drift: the step before and after the current one are accepted too.
VALID_WINDOW = 1


class WrongCode(DomainError):
    """The code is wrong, expired or already used."""


@dataclass(frozen=True)
class CodeCheck:
    """What a successful code check used: a TOTP step or a recovery code."""

    kind: str  # "totp" | "recovery"
    recovery_codes_left: int | None = None


def is_required(user: User) -> bool:
    """Whether ``user``'s role must sign in with a second factor."""
    return user.role in REQUIRED_ROLES


def credential_of(user: User) -> TwoFactorCredential | None:
    return db.session.scalar(
        select(TwoFactorCredential).where(TwoFactorCredential.user_id == user.id)
    )


def confirmed_credential(user: User) -> TwoFactorCredential | None:
    credential = credential_of(user)
    return credential if credential is not None and credential.is_confirmed else None


def session_marker(credential: TwoFactorCredential) -> str:
    """A value the session keeps once it passed this credential's check. A new enrolment has a
    new secret, so sessions that passed an earlier one no longer count; the user id in front
    tells a marker of this user from one left by someone who logged out in the same browser."""
    digest = hashlib.sha256(f"two-factor-session:{credential.secret}".encode()).hexdigest()[:24]
    return f"{credential.user_id}:{digest}"


# --- Enrolment ---------------------------------------------------------------------------------


def begin_enrolment(user: User) -> TwoFactorCredential:
    """The user's unconfirmed credential, created with a fresh secret if there is none.

    Raises :class:`DomainError` when two-factor sign-in is already on.
    """
    credential = credential_of(user)
    if credential is not None and credential.is_confirmed:
        raise DomainError(_("两步验证已开启。"))
    if credential is None:
        credential = TwoFactorCredential(user_id=user.id, secret=pyotp.random_base32())
        db.session.add(credential)
        db.session.flush()
    return credential


def provisioning_uri(user: User, credential: TwoFactorCredential) -> str:
    return pyotp.TOTP(credential.secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str, title: str) -> str:
    """The ``otpauth://`` URI as inline SVG markup: no script and no style attribute, so that
    a content security policy without inline styles still shows it."""
    return segno.make(uri, error="m").svg_inline(
        scale=4, border=2, dark="#000", light="#fff", svgclass="qr-code", lineclass="qr-line",
        title=title,
    )


def confirm_enrolment(user: User, code: str) -> tuple[TwoFactorCredential, list[str]]:
    """Turn two-factor sign-in on with a first code from the authenticator; return the
    credential and the new recovery codes (shown once, stored hashed)."""
    credential = credential_of(user)
    if credential is None or credential.is_confirmed:
        raise DomainError(_("没有待确认的两步验证设置，请刷新页面后重试。"))
    _check_totp(credential, code)
    if not change_if(credential, TwoFactorCredential.confirmed_at.is_(None), confirmed_at=utcnow()):
        raise DomainError(_("两步验证已开启。"))
    codes = _new_recovery_codes(user)
    record(user, "two_factor.enrol", user, codes=len(codes))
    return credential, codes


def regenerate_recovery_codes(user: User, code: str) -> list[str]:
    """Replace the user's recovery codes; needs a current authenticator code."""
    credential = _require_confirmed(user)
    _check_totp(credential, code)
    codes = _new_recovery_codes(user)
    record(user, "two_factor.recovery_codes_regenerated", user, codes=len(codes))
    return codes


def disable(user: User, code: str) -> None:
    """Turn two-factor sign-in off (organisation users only); needs a current code."""
    if is_required(user):
        raise PermissionDenied(_("协会工作人员和管理员必须使用两步验证，不能关闭。"))
    credential = _require_confirmed(user)
    _check_totp(credential, code)
    _remove(user)
    record(user, "two_factor.disable", user)


def admin_reset(actor: User, email: str, reason: str) -> User:
    """An admin removes another user's two-factor sign-in (a lost phone); staff must enrol
    again at their next login. Raises :class:`DomainError` saying why not."""
    if actor.role != "admin":
        raise PermissionDenied(_("只有系统管理员可以重置两步验证。"))
    reason = clean_text(reason or "").strip()
    if not reason:
        raise DomainError(_("请填写重置原因。"), field="reason")
    if len(reason) > MAX_REASON:
        raise DomainError(_("原因不能超过 %(n)s 个字符。", n=MAX_REASON), field="reason")
    email = clean_text(email or "").strip().lower()
    user = db.session.scalar(select(User).where(func.lower(User.email) == email)) if email else None
    if user is None:
        raise NotFound(_("没有使用该邮箱的用户。"), field="email")
    if user.id == actor.id:
        raise DomainError(_("不能重置自己的两步验证，请联系另一位系统管理员。"), field="email")
    if confirmed_credential(user) is None:
        raise DomainError(_("该用户尚未开启两步验证，无需重置。"), field="email")
    _remove(user)
    record(actor, "two_factor.reset", user, reason=reason, email=user.email)
    return user


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(
        select(func.count()).select_from(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    ) or 0


def _require_confirmed(user: User) -> TwoFactorCredential:
    credential = confirmed_credential(user)
    if credential is None:
        raise DomainError(_("两步验证尚未开启。"))
    return credential


def _remove(user: User) -> None:
    db.session.execute(
        delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(TwoFactorCredential).where(TwoFactorCredential.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in clean_text(code or "").lower() if ch.isalnum())


def _hash_recovery_code(code: str) -> str:
    return hashlib.sha256(normalise_recovery_code(code).encode("utf-8")).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    db.session.execute(
        delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    codes = []
    for _n in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(6)  # 48 bits, written as xxxx-xxxx-xxxx
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=_hash_recovery_code(code)) for code in codes
    )
    db.session.flush()
    return codes


# --- Code checks -------------------------------------------------------------------------------


def _check_totp(credential: TwoFactorCredential, code: str) -> None:
    """Accept a 6-digit code of the current step (or a neighbour) that is newer than the last
    one accepted; raise :class:`WrongCode` otherwise."""
    code = "".join(clean_text(code or "").split())
    if len(code) != 6 or not code.isdigit():
        raise WrongCode(_("请输入身份验证器显示的 6 位数字验证码。"), field="code")
    totp = pyotp.TOTP(credential.secret)
    now_step = int(time.time()) // totp.interval
    matched = None
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            matched = step
    if matched is None:
        raise WrongCode(_("验证码不正确或已过期。"), field="code")
    # Decided by the database: of two logins with the same code at once, only one gets in.
    if not change_if(
        credential,
        or_(
            TwoFactorCredential.last_used_timestep.is_(None),
            TwoFactorCredential.last_used_timestep < matched,
        ),
        last_used_timestep=matched,
        wrong_codes=0,
    ):
        raise WrongCode(_("该验证码已经使用过，请等待身份验证器显示新的验证码。"), field="code")


def _use_recovery_code(user: User, code: str) -> int:
    """Spend one recovery code; return how many are left. Raises :class:`WrongCode`."""
    row = db.session.scalar(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash_recovery_code(code)
        )
    )
    if row is None or not change_if(row, RecoveryCode.used_at.is_(None), used_at=utcnow()):
        raise WrongCode(_("恢复码不正确或已使用。"), field="code")
    left = recovery_codes_left(user)
    record(user, "two_factor.recovery_code_used", user, codes_left=left)
    return left


def check_code(user: User, code: str) -> CodeCheck:
    """Check a login's second step: a 6-digit authenticator code, or else a recovery code."""
    credential = _require_confirmed(user)
    compact = "".join(clean_text(code or "").split())
    if compact.isdigit() and len(compact) <= 8:
        _check_totp(credential, compact)
        return CodeCheck("totp")
    if not normalise_recovery_code(compact):
        raise WrongCode(_("请输入验证码或恢复码。"), field="code")
    return CodeCheck("recovery", _use_recovery_code(user, compact))


# --- The login waiting for its code ------------------------------------------------------------


def open_pending_login(user: User) -> str:
    """Start the login's code step; return the nonce the browser's session keeps. A newer
    login of the same user replaces an older one waiting for its code."""
    credential = _require_confirmed(user)
    nonce = secrets.token_hex(16)
    credential.pending_login_nonce = nonce
    credential.wrong_codes = 0
    db.session.flush()
    return nonce


def pending_login_open(user: User, nonce: str) -> bool:
    credential = confirmed_credential(user)
    return (
        credential is not None
        and credential.pending_login_nonce is not None
        and hmac.compare_digest(credential.pending_login_nonce, nonce)
    )


def count_failure(user: User, nonce: str) -> int:
    """Add a wrong code to the pending login; return the attempts left (0: the login ended)."""
    credential = _require_confirmed(user)
    # One statement, so that wrong codes sent at once are all counted.
    change_if(
        credential,
        TwoFactorCredential.pending_login_nonce == nonce,
        wrong_codes=TwoFactorCredential.wrong_codes + 1,
    )
    if credential.pending_login_nonce != nonce:
        return 0
    left = MAX_CODE_FAILURES - credential.wrong_codes
    if left <= 0:
        close_pending_login(user)
        return 0
    return left


def count_wrong_code(user: User) -> int:
    """Add a wrong code sent by a signed-in session; return the attempts left. At 0 the view
    ends the session: guessing codes with a stolen session must not go on for ever."""
    credential = _require_confirmed(user)
    change_if(credential, wrong_codes=TwoFactorCredential.wrong_codes + 1)
    left = MAX_CODE_FAILURES - credential.wrong_codes
    if left <= 0:
        credential.wrong_codes = 0
        db.session.flush()
        record(user, "two_factor.too_many_wrong_codes", user)
        return 0
    return left


def close_pending_login(user: User) -> None:
    credential = credential_of(user)
    if credential is not None:
        credential.pending_login_nonce = None
        credential.wrong_codes = 0
        db.session.flush()
