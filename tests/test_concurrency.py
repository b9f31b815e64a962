"""Twenty simultaneous clients against a real gunicorn: every one-time or counted action
happens exactly once, on SQLite and on PostgreSQL.

One server per database for the whole module: gunicorn with 4 gthread workers of 4 threads
each (16 requests in flight at once; the repository's 2 sync workers would run only two), on
a fresh database (an SQLite file in a temporary folder, or a new PostgreSQL database dropped
afterwards). Each client has its own session; all twenty POSTs are released by one
``threading.Barrier``. Afterwards the database must hold one effect, one audit record and one
round of notifications; every loser must have been shown the refusal's message; nothing may
answer 5xx.
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa

from .e2e_support import _run, live_server, server_env

CLIENTS = 20
PASSWORD = "Concurrency-2026"
POSTGRES_ADMIN_URL = "postgresql://root@127.0.0.1:5432/postgres"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

SETUP_SCRIPT = r'''
import json
import time
from datetime import timedelta
from chanjiao import create_app
import pyotp
from chanjiao.auth import two_factor
from chanjiao.auth.services import create_user, issue_password_reset
from chanjiao.extensions import db
from chanjiao.matches.services import create_interest
from chanjiao.models import Organisation, Pairing
from chanjiao.models._common import utcnow
from chanjiao.orgs.services import create_invitation
from chanjiao.platforms import services as platforms
from chanjiao.postings.services import (
    DemandInput, ProgrammeInput, create_demand, create_programme, publish_demand, publish_programme,
)
from chanjiao.validators import credit_code_check_char

password = "%(password)s"


def credit_code(n):
    first17 = f"91110105{n:09d}"
    return first17 + credit_code_check_char(first17)


def programme(actor, title, skill):
    p = create_programme(actor, ProgrammeInput(
        title=title, district="双井街道", total_hours=80, level="L4", description=title + "培训。",
        modules=[{"name": title + "实训", "hours": 80}], outcomes=["能独立完成" + title],
        skills=[skill], certificate_kind="skill_level", certificate_name=title + "（四级）",
        capacity=30, fee=2000,
    ))
    publish_programme(actor, p.id)
    return p


def demand(actor, title, publish=True):
    d = create_demand(actor, DemandInput(
        title=title, district="双井街道", skill_level="L4", headcount=5, mode="offline",
        duties=["负责" + title],
    ))
    if publish:
        publish_demand(actor, d.id)
    return d


app = create_app()
with app.app_context():
    enterprise = Organisation(
        kind="enterprise", name="朝阳并发测试企业", credit_code=credit_code(11), district="双井街道",
        address="朝阳区广渠路1号", industry="elderly_care", contact_name="陈经理",
        contact_phone="13911112222", status="approved")
    institution = Organisation(
        kind="institution", name="朝阳并发测试学校", credit_code=credit_code(12), district="双井街道",
        address="朝阳区东三环2号", category="vocational_skill", contact_name="周老师",
        contact_phone="13833334444", status="approved")
    db.session.add_all([enterprise, institution])
    db.session.flush()
    staff = create_user("staff@conc.example.cn", "遴选员", password, "staff")
    db.session.flush()
    # Staff must have two-factor sign-in; enrolled as the setup page would, with a real code.
    staff_secret = two_factor.begin_enrolment(staff).secret
    # The code of the step before: the test's login, seconds from now, uses the current one,
    # and a step already used is refused.
    two_factor.confirm_enrolment(staff, pyotp.TOTP(staff_secret).at(time.time() - 30))
    hr = create_user("hr@conc.example.cn", "企业管理员", password, "org_admin", enterprise.id)
    trainer = create_user("trainer@conc.example.cn", "学校管理员", password, "org_admin", institution.id)
    victim = create_user("victim@conc.example.cn", "被猜密码的人", password, "org_member", enterprise.id)
    resetme = create_user("reset@conc.example.cn", "要重置密码的人", password, "org_member", enterprise.id)
    db.session.flush()
    p1 = programme(trainer, "养老护理员", "养老护理")
    p2 = programme(trainer, "中式烹调师", "中式烹调")
    p3 = programme(trainer, "电工", "电工")
    d1 = demand(hr, "养老护理员招聘")
    d2 = demand(hr, "厨师招聘")
    draft = demand(hr, "电工招聘", publish=False)
    _invitation, code = create_invitation(hr)
    _reset, token = issue_password_reset(hr, resetme)
    pending = create_interest(hr, d1.id, p2.id, "想了解开班时间")
    db.session.flush()
    # Pairings exactly as the scenarios need them, whatever a publish suggested.
    db.session.query(Pairing).delete()
    suggested = Pairing(demand_id=d1.id, programme_id=p1.id, status="suggested", score=0.5)
    accepted = Pairing(demand_id=d2.id, programme_id=p2.id, status="accepted", score=0.8,
                       decided_by_id=staff.id, decided_at=utcnow())
    db.session.add_all([suggested, accepted])
    db.session.flush()

    def platform(name, notice_days):
        return platforms.create_platform(staff, platforms.PlatformInput(
            name=name, goal_trainees=20, notice_days=notice_days, pairing_ids=[accepted.id]))

    lifecycle = platform("生命周期示范平台", 0)
    for actor in (hr, trainer):
        platforms.confirm_participation(actor, lifecycle.id)
    unconfirmed = platform("待确认示范平台", 7)
    noticed = platform("公示中示范平台", 7)
    for actor in (hr, trainer):
        platforms.confirm_participation(actor, noticed.id)
    platforms.start_notice(staff, noticed.id)
    objection = platforms.submit_objection(noticed.id, "王先生", "13900001111", "该平台的培训计划与实际情况不符。")
    db.session.commit()
    print(json.dumps({
        "enterprise": enterprise.id, "institution": institution.id,
        "staff": staff.email, "staff_secret": staff_secret, "hr": hr.email, "trainer": trainer.email, "victim": victim.email,
        "code": code, "token": token, "pending": pending.id, "suggested": suggested.id,
        "d1": d1.id, "p2": p2.id, "p3": p3.id, "draft": draft.id, "lifecycle": lifecycle.id,
        "unconfirmed": unconfirmed.id, "objection": objection.id,
    }))
'''


# --------------------------------------------------------------------------- HTTP clients


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Answer:
    status: int  # of the POST
    body: str  # of the POST, or of the page it redirected to (where the flash is shown)


class Client:
    """One browser: its own cookie jar, the CSRF token of its session."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )
        self.token = ""

    def _open(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        body = None if data is None else urllib.parse.urlencode(data, doseq=True).encode()
        request = urllib.request.Request(self.base + path, data=body)
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.headers.get("Location", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.headers.get("Location", ""), error.read().decode()

    def get(self, path: str) -> str:
        status, location, text = self._open(path)
        if status in (301, 302, 303):
            return self.get(urllib.parse.urlsplit(location).path or "/")
        assert status == 200, (path, status, text[-2000:])
        found = CSRF.search(text)
        if found:
            self.token = found.group(1)
        return text

    def post(self, path: str, data: dict) -> Answer:
        status, location, text = self._open(path, {**data, "csrf_token": self.token})
        if status in (301, 302, 303):
            split = urllib.parse.urlsplit(location)
            target = split.path + (f"?{split.query}" if split.query else "")
            return Answer(status, self.get(target or "/"))
        return Answer(status, text)

    def log_in(self, email: str, totp_secret: str | None = None) -> Client:
        self.get("/login")
        status, location, text = self._open("/login", {"email": email, "password": PASSWORD,
                                                       "csrf_token": self.token})
        assert status == 302, text[-2000:]
        if location.endswith("/login/verify"):
            assert totp_secret, f"{email} has two-factor sign-in"
            self.get("/login/verify")
            answer = self.post("/login/verify", {"code": pyotp.TOTP(totp_secret).now()})
            assert answer.status == 302, answer.body[-2000:]
        self.get("/")  # the CSRF token of the logged-in session
        return self

    def copy(self) -> Client:
        """Another browser tab of the same session: its own jar, holding this one's cookies."""
        other = Client(self.base)
        jar = next(h for h in self.opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
        other_jar = next(h for h in other.opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)).cookiejar
        for cookie in jar:
            other_jar.set_cookie(cookie)
        other.token = self.token
        return other


def clients(base: str, email: str | None, first_page: str = "/", totp_secret: str | None = None
            ) -> list[Client]:
    if totp_secret:
        # A code opens one login (it cannot be used twice): one login, copied into every client.
        first = Client(base).log_in(email, totp_secret)
        return [first, *(first.copy() for _n in range(CLIENTS - 1))]

    def make(_n: int) -> Client:
        client = Client(base)
        if email:
            return client.log_in(email)
        client.get(first_page)
        return client

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(make, range(CLIENTS)))


def race(group: list[Client], path: str, data: dict) -> list[Answer]:
    """All clients POST at the same instant; their answers."""
    barrier = threading.Barrier(len(group))

    def go(client: Client) -> Answer:
        barrier.wait()
        return client.post(path, data(client) if callable(data) else data)

    with ThreadPoolExecutor(len(group)) as pool:
        return list(pool.map(go, group))


def exactly_one(
    answers: list[Answer], success: str, refusals: tuple[str, ...], refused_status: int = 302
) -> None:
    """One answer shows ``success``; every other one shows a refusal with ``refused_status``
    (302: a flash on the page it goes back to); none is a 5xx."""
    assert not [a.status for a in answers if a.status >= 500], [a.body[-1500:] for a in answers if a.status >= 500]
    lost = [a for a in answers if any(r in a.body for r in refusals)]
    won = [a for a in answers if a not in lost and a.status == 302 and success in a.body]
    unclear = [a for a in answers if a not in lost and a not in won]
    assert not unclear, [(a.status, a.body[-1500:]) for a in unclear]
    assert len(won) == 1, (len(won), Counter(a.status for a in answers))
    assert len(lost) == CLIENTS - 1
    assert all(a.status == refused_status for a in lost), Counter(a.status for a in lost)


# --------------------------------------------------------------------------- the server


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'conc.db'}"
        return
    configured = os.environ.get("DATABASE_URL", "")
    admin_url = configured if configured.startswith("postgresql") else POSTGRES_ADMIN_URL
    admin_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"chanjiao_conc_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.fail(f"the PostgreSQL half of this test needs a server at {admin_url}: {error}",
                    pytrace=False)
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class World:
    url: str
    engine: sa.Engine
    ids: dict
    staff: list[Client]
    hr: list[Client]
    trainer: list[Client]

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def snapshot(self) -> Counter:
        """Audit records per action and notifications per kind, as they are now."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT 'audit:' || action, count(*) FROM audit_log GROUP BY action "
                "UNION ALL SELECT 'note:' || kind, count(*) FROM notification GROUP BY kind"
            ))
            return Counter({key: n for key, n in rows})

    def members(self, *organisation_ids: int) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(sa.table("user", sa.column("organisation_id"),
                                                                sa.column("active")))
                .where(sa.column("organisation_id").in_(organisation_ids), sa.column("active").is_(True))
            ).scalar()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp(f"conc-{request.param}")
    with fresh_database(request.param, folder) as database:
        env = server_env(folder, database)
        env.update({
            "CHANJIAO_MATCHING_ENCODER": "lexical",
            "CHANJIAO_JOBS_MODE": "manual",  # outbox jobs wait: the races are about the request
            "CHANJIAO_MAIL_BACKEND": "locmem",
            # High enough that twenty wrong passwords at once are all counted (no lockout).
            "CHANJIAO_LIMIT_LOGIN_FAILURES": "100",
            # Sixty clients share 127.0.0.1: the per-address limiter would stop them first.
            "CHANJIAO_LIMIT_LOGIN": "1000 per 15 minutes",
            "CHANJIAO_LIMIT_ANONYMOUS_FORM": "1000 per hour",
        })
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        _run([*flask, "init-instance", "--no-seed"], env)
        out = _run([sys.executable, "-c", SETUP_SCRIPT % {"password": PASSWORD}], env)
        ids = json.loads(out.strip().splitlines()[-1])
        engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
        with _server(env, folder) as base:
            yield World(base, engine, ids, clients(base, ids["staff"], totp_secret=ids["staff_secret"]), clients(base, ids["hr"]),
                        clients(base, ids["trainer"]))
        engine.dispose()


@contextmanager
def _server(env: dict, folder: Path) -> Iterator[str]:
    """gunicorn with the repository's configuration, but 4 gthread workers x 4 threads."""
    with live_server(env, folder, workers=4, threads=4) as server:
        yield server.url
        assert "Traceback" not in server.errors(), server.errors()


