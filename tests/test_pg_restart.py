"""A PostgreSQL restart under write load loses no acknowledged write, answers 503 (not 500)
while the server is down, and gunicorn recovers by itself.

The cluster is the test's own (tests/pg_cluster.py), never the machine's shared server. Six
client threads create demands through the JSON API over real HTTP against the repository's
gunicorn configuration (2 gthread workers x 4 threads) while the cluster is restarted twice:
once with ``pg_ctl restart -m fast`` (open sessions are cut: ``admin_shutdown``), once stopped
for two seconds, so that some requests certainly meet a server that is down. Afterwards every
write answered 201 must be in the database, every other answer must be a 503 with the API's
error shape, and writes must succeed again without restarting gunicorn.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .e2e_support import _run, live_server, server_env
from .pg_cluster import Cluster, pg_cluster
from .test_api import DEMAND

CLIENTS = 6

SETUP_SCRIPT = r'''
from flask_migrate import upgrade
from chanjiao import create_app
from chanjiao.auth.services import create_user
from chanjiao.extensions import db
from chanjiao.models import Organisation
from chanjiao.tokens.services import create_token
from chanjiao.validators import credit_code_check_char

app = create_app()
with app.app_context():
    upgrade()  # what `flask db upgrade` runs
    first17 = "91110105000000031"
    enterprise = Organisation(
        kind="enterprise", name="朝阳重启测试企业", credit_code=first17 + credit_code_check_char(first17),
        district="双井街道", address="朝阳区广渠路3号", industry="elderly_care", contact_name="陈经理",
        contact_phone="13911112222", status="approved")
    db.session.add(enterprise)
    db.session.flush()
    member = create_user("hr@restart.example.cn", "企业人事", "Restart-test-2026", "org_member",
                         enterprise.id)
    _token, secret = create_token(member, "压测")
    db.session.commit()
    print(secret)
'''


@dataclass
class Load:
    """What the clients were told, per answer."""

    acknowledged: list[tuple[int, str, float]] = field(default_factory=list)  # id, title, when
    refused: list[tuple[dict, dict, float]] = field(default_factory=list)  # body, headers, when
    unexpected: list[tuple[int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_demand(base: str, secret: str, title: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        base + "/api/v1/demands", data=json.dumps({**DEMAND, "title": title}).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            text = error.read().decode(errors="replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = {"raw": text[-1500:]}
            return error.code, body, dict(error.headers)


def hammer(base: str, secret: str, load: Load, stop: threading.Event, n: int) -> None:
    seq = 0
    while not stop.is_set():
        seq += 1
        title = f"重启压测需求 {n}-{seq}"
        status, body, headers = create_demand(base, secret, title)
        now = time.monotonic()
        with load.lock:
            if status == 201 and body.get("title") == title:
                load.acknowledged.append((body["id"], title, now))
            elif status == 503:
                load.refused.append((body, headers, now))
            else:
                load.unexpected.append((status, json.dumps(body, ensure_ascii=False)[:1500]))


@contextmanager
def gunicorn(env: dict[str, str], folder: Path) -> Iterator[tuple[str, Path]]:
    with live_server(env, folder, workers=2, threads=4) as server:
        yield server.url, server.log
        assert server.process.poll() is None, "gunicorn exited:\n" + server.errors()


def stored_demands(cluster: Cluster, database: str) -> set[tuple[int, str]]:
    rows = cluster.psql("SELECT id || E'\\t' || title FROM demand", database).splitlines()
    return {(int(i), t) for i, t in (row.split("\t", 1) for row in rows if row)}


@pytest.mark.postgres
@pytest.mark.slow
def test_a_restart_under_write_load_loses_no_acknowledged_write(tmp_path):
    started = time.monotonic()
    with pg_cluster() as cluster:
        cluster.psql('CREATE DATABASE "chanjiao"')
        env = server_env(tmp_path, cluster.url("chanjiao"))
        env.update({
            "CHANJIAO_MATCHING_ENCODER": "lexical",
            "CHANJIAO_MAIL_BACKEND": "locmem",
            "CHANJIAO_API_RATELIMIT_PER_MINUTE": "1000000",  # the load is the point, not the limit
        })
        secret = _run([sys.executable, "-c", SETUP_SCRIPT], env).strip().splitlines()[-1]
        with gunicorn(env, tmp_path) as (base, log):
            # One write first: it creates the demand's skill tags, which simultaneous first
            # writers would otherwise race to create (a 409 the client may retry, not our subject).
            status, body, _headers = create_demand(base, secret, "首个需求")
            assert status == 201, body
            load, stop = Load(), threading.Event()
            load.acknowledged.append((body["id"], "首个需求", time.monotonic()))
            threads = [threading.Thread(target=hammer, args=(base, secret, load, stop, n))
                       for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(2)
                cluster.restart()
                time.sleep(2)
                cluster.stop()
                down = time.monotonic()
                time.sleep(2)
                cluster.start()
                up = time.monotonic()
                time.sleep(3)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(timeout=60)
            # Recovered without a restart of gunicorn: a new write succeeds.
            status, body, _headers = create_demand(base, secret, "重启后的需求")
            assert status == 201, body
            server_log = log.read_text(errors="replace")

        stored = stored_demands(cluster, "chanjiao")

    assert not load.unexpected, load.unexpected[:5]
    acknowledged = {(i, t) for i, t, _when in load.acknowledged}
    assert len(acknowledged) == len(load.acknowledged)  # no id handed out twice
    missing = acknowledged - stored
    assert not missing, (
        f"{len(missing)} of {len(acknowledged)} acknowledged writes lost: {sorted(missing)[:5]}")
    assert (body["id"], "重启后的需求") in stored

    # While the server was down the clients were told so, in the API's error shape.
    assert any(down <= when <= up for _b, _h, when in load.refused), (down, up, len(load.refused))
    assert Counter(b.get("error", {}).get("code") for b, _h, _w in load.refused) == {
        "service_unavailable": len(load.refused)}
    assert all(h.get("Retry-After") == "30" for _b, h, _w in load.refused)
    # Writes went through before, between and after the restarts.
    whens = [when for _i, _t, when in load.acknowledged]
    assert any(when < down for when in whens) and any(when > up for when in whens)
    # No request ended in a traceback (Flask logs one as "Exception on <path>"). The
    # background threads' own retry logs are theirs to shape, and are not requests.
    assert "Exception on " not in server_log, server_log[-6000:]
    assert "answered 503 (" in server_log  # each refusal logged, with its reason
    print(f"{len(acknowledged)} acknowledged writes all stored, {len(load.refused)} answered 503, "
          f"{time.monotonic() - started:.0f} s")
