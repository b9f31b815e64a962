"""Backups: `flask backup create` and `restore` round-trip every row of every table and the
instance files into an empty instance, on SQLite and (DATABASE_URL set) on PostgreSQL, and
refuse a corrupt or foreign archive or a target with data, changing nothing."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from chanjiao import create_app, matchmaking, search
from chanjiao.alerts import services as alerts
from chanjiao.auth import services as auth
from chanjiao.backup import services as backup
from chanjiao.curation import services as curation
from chanjiao.extensions import db
from chanjiao.jobs import scheduler
from chanjiao.matches import services as matches
from chanjiao.models import (
    LoginThrottle,
    MatchAlertDelivery,
    RankerVersion,
    TextVector,
)
from chanjiao.models._common import utcnow
from chanjiao.orgs import services as orgs
from chanjiao.platforms import services as platforms
from chanjiao.tokens import services as tokens
from chanjiao.uow import run

from . import factories as make
from .conftest import REPO_ROOT, fresh_database

# Every table these tests fill; the comparisons cover every table of db.metadata whatever it holds.
FILLED = {
    "organisation", "user", "skill", "demand", "programme", "demand_skill", "programme_skill",
    "search_term", "catalogue_change", "outbox_message", "interest_request", "notification",
    "audit_log", "pairing", "demo_platform", "demo_platform_pairing", "demo_platform_participant",
    "objection", "invitation", "password_reset_token", "api_token", "login_throttle",
    "match_alert", "match_alert_delivery", "job_lease", "scheduled_run", "text_vector",
    "ranker_version", "alembic_version",
}


@contextmanager
def restore_database(folder: Path) -> Iterator[str]:
    """A new empty database for a restore: SQLite in ``folder``, or on the PostgreSQL server a
    database ``test_restore_<random>`` created and dropped here (no other database is touched)."""
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        yield f"sqlite:///{folder / 'chanjiao.db'}"
        return
    url = sa.make_url(configured.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"test_restore_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def instance_app(instance: Path, url: str) -> Flask:
    """An app on its own instance folder and database, as `flask --app wsgi` would build it:
    no SECRET_KEY given, so the instance's secret_key file is created or read."""
    with pytest.MonkeyPatch.context() as patch:  # the folder is read once, by create_app
        patch.setenv("CHANJIAO_INSTANCE_PATH", str(instance))
        return create_app({
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SERVER_NAME": "chanjiao.test",
            "MATCHING_ENCODER": "lexical",
            "JOBS_MODE": "eager",
            "MAIL_BACKEND": "file",  # invitations land in <instance>/mail, an instance file to keep
        })


