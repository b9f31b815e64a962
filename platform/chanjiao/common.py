"""Small helpers every service layer needs: input cleaning and safe lookups by id."""
from __future__ import annotations

import unicodedata
from typing import TypeVar

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