def changed(before: Counter, after: Counter) -> dict[str, int]:
    return {key: after[key] - before[key] for key in set(after) | set(before) if after[key] != before[key]}


# --------------------------------------------------------------------------- the races


def test_one_account_per_invitation(world):
    path = f"/invite/{world.ids['code']}"
    group = clients(world.url, None, path)
    before = world.snapshot()
    users = world.scalar('SELECT count(*) FROM "user"')
    answers = race(group, path, lambda c: {
        "user_name": "新同事", "email": f"new-{id(c)}@conc.example.cn",
        "password": PASSWORD, "password_confirm": PASSWORD})
    exactly_one(answers, "账号已创建", ("该邀请链接已被使用",), refused_status=410)
    assert world.scalar('SELECT count(*) FROM "user"') == users + 1
    assert changed(before, world.snapshot()) == {"audit:invitation.accept": 1}


def test_a_reset_link_works_once(world):
    path = f"/reset/{world.ids['token']}"
    group = clients(world.url, None, path)
    before = world.snapshot()
    new = "Reset-once-2026"
    answers = race(group, path, {"password": new, "password_confirm": new})
    exactly_one(answers, "密码已重置", ("该重置链接已被使用",), refused_status=410)
    assert changed(before, world.snapshot()) == {"audit:user.password_reset": 1}


