"""Work that runs after the commit: the outbox, the job queue and the scheduler.

``enqueue()`` writes an outbox message into the current unit of work; when the unit commits,
:func:`dispatch_committed` hands the new messages to the queue of the configured mode (see
:func:`chanjiao.jobs.outbox.mode`). ``flask jobs tick`` / ``worker`` / ``run`` / ``status``
are the commands.
"""
from __future__ import annotations

import logging

from .outbox import enqueue, mode, run_one, run_pending, take_committed
from .registry import handler, periodic
from .scheduler import tick

log = logging.getLogger(__name__)

__all__ = ["dispatch_committed", "enqueue", "handler", "periodic", "run_one", "run_pending", "tick"]


def dispatch_committed() -> None:
    """Hand the messages just committed by this session to the queue. Never raises: a
    message that could not be pushed is still in the outbox, and the tick pushes it again."""
    ids = take_committed()
    if not ids:
        return
    try:
        current = mode()
        if current == "rq":
            from .rq_queue import push

            push(ids)
        # thread: the committing session's after_commit hook has woken the runner already.
    except Exception:  # noqa: BLE001 - the user's change is committed; the tick retries
        log.exception("could not dispatch outbox messages %s; the tick will", ids)
