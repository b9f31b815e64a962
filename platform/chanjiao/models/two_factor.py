"""Two-factor sign-in: one TOTP credential per user and their single-use recovery codes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import UTCDateTime, utcnow
from .accounts import User


class TwoFactorCredential(db.Model):
    """A user's authenticator secret; in use once ``confirmed_at`` is set.

    The base32 secret is stored as it is: the standard library has no cipher to encrypt it
    with, and a key derived from SECRET_KEY would sit on the same server as the database. It
    is shown only while the enrolment is unconfirmed and never rendered again afterwards.
    """

    __tablename__ = "two_factor_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), unique=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The 30-second step of the last accepted code: a code of that step or earlier is refused,
    # so a code seen over someone's shoulder cannot be used a second time.
    last_used_timestep: Mapped[int | None] = mapped_column(Integer)
    # The login waiting for its code (a random value also kept in that browser's session).
    pending_login_nonce: Mapped[str | None] = mapped_column(String(32))
    # Wrong codes since the last right one, of the pending login or of a signed-in session
    # (new recovery codes, turning it off). Counted here, not in the session cookie, so that
    # replaying an older cookie does not bring back spent attempts.
    wrong_codes: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[User] = relationship()

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(db.Model):
    """A single-use code that stands in for the authenticator; only its SHA-256 is stored."""

    __tablename__ = "two_factor_recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