def test_twenty_wrong_passwords_at_once_count_twenty(world):
    group = clients(world.url, None, "/login")
    email = world.ids["victim"]
    key = f"login:{email}|127.0.0.1"
    before = world.scalar("SELECT failures FROM login_throttle WHERE key = :k", k=key) or 0
    answers = race(group, "/login", {"email": email, "password": "wrong-password-1"})
    assert all(a.status < 500 and "邮箱或密码不正确" in a.body for a in answers), Counter(a.status for a in answers)
    assert world.scalar("SELECT failures FROM login_throttle WHERE key = :k", k=key) - before == CLIENTS


def test_one_interest_request_per_pair(world):
    before = world.snapshot()
    answers = race(world.hr, "/interests/new",
                   {"demand_id": world.ids["d1"], "programme_id": world.ids["p3"], "message": "同时提交"})
    exactly_one(answers, "对接申请已发送", ("已有待处理或已接受的对接申请",), refused_status=400)
    assert world.scalar("SELECT count(*) FROM interest_request WHERE demand_id = :d AND programme_id = :p",
                        d=world.ids["d1"], p=world.ids["p3"]) == 1
    enterprise, institution = world.members(world.ids["enterprise"]), world.members(world.ids["institution"])
    assert changed(before, world.snapshot()) == {
        "audit:interest.create": 1, "note:interest.received": institution, "note:interest.sent": enterprise - 1}


