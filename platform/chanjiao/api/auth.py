"""Bearer-token authentication for ``/api/v1``, declared once per route.

A session cookie never authenticates here: only ``Authorization: Bearer <token>`` does, and it
is checked before the view looks anything up, so a caller without a valid token learns nothing
(401 for every id, existing or not). Then, per token: the rate limit (429), the account's
standing (403 for an inactive user or a suspended organisation), the route's organisation kind
(403), and only then the view.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from flask import g, request
from flask_babel import force_locale
from flask_babel import gettext as _

from ..models import ApiToken, User
from ..tokens import services as tokens
from ..uow import run
from . import ratelimit
from .errors import ApiError, api_locale, unauthorized

F = TypeVar("F", bound=Callable)


def _bearer_secret() -> str:
    header = request.headers.get("Authorization", "")
    if not header:
        raise unauthorized(_("缺少 API 令牌：请在请求头中提供 Authorization: Bearer <令牌>。"))
    scheme, _sep, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret:
        raise unauthorized(_("Authorization 请求头格式不正确，应为 Bearer <令牌>。"), invalid_token=True)
    return secret


def authenticate() -> ApiToken:
    """The live token the request presents, or a 401 :class:`ApiError`."""
    token = tokens.token_for_secret(_bearer_secret())
    if token is None:
        raise unauthorized(_("API 令牌无效或已撤销。"), invalid_token=True)
    return token


def _check_standing(user: User) -> None:
    if not user.active:
        raise ApiError(403, _("该账号已停用。"))
    organisation = user.organisation
    if organisation is not None and organisation.status == "suspended":
        raise ApiError(403, _("贵机构已被暂停，暂时不能使用接口。"))


def _check_kind(user: User, kind: str) -> None:
    organisation = user.organisation
    if user.role not in ("org_admin", "org_member") or organisation is None or organisation.kind != kind:
        raise ApiError(
            403,
            _("只有企业会员可以使用需求接口。") if kind == "enterprise" else _("只有培训机构会员可以使用培训项目接口。"),
        )


def token_required(kind: str | None = None) -> Callable[[F], F]:
    """Authenticate by bearer token, count the request, check standing and (if given) that the
    caller belongs to an organisation of ``kind``; the view finds the user in ``g.api_user``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args, **kwargs):
            with force_locale(api_locale()):
                token = authenticate()
                verdict = ratelimit.check(f"token:{token.id}")
                if verdict is not None:
                    g.api_ratelimit = verdict
                    if not verdict.allowed:
                        raise ApiError(
                            429,
                            _("请求过于频繁，请 %(n)s 秒后再试。", n=verdict.reset_after),
                            headers=verdict.headers(),
                        )
                # Its own small unit, before the view opens the request's: a last-used time
                # is kept even when the view is refused, and never commits the view's work.
                run(tokens.touch, token)
                user = token.user
                _check_standing(user)
                if kind is not None:
                    _check_kind(user, kind)
                g.api_token, g.api_user = token, user
                return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def add_ratelimit_headers(response):
    """``X-RateLimit-*`` (and ``Retry-After`` on 429) on every counted response."""
    verdict = g.get("api_ratelimit")
    if verdict is not None:
        response.headers.update(verdict.headers())
    return response
