"""The outbox: effects written as rows in the change's unit of work, run after it commits.

A message is claimed with a conditional update (``UPDATE … WHERE state = 'pending' …``,
checking the row count), so however many runners poll — threads in each gunicorn worker, RQ
workers, a ``flask jobs`` command — exactly one runs it at a time. Its handler runs in a unit
of work that also marks it done. A failure rolls that back and schedules a retry with
exponential back-off; after ``max_attempts`` (or at once for a kind without a handler, or a
payload that is not an object) the message is ``failed`` and listed on the staff jobs page.
A failing message never blocks the others: runners take whatever is due, oldest first.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import OutboxMessage
from ..models._common import utcnow
from . import registry

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300  # a runner that dies mid-message loses its claim after this
BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600
DEFAULT_MAX_ATTEMPTS = 8  # 5 s, 10 s, 20 s … 320 s: about 11 minutes in all before giving up

_NEW = "chanjiao.outbox.new"  # messages added in this session's open transaction
_COMMITTED = "chanjiao.outbox.committed"  # ids committed, not yet handed to the queue

wakeup = threading.Event()  # set after a commit that added messages: the runner thread polls at once


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help (e.g. the payload names nothing)."""


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def enqueue(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    delay: timedelta | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> OutboxMessage | None:
    """Add an outbox message to the current unit of work.

    With ``key``, a message still pending under the same key absorbs this one (its payload
    is replaced, so it runs with the latest): jobs for one posting coalesce. Returns the new
    message, or None when it was coalesced.
    """
    if kind not in registry.HANDLERS:
        registry.load_all()
        if kind not in registry.HANDLERS:
            raise ValueError(f"no handler for outbox kind {kind!r}")
    session = db.session()
    if key is not None:
        existing = session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.key == key, OutboxMessage.state == "pending", OutboxMessage.attempts == 0
            ).limit(1)
        )
        if existing is not None:
            existing.payload = dict(payload or {})
            return None
    message = OutboxMessage(
        kind=kind,
        key=key,
        payload=dict(payload or {}),
        state="pending",
        attempts=0,
        max_attempts=max_attempts,
        available_at=utcnow() + (delay or timedelta(0)),
    )
    session.add(message)
    session.info.setdefault(_NEW, []).append(message)
    return message


@event.listens_for(Session, "after_flush_postexec")
def _remember_ids(session: Session, flush_context) -> None:
    for message in session.info.get(_NEW, ()):
        if message.id is not None:
            session.info.setdefault("chanjiao.outbox.flushed", set()).add(message.id)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    ids = session.info.pop("chanjiao.outbox.flushed", set())
    session.info.pop(_NEW, None)
    if not ids:
        return
    if current_app and current_app.config.get("JOBS_MODE") == "eager":
        _run_eagerly(sorted(ids))
        return
    session.info.setdefault(_COMMITTED, set()).update(ids)
    wakeup.set()


def _run_eagerly(ids: list[int]) -> None:
    # After any commit, the unit of work's or a test's own: in a fresh app context, whose
    # session is not the one that is finishing its commit.
    app = current_app._get_current_object()
    with app.app_context():
        try:
            for message_id in ids:
                run_one(message_id)
        finally:
            db.session.remove()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_NEW, None)
    session.info.pop("chanjiao.outbox.flushed", None)


def take_committed() -> list[int]:
    """Ids of messages committed by this session since the last call."""
    return sorted(db.session().info.pop(_COMMITTED, set()))


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def _claim(message_id: int, runner: str, now: datetime) -> bool:
    claimable = or_(
        (OutboxMessage.state == "pending") & (OutboxMessage.available_at <= now),
        (OutboxMessage.state == "running") & (OutboxMessage.locked_until < now),
    )
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, claimable)
        .values(
            state="running",
            attempts=OutboxMessage.attempts + 1,
            locked_by=runner,
            locked_until=now + timedelta(seconds=CLAIM_SECONDS),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def run_one(message_id: int, runner: str | None = None) -> str | None:
    """Claim and run one message; its new state, or None when someone else has it (or it is
    not due)."""
    from ..uow import unit_of_work

    runner = runner or runner_id()
    if not _claim(message_id, runner, utcnow()):
        db.session.rollback()
        return None
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    kind, payload, attempts = message.kind, message.payload, message.attempts
    registry.load_all()
    fn = registry.HANDLERS.get(kind)
    try:
        if fn is None:
            raise PermanentFailure(f"no handler for outbox kind {kind!r}")
        if not isinstance(payload, dict):
            raise PermanentFailure(f"payload is a {type(payload).__name__}, not an object")
        with unit_of_work():
            fn(payload)
            done = db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id, OutboxMessage.locked_by == runner)
                .values(state="done", finished_at=utcnow(), locked_until=None, last_error="")
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:
                # Our claim expired and another runner took the message: let its run count.
                raise _ClaimLost()
        return "done"
    except _ClaimLost:
        return None
    except Exception as error:  # noqa: BLE001 - any failure is recorded on the message
        db.session.rollback()
        permanent = isinstance(error, PermanentFailure) or fn is None
        state = "failed" if permanent or attempts >= message.max_attempts else "pending"
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        log.warning("outbox message %s (%s) attempt %s: %s", message_id, kind, attempts, detail)
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.locked_by == runner)
            .values(
                state=state,
                available_at=utcnow() + backoff(attempts),
                locked_until=None,
                last_error=detail[:4000],
                finished_at=utcnow() if state == "failed" else None,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return state


class _ClaimLost(Exception):
    pass


def due_ids(limit: int = 100, now: datetime | None = None) -> list[int]:
    """Messages that may be claimed now, oldest first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(OutboxMessage.id)
            .where(
                or_(
                    (OutboxMessage.state == "pending") & (OutboxMessage.available_at <= now),
                    (OutboxMessage.state == "running") & (OutboxMessage.locked_until < now),
                )
            )
            .order_by(OutboxMessage.available_at, OutboxMessage.id)
            .limit(limit)
        )
    )


def run_pending(limit: int = 1000) -> int:
    """Run due messages until none is left (or ``limit`` ran); returns how many ran here."""
    ran = 0
    runner = runner_id()
    while ran < limit:
        ids = due_ids(min(100, limit - ran))
        db.session.rollback()  # end the read transaction before the claims
        if not ids:
            break
        progressed = False
        for message_id in ids:
            if run_one(message_id, runner) is not None:
                ran += 1
                progressed = True
        if not progressed:
            break
    return ran


def counts() -> dict[str, int]:
    rows = db.session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
    return {state: n for state, n in rows}


def mode() -> str:
    """How committed messages reach a runner: ``rq`` with a Redis URL, ``thread`` (the
    in-process runner of each gunicorn worker), ``eager`` (at once, in the committing
    thread: tests and one-off commands) or ``manual`` (only ``flask jobs run``)."""
    configured = current_app.config.get("JOBS_MODE")
    if configured:
        return configured
    return "rq" if current_app.config.get("JOBS_REDIS_URL") or current_app.config.get("REDIS_URL") else "thread"
