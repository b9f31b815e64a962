"""How often one address may try: logins and the forms anyone can send without an account.

flask-limiter counts per client address (``request.remote_addr``: the real visitor once
``CHANJIAO_TRUSTED_PROXIES`` lets ProxyFix read X-Forwarded-For) in Redis when
``CHANJIAO_LIMIT_STORAGE_URL`` or ``CHANJIAO_REDIS_URL`` is set, so that every worker and
machine shares one count, else in each process's memory. Wrong passwords are counted apart, per
account and address, in the database (:mod:`chanjiao.auth.services`).
"""
from __future__ import annotations

import math
import time

from flask import Flask, current_app, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

limiter = Limiter(get_remote_address)


def login_limit() -> str:
    return current_app.config["LIMIT_LOGIN"]


def anonymous_form_limit() -> str:
    return current_app.config["LIMIT_ANONYMOUS_FORM"]


def init_app(app: Flask) -> None:
    config = app.config
    config.setdefault(
        "RATELIMIT_STORAGE_URI", config.get("LIMIT_STORAGE_URL") or config.get("REDIS_URL") or "memory://"
    )
    config.setdefault("RATELIMIT_ENABLED", config.get("LIMIT_ENABLED", True))
    config.setdefault("RATELIMIT_KEY_PREFIX", "chanjiao:limits")
    # A limit must never become an outage: if Redis is away, count in memory meanwhile.
    config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many_requests)


def too_many_requests(error: RateLimitExceeded):
    current = limiter.current_limit
    retry_after = max(1, math.ceil(current.reset_at - time.time())) if current else 60
    headers = {"Retry-After": str(retry_after)}
    minutes = math.ceil(retry_after / 60)
    message = _("操作过于频繁，请 %(minutes)s 分钟后再试。", minutes=minutes)
    if request.path.startswith("/api/"):
        from .api.errors import ApiError

        return ApiError(429, message, headers=headers).response()
    page = render_template("errors/error.html", code=429, title=_("操作过于频繁"), message=message)
    return page, 429, headers
