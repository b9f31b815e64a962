"""The RQ path: with a Redis URL configured, committed outbox messages are pushed to RQ and
run by ``flask jobs worker`` (RQ's SimpleWorker: no fork, the e5 engine does not survive one).

RQ only carries message ids; the outbox row stays the truth. A push lost with Redis (or a
retry whose back-off ended) is pushed again by the tick (``outbox.redispatch``), and the
conditional claim makes a duplicate push harmless.
"""
from __future__ import annotations

import functools

from flask import current_app

QUEUE_NAME = "chanjiao"


def redis_url() -> str | None:
    config = current_app.config
    return config.get("JOBS_REDIS_URL") or config.get("REDIS_URL") or None


@functools.lru_cache(maxsize=4)
def _connection(url: str):
    from redis import Redis

    return Redis.from_url(url)


def queue():
    from rq import Queue

    url = redis_url()
    if not url:
        raise RuntimeError("JOBS_MODE is rq but no CHANJIAO_REDIS_URL (or CHANJIAO_JOBS_REDIS_URL) is set")
    return Queue(QUEUE_NAME, connection=_connection(url))


def push(message_ids: list[int]) -> None:
    q = queue()
    for message_id in message_ids:
        q.enqueue_call(perform, args=(message_id,), result_ttl=0, failure_ttl=86400)


def perform(message_id: int) -> str | None:
    """The RQ job: run the outbox message (the worker process holds the app context)."""
    from .outbox import run_one

    return run_one(message_id)
