"""Honest failure: a database that is gone or read-only gets 503 with Retry-After (a Chinese
page, or the API's JSON error), never a 500 or a traceback, and the same app recovers when
the database is back; a server refuses to start on an instance that cannot work.

How the failures are made real:

* unreachable SQLite: the database path lies in a folder that does not exist ("unable to
  open database file"); creating it later is the database coming back;
* unreachable PostgreSQL: a cluster of the test's own (tests/pg_cluster.py) is stopped and
  started again;
* read-only SQLite: the file is opened with ``file:...?mode=ro`` (the tests run as root, which
  ignores file permissions, so chmod would prove nothing); SQLite then refuses writes exactly
  as it does for a file or folder the server may not write;
* read-only PostgreSQL: ``ALTER DATABASE ... SET default_transaction_read_only = on``, which
  answers writes as a hot standby does (SQLSTATE 25006).
"""
from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from chanjiao import create_app, startup
from chanjiao.extensions import db
from chanjiao.models import Demand

from . import factories
from .conftest import CSRFClient
from .e2e_support import REPO_ROOT, free_port
from .pg_cluster import Cluster, pg_cluster
from .test_api import DEMAND
from .test_api_helpers import DOCUMENT, bearer, token_for, validate

UNAVAILABLE_TITLE = "服务暂时不可用"
READ_ONLY_TITLE = "平台维护中，暂时只读"
# Well formed, so that the API looks it up in the database (and meets the outage there).
SOME_TOKEN = "cj_" + "x" * 43


@contextmanager
def app_on(url: str, **extra) -> Iterator[Flask]:
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-" + secrets.token_hex(8),
        "SQLALCHEMY_DATABASE_URI": url,
        "SERVER_NAME": "chanjiao.test",
        "MATCHING_ENCODER": "lexical",
        "JOBS_MODE": "eager",
        "MAIL_BACKEND": "locmem",
        "MATCHING_UNIT_VECTOR_DIR": "",
        **extra,
    })
    app.test_client_class = CSRFClient
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


