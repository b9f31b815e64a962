"""Background work: the outbox, scheduler leases and runs, and the live catalogue's change log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._common import UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
_Id = BigInteger().with_variant(Integer(), "sqlite")


class OutboxMessage(db.Model):
    """An effect outside the database, written in the unit of work of the change that causes
    it and run after that change commits (at least once; handlers are idempotent).

    ``state``: pending (waiting, possibly for ``available_at`` after a failure), running
    (claimed by ``locked_by`` until ``locked_until``; a crashed runner's claim expires),
    done, failed (gave up after ``max_attempts``, or no handler: shown to staff).
    ``key`` coalesces: while a message with the same key is pending, another is not added.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_ready", "state", "available_at"),
        Index("ix_outbox_message_key_state", "key", "state"),
    )

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(60))
    key: Mapped[str | None] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(80))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobLease(db.Model):
    """Who may run the scheduler now: one row per lease name, taken by a conditional update."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduledRun(db.Model):
    """When each periodic job last ran and is next due (the tick catches up after downtime)."""

    __tablename__ = "scheduled_run"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    runs: Mapped[int] = mapped_column(Integer, default=0)


class CatalogueChange(db.Model):
    """One change the live catalogue must apply; ``id`` is the catalogue's monotonic version.

    ``kind``: programme | demand (``entity_id`` changed, joined or left), standing (an
    organisation's status), model (the active ranker), all (rebuild). Workers read
    ``max(id)`` once per request and apply the rows after their own version.
    """

    __tablename__ = "catalogue_change"

    id: Mapped[int] = mapped_column(_Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
