"""Backups of an instance: its database and its instance files in one verifiable archive.

An archive (``chanjiao-backup-<UTC time>.tar.gz``) holds ``manifest.json`` first, then:

- ``database/chanjiao.sqlite3``: a copy made with SQLite's online backup API, consistent while
  gunicorn workers keep writing (WAL readers never block writers); or
- ``database/chanjiao.pgdump``: a ``pg_dump`` custom-format dump taken in an exported snapshot,
  in which the row counts of the manifest are counted too, so both describe the same moment;
- ``instance/...``: every regular file of the instance folder (the secret key, ``mail/*.eml``,
  anything an operator keeps there) except the database itself, ``backups/`` and the unit-vector
  cache, which the live catalogue rewrites from the ``text_vector`` table when a worker starts.

The manifest records the format version, the UTC time, the database dialect, the Alembic
revision, the row count of every table and the SHA-256 of every other member. A restore checks
all of it before it touches anything, and never leaves a half-restored target: SQLite is
rebuilt in a temporary file that replaces the database in one rename; PostgreSQL is restored by
``pg_restore --single-transaction --exit-on-error``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from ..config import SECRET_KEY_FILE
from ..errors import DomainError
from ..extensions import db

FORMAT = "chanjiao-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/chanjiao.sqlite3"
POSTGRES_MEMBER = "database/chanjiao.pgdump"
INSTANCE_PREFIX = "instance/"
BACKUPS_DIR = "backups"
# Work files of a backup or restore in progress carry this prefix and are never archived.
WORK_PREFIX = ".chanjiao-backup-"
_CHUNK = 1 << 20


class BackupError(DomainError):
    """A backup could not be made, or an archive may not be restored here."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    files: list[str]
    at_head: bool  # False: the restored database needs `flask db upgrade`


# --------------------------------------------------------------------------- what is where


def instance_root() -> Path:
    return Path(current_app.instance_path)


def default_backup_dir() -> Path:
    return instance_root() / BACKUPS_DIR


def dialect() -> str:
    return db.engine.dialect.name


def _sqlite_path() -> Path:
    database = db.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(_("只能备份文件形式的 SQLite 数据库。"))
    return Path(database).resolve()


