"""Audit log: who did what to which object, when and why."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import UTCDateTime, utcnow
from .accounts import User


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)  # e.g. "organisation.approve"
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    actor: Mapped[User | None] = relationship()


def record(
    actor: User | None,
    action: str,
    obj: Any,
    reason: str = "",
    **details: Any,
) -> AuditLog:
    """Add an audit entry for ``obj`` to the session (the caller commits)."""
    entry = AuditLog(
        actor_id=actor.id if actor is not None else None,
        action=action,
        object_type=type(obj).__tablename__,
        object_id=obj.id,
        reason=reason,
        details=details,
    )
    db.session.add(entry)
    return entry
