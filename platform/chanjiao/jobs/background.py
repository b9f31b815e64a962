"""Background threads of a gunicorn worker (started by ``gunicorn.conf.py`` after the fork,
never in the master, which must never load the encoder).

- the outbox runner (``thread`` mode only): runs due messages, woken at once by a commit in
  this process, polling otherwise, so messages committed by another worker or a command are
  picked up within ``JOBS_POLL_SECONDS``; claims go through the database, so the workers'
  runners never run one message twice at a time;
- the ticker (every mode): ``tick()`` every minute; the lease lets one worker act;
- the live catalogue: applies catalogue changes in place as soon as a request sees one
  (or within a second) and refreshes its statistics when due; requests keep being served
  from the catalogue as it is meanwhile.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

from .. import availability
from ..extensions import db
from . import outbox, scheduler

log = logging.getLogger(__name__)

CATALOGUE_POLL_SECONDS = 1.0
_started: dict[int, list[threading.Thread]] = {}
_stop = threading.Event()


def loop(
    app: Flask, name: str, body: Callable[[], None], wait: Callable[[], None], stop: threading.Event = _stop
) -> None:
    """Run ``body`` in a fresh app context, then ``wait``, until ``stop`` is set; a failure is
    logged and the loop goes on."""
    while not stop.is_set():
        try:
            with app.app_context():
                try:
                    body()
                finally:
                    db.session.remove()
        except Exception as error:  # noqa: BLE001 - a background thread must never die
            outage = availability.classify(error)
            if outage is not None:
                # An outage is expected to pass: one line, not a stack trace every 5 seconds.
                log.warning("background %s: database %s (%s); retrying",
                            name, outage, availability.reason(error))
            else:
                log.exception("background %s failed; retrying", name)
            stop.wait(5)
        wait()


def start(app: Flask) -> list[threading.Thread]:
    """Start this process's background threads once (idempotent)."""
    if _started.get(id(app)):
        return _started[id(app)]
    with app.app_context():
        current_mode = outbox.mode()
    poll = float(app.config.get("JOBS_POLL_SECONDS", 2))
    threads = []

    def wait_for_work() -> None:
        outbox.wakeup.wait(poll)
        outbox.wakeup.clear()

    if current_mode == "thread":
        threads.append(threading.Thread(
            target=loop, args=(app, "outbox runner", outbox.run_pending, wait_for_work),
            name="chanjiao-outbox", daemon=True,
        ))
    threads.append(threading.Thread(
        target=loop, args=(app, "ticker", scheduler.tick, lambda: _stop.wait(scheduler.TICK_INTERVAL_SECONDS)),
        name="chanjiao-ticker", daemon=True,
    ))

    from .. import matchmaking

    def wait_for_catalogue_change() -> None:
        # Woken by a request that saw a newer change; polls anyway, so a change is applied
        # within CATALOGUE_POLL_SECONDS even on a worker no request reaches.
        matchmaking.catalogue_wakeup.wait(CATALOGUE_POLL_SECONDS)
        matchmaking.catalogue_wakeup.clear()

    app.extensions[matchmaking.BACKGROUND_UPKEEP] = True
    threads.append(threading.Thread(
        target=loop, args=(app, "catalogue", matchmaking.update_catalogue, wait_for_catalogue_change),
        name="chanjiao-catalogue", daemon=True,
    ))
    for thread in threads:
        thread.start()
    _started[id(app)] = threads
    return threads
