"""In-app notifications: who is told what, and unread counts."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update

from ..common import get_by_id
from ..errors import NotFound
from ..extensions import db
from ..models import Notification, Organisation, User
from ..models._common import utcnow


def notify(
    users: Iterable[User], kind: str, title: str, body: str = "", link: str = ""
) -> list[Notification]:
    """Queue one notification per active user (the caller commits).

    ``title`` and ``body`` are stored as rendered text: write them in the recipients' language
    at the time (Chinese, the platform's language).
    """
    notes = [
        Notification(user_id=u.id, kind=kind, title=title[:200], body=body, link=link[:300])
        for u in users
        if u.active
    ]
    db.session.add_all(notes)
    return notes


def notify_organisation(
    organisation: Organisation, kind: str, title: str, body: str = "", link: str = ""
) -> list[Notification]:
    """Notify every active user of an organisation."""
    members = db.session.scalars(select(User).where(User.organisation_id == organisation.id))
    return notify(members, kind, title, body, link)


def notify_staff(kind: str, title: str, body: str = "", link: str = "") -> list[Notification]:
    """Notify every association staff and admin account."""
    staff = db.session.scalars(select(User).where(User.role.in_(("staff", "admin"))))
    return notify(staff, kind, title, body, link)


def unread_count(user: User) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(
            Notification.user_id == user.id, Notification.read_at.is_(None)
        )
    ) or 0


def inbox(user: User, limit: int = 100) -> list[Notification]:
    """The user's latest notifications, unread first."""
    return list(
        db.session.scalars(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.read_at.is_not(None), Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def mark_read(user: User, notification_id: int) -> Notification:
    """Mark one of the user's notifications read; another user's is NotFound."""
    note = get_by_id(Notification, notification_id)
    if note is None or note.user_id != user.id:
        raise NotFound("notification")
    if note.read_at is None:
        note.read_at = utcnow()
    return note


def mark_all_read(user: User) -> int:
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    return result.rowcount or 0
