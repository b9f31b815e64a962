"""Match alerts (有合适的新项目/新需求时通知我): an organisation asks to be told when a newly
published posting reaches the engine's match threshold for one of its own postings."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ._common import UTCDateTime, utcnow
from .accounts import Organisation, User
from .postings import Demand, Programme

_ACTIVE = "cancelled_at IS NULL"


class MatchAlert(db.Model):
    """A standing subscription on one posting.

    An enterprise subscribes on one of its demands (``demand_id``: tell us about new
    programmes); an institution on one of its programmes (``programme_id``: new demands).
    Exactly one of the two is set. At most one active (not cancelled) alert per posting, even
    when the button is pressed twice at once.
    """

    __tablename__ = "match_alert"
    __table_args__ = (
        CheckConstraint("(demand_id IS NULL) <> (programme_id IS NULL)", name="one_posting"),
        Index("uq_match_alert_active_demand", "demand_id", unique=True,
              sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
        Index("uq_match_alert_active_programme", "programme_id", unique=True,
              sqlite_where=text(_ACTIVE), postgresql_where=text(_ACTIVE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int | None] = mapped_column(ForeignKey("demand.id"))
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("programme.id"))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    demand: Mapped[Demand | None] = relationship()
    programme: Mapped[Programme | None] = relationship()
    organisation: Mapped[Organisation] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    cancelled_by: Mapped[User | None] = relationship(foreign_keys=[cancelled_by_id])

    @property
    def active(self) -> bool:
        return self.cancelled_at is None

    def __repr__(self) -> str:
        target = f"demand {self.demand_id}" if self.demand_id else f"programme {self.programme_id}"
        return f"<MatchAlert {self.id} {target}{'' if self.active else ' cancelled'}>"


class MatchAlertDelivery(db.Model):
    """One posting an alert has reported: each (alert, posting) is notified once only."""

    __tablename__ = "match_alert_delivery"
    __table_args__ = (
        UniqueConstraint("alert_id", "found_programme_id", name="uq_match_alert_delivery_programme"),
        UniqueConstraint("alert_id", "found_demand_id", name="uq_match_alert_delivery_demand"),
        CheckConstraint("(found_demand_id IS NULL) <> (found_programme_id IS NULL)", name="one_posting"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("match_alert.id"), index=True)
    # The new programme (an alert on a demand) or the new demand (an alert on a programme).
    found_programme_id: Mapped[int | None] = mapped_column(ForeignKey("programme.id"))
    found_demand_id: Mapped[int | None] = mapped_column(ForeignKey("demand.id"))
    probability: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    alert: Mapped[MatchAlert] = relationship()