def _sqlite_companions(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def _excluded_paths() -> set[Path]:
    root = instance_root().resolve()
    excluded = {root / BACKUPS_DIR}
    vectors = current_app.config.get("MATCHING_UNIT_VECTOR_DIR")
    if vectors:
        excluded.add(Path(vectors).resolve())
    if dialect() == "sqlite":
        excluded.update(_sqlite_companions(_sqlite_path()))
    return excluded


def instance_files() -> list[str]:
    """Relative POSIX paths of the instance files a backup takes, sorted."""
    root = instance_root().resolve()
    if not root.is_dir():
        return []
    excluded = _excluded_paths()
    found: list[str] = []
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = sorted(
            d for d in dirnames if here / d not in excluded and not d.startswith(WORK_PREFIX)
        )
        for name in sorted(filenames):
            path = here / name
            # Symlinks and sockets are not data of ours; a restore would have to trust them.
            if path in excluded or name.startswith(WORK_PREFIX) or path.is_symlink() or not path.is_file():
                continue
            found.append(path.relative_to(root).as_posix())
    return sorted(found)


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _table_counts(conn: sa.Connection) -> dict[str, int]:
    preparer = conn.dialect.identifier_preparer
    return {
        name: conn.execute(sa.text(f"SELECT count(*) FROM {preparer.quote(name)}")).scalar_one()
        for name in sorted(sa.inspect(conn).get_table_names())
    }


def _alembic_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None  # a database made by create_all, as the test suite's is
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _known_revisions() -> tuple[set[str], set[str]]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from .. import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    return {s.revision for s in script.walk_revisions()}, set(script.get_heads())


# --------------------------------------------------------------------------- PostgreSQL tools


def _pg_environment() -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and an environment that carries it
    (so it never shows in the process list)."""
    url = db.engine.url
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def _pg_tool(name: str, server_major: int) -> str:
    """The client tool matching the server's major version.

    pg_dump refuses a newer server, and pg_restore a dump from a newer pg_dump, so the tool on
    PATH only serves when its major version is the server's; Debian installs each version's
    tools in /usr/lib/postgresql/<major>/bin.
    """
    candidates: list[str] = []
    configured = current_app.config.get("BACKUP_PG_BIN_DIR")
    if configured:
        candidates.append(str(Path(configured) / name))
    candidates.append(f"/usr/lib/postgresql/{server_major}/bin/{name}")
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        output = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"(\d+)(?:\.\d+)?", output)
        if found and int(found.group(1)) == server_major:
            return candidate
    raise BackupError(
        _("找不到与 PostgreSQL 服务器版本 %(major)s 相符的 %(tool)s；请安装该版本的客户端工具，"
          "或用 CHANJIAO_BACKUP_PG_BIN_DIR 指明其目录。", major=server_major, tool=name)
    )


def _pg_server_major(conn: sa.Connection) -> int:
    return int(conn.execute(sa.text("SHOW server_version_num")).scalar_one()) // 10000


def _run_tool(command: list[str], env: dict[str, str], failure: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{failure} {detail[-1] if detail else ''}".strip())


# --------------------------------------------------------------------------- create


def _dump_sqlite(target: Path) -> dict[str, Any]:
    source_path = _sqlite_path()
    if not source_path.is_file():
        raise BackupError(_("数据库文件 %(path)s 不存在。", path=source_path))
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        # One step (pages=-1): a single read transaction, so the copy is one consistent moment
        # however the workers write meanwhile.
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(_("数据库副本未通过完整性检查，备份未写入。"))
    finally:
        copy.close()
        source.close()
    engine = sa.create_engine(f"sqlite:///{target}", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {"alembic_revision": _alembic_revision(conn), "tables": _table_counts(conn)}
    finally:
        engine.dispose()


def _dump_postgres(target: Path) -> dict[str, Any]:
    dsn, env = _pg_environment()
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            major = _pg_server_major(conn)
            pg_dump = _pg_tool("pg_dump", major)
            # pg_dump reads the snapshot this transaction exported, and the counts below are
            # taken in the same snapshot: dump and manifest describe one moment.
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            _run_tool(
                # A schema change holding its lock fails the backup instead of hanging it.
                [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}",
                 "--lock-wait-timeout=60s", f"--file={target}", f"--dbname={dsn}"],
                env, _("pg_dump 失败："),
            )
            details = {"alembic_revision": _alembic_revision(conn), "tables": _table_counts(conn)}
    return {**details, "server_major": major}


def create_backup(output: Path | None = None) -> BackupResult:
    """Write one archive of the database and the instance files; return its path and manifest.

    ``output`` is a directory (the archive gets its default name there) or a file path;
    the default is ``<instance>/backups``. The archive appears under its name only when complete.
    """
    created = datetime.now(UTC).replace(microsecond=0)
    name = f"chanjiao-backup-{_utc_stamp(created)}.tar.gz"
    output = Path(output) if output is not None else default_backup_dir()
    # A folder (existing, or any name not ending in .tar.gz) gets the archive under its default name.
    path = output / name if output.is_dir() or not output.name.endswith(".tar.gz") else output
    if path.exists():
        raise BackupError(_("文件 %(path)s 已存在，未覆盖。", path=path))
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = dialect()
    if kind not in ("sqlite", "postgresql"):
        raise BackupError(_("不支持备份 %(dialect)s 数据库。", dialect=kind))
    files = instance_files()

    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=path.parent) as work:
        staging = Path(work)
        member = SQLITE_MEMBER if kind == "sqlite" else POSTGRES_MEMBER
        (staging / member).parent.mkdir(parents=True)
        details = (_dump_sqlite if kind == "sqlite" else _dump_postgres)(staging / member)
        root = instance_root()
        copied: list[str] = []
        for relative in files:
            staged = staging / INSTANCE_PREFIX / relative
            staged.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(root / relative, staged)
            except FileNotFoundError:
                continue  # removed since it was listed (a mail file cleaned up): nothing to keep
            copied.append(INSTANCE_PREFIX + relative)
        members = [member, *copied]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "database": {"dialect": kind, "file": member, **details},
            "files": {
                m: {"sha256": _sha256(staging / m), "size": (staging / m).stat().st_size}
                for m in members
            },
            "excluded": ["backups/", "unit-vectors/ (MATCHING_UNIT_VECTOR_DIR, a cache)"],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")

        partial = path.with_name(f"{WORK_PREFIX}{secrets.token_hex(4)}-{path.name}")
        try:
            partial.touch(mode=0o600)  # private from the first byte: it holds the secret key
            with tarfile.open(partial, "w:gz") as archive:
                for m in (MANIFEST, *members):
                    info = archive.gettarinfo(staging / m, arcname=m)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mode = 0o600
                    with (staging / m).open("rb") as fh:
                        archive.addfile(info, fh)
            with partial.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(partial, path)
            _fsync_dir(path.parent)
        finally:
            partial.unlink(missing_ok=True)
    return BackupResult(path=path, manifest=manifest)


# --------------------------------------------------------------------------- verify


def _safe_member(name: str) -> bool:
    pure = PurePosixPath(name)
    return not pure.is_absolute() and ".." not in pure.parts and str(pure) == name


@contextmanager
def verified_archive(path: Path, work_dir: Path | None = None) -> Iterator[tuple[dict[str, Any], Path]]:
    """Unpack ``path`` into a temporary folder, checking the manifest and every checksum;
    yield the manifest and the folder. Raises :class:`BackupError` for anything amiss."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(_("备份文件 %(path)s 不存在。", path=path))
    corrupt = _("备份文件 %(path)s 已损坏或不是产教平台的备份：", path=path.name)
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=work_dir) as work:
        staging = Path(work)
        try:
            with tarfile.open(path, "r:gz") as archive:
                first = archive.next()
                if first is None or first.name != MANIFEST or not first.isfile():
                    raise BackupError(corrupt + _("缺少 manifest.json。"))
                manifest = json.load(archive.extractfile(first))  # type: ignore[arg-type]
                if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                    raise BackupError(corrupt + _("manifest.json 格式不对。"))
                version = manifest.get("format_version")
                if not isinstance(version, int) or version > FORMAT_VERSION:
                    raise BackupError(
                        _("备份格式版本 %(version)s 比本程序支持的 %(known)s 新，请先升级程序。",
                          version=version, known=FORMAT_VERSION)
                    )
                expected = manifest.get("files")
                database = manifest.get("database")
                if not (
                    isinstance(expected, dict)
                    and all(isinstance(v, dict) for v in expected.values())
                    and isinstance(database, dict)
                    and database.get("file") in expected
                    and isinstance(database.get("tables"), dict)
                ):
                    raise BackupError(corrupt + _("manifest.json 格式不对。"))
                seen: set[str] = set()
                # Not `for info in archive`: that would start again from the manifest.
                while (info := archive.next()) is not None:
                    name = info.name
                    if name not in expected or name in seen or not info.isfile() or not _safe_member(name):
                        raise BackupError(corrupt + _("含有清单之外的成员 %(name)s。", name=name))
                    seen.add(name)
                    target = staging / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    digest = hashlib.sha256()
                    source = archive.extractfile(info)
                    assert source is not None
                    with target.open("wb") as fh:
                        while chunk := source.read(_CHUNK):
                            digest.update(chunk)
                            fh.write(chunk)
                    if digest.hexdigest() != expected[name].get("sha256"):
                        raise BackupError(corrupt + _("%(name)s 的校验和不符。", name=name))
                missing = sorted(set(expected) - seen)
                if missing:
                    raise BackupError(corrupt + _("缺少成员 %(names)s。", names=", ".join(missing)))
        except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeDecodeError) as error:
            # A truncated or altered gzip stream shows up as one of these, wherever it breaks.
            raise BackupError(corrupt + str(error)) from None
        yield manifest, staging


