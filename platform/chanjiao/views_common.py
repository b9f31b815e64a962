"""What the HTML views of every blueprint share: a service call run as one unit of work, and
its refusal turned into a status code or a flash.

A view puts its service call(s) inside ``with unit_of_work():`` (:mod:`chanjiao.uow`) and
catches :class:`~chanjiao.errors.DomainError` outside the block: by then the unit has rolled
back, so a refused request has written nothing. :func:`act` is that whole shape for the many
buttons that change something and go back to a page with a message.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import abort, flash, redirect
from werkzeug.wrappers import Response

from .errors import DomainError, NotFound, PermissionDenied
from .uow import unit_of_work

T = TypeVar("T")


def is_same_site_path(target: str | None, *, under: str = "/") -> bool:
    r"""Whether ``target`` is a path on this site (below ``under``) that a browser cannot read as
    another host. Browsers drop tabs and line breaks inside URLs and read ``\\`` as ``/``, so
    ``/\t/evil.example`` and ``/\\evil.example`` both mean ``//evil.example``: any control or
    space character, a backslash, a scheme or a host refuses the target outright."""
    if not target or not target.startswith("/"):
        return False
    if "\\" in target or any(
        ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in target
    ):
        return False
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return False
    return parts.path.startswith(under)


def safe_next(target: str | None, default: str, *, under: str = "/") -> str:
    """``target`` if it is a same-site path (see :func:`is_same_site_path`), else ``default``.
    The one rule for every ``next`` a visitor can send: anything else is an open redirect."""
    return target if target is not None and is_same_site_path(target, under=under) else default


STATUS_FOR: dict[type[DomainError], int] = {NotFound: 404, PermissionDenied: 403}


def abort_for(error: DomainError, kinds: Iterable[type[DomainError]] = (NotFound,)) -> None:
    """``abort(404)`` for a :class:`NotFound`, ``abort(403)`` for a :class:`PermissionDenied`,
    if ``error`` is one of ``kinds``; otherwise return, and the view shows the message."""
    for kind in kinds:
        if isinstance(error, kind):
            abort(STATUS_FOR[kind])


def act(
    action: Callable[[], T],
    success: str | Callable[[T], str],
    target: str,
    aborts: Iterable[type[DomainError]] = (NotFound,),
) -> Response:
    """Run ``action`` in one unit of work, flash ``success`` (or ``success(result)``) or the
    refusal's message, and redirect to ``target``; a refusal of a kind in ``aborts`` is an
    HTTP error instead (see :func:`abort_for`)."""
    try:
        with unit_of_work():
            result = action()
    except DomainError as error:
        abort_for(error, aborts)
        flash(error.message, "error")
    else:
        flash(success(result) if callable(success) else success, "success")
    return redirect(target)
