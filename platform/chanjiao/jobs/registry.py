"""What the job queue knows how to run: outbox handlers by kind, periodic jobs by name.

Each domain registers its own (``@handler("mail.send")``, ``@periodic("…", every=…)``) in a
``jobs`` module that :func:`load_all` imports, so the queue never imports a domain itself.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

Handler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta
    run: Callable[[], None]
    doc: str


HANDLERS: dict[str, Handler] = {}
PERIODIC: dict[str, Periodic] = {}

# Modules whose import registers handlers and periodic jobs.
JOB_MODULES = (
    "chanjiao.jobs.builtin",
    "chanjiao.mail",
    "chanjiao.catalogue_jobs",
    "chanjiao.platforms.jobs",
)


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``fn(payload)`` as the handler of outbox messages of ``kind``.

    A handler runs inside its own unit of work, which also marks the message done: its
    database writes happen exactly once; effects outside the database at least once, so
    they must be idempotent (or harmless when repeated, like a re-sent e-mail).
    """

    def register(fn: Handler) -> Handler:
        if kind in HANDLERS and HANDLERS[kind] is not fn:
            raise RuntimeError(f"two handlers for outbox kind {kind!r}")
        HANDLERS[kind] = fn
        return fn

    return register


def periodic(name: str, every: timedelta) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register ``fn()`` to be run by the tick at most once per ``every`` (once when overdue,
    however long the scheduler was down: the job itself finds everything that became due)."""

    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PERIODIC[name] = Periodic(name, every, fn, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "")
        return fn

    return register


_loaded = False


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    for module in JOB_MODULES:
        importlib.import_module(module)
    _loaded = True
