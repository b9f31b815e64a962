"""The queue's own periodic jobs."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from ..extensions import db
from ..models import LoginThrottle, OutboxMessage
from ..models._common import utcnow
from . import outbox
from .registry import handler, periodic

DONE_KEPT_DAYS = 14


@handler("jobs.noop")
def noop(payload: dict) -> None:
    """Does nothing: lets staff and tests check that the queue runs."""
    if payload.get("fail"):
        raise RuntimeError(str(payload["fail"]))


@periodic("outbox.redispatch", every=timedelta(seconds=30))
def redispatch() -> None:
    """Hand due messages (retries whose back-off ended, pushes lost with Redis, expired
    claims) to the queue again."""
    ids = outbox.due_ids(limit=500)
    if not ids:
        return
    if outbox.mode() == "rq":
        from .rq_queue import push

        push(ids)
    else:
        outbox.wakeup.set()


@periodic("outbox.purge", every=timedelta(hours=6))
def purge_done() -> None:
    """Drop messages done more than two weeks ago (failed ones stay for staff)."""
    cutoff = utcnow() - timedelta(days=DONE_KEPT_DAYS)
    db.session.execute(
        delete(OutboxMessage).where(OutboxMessage.state == "done", OutboxMessage.finished_at < cutoff)
    )


@periodic("auth.purge_login_throttle", every=timedelta(hours=1))
def purge_login_throttle() -> None:
    """Drop login-failure counters whose window and lockout are long over."""
    cutoff = utcnow() - timedelta(days=1)
    db.session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.window_started_at < cutoff,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < cutoff),
        )
    )