def test_an_interest_is_accepted_once(world):
    before = world.snapshot()
    answers = race(world.trainer, f"/interests/{world.ids['pending']}/accept", {"response": "欢迎"})
    exactly_one(answers, "已接受对接申请，双方联系方式现已可见", ("该申请已处理",))
    assert world.scalar("SELECT status FROM interest_request WHERE id = :i", i=world.ids["pending"]) == "accepted"
    assert changed(before, world.snapshot()) == {
        "audit:interest.accept": 1, "note:interest.accepted": world.members(world.ids["enterprise"])}


def test_a_pairing_is_decided_once(world):
    before = world.snapshot()
    answers = race(world.staff, f"/staff/curation/pairings/{world.ids['suggested']}/accept", {"reason": ""})
    exactly_one(answers, "已通过对接", ("该对接已通过", "状态已变化，请刷新页面"), refused_status=400)
    both = world.members(world.ids["enterprise"], world.ids["institution"])
    assert changed(before, world.snapshot()) == {"audit:pairing.accept": 1, "note:curation.decision": both}


def test_a_pair_is_added_to_curation_once(world):
    before = world.snapshot()
    answers = race(world.staff, "/staff/curation/pairings",
                   {"demand_id": world.ids["d1"], "programme_id": world.ids["p2"]})
    exactly_one(answers, "已加入遴选", ("该对接已在遴选中",), refused_status=400)
    assert world.scalar("SELECT count(*) FROM pairing WHERE demand_id = :d AND programme_id = :p",
                        d=world.ids["d1"], p=world.ids["p2"]) == 1
    assert changed(before, world.snapshot()) == {"audit:pairing.create": 1}


