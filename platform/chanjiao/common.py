"""Small helpers every service layer needs: input cleaning, safe lookups by id and the
conditional update that makes one-time actions atomic."""
from __future__ import annotations

import unicodedata
from typing import Any, TypeVar

from sqlalchemy import inspect, update

from .extensions import db

T = TypeVar("T")

MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL: a larger one in a URL is a 404, not a 500


# Pasted from Word and WeChat, text carries zero-width spaces and joiners and byte-order marks:
# they are invisible and mean nothing in our data, so they go silently.
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))
LINE_CONTROLS = "\n\r\t"
# Characters that show nothing on their own: a title made of these alone is empty to a reader.
BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def clean_text(value: str) -> str:
    """Drop zero-width characters and control characters other than line breaks and tabs.
    For what is only read (search boxes, filters); text that is stored goes through
    :func:`visible_text`, which refuses what this drops."""
    value = value.translate(ZERO_WIDTH)
    return "".join(ch for ch in value if ch in LINE_CONTROLS or unicodedata.category(ch) != "Cc")


def forbidden_characters(value: str) -> list[str]:
    """The control and format characters (Cc, Cf: bidi overrides and isolates among them) left
    in ``value`` once zero-width characters are gone, as ``U+202E`` codes, each once."""
    found: dict[str, None] = {}
    for ch in value.translate(ZERO_WIDTH):
        if ch not in LINE_CONTROLS and unicodedata.category(ch) in ("Cc", "Cf"):
            found[f"U+{ord(ch):04X}"] = None
    return list(found)


def has_visible_character(value: str) -> bool:
    return any(
        not ch.isspace()
        and ch not in BLANK_CHARACTERS
        and unicodedata.category(ch)[0] not in ("C", "M", "Z")
        for ch in value
    )


def control_characters_message(label: str, codes: list[str]) -> str:
    """The refusal of a field (``label``, translated) holding the characters ``codes``."""
    from flask_babel import gettext as _

    return _("%(field)s含有不可见的控制字符（%(codes)s），请删除后重新输入。",
             field=label, codes="、".join(codes[:3]))


def visible_text(value: str | None, label: str, field: str | None = None) -> str:
    """``value`` as stored text: zero-width characters stripped, then surrounding space.

    A bidi override can make "\u202eexe.pdf" read as "fdp.exe" and hides text from reviewers, so
    control and format characters are refused, not dropped, with a message naming the field
    (``label``, already translated). Whether text that shows no character may stand is the
    caller's rule (:func:`has_visible_character`), with its own message.
    """
    from .errors import ValidationFailed

    text = (value or "").translate(ZERO_WIDTH)
    codes = forbidden_characters(text)
    if codes:
        raise ValidationFailed(control_characters_message(label, codes), field=field)
    return text.strip()


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
