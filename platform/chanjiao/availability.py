"""Honest answers when the database fails: 503 with ``Retry-After``, never a traceback.

Two failures are told apart, because visitors can do different things about them:

* **unavailable**: the server cannot be reached or went away (connection refused, server
  restarted or shut down by an administrator, SQLite file that cannot be opened, a pool
  with no free connection). Nothing works until it is back.
* **read-only**: the database answers but refuses writes (an SQLite file or folder that is
  not writable, a PostgreSQL hot standby or ``default_transaction_read_only``: SQLSTATE
  25006). Pages that only read keep working; a change is refused with a maintenance page.

Any other database error (a missing table, a constraint) is a bug, not an outage: it stays a
500. The broken connection is discarded by the session rollback here, and ``pool_pre_ping``
(config) replaces dead pooled connections, so the app recovers by itself when the database
comes back.
"""
from __future__ import annotations

import contextlib

from flask import Flask, Response, current_app, g, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import exc

from .extensions import db, login_manager

UNAVAILABLE = "unavailable"
READ_ONLY = "read_only"

# SQLite reports every failure as OperationalError; these are the ones about the file
# itself, not about the statement.
_SQLITE_UNAVAILABLE = (
    "unable to open database file", "database is locked", "disk i/o error",
    "database or disk is full", "database disk image is malformed",
)
_READ_ONLY_MARKERS = ("readonly database", "read-only transaction")
# PostgreSQL SQLSTATE classes of an unreachable or overloaded server: connection exception,
# insufficient resources, operator intervention (admin shutdown, starting up), system error.
_PG_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
PG_READ_ONLY_SQLSTATE = "25006"


def classify(error: BaseException) -> str | None:
    """``UNAVAILABLE``, ``READ_ONLY``, or None when ``error`` is not a database outage."""
    if isinstance(error, exc.TimeoutError):  # no pooled connection came free in time
        return UNAVAILABLE
    if not isinstance(error, exc.DBAPIError):
        return None
    orig = error.orig
    message = str(orig).lower()
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate == PG_READ_ONLY_SQLSTATE or any(m in message for m in _READ_ONLY_MARKERS):
        return READ_ONLY
    if error.connection_invalidated or isinstance(error, exc.InterfaceError):
        return UNAVAILABLE
    if not isinstance(error, exc.OperationalError):
        return None
    if type(orig).__module__.startswith("sqlite3"):
        return UNAVAILABLE if any(m in message for m in _SQLITE_UNAVAILABLE) else None
    # psycopg gives no SQLSTATE when it could not connect at all.
    if sqlstate is None or sqlstate[:2] in _PG_UNAVAILABLE_CLASSES:
        return UNAVAILABLE
    return None


def reason(error: BaseException) -> str:
    """The driver's one-line account of the failure, for the log."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"


def discard_session() -> None:
    """Roll the request's session back so its broken connection goes back to the pool
    invalidated (the next checkout reconnects) and nothing half-done is committed later."""
    try:
        db.session.rollback()
    except Exception:  # the rollback itself failed on the dead connection: drop it outright
        try:
            db.session.invalidate()
        except Exception:
            current_app.logger.warning("could not discard the database session", exc_info=True)


def _messages(kind: str) -> tuple[str, str]:
    if kind == READ_ONLY:
        return (
            _("平台维护中，暂时只读"),
            _("平台正在维护，目前只能浏览，暂时无法保存修改。请稍后再试，您填写的内容不会被保存，请自行留存。"),
        )
    return (
        _("服务暂时不可用"),
        _("平台暂时无法连接数据库，正在恢复中。请稍后再试。"),
    )


def _retry_after() -> str:
    return str(int(current_app.config.get("DATABASE_RETRY_AFTER_SECONDS", 30)))


def _api_response(kind: str) -> Response:
    from .api.errors import ApiError, api_locale

    with force_locale(api_locale()):
        _title, message = _messages(kind)
        code = "read_only" if kind == READ_ONLY else "service_unavailable"
        return ApiError(503, message, code=code, headers={"Retry-After": _retry_after()}).response()


def _page(kind: str) -> Response:
    title, message = _messages(kind)

    def render() -> Response:
        return Response(
            render_template("errors/error.html", code=503, title=title, message=message),
            status=503, mimetype="text/html",
        )

    if kind == UNAVAILABLE:
        # The layout asks the database for the signed-in user's name and unread count; with
        # no database the page is shown as to a visitor.
        g._login_user = login_manager.anonymous_user()
    try:
        return render()
    except exc.SQLAlchemyError:
        discard_session()
        g._login_user = login_manager.anonymous_user()
    try:
        return render()
    except Exception:  # the layout still needs the database: a bare page rather than a 500
        current_app.logger.warning("the 503 page could not be rendered with the layout",
                                   exc_info=True)
        return Response(f"<!doctype html><meta charset=utf-8><title>{title}</title>"
                        f"<h1>{title}</h1><p>{message}</p>", status=503, mimetype="text/html")


def handle_database_error(error: exc.SQLAlchemyError):
    """Answer a database outage with 503; re-raise anything else (the 500 page)."""
    kind = classify(error)
    if kind is None:
        raise error
    discard_session()
    # One line per refused request, with the reason and no traceback: an outage under load
    # must not bury the log in identical stack traces.
    current_app.logger.error("database %s: %s %s answered 503 (%s)", kind.replace("_", "-"),
                             request.method, request.path, reason(error))
    response = _api_response(kind) if request.path.startswith("/api/") else _page(kind)
    response.headers["Retry-After"] = _retry_after()
    response.headers["Cache-Control"] = "no-store"
    return response


def register(app: Flask) -> None:
    """Install the handlers (blueprints have none for these classes, so the app's apply)."""
    app.register_error_handler(exc.DBAPIError, handle_database_error)
    app.register_error_handler(exc.TimeoutError, handle_database_error)
    # Runs before Flask-SQLAlchemy's own teardown (Flask calls them in reverse order).
    app.teardown_appcontext(close_session_quietly)


def close_session_quietly(_error: BaseException | None = None) -> None:
    """End the request's session even if its connection died after the answer was made.

    A request that committed and then read one more row (a refresh after the commit) holds a
    transaction; if the server went away meanwhile, closing it raises from the ROLLBACK and
    gunicorn would turn the finished answer into its own 500. The work is committed or was never
    done, so the dead connection is invalidated and dropped instead.
    """
    try:
        db.session.remove()
    except exc.DBAPIError as error:
        if classify(error) is None:
            raise
        with contextlib.suppress(Exception):  # already broken; only the registry matters now
            db.session.invalidate()
        db.session.registry.clear()
        current_app.logger.warning("database session closed on a lost connection (%s)", reason(error))
