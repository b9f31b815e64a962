"""The outbox, the job queue (eager, thread and RQ paths) and the scheduler's lease."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from chanjiao import jobs
from chanjiao.extensions import db
from chanjiao.jobs import outbox, registry, scheduler
from chanjiao.models import JobLease, OutboxMessage, ScheduledRun
from chanjiao.models._common import utcnow
from chanjiao.uow import unit_of_work

CALLS: list[dict] = []


@registry.handler("test.record")
def _record(payload: dict) -> None:
    CALLS.append(payload)
    if payload.get("fail"):
        raise RuntimeError("boom: " + str(payload["fail"]))


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    yield
    CALLS.clear()


def _messages() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_rolled_back_unit_leaves_no_message_and_runs_nothing(app):
    with pytest.raises(RuntimeError), unit_of_work():
        jobs.enqueue("test.record", {"n": 1})
        raise RuntimeError("the change failed")
    assert _messages() == []
    assert CALLS == []


def test_a_committed_message_runs_after_the_commit_once(app):
    seen_in_handler = []

    @registry.handler("test.sees_commit")
    def sees_commit(payload):
        # Runs after the commit: the change it follows is already visible to a new read.
        seen_in_handler.append(db.session.get(JobLease, "marker") is not None)

    with unit_of_work():
        db.session.add(JobLease(name="marker", holder="x", expires_at=utcnow()))
        jobs.enqueue("test.sees_commit", {})
    assert seen_in_handler == [True]
    [message] = _messages()
    assert (message.state, message.attempts, message.finished_at is not None) == ("done", 1, True)
    assert jobs.run_one(message.id) is None  # done: nobody claims it again


def test_a_failing_handler_is_retried_with_back_off_then_fails_and_shows_its_error(app):
    with unit_of_work():
        jobs.enqueue("test.record", {"fail": "smtp down"}, max_attempts=3)
    [message] = _messages()
    assert (message.state, message.attempts) == ("pending", 1)
    assert "boom: smtp down" in message.last_error
    delay = message.available_at - utcnow()
    assert timedelta(seconds=3) < delay <= timedelta(seconds=5)
    assert jobs.run_pending() == 0  # not due yet
    for expected_attempts, expected_state in ((2, "pending"), (3, "failed")):
        db.session.execute(update(OutboxMessage).values(available_at=utcnow()))
        db.session.commit()
        jobs.run_pending()
        [message] = _messages()
        assert (message.attempts, message.state) == (expected_attempts, expected_state)
    assert outbox.backoff(2) == timedelta(seconds=10)
    assert outbox.backoff(30) == timedelta(seconds=outbox.BACKOFF_MAX_SECONDS)


def test_a_malformed_or_unknown_message_fails_at_once_and_never_blocks_the_queue(app):
    db.session.add_all([
        OutboxMessage(kind="no.such.kind", payload={}),
        OutboxMessage(kind="test.record", payload=["not", "an", "object"]),
        OutboxMessage(kind="test.record", payload={"n": 2}),
    ])
    db.session.commit()
    jobs.run_pending()
    states = [(m.kind, m.state) for m in _messages()]
    assert states == [("no.such.kind", "failed"), ("test.record", "failed"), ("test.record", "done")]
    assert CALLS == [{"n": 2}]
    with pytest.raises(ValueError, match="no handler"):
        jobs.enqueue("no.such.kind", {})


def test_messages_with_one_key_coalesce_to_the_latest_payload(app):
    app.config["JOBS_MODE"] = "manual"
    with unit_of_work():
        jobs.enqueue("test.record", {"version": 1}, key="posting:7")
    with unit_of_work():
        assert jobs.enqueue("test.record", {"version": 2}, key="posting:7") is None
    [message] = _messages()
    assert message.payload == {"version": 2}
    jobs.run_pending()
    assert CALLS == [{"version": 2}]


def test_an_expired_claim_is_taken_over_and_the_stale_runner_cannot_finish_it(app):
    app.config["JOBS_MODE"] = "manual"
    with unit_of_work():
        jobs.enqueue("test.record", {"n": 3})
    [message] = _messages()
    assert outbox._claim(message.id, "crashed-runner", utcnow())
    assert jobs.run_one(message.id, "other") is None  # claimed and not expired
    db.session.execute(update(OutboxMessage).values(locked_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert jobs.run_one(message.id, "other") == "done"
    [message] = _messages()
    assert (message.attempts, message.locked_by) == (2, "other")


def test_twenty_runners_at_once_run_each_message_exactly_once(app):
    app.config["JOBS_MODE"] = "manual"
    with unit_of_work():
        for n in range(30):
            jobs.enqueue("test.record", {"n": n})
    barrier = threading.Barrier(20)
    errors = []

    def runner():
        try:
            with app.app_context():
                barrier.wait()
                jobs.run_pending()
                db.session.remove()
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=runner) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(c["n"] for c in CALLS) == list(range(30))
    assert {m.state for m in _messages()} == {"done"}


def test_the_thread_runner_picks_up_a_commit_without_being_asked(app):
    from chanjiao.jobs import background

    app.config.update(JOBS_MODE="thread", JOBS_POLL_SECONDS=0.2)
    background._stop.clear()
    threads = background.start(app)
    try:
        with unit_of_work():
            jobs.enqueue("test.record", {"n": "threaded"})
        deadline = time.monotonic() + 10
        while not CALLS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert CALLS == [{"n": "threaded"}]
    finally:
        background._stop.set()
        outbox.wakeup.set()
        for t in threads:
            t.join(10)
        background._started.pop(id(app), None)
        background._stop.clear()


# --------------------------------------------------------------------------- scheduler

RUNS: list[str] = []


@registry.periodic("test.every_hour", every=timedelta(hours=1))
def _hourly() -> None:
    RUNS.append("hourly")


@pytest.fixture
def only_test_jobs(monkeypatch):
    registry.load_all()
    monkeypatch.setattr(registry, "PERIODIC", {k: v for k, v in registry.PERIODIC.items() if k.startswith("test.")})
    RUNS.clear()
    yield
    RUNS.clear()


def test_the_lease_lets_one_holder_act_until_it_expires(app):
    now = utcnow()
    assert scheduler.acquire("x", "a", seconds=60, now=now)
    assert not scheduler.acquire("x", "b", seconds=60, now=now)
    assert scheduler.acquire("x", "a", seconds=60, now=now)  # renewing its own
    assert scheduler.acquire("x", "b", seconds=60, now=now + timedelta(seconds=61))
    scheduler.release("x", "b")
    assert scheduler.acquire("x", "c", seconds=60)


def test_a_tick_runs_a_due_job_once_and_catches_up_after_downtime_once(app, only_test_jobs):
    first = scheduler.tick()
    assert first.ran == ["test.every_hour"] and RUNS == ["hourly"]
    assert scheduler.tick().not_due == ["test.every_hour"] and RUNS == ["hourly"]
    # Three days down: the job is overdue by 71 periods and runs once.
    later = utcnow() + timedelta(days=3)
    assert scheduler.tick(now=later).ran == ["test.every_hour"]
    assert scheduler.tick(now=later).not_due == ["test.every_hour"]
    assert RUNS == ["hourly", "hourly"]
    row = db.session.get(ScheduledRun, "test.every_hour")
    assert row.runs == 2 and row.next_due_at == later + timedelta(hours=1)


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(app, only_test_jobs, monkeypatch):
    def broken():
        raise RuntimeError("deadline table missing")

    monkeypatch.setitem(registry.PERIODIC, "test.broken", registry.Periodic("test.broken", timedelta(hours=1), broken, ""))
    report = scheduler.tick()
    assert report.ran == ["test.every_hour"] and "deadline table missing" in report.failed["test.broken"]
    row = db.session.get(ScheduledRun, "test.broken")
    assert "deadline table missing" in row.last_error
    assert row.next_due_at <= utcnow()  # retried at the next tick


def test_ticks_started_at_once_act_once(app, only_test_jobs):
    barrier = threading.Barrier(8)
    reports = []

    def ticker():
        with app.app_context():
            barrier.wait()
            reports.append(scheduler.tick())
            db.session.remove()

    threads = [threading.Thread(target=ticker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert RUNS == ["hourly"]
    assert sum(r.acquired and bool(r.ran) for r in reports) == 1


def test_flask_jobs_tick_and_status(app, runner, only_test_jobs):
    result = runner.invoke(args=["jobs", "tick"])
    assert result.exit_code == 0, result.output
    assert "ran test.every_hour" in result.output
    result = runner.invoke(args=["jobs", "tick", "--job", "nope"])
    assert result.exit_code != 0 and "no periodic job" in result.output
    result = runner.invoke(args=["jobs", "status"])
    assert "job test.every_hour" in result.output


# --------------------------------------------------------------------------- RQ

REDIS_TEST_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def rq_app(app):
    from redis import Redis

    connection = Redis.from_url(REDIS_TEST_URL)
    connection.flushdb()
    app.config.update(JOBS_MODE=None, REDIS_URL=REDIS_TEST_URL)
    yield app
    connection.flushdb()


def test_with_redis_messages_go_through_rq_and_a_simple_worker_runs_them(rq_app, runner):
    from chanjiao.jobs.rq_queue import queue

    assert outbox.mode() == "rq"
    with unit_of_work():
        jobs.enqueue("test.record", {"n": "via rq"})
    assert CALLS == []  # not run in the web process
    assert queue().count == 1
    result = runner.invoke(args=["jobs", "worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert CALLS == [{"n": "via rq"}]
    assert [m.state for m in _messages()] == ["done"]


def test_a_push_lost_with_redis_is_pushed_again_by_the_tick(rq_app, runner):
    from chanjiao.jobs.rq_queue import queue

    with unit_of_work():
        jobs.enqueue("test.record", {"n": "lost"})
    queue().empty()  # Redis lost the job
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "pending")) == 1
    result = runner.invoke(args=["jobs", "tick", "--job", "outbox.redispatch"])
    assert result.exit_code == 0, result.output
    assert queue().count == 1
    runner.invoke(args=["jobs", "worker", "--burst"])
    assert CALLS == [{"n": "lost"}]


# --------------------------------------------------------------------------- the staff page


def test_staff_see_failing_jobs_with_their_error_and_retry_one_once(app, client, login, make):
    from chanjiao.models import AuditLog

    app.config["JOBS_MODE"] = "manual"
    with unit_of_work():
        jobs.enqueue("test.record", {"fail": "mail server refused"}, max_attempts=1)
    jobs.run_pending()
    [message] = _messages()
    assert message.state == "failed"

    member = make.user(make.org("enterprise"))
    login(member)
    assert client.get("/staff/jobs/").status_code == 403
    client.post("/logout")
    staff = make.user(None, "staff")
    login(staff)
    page = client.get("/staff/jobs/").get_data(as_text=True)
    assert "test.record" in page and "mail server refused" in page and "outbox.purge" in page
    response = client.post(f"/staff/jobs/{message.id}/retry", follow_redirects=True)
    assert "已重新排队" in response.get_data(as_text=True)
    again = client.post(f"/staff/jobs/{message.id}/retry", follow_redirects=True)
    assert "不是失败状态" in again.get_data(as_text=True)
    [message] = _messages()
    assert (message.state, message.attempts) == ("pending", 0)
    audits = db.session.scalars(select(AuditLog).where(AuditLog.action == "outbox.retry")).all()
    assert [(a.actor_id, a.object_id) for a in audits] == [(staff.id, message.id)]


def test_a_retry_is_refused_to_members_without_a_token_and_for_no_such_job(app, client, login, make):
    from chanjiao.models import AuditLog

    app.config["JOBS_MODE"] = "manual"
    with unit_of_work():
        jobs.enqueue("test.record", {"fail": "down"}, max_attempts=1)
    jobs.run_pending()
    [message] = _messages()
    login(make.user(make.org("institution")))
    assert client.post(f"/staff/jobs/{message.id}/retry").status_code == 403
    client.post("/logout")
    login(make.user(None, "staff"))
    assert client.post(f"/staff/jobs/{message.id}/retry", csrf=False).status_code == 400
    assert client.post("/staff/jobs/999999/retry").status_code == 404
    assert client.post("/staff/jobs/abc/retry").status_code == 404
    [message] = _messages()
    assert (message.state, message.attempts) == ("failed", 1)
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 0
