"""Refuse to serve a platform that cannot work: checks run once before a server takes requests.

Without them a missing instance folder was recreated empty (a new secret key, a new empty
SQLite file) and every page answered 500. ``flask --app wsgi init-instance`` is the one way
to create or upgrade an instance; a server only checks. The checks are explicit calls, made
by ``wsgi.py`` and by gunicorn's master (``gunicorn.conf.py``), never by ``create_app``: the
tests build apps on databases of their own.

Each refusal is a :class:`SystemExit` carrying the reason and the fix, so the process exits
with status 1 and prints one clear message instead of a traceback.
"""
from __future__ import annotations

import os
from pathlib import Path

import click
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from .config import database_url, instance_path

INIT = "flask --app wsgi init-instance"
# Set to 0 to serve without the checks. gunicorn's master sets it for its workers once it has
# checked: a worker started later, during an outage, must answer 503s, not crash-loop.
CHECK_ENV = "CHANJIAO_STARTUP_CHECK"


class NotReady(SystemExit):
    """The platform cannot serve; the message says why and what to run."""

    def __init__(self, reason: str):
        super().__init__(f"Chanjiao will not start: {reason}")


def wanted() -> bool:
    """Whether this process should check before serving.

    Not when the ``flask`` command imports ``wsgi.py`` (a click context is active): its
    commands, ``init-instance`` above all, are how an instance is made ready.
    """
    if os.environ.get(CHECK_ENV, "1") == "0":
        return False
    return click.get_current_context(silent=True) is None


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The file of an SQLite URL (plain or ``file:...?uri=true``); None for other databases
    and in-memory SQLite."""
    url = sa.make_url(url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = url.database
    if url.query.get("uri") in ("true", "1") and database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
        if database.startswith("//"):  # file://localhost/path or file:///path
            database = "/" + database[2:].split("/", 1)[-1]
    return Path(database)


def check_instance_folder(folder: str | os.PathLike[str] | None = None,
                          url: str | None = None) -> None:
    """Refuse when the instance folder is missing but something the server needs lives there:
    the secret key (no ``CHANJIAO_SECRET_KEY``) or the SQLite database.

    Called before ``create_app``, which would otherwise create the folder for a new key.
    """
    folder = Path(folder or instance_path())
    if folder.is_dir():
        return
    url = url or database_url(folder)
    database = sqlite_file(url)
    needs = []
    if not os.environ.get("CHANJIAO_SECRET_KEY"):
        needs.append("the secret key")
    if database is not None and folder in database.parents:
        needs.append("the database")
    if needs:
        raise NotReady(
            f"the instance folder {folder} does not exist (it holds {' and '.join(needs)}). "
            f"Create it with `{INIT}`, or set CHANJIAO_INSTANCE_PATH to the existing one."
        )


def check_ready(app: Flask) -> None:
    """Refuse unless the instance folder is there, and the database exists, is reachable, is
    at the newest migration and accepts writes."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    check_instance_folder(app.instance_path, url)
    database = sqlite_file(url)
    # Connecting would create an empty SQLite file: look first.
    if database is not None and not database.is_file():
        raise NotReady(f"the database file {database} does not exist. Create it with `{INIT}`.")
    expected = set(_script_heads(app))
    from .extensions import db

    with app.app_context():
        engine = db.engine  # the app's own engine, with its options
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
            if not current:
                raise NotReady(
                    f"the database {shown} has no tables (no migration applied). "
                    f"Create them with `{INIT}`."
                )
            if current != expected:
                raise NotReady(
                    f"the database {shown} is at migration {', '.join(sorted(current))}, this "
                    f"code needs {', '.join(sorted(expected))}. Upgrade it with `{INIT}` "
                    "(or run a newer release of the code if the database is ahead)."
                )
            conn.rollback()  # the read above began a transaction; the write test needs its own
            _check_writable(conn, shown)
    except sa.exc.DBAPIError as error:
        from .availability import reason

        raise NotReady(f"cannot use the database {shown}: {reason(error)}") from None
    finally:
        engine.dispose()  # no connection may be inherited by forked workers


def _script_heads(app: Flask) -> tuple[str, ...]:
    config = Config()
    config.set_main_option("script_location", str(app.extensions["migrate"].directory))
    return ScriptDirectory.from_config(config).get_heads()


def _check_writable(conn: sa.Connection, shown: str) -> None:
    # A real write, rolled back: it fails exactly as the app's first write would (an SQLite
    # file or folder that is not writable, a PostgreSQL standby or read-only default).
    from .availability import READ_ONLY, classify, reason

    try:
        with conn.begin() as transaction:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))
            transaction.rollback()
    except sa.exc.DBAPIError as error:
        if classify(error) != READ_ONLY:
            raise
        raise NotReady(f"the database {shown} is read-only: {reason(error)}") from None


def check_before_serving() -> None:
    """The whole check for a server's start: the folder before an app exists (``create_app``
    would make it for a new secret key), then the database through a throwaway app."""
    check_instance_folder()
    from . import create_app

    app = create_app()
    check_ready(app)
