"""Per-token rate limit of the API: in memory by default, in Redis when a storage URL is set,
and shared by the workers of a real gunicorn server."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from chanjiao.api.ratelimit import MemoryLimiter, RedisLimiter

from .test_api_helpers import assert_documented, assert_error, bearer, token_for

REPO_ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def members(make):
    enterprise = make.org("enterprise")
    return token_for(make.user(enterprise)), token_for(make.user(enterprise, "org_member"))


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"chanjiao:test:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
    finally:
        client.close()


def test_the_default_is_120_a_minute_in_memory(app, client, members):
    assert app.config["API_RATELIMIT_PER_MINUTE"] == 120
    assert app.config["API_RATELIMIT_STORAGE_URL"] is None
    response = client.get("/api/v1/demands", headers=bearer(members[0]))
    assert response.headers["X-RateLimit-Limit"] == "120"
    assert response.headers["X-RateLimit-Remaining"] == "119"


def test_in_memory_limit_per_token(app, client, members):
    app.config["API_RATELIMIT_PER_MINUTE"] = 3
    first, second = members
    remaining = [client.get("/api/v1/demands", headers=bearer(first)).headers["X-RateLimit-Remaining"]
                 for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    response = client.get("/api/v1/demands", headers=bearer(first))
    error = assert_error(response, 429, "rate_limited")
    assert error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert_documented(response, "GET", "/api/v1/demands")
    # Writes are refused too, before anything is looked up or written.
    assert client.post("/api/v1/demands", json={"title": "x"}, headers=bearer(first)).status_code == 429
    # Another token has its own count; calls without a token are not counted against anyone.
    assert client.get("/api/v1/demands", headers=bearer(second)).status_code == 200
    assert client.get("/api/v1/demands").status_code == 401


def test_memory_limiter_window_resets():
    now = [1000.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    assert [limiter.hit("t", 2).allowed for _ in range(3)] == [True, True, False]
    now[0] += 59.5
    refused = limiter.hit("t", 2)
    assert not refused.allowed and refused.reset_after == 1
    now[0] += 0.5
    assert limiter.hit("t", 2).allowed
    assert limiter.hit("other", 2).remaining == 1


def test_redis_limiter_counts_are_shared_between_instances(redis_prefix):
    # Two limiters on one URL and prefix stand for two worker processes.
    first, second = RedisLimiter(REDIS_URL, redis_prefix), RedisLimiter(REDIS_URL, redis_prefix)
    try:
        verdicts = [limiter.hit("token:1", 4) for limiter in (first, second, first, second, first)]
        assert [v.allowed for v in verdicts] == [True, True, True, True, False]
        assert [v.remaining for v in verdicts] == [3, 2, 1, 0, 0]
        assert 1 <= verdicts[-1].reset_after <= 60
        assert second.hit("token:2", 4).allowed  # per key
        client = redis.Redis.from_url(REDIS_URL)
        try:
            assert int(client.get(f"{redis_prefix}:token:1")) == 5
            assert 0 < client.pttl(f"{redis_prefix}:token:1") <= 60_000
        finally:
            client.close()
    finally:
        first.close()
        second.close()


def test_redis_backed_limit_through_the_app(app, client, members, redis_prefix):
    app.config.update(
        API_RATELIMIT_PER_MINUTE=3,
        API_RATELIMIT_STORAGE_URL=REDIS_URL,
        API_RATELIMIT_KEY_PREFIX=redis_prefix,
    )
    statuses = [client.get("/api/v1/demands", headers=bearer(members[0])).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    store = redis.Redis.from_url(REDIS_URL)
    try:
        assert len(list(store.scan_iter(f"{redis_prefix}:*"))) == 1
    finally:
        store.close()
    # A fresh in-memory limiter (e.g. another worker) would allow more; Redis does not.
    app.extensions.pop("chanjiao.api_ratelimit", None)
    response = client.get("/api/v1/demands", headers=bearer(members[0]))
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


def test_unreachable_redis_falls_back_to_counting_in_memory(app, client, members, caplog):
    app.config.update(API_RATELIMIT_PER_MINUTE=2, API_RATELIMIT_STORAGE_URL="redis://127.0.0.1:1/0")
    statuses = [client.get("/api/v1/demands", headers=bearer(members[0])).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert "unreachable" in caplog.text


# --------------------------------------------------------------------------- two gunicorn workers

SETUP_SCRIPT = """
from wsgi import app
from chanjiao.extensions import db
from chanjiao.tokens.services import create_token
from tests import factories

with app.app_context():
    user = factories.user(factories.org("enterprise"))
    token, secret = create_token(user, "gunicorn")
    db.session.commit()
    print(secret)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        error.close()
        return error.code


def _pids(log: Path, path: str) -> set[str]:
    if not log.exists():
        return set()
    return {line.split()[0] for line in log.read_text().splitlines() if line.strip().endswith(path)}


@pytest.mark.slow
def test_the_limit_is_shared_by_two_gunicorn_workers(tmp_path, redis_prefix):
    limit, port = 10, _free_port()
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "CHANJIAO_INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "CHANJIAO_API_RATELIMIT_PER_MINUTE": str(limit),
        "CHANJIAO_API_RATELIMIT_STORAGE_URL": REDIS_URL,
        "CHANJIAO_API_RATELIMIT_KEY_PREFIX": redis_prefix,
        "CHANJIAO_MATCHING_ENCODER": "lexical",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("CHANJIAO_SECRET_KEY", None)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "init-instance", "--no-seed"],
        cwd=REPO_ROOT, env=env, check=True, capture_output=True, timeout=300,
    )
    secret = subprocess.run(
        [sys.executable, "-c", SETUP_SCRIPT], cwd=REPO_ROOT, env=env, check=True, capture_output=True,
        text=True, timeout=300,
    ).stdout.strip().splitlines()[-1]
    assert secret.startswith("cj_")

    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "gunicorn.err").open("w") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
             "--access-logfile", str(access_log), "--access-logformat", "%(p)s %(s)s %(U)s",
             "wsgi:app"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors,
        )
        try:
            # Warm up with the document (not counted) until both workers have answered.
            deadline = time.monotonic() + 120
            with ThreadPoolExecutor(max_workers=4) as pool:
                while len(_pids(access_log, "/api/v1/openapi.json")) < 2:
                    assert server.poll() is None, (tmp_path / "gunicorn.err").read_text()[-3000:]
                    assert time.monotonic() < deadline, "gunicorn workers did not both start"
                    try:
                        list(pool.map(lambda _: _get(f"{base}/api/v1/openapi.json"), range(8)))
                    except OSError:
                        time.sleep(0.5)

            # Four times the limit, six at a time, so that both workers serve the burst.
            with ThreadPoolExecutor(max_workers=6) as pool:
                statuses = list(pool.map(lambda _: _get(f"{base}/api/v1/demands", bearer(secret)), range(4 * limit)))
            counts = Counter(statuses)
            assert counts == {200: limit, 429: 3 * limit}, counts
            assert len(_pids(access_log, "/api/v1/demands")) == 2, access_log.read_text()[-2000:]
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)

    # Once both workers are gone, the count stays in Redis for the rest of the minute.
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{redis_prefix}:*"))
        assert len(keys) == 1 and int(client.get(keys[0])) == 4 * limit
    finally:
        client.close()