def _check_compatible(manifest: dict[str, Any]) -> bool:
    """Refuse an archive this code cannot restore; return whether it is at the code's head."""
    database = manifest["database"]
    here = dialect()
    if database.get("dialect") != here:
        raise BackupError(
            _("备份来自 %(source)s 数据库，当前数据库是 %(target)s；不支持跨数据库恢复。",
              source=database.get("dialect"), target=here)
        )
    revision = database.get("alembic_revision")
    known, heads = _known_revisions()
    if revision is not None and revision not in known:
        raise BackupError(
            _("备份的数据库版本 %(revision)s 比本程序新（本程序不认识这个迁移），请先升级程序再恢复。",
              revision=revision)
        )
    return revision is None or revision in heads


def _nonempty_tables(conn: sa.Connection) -> list[str]:
    counts = _table_counts(conn)
    return [name for name, n in counts.items() if n and name != "alembic_version"]


def _check_counts(conn: sa.Connection, manifest: dict[str, Any]) -> None:
    expected: dict[str, int] = manifest["database"]["tables"]
    found = _table_counts(conn)
    wrong = [
        f"{name} {found.get(name)}≠{count}" for name, count in sorted(expected.items())
        if found.get(name) != count
    ]
    if wrong:
        raise BackupError(_("恢复后的行数与备份清单不符：%(tables)s", tables="; ".join(wrong)))


# --------------------------------------------------------------------------- restore


