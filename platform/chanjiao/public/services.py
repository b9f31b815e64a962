"""Read-only queries behind the public pages."""
from __future__ import annotations

from sqlalchemy import func, select

from ..extensions import db
from ..models import Demand, Organisation, Programme


def live_counts() -> dict[str, int]:
    """Counts shown on the home page: approved organisations and live postings."""

    def count(stmt) -> int:
        return db.session.scalar(stmt) or 0

    approved = Organisation.status == "approved"
    return {
        "enterprises": count(
            select(func.count(Organisation.id)).where(approved, Organisation.kind == "enterprise")
        ),
        "institutions": count(
            select(func.count(Organisation.id)).where(approved, Organisation.kind == "institution")
        ),
        "open_demands": count(select(func.count(Demand.id)).where(Demand.status == "open")),
        "published_programmes": count(
            select(func.count(Programme.id)).where(Programme.status == "published")
        ),
    }
