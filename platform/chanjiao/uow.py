"""The unit of work: the one place where the platform commits.

A request, a CLI command and a job each run their writes inside one :func:`unit_of_work`.
Services only add and flush; the change, its audit record, its in-app notifications and its
outbox messages then commit together or not at all. After the commit, the outbox messages of
the unit are handed to the job queue (:mod:`chanjiao.jobs`); nothing outside the database
happens before the change is durable.

Units nest: an inner one joins the outer one and commits nothing, so a helper written as a
unit of work can be called from another unit.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.orm import Session

from .extensions import db

T = TypeVar("T")

_DEPTH = "chanjiao.uow.depth"


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """Run the block as one transaction: commit on success, roll back on any exception.

    The exception is re-raised after the rollback, so a view can still turn a
    :class:`~chanjiao.errors.DomainError` into a form message, knowing nothing was written.
    """
    session = db.session()
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield session
        if depth == 0:
            session.commit()
    except BaseException:
        if depth == 0:
            session.rollback()
        raise
    finally:
        session.info[_DEPTH] = depth
    if depth == 0:
        from .jobs import dispatch_committed

        dispatch_committed()


def run(action: Callable[..., T], *args, **kwargs) -> T:
    """``action(*args, **kwargs)`` in its own unit of work; its result, or its exception after
    the rollback."""
    with unit_of_work():
        return action(*args, **kwargs)


def in_unit_of_work() -> bool:
    """Whether a unit of work is open in this session (services may assert it)."""
    return db.session().info.get(_DEPTH, 0) > 0