def close(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    matchmaking._catalogues.clear()  # worker state of a database that is going away


def contents(app: Flask) -> dict[str, list[tuple]]:
    """Every row of every table of db.metadata (and Alembic's), in primary-key order."""
    with app.app_context(), db.engine.connect() as conn:
        tables = {
            t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
            for t in db.metadata.sorted_tables
        }
        tables["alembic_version"] = [tuple(r) for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    return tables


def fill(app: Flask) -> None:
    """Rows in every table, made the way the platform makes them where a service exists."""
    with app.app_context():
        enterprise, institution = make.org("enterprise"), make.org("institution")
        hr, trainer = make.user(enterprise), make.user(institution)
        staff = make.user(None, role="staff")
        tag = make.skill("低压电工", ["电工"])
        demand = make.demand(enterprise, skills=[tag])
        programme = make.programme(institution, skills=[tag])
        run(search.reindex_all)  # the factories store postings without their search terms
        request = run(matches.create_interest, hr, demand.id, programme.id, "想了解开班时间")
        run(matches.accept_interest, trainer, request.id, "欢迎来电")
        pairing = run(curation.create_pairing, staff, demand.id, programme.id)
        run(curation.decide, staff, pairing.id, "accept", "双方已确认")
        platform = run(platforms.create_platform, staff, platforms.PlatformInput(
            name="新能源汽车维修示范平台", goal_trainees=30, notice_days=7, pairing_ids=[pairing.id]))
        run(platforms.confirm_participation, hr, platform.id)
        run(platforms.confirm_participation, trainer, platform.id)
        run(platforms.start_notice, staff, platform.id)
        run(platforms.submit_objection, platform.id, "王先生", "13900000000", "公示的培训场地地址与实际不符，请核实。")
        run(orgs.create_invitation, hr, "org_member", "new.member@example.cn")
        run(auth.issue_password_reset, staff, trainer)
        run(tokens.create_token, hr, "人事系统")
        alert = run(alerts.subscribe_programme, trainer, programme.id)
        db.session.add_all([
            MatchAlertDelivery(alert_id=alert.id, found_demand_id=demand.id, probability=0.71),
            LoginThrottle(key="ip:203.0.113.9", failures=3, window_started_at=utcnow()),
            TextVector(namespace="test", key="向量", dim=2, data=b"\x00<\x00\xbc"),
            RankerVersion(mode="lexical", encoder="", files={"ranker.json": "e30="},
                          metrics_before={"ndcg@10": 0.5}, metrics_after={"ndcg@10": 0.6},
                          decisions=31, active=False),
        ])
        db.session.commit()
        scheduler.tick()  # the scheduler's lease and run records
        db.session.remove()


def migrate(app: Flask) -> None:
    with app.app_context():
        upgrade()  # a real instance's schema, with its Alembic revision
        db.create_all()  # tables whose migration is still being written


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Iterator[tuple[Flask, Path, str]]:
    """A filled instance, shared by the tests that only read it: its app, instance folder and
    database URL (a private database)."""
    instance = tmp_path_factory.mktemp("source")
    with fresh_database(instance) as url:
        app = instance_app(instance, url)
        migrate(app)
        fill(app)
        (instance / "unit-vectors").mkdir(exist_ok=True)
        (instance / "unit-vectors" / "catalogue-abc.npy").write_bytes(b"cache")
        (instance / "notes").mkdir()
        (instance / "notes" / "运维记录.txt").write_text("2026-12-01 备份演练\n")
        try:
            yield app, instance, url
        finally:
            close(app)


@pytest.fixture
def target(tmp_path) -> Iterator[tuple[Flask, Path, str]]:
    """An empty instance: a fresh folder and a fresh database."""
    instance = tmp_path / "target"
    instance.mkdir()
    with restore_database(instance) as url:
        app = instance_app(instance, url)
        try:
            yield app, instance, url
        finally:
            close(app)


def backup_by_subprocess(instance: Path, url: str, output: Path) -> Path:
    """`flask --app wsgi backup create`, as cron runs it; the archive's path."""
    env = {**os.environ, "CHANJIAO_INSTANCE_PATH": str(instance), "DATABASE_URL": url,
           "CHANJIAO_MATCHING_ENCODER": "lexical", "CHANJIAO_JOBS_MODE": "manual",
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "backup", "create", "--output", str(output)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    archives = list(output.glob("chanjiao-backup-*.tar.gz"))
    assert len(archives) == 1 and str(archives[0]) in done.stdout, (archives, done.stdout)
    return archives[0]


def cli(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=["backup", *args])


def rewrite(archive: Path, out: Path, change) -> Path:
    """A copy of ``archive`` whose manifest (a dict) and members (name -> bytes) ``change``
    edits; written as a valid gzip'd tar, so only the checks of the contents can refuse it."""
    with tarfile.open(archive, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(members.pop(backup.MANIFEST))
    change(manifest, members)
    with tarfile.open(out, "w:gz") as tar:
        for name, data in [(backup.MANIFEST, json.dumps(manifest).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


# --------------------------------------------------------------------------- round trip


def test_backup_restores_every_row_and_the_instance_files_into_an_empty_instance(source, target, tmp_path):
    source_app, source_dir, source_url = source
    target_app, target_dir, _ = target
    expected = contents(source_app)
    empty = sorted(name for name in FILLED if not expected.get(name))
    assert empty == [], f"the test instance should have rows in {empty}"

    archive = backup_by_subprocess(source_dir, source_url, tmp_path / "archives")

    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(backup.MANIFEST))
    assert names[0] == backup.MANIFEST
    dialect = "postgresql" if source_url.startswith("postgresql") else "sqlite"
    assert manifest["format_version"] == backup.FORMAT_VERSION
    assert manifest["created_at"].endswith("Z")
    assert manifest["database"]["dialect"] == dialect
    assert manifest["database"]["alembic_revision"] == expected["alembic_version"][0][0]
    assert manifest["database"]["tables"] == {name: len(rows) for name, rows in expected.items()}
    assert set(manifest["files"]) == set(names[1:])
    mail = sorted(p.relative_to(source_dir).as_posix() for p in (source_dir / "mail").iterdir())
    assert mail, "the invitation should have been written to <instance>/mail"
    assert sorted(n for n in names if n.startswith("instance/")) == sorted(
        ["instance/secret_key", "instance/notes/运维记录.txt", *(f"instance/{m}" for m in mail)])
    # The vector cache is rebuilt by the catalogue, and an SQLite file travels once, as the copy.
    assert not any("unit-vectors" in n or n.endswith(".db") for n in names)

    result = cli(target_app, "verify", str(archive))
    assert result.exit_code == 0 and "备份完好" in result.output, result.output
    assert_target_untouched(target_app, target_dir, target[2])

    result = cli(target_app, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert "行数与备份清单一致" in result.output

    close(target_app)
    assert contents(target_app) == expected
    for name in ["secret_key", "notes/运维记录.txt", *mail]:
        assert (target_dir / name).read_bytes() == (source_dir / name).read_bytes(), name
    assert (target_dir / "secret_key").stat().st_mode & 0o077 == 0
    assert not list(target_dir.glob(backup.WORK_PREFIX + "*")), "no work files left behind"


def test_backup_made_while_the_database_is_written_restores_to_its_own_counts(target, tmp_path):
    """Rows committed during the backup are either all in the dump and its counts or in
    neither: the restore's count check holds."""
    with fresh_database(tmp_path) as source_url:
        source_app = instance_app(tmp_path / "busy", source_url)
        migrate(source_app)
        try:
            busy_backup_and_restore(source_app, source_url, target[0], tmp_path)
        finally:
            close(source_app)


def busy_backup_and_restore(source_app: Flask, source_url: str, target_app: Flask, tmp_path: Path) -> None:
    stop = threading.Event()
    written = []

    def writer() -> None:
        engine = sa.create_engine(source_url, poolclass=sa.pool.NullPool)
        while not stop.is_set():
            with engine.begin() as conn:
                conn.execute(sa.text(
                    "INSERT INTO login_throttle (key, failures, window_started_at) VALUES (:k, 1, :t)"
                ), {"k": f"ip:{len(written)}", "t": utcnow()})
            written.append(1)
        engine.dispose()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5:
            stop.wait(0.01)
        with source_app.app_context():
            made = backup.create_backup(tmp_path / "archives")
        before = len(written)
        while len(written) < before + 5:  # the writer kept going after the backup
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()
    counted = made.manifest["database"]["tables"]["login_throttle"]
    assert 5 <= counted < len(written)

    result = cli(target_app, "restore", str(made.path))
    assert result.exit_code == 0, result.output
    close(target_app)
    assert len(contents(target_app)["login_throttle"]) == counted


# --------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def archive(source, tmp_path_factory) -> Path:
    with source[0].app_context():
        return backup.create_backup(tmp_path_factory.mktemp("archives")).path


def assert_target_untouched(app: Flask, instance: Path, url: str) -> None:
    if url.startswith("sqlite"):
        assert not (instance / "chanjiao.db").exists()
    else:
        with app.app_context(), db.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
    assert sorted(p.name for p in instance.iterdir()) == ["secret_key"]


def test_corrupt_archive_is_refused_and_nothing_is_written(archive, target, tmp_path):
    app, instance, url = target
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(bytes(data))

    for bad in (corrupt, tmp_path / "missing.tar.gz"):
        result = cli(app, "restore", str(bad))
        assert result.exit_code == 1, result.output
        assert "备份文件" in result.output
    result = cli(app, "verify", str(corrupt))
    assert result.exit_code == 1 and "已损坏" in result.output
    assert_target_untouched(app, instance, url)


def test_altered_member_is_refused_by_its_checksum(archive, target, tmp_path):
    app, instance, url = target

    def swap_key(manifest, members):
        members["instance/secret_key"] = b"0" * 64 + b"\n"

    altered = rewrite(archive, tmp_path / "altered.tar.gz", swap_key)
    result = cli(app, "restore", str(altered))
    assert result.exit_code == 1
    assert "instance/secret_key 的校验和不符" in result.output
    assert_target_untouched(app, instance, url)


def test_member_outside_the_manifest_is_refused(archive, target, tmp_path):
    app, instance, url = target

    def smuggle(manifest, members):
        members["../outside.txt"] = b"x"

    result = cli(app, "restore", str(rewrite(archive, tmp_path / "smuggled.tar.gz", smuggle)))
    assert result.exit_code == 1
    assert "清单之外的成员 ../outside.txt" in result.output
    assert not (tmp_path / "outside.txt").exists()
    assert_target_untouched(app, instance, url)


def test_archive_from_a_newer_revision_is_refused(archive, target, tmp_path):
    app, instance, url = target

    def newer(manifest, members):
        manifest["database"]["alembic_revision"] = "ffffffffffff"

    result = cli(app, "restore", str(rewrite(archive, tmp_path / "newer.tar.gz", newer)))
    assert result.exit_code == 1
    assert "ffffffffffff 比本程序新" in result.output
    assert_target_untouched(app, instance, url)


def test_archive_of_another_database_kind_is_refused(archive, target, tmp_path):
    app, instance, url = target
    other = "sqlite" if url.startswith("postgresql") else "postgresql"

    def other_kind(manifest, members):
        manifest["database"]["dialect"] = other

    result = cli(app, "restore", str(rewrite(archive, tmp_path / "other.tar.gz", other_kind)))
    assert result.exit_code == 1
    assert f"备份来自 {other} 数据库" in result.output and "不支持跨数据库恢复" in result.output
    assert_target_untouched(app, instance, url)


def test_newer_format_version_is_refused(archive, target, tmp_path):
    app, instance, url = target

    def newer(manifest, members):
        manifest["format_version"] = backup.FORMAT_VERSION + 1

    result = cli(app, "restore", str(rewrite(archive, tmp_path / "v2.tar.gz", newer)))
    assert result.exit_code == 1
    assert "比本程序支持的" in result.output
    assert_target_untouched(app, instance, url)


def test_target_with_data_is_refused_without_force_and_overwritten_with_it(source, archive, target):
    source_app = source[0]
    app, instance, _ = target
    migrate(app)
    with app.app_context():
        make.org("enterprise", name="目标里已有的企业")
        db.session.remove()
    before = contents(app)

    result = cli(app, "restore", str(archive))
    assert result.exit_code == 1
    assert "目标不是空的" in result.output and "--force" in result.output
    close(app)
    assert contents(app) == before

    result = cli(app, "restore", "--force", str(archive))
    assert result.exit_code == 0, result.output
    close(app)
    assert contents(app) == contents(source_app)


def test_failed_restore_leaves_the_target_as_it_was(archive, target, tmp_path):
    """SQLite: a restored copy that does not match the manifest never replaces the database.
    PostgreSQL: pg_restore fails part-way (a view of the target blocks dropping a table) and
    its single transaction rolls back."""
    app, instance, url = target
    migrate(app)
    with app.app_context():
        make.org("enterprise", name="目标里已有的企业")
        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(sa.text('CREATE VIEW org_names AS SELECT name FROM organisation'))
        db.session.remove()
    before = contents(app)
    files_before = sorted(p.relative_to(instance) for p in instance.rglob("*"))
    bad = archive
    if url.startswith("sqlite"):
        def miscount(manifest, members):
            manifest["database"]["tables"]["organisation"] += 1

        bad = rewrite(archive, tmp_path / "miscounted.tar.gz", miscount)

    result = cli(app, "restore", "--force", str(bad))
    assert result.exit_code == 1
    expected_message = "恢复后的行数与备份清单不符" if url.startswith("sqlite") else "pg_restore 失败，数据库未作任何改动"
    assert expected_message in result.output
    close(app)
    assert contents(app) == before
    assert sorted(p.relative_to(instance) for p in instance.rglob("*")) == files_before


def test_backup_refuses_to_overwrite_an_archive(source, tmp_path):
    with source[0].app_context():
        made = backup.create_backup(tmp_path / "one.tar.gz")
        before = made.path.read_bytes()
        result = cli(source[0], "create", "--output", str(made.path))
    assert result.exit_code == 1
    assert "已存在，未覆盖" in result.output
    assert made.path.read_bytes() == before
