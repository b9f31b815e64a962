"""Route-level authorisation, declared once per route. Services check again at object level."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import abort
from flask_login import current_user, login_required

F = TypeVar("F", bound=Callable)


def roles_required(*roles: str) -> Callable[[F], F]:
    """Allow only logged-in users whose role is one of ``roles``; others get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


staff_required = roles_required("staff", "admin")
admin_required = roles_required("admin")
org_user_required = roles_required("org_admin", "org_member")
org_admin_required = roles_required("org_admin")


def org_kind_required(kind: str) -> Callable[[F], F]:
    """Allow only members of an organisation of ``kind`` (enterprise | institution)."""

    def decorator(view: F) -> F:
        @wraps(view)
        @org_user_required
        def wrapped(*args, **kwargs):
            if current_user.organisation is None or current_user.organisation.kind != kind:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


__all__ = [
    "admin_required",
    "login_required",
    "org_admin_required",
    "org_kind_required",
    "org_user_required",
    "roles_required",
    "staff_required",
]
