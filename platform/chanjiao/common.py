"""Small helpers every service layer needs: input cleaning, safe lookups by id and the
conditional update that makes one-time actions atomic."""
from __future__ import annotations

import unicodedata
from typing import Any, TypeVar

from sqlalchemy import inspect, update

from .extensions import db

T = TypeVar("T")

MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL: a larger one in a URL is a 404, not a 500


def clean_text(value: str) -> str:
    """Drop control characters other than line breaks and tabs (PostgreSQL refuses NUL)."""
    return "".join(ch for ch in value if ch in "\n\r\t" or unicodedata.category(ch) != "Cc")


def get_by_id(model: type[T], object_id: int) -> T | None:
    """``db.session.get`` that answers None for ids no row can have."""
    if not isinstance(object_id, int) or not 0 < object_id <= MAX_ID:
        return None
    return db.session.get(model, object_id)


def change_if(obj: Any, *conditions: Any, refresh_unchanged: bool = True, **values: Any) -> bool:
    """UPDATE ``obj``'s row SET ``values`` WHERE its primary key matches AND ``conditions``;
    True when this call changed the row.

    The database decides, not what the request read: of simultaneous callers exactly one sees
    True (SQLite has no row locks, so a SELECT ... FOR UPDATE would not serialise them). Values
    may be SQL expressions (``attempts=Model.attempts + 1``). ``obj`` is refreshed afterwards,
    so it shows the winner's state and the loser can say why it lost; with
    ``refresh_unchanged=False`` only when the row changed (for rows that may be gone by then).
    """
    state = inspect(obj)
    if state.identity is None:
        raise ValueError(f"{obj!r} has no row yet")
    model = state.mapper.class_
    key = [col == value for col, value in zip(state.mapper.primary_key, state.identity, strict=True)]
    changed = db.session.execute(
        update(model)
        .where(*key, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if changed or refresh_unchanged:
        db.session.refresh(obj)
    return changed
