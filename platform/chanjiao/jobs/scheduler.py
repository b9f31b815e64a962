"""The scheduler: ``tick()`` runs every periodic job that is due, once, under a lease.

The lease is a row of ``job_lease`` taken by a conditional update (or by inserting it, which
the primary key lets only one do), so ticks started at the same moment by cron, by each
gunicorn worker's thread and by ``flask jobs worker`` act once: the others return at once.
A job overdue after downtime runs once, not once per missed period; each job finds
everything that became due itself (deadlines are queries, not timers). A job that fails is
recorded on its ``scheduled_run`` row and retried at the next tick; it never stops the others.
"""
from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import JobLease, ScheduledRun
from ..models._common import utcnow
from . import registry
from .outbox import runner_id

log = logging.getLogger(__name__)

TICK_LEASE = "tick"
LEASE_SECONDS = 600  # longer than any tick should take; a crashed ticker's lease expires
TICK_INTERVAL_SECONDS = 60  # the background threads' period: a due job acts within about a minute


@dataclass
class TickReport:
    acquired: bool
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_due: list[str] = field(default_factory=list)


def acquire(name: str, holder: str, seconds: int = LEASE_SECONDS, now: datetime | None = None) -> bool:
    """Take the lease ``name`` for ``seconds`` unless someone else holds it unexpired."""
    now = now or utcnow()
    expires = now + timedelta(seconds=seconds)
    result = db.session.execute(
        update(JobLease)
        .where(JobLease.name == name, or_(JobLease.expires_at < now, JobLease.holder == holder))
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        db.session.commit()
        return True
    if db.session.get(JobLease, name) is not None:
        db.session.rollback()
        return False
    try:
        db.session.add(JobLease(name=name, holder=holder, expires_at=expires))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False


def release(name: str, holder: str) -> None:
    db.session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def tick(now: datetime | None = None, only: str | None = None) -> TickReport:
    """Run the periodic jobs that are due (all of them, or ``only`` that one, due or not)."""
    from ..uow import unit_of_work

    registry.load_all()
    holder = runner_id()
    db.session.rollback()
    if not acquire(TICK_LEASE, holder, now=now):
        return TickReport(acquired=False)
    report = TickReport(acquired=True)
    try:
        for job in sorted(registry.PERIODIC.values(), key=lambda j: j.name):
            if only is not None and job.name != only:
                continue
            started = now or utcnow()
            row = db.session.get(ScheduledRun, job.name)
            if only is None and row is not None and row.next_due_at > started:
                report.not_due.append(job.name)
                db.session.rollback()
                continue
            error = ""
            try:
                with unit_of_work():
                    job.run()
            except Exception as exc:  # noqa: BLE001 - recorded, retried at the next tick
                log.exception("periodic job %s failed", job.name)
                error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:4000]
                report.failed[job.name] = error
            else:
                report.ran.append(job.name)
            with unit_of_work():
                row = db.session.get(ScheduledRun, job.name) or ScheduledRun(name=job.name, runs=0)
                row.last_run_at = started
                row.runs = (row.runs or 0) + 1
                row.last_error = error
                # After a failure, try again at the next tick rather than a whole period later.
                row.next_due_at = started + (timedelta(0) if error else job.every)
                db.session.add(row)
    finally:
        release(TICK_LEASE, holder)
    return report
