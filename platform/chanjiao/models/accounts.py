"""Organisations, users, invitations, password resets and login throttling."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import UTCDateTime, utcnow

if TYPE_CHECKING:
    from .postings import Demand, Programme


class Organisation(db.Model):
    """An enterprise or a training institution, admitted by association staff."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # choices.ORG_KINDS
    name: Mapped[str] = mapped_column(String(100))
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    district: Mapped[str] = mapped_column(String(20), index=True)  # choices.CHAOYANG_AREAS
    address: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(40))  # enterprises: choices.INDUSTRIES
    category: Mapped[str | None] = mapped_column(String(40))  # institutions: INSTITUTION_CATEGORIES
    description: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str] = mapped_column(String(50))
    contact_phone: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    # Who decided is in the audit log (action "organisation.<decision>"), with every earlier
    # decision; a foreign key to user here would make organisation and user depend on each other.
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    member_since: Mapped[date | None] = mapped_column(Date)
    founding_member: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    users: Mapped[list[User]] = relationship(
        back_populates="organisation", foreign_keys="User.organisation_id"
    )
    demands: Mapped[list[Demand]] = relationship(back_populates="organisation")
    programmes: Mapped[list[Programme]] = relationship(back_populates="organisation")

    @property
    def is_approved(self) -> bool:
        return self.status == "approved"

    @property
    def can_publish(self) -> bool:
        """Only approved organisations may make postings public."""
        return self.status == "approved"

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name!r} {self.status}>"


class User(UserMixin, db.Model):
    """A person who logs in: a member of one organisation, or association staff."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))  # choices.ROLES
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept in every session at login and compared on each request: raising it (logout, a new
    # password, a new role, deactivation, the organisation's suspension) ends every copy of
    # every session of this user at once, on the server side.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Self-registration proves the address by a link first; invited, staff-made and demo
    # accounts start confirmed. Unconfirmed (None): no login.
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation | None] = relationship(
        back_populates="users", foreign_keys=[organisation_id]
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_staff(self) -> bool:
        """Association staff or admin."""
        return self.role in ("staff", "admin")

    @property
    def is_org_admin(self) -> bool:
        return self.role == "org_admin"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class Invitation(db.Model):
    """A one-time code with which an organisation admin brings a colleague in."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the code
    email: Mapped[str | None] = mapped_column(String(254))  # if set, only this address may use it
    role: Mapped[str] = mapped_column(String(20), default="org_member")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()


class PasswordResetToken(db.Model):
    """A one-time reset link issued by staff or the organisation admin (no mail server)."""

    __tablename__ = "password_reset_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class LoginThrottle(db.Model):
    """Failed-login counter per key (an e-mail address or a client address).

    Kept in the database so that every gunicorn worker sees the same count.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
