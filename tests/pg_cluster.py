"""A throwaway PostgreSQL cluster of the test's own, so a test may stop and restart it.

The machine's shared server (port 5432) is never touched: ``initdb`` makes a new cluster in a
temporary folder and ``pg_ctl`` runs it on a free port, owned by the ``postgres`` user when the
tests run as root (PostgreSQL refuses to run as root). Trust authentication on 127.0.0.1 only.
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .e2e_support import free_port

PG_BIN = Path(os.environ.get("CHANJIAO_PG_BIN", "/usr/lib/postgresql/15/bin"))
START_SECONDS = 30


def _as_owner() -> list[str]:
    """The prefix that runs a PostgreSQL binary as a user it accepts."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Cluster:
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*_as_owner(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w",
             "-t", str(START_SECONDS), *args],
            capture_output=True, text=True, timeout=START_SECONDS + 30, check=False,
        )
        if check and result.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"pg_ctl {' '.join(args)} failed:\n{result.stderr}\n{log}")
        return result

    def start(self) -> None:
        self._ctl("-l", str(self.folder / "server.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def restart(self) -> None:
        """A fast restart: open transactions are rolled back, sessions are cut
        (``admin_shutdown``), committed data must survive."""
        self._ctl("-m", "fast", "-l", str(self.folder / "server.log"), "restart")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-d", self.url(database), "-c", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


@contextmanager
def pg_cluster() -> Iterator[Cluster]:
    """A running cluster, stopped and deleted afterwards."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries are missing in {PG_BIN} (set CHANJIAO_PG_BIN)",
                    pytrace=False)
    # Not under pytest's tmp_path: the postgres user must be able to reach the folder.
    folder = Path(tempfile.mkdtemp(prefix="chanjiao-pg-"))
    os.chmod(folder, 0o755)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(folder, free_port())
    try:
        init = subprocess.run(
            [*_as_owner(), str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{folder}'\n"
                "max_connections = 60\nshared_buffers = 32MB\n"
            )
        cluster.start()
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster._ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)
