"""``flask jobs …``: run the scheduler and the queue from the command line, cron or systemd."""
from __future__ import annotations

import threading
import time

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from . import outbox, registry, scheduler
from .background import loop

jobs_group = AppGroup("jobs", help="Background work: the outbox queue and the scheduler.")


@jobs_group.command("tick")
@click.option("--job", "only", default=None, help="Run this periodic job now, due or not.")
def tick_command(only: str | None) -> None:
    """Run the periodic jobs that are due (safe to start from cron every minute)."""
    registry.load_all()
    if only is not None and only not in registry.PERIODIC:
        raise click.BadParameter(f"no periodic job {only!r}; known: {', '.join(sorted(registry.PERIODIC))}")
    report = scheduler.tick(only=only)
    if not report.acquired:
        click.echo("another tick holds the lease; nothing done")
        return
    for name in report.ran:
        click.echo(f"ran {name}")
    for name, error in report.failed.items():
        click.echo(f"FAILED {name}: {error}", err=True)
    if report.failed:
        raise SystemExit(1)


@jobs_group.command("run")
@click.option("--limit", default=10000, show_default=True, type=click.IntRange(1))
def run_command(limit: int) -> None:
    """Run every outbox message that is due now, then exit."""
    ran = outbox.run_pending(limit=limit)
    click.echo(f"ran {ran} messages; {_summary()}")


@jobs_group.command("status")
def status_command() -> None:
    """Outbox counts by state, and the failed messages."""
    from sqlalchemy import select

    from ..models import OutboxMessage, ScheduledRun

    click.echo(_summary())
    for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.state == "failed").order_by(OutboxMessage.id)):
        click.echo(f"failed #{m.id} {m.kind} after {m.attempts} attempts: {m.last_error.splitlines()[-1] if m.last_error else ''}")
    for run in db.session.scalars(select(ScheduledRun).order_by(ScheduledRun.name)):
        click.echo(f"job {run.name}: last {run.last_run_at}, next {run.next_due_at}{', ERROR' if run.last_error else ''}")


def _summary() -> str:
    counts = outbox.counts()
    return ", ".join(f"{state} {counts.get(state, 0)}" for state in ("pending", "running", "done", "failed"))


@jobs_group.command("worker")
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
def worker_command(burst: bool) -> None:
    """Run outbox messages as they come, and tick every minute.

    With a Redis URL (``CHANJIAO_REDIS_URL``) this is an RQ SimpleWorker (no fork: the e5
    engine does not survive one); otherwise it polls the database.
    """
    app = current_app._get_current_object()
    stop = threading.Event()

    def start_ticker() -> None:
        threading.Thread(
            target=loop, args=(app, "ticker", scheduler.tick, lambda: stop.wait(scheduler.TICK_INTERVAL_SECONDS), stop),
            daemon=True, name="chanjiao-ticker",
        ).start()

    if outbox.mode() == "rq":
        from rq import SimpleWorker

        from .rq_queue import queue

        class AppWorker(SimpleWorker):
            # Each job in a fresh app context: its own session, nothing carried over.
            def execute_job(self, *args, **kwargs):  # noqa: ANN002, ANN003 - RQ's signature
                with app.app_context():
                    try:
                        return super().execute_job(*args, **kwargs)
                    finally:
                        db.session.remove()

        q = queue()
        if burst:
            scheduler.tick()
            AppWorker([q], connection=q.connection).work(burst=True)
            return
        start_ticker()
        try:
            AppWorker([q], connection=q.connection).work()
        finally:
            stop.set()
        return

    if burst:
        scheduler.tick()
        click.echo(f"ran {outbox.run_pending()} messages")
        return
    start_ticker()
    poll = float(app.config.get("JOBS_POLL_SECONDS", 2))
    click.echo(f"polling the outbox every {poll:g} s (no Redis configured)")
    try:
        while True:
            if not outbox.run_pending():
                time.sleep(poll)
            db.session.remove()
    except KeyboardInterrupt:
        stop.set()