def create_schema(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        db.metadata.create_all(engine)
    finally:
        engine.dispose()


def assert_page_503(response, title: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 503, text[-1500:]
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "text/html"
    assert f"<h1>{title}</h1>" in text
    assert "Traceback" not in text and "sqlalchemy" not in text.lower()


def assert_json_503(response, code: str, message_part: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[-1500:]
    assert response.headers["Retry-After"] == "30"
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == code
    assert message_part in error["message"]
    assert set(error) == {"code", "message"}
    # The answer is the one the API describes for every operation.
    assert validate(response.get_json(), {"$ref": "#/components/schemas/Error"}, DOCUMENT) == []
    assert all("503" in op["responses"] for name, path in DOCUMENT["paths"].items()
               if name != "/openapi.json"  # the one answer that needs no database
               for op in path.values() if isinstance(op, dict) and "responses" in op)


def outage_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "answered 503" in r.getMessage()]


# --------------------------------------------------------------------------- unavailable


def test_unreachable_sqlite_answers_503_and_recovers_in_the_same_app(tmp_path, caplog):
    folder = tmp_path / "gone"
    url = f"sqlite:///{folder / 'chanjiao.db'}"
    with app_on(url) as app:
        client = app.test_client()
        caplog.set_level(logging.ERROR)
        assert_page_503(client.get("/"), UNAVAILABLE_TITLE)
        assert "平台暂时无法连接数据库" in client.get("/demands").get_data(as_text=True)
        assert_page_503(client.post("/login", data={"email": "a@example.cn", "password": "x" * 12}),
                        UNAVAILABLE_TITLE)
        assert_json_503(client.get("/api/v1/demands", headers=bearer(SOME_TOKEN)),
                        "service_unavailable", "无法连接数据库")
        # One line per refused request, with the driver's reason and no stack trace.
        records = outage_records(caplog)
        assert len(records) == 4
        assert all("unable to open database file" in r.getMessage() and r.exc_info is None
                   for r in records)
        assert "database unavailable: GET /api/v1/demands" in records[-1].getMessage()

        folder.mkdir()
        create_schema(url)
        home = client.get("/")
        assert home.status_code == 200 and "Retry-After" not in home.headers
        assert client.get("/api/v1/demands", headers=bearer(SOME_TOKEN)).status_code == 401


def test_a_database_error_that_is_not_an_outage_stays_a_500(tmp_path):
    # An existing but empty database is a deployment mistake (the start-up check catches it),
    # not an outage: it must not be dressed up as "try again later".
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with app_on(url, TESTING=False) as app:
        response = app.test_client().get("/demands")
        assert response.status_code == 500
        assert "Retry-After" not in response.headers


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with pg_cluster() as running:
        yield running


def new_database(cluster: Cluster, schema: bool = True) -> str:
    name = "chanjiao_" + secrets.token_hex(6)
    cluster.psql(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    if schema:
        create_schema(url)
    return url


@pytest.mark.postgres
def test_postgres_outage_answers_503_and_recovers_without_a_restart(cluster, caplog):
    url = new_database(cluster)
    with app_on(url.replace("postgresql://", "postgresql+psycopg://", 1)) as app:
        client = app.test_client()
        assert client.get("/demands").status_code == 200  # a pooled connection now exists
        caplog.set_level(logging.ERROR)
        cluster.stop()
        try:
            assert_page_503(client.get("/demands"), UNAVAILABLE_TITLE)
            assert_json_503(client.get("/api/v1/demands", headers=bearer(SOME_TOKEN)),
                            "service_unavailable", "无法连接数据库")
        finally:
            cluster.start()
        assert len(outage_records(caplog)) == 2
        # The connection pooled before the stop is dead; the pre-ping replaces it.
        assert client.get("/demands").status_code == 200
        assert client.get("/api/v1/demands", headers=bearer(SOME_TOKEN)).status_code == 401


# --------------------------------------------------------------------------- read-only


def seed(app: Flask) -> str:
    """An enterprise member with an API token; its secret."""
    with app.app_context():
        db.create_all()
        member = factories.user(factories.org("enterprise"), "org_member")
        return token_for(member)


def assert_read_only(app: Flask) -> None:
    client = app.test_client()
    # Reading still works...
    for path in ("/", "/demands", "/programmes", "/login"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    # ...writing is refused with the maintenance page or JSON, and nothing is written.
    response = client.post("/login", data={"email": "nobody@example.cn", "password": "x" * 12})
    assert_page_503(response, READ_ONLY_TITLE)
    assert "目前只能浏览" in response.get_data(as_text=True)


@pytest.fixture
def writable_and_read_only(tmp_path) -> Iterator[tuple[Flask, Flask, str]]:
    path = tmp_path / "chanjiao.db"
    with app_on(f"sqlite:///{path}") as writable:
        secret = seed(writable)
        with app_on(f"sqlite:///file:{path}?mode=ro&uri=true") as read_only:
            yield writable, read_only, secret


def test_read_only_sqlite_reads_pages_and_refuses_writes_with_503(writable_and_read_only, caplog):
    writable, read_only, secret = writable_and_read_only
    caplog.set_level(logging.ERROR)
    assert_read_only(read_only)
    response = read_only.test_client().post("/api/v1/demands", json=DEMAND, headers=bearer(secret))
    assert_json_503(response, "read_only", "平台正在维护")
    assert all("readonly database" in r.getMessage() and "read-only" in r.getMessage()
               for r in outage_records(caplog))
    with writable.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Demand)) == 0
        # The writable app was never affected.
        assert writable.test_client().post(
            "/api/v1/demands", json=DEMAND, headers=bearer(secret)).status_code == 201


@pytest.mark.postgres
def test_read_only_postgres_reads_pages_and_refuses_writes_with_503(cluster):
    url = new_database(cluster)
    name = url.rsplit("/", 1)[1]
    engine_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    with app_on(engine_url) as writable, writable.app_context():
        member = factories.user(factories.org("enterprise"), "org_member")
        secret = token_for(member)
    cluster.psql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    with app_on(engine_url) as read_only:
        assert_read_only(read_only)
        response = read_only.test_client().post(
            "/api/v1/demands", json=DEMAND, headers=bearer(secret))
        assert_json_503(response, "read_only", "平台正在维护")
    assert cluster.psql("SELECT count(*) FROM demand", name) == "0"


# --------------------------------------------------------------------------- start-up refusal


def start_env(instance: Path, database: str | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(instance.parent),
        "CHANJIAO_INSTANCE_PATH": str(instance),
        "CHANJIAO_MATCHING_ENCODER": "lexical",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if database:
        env["DATABASE_URL"] = database
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def import_wsgi(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the app from the repository root as a WSGI server does."""
    return run([sys.executable, "-c", "import wsgi; print('serving', wsgi.app.name)"], env)


def assert_refused(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "Chanjiao will not start" in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    assert "serving" not in result.stdout


@pytest.fixture(scope="module")
def ready_instance(tmp_path_factory) -> Path:
    """An instance made the documented way: ``flask --app wsgi init-instance`` on a folder that
    does not exist yet (a fresh clone)."""
    instance = tmp_path_factory.mktemp("ready") / "instance"
    result = run([sys.executable, "-m", "flask", "--app", "wsgi", "init-instance", "--no-seed"],
                 start_env(instance))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (instance / "chanjiao.db").is_file() and (instance / "secret_key").is_file()
    return instance


def test_a_ready_instance_serves(ready_instance):
    result = import_wsgi(start_env(ready_instance))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "serving chanjiao" in result.stdout


def test_a_missing_instance_folder_is_refused_not_recreated(tmp_path):
    instance = tmp_path / "instance"
    result = import_wsgi(start_env(instance))
    assert_refused(result, f"the instance folder {instance} does not exist", "init-instance")
    assert not instance.exists()


def test_gunicorn_master_refuses_a_missing_instance_before_forking(tmp_path):
    instance = tmp_path / "instance"
    result = run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                  "-b", f"127.0.0.1:{free_port()}", "wsgi:app"], start_env(instance))
    assert_refused(result, f"the instance folder {instance} does not exist")
    assert "Booting worker" not in result.stderr
    assert not instance.exists()


def test_an_empty_database_is_refused(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    sqlite3.connect(instance / "chanjiao.db").close()
    result = import_wsgi(start_env(instance))
    assert_refused(result, "has no tables", "init-instance")


def test_a_read_only_database_is_refused(ready_instance):
    database = f"sqlite:///file:{ready_instance / 'chanjiao.db'}?mode=ro&uri=true"
    result = import_wsgi(start_env(ready_instance, database))
    assert_refused(result, "is read-only", "attempt to write a readonly database")


# The checks below need no new process: check_ready is the function wsgi.py and gunicorn's
# master call, and the subprocess tests above prove how its refusal ends a server.


def stamp_head(app: Flask) -> None:
    """The newest migration recorded, as `flask db upgrade` leaves it."""
    (head,) = startup._script_heads(app)
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})


def refusal(app: Flask) -> str:
    with pytest.raises(SystemExit) as refused:
        startup.check_ready(app)
    assert isinstance(refused.value, startup.NotReady)
    return str(refused.value.code)


@pytest.fixture
def instance(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "instance"
    folder.mkdir()
    monkeypatch.setenv("CHANJIAO_INSTANCE_PATH", str(folder))
    return folder


def test_a_missing_database_file_is_refused_not_created(instance):
    with app_on(f"sqlite:///{instance / 'chanjiao.db'}") as app:
        assert refusal(app) == (
            f"Chanjiao will not start: the database file {instance / 'chanjiao.db'} "
            "does not exist. Create it with `flask --app wsgi init-instance`.")
    assert not (instance / "chanjiao.db").exists()


def test_a_database_behind_the_migrations_is_refused(instance):
    with app_on(f"sqlite:///{instance / 'chanjiao.db'}") as app:
        stamp_head(app)
        startup.check_ready(app)  # at the head: ready
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 'c5ab054be754'"))
        message = refusal(app)
    assert "is at migration c5ab054be754, this code needs" in message and "init-instance" in message


@pytest.mark.postgres
def test_a_read_only_postgres_database_is_refused(cluster, instance):
    url = new_database(cluster, schema=False)
    name = url.rsplit("/", 1)[1]
    with app_on(url.replace("postgresql://", "postgresql+psycopg://", 1)) as app:
        stamp_head(app)
        startup.check_ready(app)
        cluster.psql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        message = refusal(app)
    assert (f"/{name} is read-only: ReadOnlySqlTransaction: "
            "cannot execute UPDATE in a read-only transaction") in message


def test_a_background_thread_logs_an_outage_in_one_line_and_goes_on(app, caplog):
    """The outbox runner and ticker meet the same outage as requests: a warning without a stack
    trace each time, and the loop keeps running (a real SQLite error from a missing file)."""
    import threading

    from chanjiao.jobs import background

    stop = threading.Event()
    calls = []
    unreachable = sa.create_engine("sqlite:////nonexistent-folder/chanjiao.db")

    def body() -> None:
        calls.append(1)
        if len(calls) == 2:
            stop.set()
        with unreachable.connect():
            pass

    caplog.set_level(logging.WARNING, logger=background.log.name)
    background.loop(app, "probe", body, wait=lambda: None, stop=stop)
    unreachable.dispose()
    records = [r for r in caplog.records if "background probe" in r.getMessage()]
    assert len(calls) == 2 and len(records) == 2
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records)
    assert "database unavailable (OperationalError: unable to open database file)" in records[0].getMessage()


def test_a_connection_lost_after_the_answer_does_not_turn_it_into_a_500(caplog):
    """A request that read after its commit holds a transaction; the server drops the connection
    before the request ends: closing the session must not raise (gunicorn would answer 500)."""
    from chanjiao import availability

    url = "postgresql+psycopg://root@127.0.0.1:5432/test"
    killer = sa.create_engine(url)
    try:
        with app_on(url) as app, app.test_request_context("/"):
            pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with killer.connect() as conn:
                assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            caplog.set_level(logging.WARNING)
            availability.close_session_quietly()
            assert any("closed on a lost connection" in r.getMessage() for r in caplog.records)
            # The next use reconnects.
            assert db.session.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        killer.dispose()