def test_a_participation_is_confirmed_once(world):
    before = world.snapshot()
    answers = race(world.hr, f"/org/platforms/{world.ids['unconfirmed']}/confirm", {})
    exactly_one(answers, "已确认参与示范平台“", ("贵机构已确认参与该示范平台",))
    assert changed(before, world.snapshot()) == {"audit:demo_platform.confirm": 1, "note:platform.confirmed": 1}


@pytest.mark.parametrize("step, data, success, refusal, kind", [
    ("notice", {"reason": ""}, "示范平台已开始公示", "只有草稿状态的示范平台可以开始公示", "notice"),
    ("publish", {"reason": ""}, "示范平台已发布", "只有公示中的示范平台可以结束公示并发布", "published"),
    ("complete", {"enrolled": "30", "certified": "25", "hired": "20", "reason": ""},
     "已登记成效", "只有已发布的示范平台可以登记成效并完成", "completed"),
])
def test_each_platform_transition_happens_once(world, step, data, success, refusal, kind):
    before = world.snapshot()
    answers = race(world.staff, f"/staff/platforms/{world.ids['lifecycle']}/{step}", data)
    exactly_one(answers, success, (refusal, "状态已变化，请刷新页面"), refused_status=400)
    both = world.members(world.ids["enterprise"], world.ids["institution"])
    action = {"notice": "notice", "publish": "publish", "complete": "complete"}[step]
    assert changed(before, world.snapshot()) == {f"audit:demo_platform.{action}": 1, f"note:platform.{kind}": both}


def test_an_objection_is_handled_once(world):
    before = world.snapshot()
    answers = race(world.staff, f"/staff/objections/{world.ids['objection']}/dismiss", {"reason": "不予采纳"})
    exactly_one(answers, "异议已处理。", ("该异议已处理",), refused_status=400)
    assert changed(before, world.snapshot()) == {"audit:demo_platform.objection_dismissed": 1}


def test_a_posting_is_published_once(world):
    before = world.snapshot()
    answers = race(world.hr, f"/my/demands/{world.ids['draft']}/publish", {})
    exactly_one(answers, "需求已发布", ("当前状态为“征集中”",))
    delta = changed(before, world.snapshot())
    assert delta.pop("audit:demand.publish") == 1
    assert not {k for k in delta if k.startswith("audit:demand.")}, delta
