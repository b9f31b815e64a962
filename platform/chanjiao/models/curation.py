"""Interest requests (申请对接), curated pairings and demonstration platforms (产教融合示范平台)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import UTCDateTime, utcnow
from .accounts import Organisation, User
from .postings import Demand, Programme

# The rows the live-pair index covers; literal SQL, so that an ON CONFLICT clause naming it
# matches the index exactly on SQLite (which cannot match a partial index with parameters).
LIVE_PAIR_WHERE = text("status IN ('pending', 'accepted')")


class InterestRequest(db.Model):
    """One side asks the other to connect over a (demand, programme) pair.

    An enterprise asks an institution about a programme for its demand, or an institution
    proposes its programme for a demand. The receiving organisation accepts or declines.
    """

    __tablename__ = "interest_request"
    # At most one live (pending or accepted) request per pair, even when two are sent at once.
    __table_args__ = (
        Index(
            "uq_interest_request_live_pair",
            "demand_id",
            "programme_id",
            unique=True,
            sqlite_where=LIVE_PAIR_WHERE,
            postgresql_where=LIVE_PAIR_WHERE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demand.id"), index=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"), index=True)
    from_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    to_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    # pending -> accepted | declined | withdrawn
    response: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    demand: Mapped[Demand] = relationship()
    programme: Mapped[Programme] = relationship()
    from_organisation: Mapped[Organisation] = relationship(foreign_keys=[from_organisation_id])
    to_organisation: Mapped[Organisation] = relationship(foreign_keys=[to_organisation_id])
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class Pairing(db.Model):
    """A (demand, programme) pair under curation: suggested by the engine or by both parties'
    accepted interest, then accepted or rejected by association staff.

    Staff decisions are the labelled pairs the ranker retrains on; the engine never changes a
    pairing that staff decided.
    """

    __tablename__ = "pairing"
    __table_args__ = (UniqueConstraint("demand_id", "programme_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demand.id"), index=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("programme.id"), index=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    suggested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="suggested", index=True)
    # suggested -> accepted | rejected (staff); accepted pairings may be flagged for re-review
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    review_note: Mapped[str] = mapped_column(Text, default="")

    demand: Mapped[Demand] = relationship()
    programme: Mapped[Programme] = relationship()
    decided_by: Mapped[User | None] = relationship()


class DemoPlatform(db.Model):
    """产教融合示范平台: curated accepted pairings with goals, notice, publication and outcomes."""

    __tablename__ = "demo_platform"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    goal_trainees: Mapped[int] = mapped_column(Integer, default=0)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    # draft -> notice (公示) -> published -> completed; an upheld objection returns to draft
    notice_days: Mapped[int] = mapped_column(Integer, default=7)
    notice_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notice_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When staff were told this round of notice had ended (the tick's deadline job): a value
    # before notice_started_at belongs to an earlier round.
    notice_end_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trainees_enrolled: Mapped[int | None] = mapped_column(Integer)
    trainees_certified: Mapped[int | None] = mapped_column(Integer)
    trainees_hired: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    pairings: Mapped[list[DemoPlatformPairing]] = relationship(
        back_populates="platform", cascade="all, delete-orphan"
    )
    participants: Mapped[list[DemoPlatformParticipant]] = relationship(
        back_populates="platform", cascade="all, delete-orphan"
    )
    objections: Mapped[list[Objection]] = relationship(
        back_populates="platform", order_by="Objection.created_at"
    )


class DemoPlatformPairing(db.Model):
    __tablename__ = "demo_platform_pairing"

    platform_id: Mapped[int] = mapped_column(
        ForeignKey("demo_platform.id", ondelete="CASCADE"), primary_key=True
    )
    pairing_id: Mapped[int] = mapped_column(ForeignKey("pairing.id"), primary_key=True)

    platform: Mapped[DemoPlatform] = relationship(back_populates="pairings")
    pairing: Mapped[Pairing] = relationship()


class DemoPlatformParticipant(db.Model):
    """An organisation taking part; it must confirm before the platform goes to notice."""

    __tablename__ = "demo_platform_participant"

    platform_id: Mapped[int] = mapped_column(
        ForeignKey("demo_platform.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    platform: Mapped[DemoPlatform] = relationship(back_populates="participants")
    organisation: Mapped[Organisation] = relationship()
    confirmed_by: Mapped[User | None] = relationship()


class Objection(db.Model):
    """A public objection (异议) raised during a platform's notice period."""

    __tablename__ = "objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("demo_platform.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    contact: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    # open -> upheld | dismissed
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    platform: Mapped[DemoPlatform] = relationship(back_populates="objections")