def _target_state(force: bool) -> None:
    """Refuse a target that holds data (unless forced)."""
    if force:
        return
    if dialect() == "sqlite" and not _sqlite_path().exists():
        tables: list[str] = []
    else:
        with db.engine.connect() as conn:
            tables = _nonempty_tables(conn)
    root = instance_root()
    files = [f for f in instance_files() if f != SECRET_KEY_FILE]
    # The secret key is not counted: starting the app to run this command creates one.
    if tables or files:
        what = ", ".join([*tables[:5], *files[:5]])
        where = f"{db.engine.url.render_as_string(hide_password=True)} / {root}"
        raise BackupError(
            _("目标不是空的（%(where)s 中已有数据：%(what)s）；确认要覆盖请加 --force。",
              where=where, what=what)
        )


def _restore_sqlite(staged: Path, manifest: dict[str, Any]) -> None:
    target = _sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(f"{WORK_PREFIX}{secrets.token_hex(4)}-{target.name}")
    try:
        shutil.copyfile(staged, fresh)
        with fresh.open("rb") as fh:
            os.fsync(fh.fileno())
        engine = sa.create_engine(f"sqlite:///{fresh}", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                if conn.exec_driver_sql("PRAGMA integrity_check").scalar() != "ok":
                    raise BackupError(_("备份中的数据库未通过完整性检查，未恢复任何内容。"))
                _check_counts(conn, manifest)  # before the swap: a mismatch changes nothing
        finally:
            engine.dispose()
        db.engine.dispose()
        if target.exists():
            # Empty the old database's WAL into it first: a WAL left beside the new file would
            # be replayed into it. Busy means another process still has it open.
            old = sqlite3.connect(target, timeout=10)
            try:
                busy = old.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                old.close()
            if busy:
                raise BackupError(_("数据库正被其他进程使用；请先停止应用（gunicorn、jobs worker）再恢复。"))
        os.replace(fresh, target)
        for companion in _sqlite_companions(target)[1:]:
            companion.unlink(missing_ok=True)
        _fsync_dir(target.parent)
    finally:
        fresh.unlink(missing_ok=True)


def _restore_postgres(staged: Path, manifest: dict[str, Any]) -> None:
    dsn, env = _pg_environment()
    with db.engine.connect() as conn:
        major = _pg_server_major(conn)
        present = set(sa.inspect(conn).get_table_names())
    extra = sorted(present - set(manifest["database"]["tables"]))
    if extra:
        # --clean drops only what the dump holds; these would survive beside the restored schema.
        raise BackupError(
            _("目标数据库中有备份里没有的表（%(tables)s）；请恢复到一个空数据库。", tables=", ".join(extra))
        )
    pg_restore = _pg_tool("pg_restore", major)
    db.engine.dispose()
    # A worker still connected would make the DROPs wait forever; fail (and roll back) instead.
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c lock_timeout=60s".strip()
    _run_tool(
        [pg_restore, "--no-owner", "--no-privileges", "--clean", "--if-exists",
         "--single-transaction", "--exit-on-error", "--no-password", f"--dbname={dsn}", str(staged)],
        env, _("pg_restore 失败，数据库未作任何改动："),
    )
    with db.engine.connect() as conn:
        _check_counts(conn, manifest)


def _prepare_files(staging: Path, manifest: dict[str, Any]) -> list[tuple[Path, Path]]:
    """(staged file, its place) for each instance file: after the database is swapped only
    renames remain, which do not fail for want of space."""
    root = instance_root()
    moves: list[tuple[Path, Path]] = []
    for member in sorted(manifest["files"]):
        if member.startswith(INSTANCE_PREFIX):
            target = root / member[len(INSTANCE_PREFIX):]
            os.chmod(staging / member, 0o600)
            moves.append((staging / member, target))
    return moves


def restore_backup(path: Path, force: bool = False) -> RestoreResult:
    """Restore an archive into this instance's database and instance folder.

    Everything is checked before anything is written: the manifest and checksums, the format
    version, the dialect, that the Alembic revision is one this code knows, and (unless
    ``force``) that the target holds no data. Row counts are checked against the manifest.
    """
    root = instance_root()
    root.mkdir(parents=True, exist_ok=True)
    with verified_archive(path, work_dir=root) as (manifest, staging):
        at_head = _check_compatible(manifest)
        _target_state(force)
        staged = staging / manifest["database"]["file"]
        # The staging folder is inside the instance folder, so each file moves in one rename.
        moves = _prepare_files(staging, manifest)
        if dialect() == "sqlite":
            _restore_sqlite(staged, manifest)
        else:
            _restore_postgres(staged, manifest)
        for staged_file, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged_file, target)
    root_files = [target.relative_to(root).as_posix() for _staged, target in moves]
    return RestoreResult(manifest=manifest, files=root_files, at_head=at_head)
