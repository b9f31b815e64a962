"""End to end in a real browser (issue 4, "Tests"): an enterprise posts a demand, sees explained
recommendations and sends an interest request; the institution accepts; staff accept the pairing
and create a demonstration platform; both organisations confirm; it goes through a zero-day public
notice to published; an anonymous visitor sees it.

Playwright drives Debian's Chromium (/usr/bin/chromium, installed by `.ci/run`) against a gunicorn
server started as a new process, with the real e5 encoder, on a fresh database (SQLite, or
PostgreSQL when DATABASE_URL points at it)."""
from __future__ import annotations

import re

import pytest

from . import e2e_support as e2e
from .conftest import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TIMEOUT_MS = 15_000
DEMAND_TITLE = "养老院护理员"
PLATFORM_NAME = "双井养老护理产教融合示范平台"


@pytest.fixture
def server(tmp_path):
    e2e.require_chromium()
    with fresh_database(tmp_path) as database:
        env = e2e.server_env(tmp_path / "instance", database)
        ids = e2e.prepare_database(env)
        with e2e.live_server(env, tmp_path) as live:
            live.ids = ids
            live.database = database
            yield live


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    e2e.require_chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=e2e.CHROMIUM, args=e2e.CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One person's browser context (own cookies), with one page."""

    def __init__(self, browser, base_url: str):
        self.context = browser.new_context(base_url=base_url, locale="zh-CN")
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.set_default_navigation_timeout(30_000)
        self.page = self.context.new_page()
        self.page.on("dialog", lambda dialog: dialog.accept())  # data-confirm forms

    def login(self, email: str) -> None:
        from playwright.sync_api import expect

        page = self.page
        page.goto("/login")
        page.get_by_label("电子邮箱").fill(email)
        page.get_by_label("密码").fill(e2e.PASSWORD)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page).not_to_have_url(re.compile(r"/login"))
        if "/account/two-factor/setup" in page.url:
            self.enrol_two_factor()

    def enrol_two_factor(self) -> None:
        """Staff must set up two-factor sign-in at their first login: scan (here: read) the
        secret, type the authenticator's code, keep the recovery codes."""
        import pyotp
        from playwright.sync_api import expect

        page = self.page
        expect(page.locator("svg.qr-code")).to_be_visible()
        secret = page.locator("code.secret").inner_text().strip()
        page.get_by_label("验证码").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="开启两步验证").click()
        expect(page.get_by_role("heading", name="恢复码")).to_be_visible()
        expect(page.locator("ul.recovery-codes li")).to_have_count(10)
        page.get_by_role("link", name="我已保存，继续").click()
        expect(page).not_to_have_url(re.compile(r"two-factor"))

    def close(self) -> None:
        self.page.close()
        self.context.close()


def test_demand_to_published_demonstration_platform(server, browser, tmp_path):
    from playwright.sync_api import expect

    sessions: list[Session] = []

    def session(email: str | None = None) -> Session:
        s = Session(browser, server.url)
        sessions.append(s)
        if email:
            s.login(email)
        return s

    try:
        # ---------------------------------------------------------------- 1. enterprise HR
        hr = session(e2e.HR["email"])
        page = hr.page
        page.goto("/my/demands/new")
        expect(page.get_by_role("heading", name="发布新需求")).to_be_visible()
        page.get_by_label("岗位名称").fill(DEMAND_TITLE)
        page.get_by_label("职业（工种）").fill("养老护理员")
        page.get_by_label("需求说明").fill("为入住老人提供日常照护。")
        page.get_by_label("岗位职责").fill("协助失能老人进食、洗浴和如厕\n定时为卧床老人翻身，预防压疮")
        page.get_by_label("任职要求").fill("持有养老护理员职业技能等级证书")
        page.get_by_label("所需技能").fill("养老护理")
        page.get_by_label("技能等级").select_option(label="四级/中级工")
        page.get_by_label("需求人数").fill("6")
        page.get_by_label("所在街道/地区").select_option("双井街道")
        page.get_by_label("培训方式").select_option(label="线下")
        page.get_by_role("button", name="保存").click()
        expect(page).to_have_url(re.compile(r"/my/demands$"))
        expect(page.get_by_text("需求已保存为草稿。")).to_be_visible()

        page.get_by_role("button", name=f"发布：{DEMAND_TITLE}").click()
        expect(page.get_by_text("需求已发布。")).to_be_visible()
        page.get_by_role("link", name=f"推荐项目：{DEMAND_TITLE}").click()
        expect(page).to_have_url(re.compile(r"/my/demands/\d+/matches$"))
        expect(page.get_by_role("heading", name="推荐培训项目", level=1)).to_be_visible()

        # The catalogue is realistic (the demo programmes of a second institution, minus care
        # and cooking): the care course is offered first, with a calibrated level.
        cards = page.locator("ol.match-list > li")
        best = cards.first
        expect(best.get_by_role("heading", level=2)).to_contain_text(e2e.CARE_PROGRAMME)
        expect(best).to_contain_text(e2e.INSTITUTION["name"])
        level = best.locator(".match-level .badge")
        expect(level).to_have_count(1)
        expect(level).to_have_text(re.compile(r"^\s*(高度匹配|较匹配|部分匹配)\s*$"))
        expect(best.locator(".match-level .match-probability")).to_contain_text(re.compile(r"匹配概率 \d{1,3}%"))
        # The cooking course is no match for a care demand: not offered at all.
        expect(cards.filter(has_text=e2e.COOKING_PROGRAMME)).to_have_count(0)
        expect(best.get_by_role("heading", name="已覆盖的要求")).to_be_visible()
        covered = best.locator("ul.covered > li").filter(has_text="翻身")
        expect(covered.first).to_contain_text("依据")
        # The evidence is the programme's own text (a module or an outcome about turning).
        expect(covered.first.locator(".evidence")).to_contain_text(re.compile(r"依据.*(翻身护理|规范翻身)"))
        # Raw similarities and ranker weights are for association staff only.
        expect(covered.first).not_to_contain_text("相似度")
        expect(page.locator("main")).not_to_contain_text("相似度")
        expect(page.locator("details.technical-details")).to_have_count(0)
        print(f"care course: {level.inner_text().strip()}, "
              f"{best.locator('.match-probability').inner_text().strip()}")
        page.screenshot(path=str(tmp_path / "recommendations.png"), full_page=True)
        assert (tmp_path / "recommendations.png").stat().st_size > 0

        best.get_by_text("申请对接", exact=True).click()  # opens the <details>
        best.get_by_label("留言（可选）").fill("希望下月在双井开班，约6人参训。")
        best.get_by_role("button", name=f"申请对接：{e2e.CARE_PROGRAMME}").click()
        expect(page.get_by_text("对接申请已发送，对方处理后会通知您。")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/my/demands/\d+/matches$"))
        expect(page.locator("ol.match-list > li").first).to_contain_text("待处理")

        # A demand nothing on the platform trains for: no level anywhere, the honest empty
        # state, and an alert for when a fitting programme is published.
        page.goto(f"/my/demands/{server.ids['piano']}/matches")
        expect(page.get_by_text("暂时没有合适的培训项目")).to_be_visible()
        expect(page.locator("ol.match-list")).to_have_count(0)
        expect(page.locator("main")).not_to_contain_text("高度匹配")
        page.get_by_role("button", name="有合适的新项目时通知我").click()
        expect(page.get_by_text("已开启提醒：有合适的新培训项目发布时，会在消息中通知贵机构。")).to_be_visible()
        expect(page.get_by_role("button", name="取消提醒")).to_be_visible()

        # ---------------------------------------------------------------- 2. institution accepts
        inst = session(e2e.INSTITUTION_ADMIN["email"])
        page = inst.page
        page.goto("/interests")
        received = page.locator("section[aria-labelledby=received-heading] li.card").filter(
            has_text=DEMAND_TITLE
        )
        expect(received).to_have_count(1)
        expect(received).to_contain_text("希望下月在双井开班")
        expect(received.get_by_role("heading", name="联系方式")).to_have_count(0)
        received.get_by_label("回复或理由（可选）").fill("欢迎合作，下月可开班。")
        received.get_by_role("button", name="接受").click()
        expect(page.get_by_text("已接受对接申请，双方联系方式现已可见。")).to_be_visible()
        received = page.locator("section[aria-labelledby=received-heading] li.card").filter(
            has_text=DEMAND_TITLE
        )
        expect(received).to_contain_text("已接受")
        contact = received.locator(".contact")
        expect(contact.get_by_role("heading", name="联系方式")).to_be_visible()
        expect(contact).to_contain_text(e2e.ENTERPRISE["contact_name"])
        expect(contact).to_contain_text(e2e.ENTERPRISE["contact_phone"])
        expect(contact).to_contain_text(e2e.HR["email"])

        # The enterprise now sees the institution's contact details too.
        hr.page.goto("/interests")
        sent = hr.page.locator("section[aria-labelledby=sent-heading] li.card").filter(
            has_text=e2e.CARE_PROGRAMME
        )
        expect(sent.locator(".contact")).to_contain_text(e2e.INSTITUTION["contact_phone"])

        # ---------------------------------------------------------------- 3. staff curate
        # The accepted interest and the engine's suggestions both feed the curation queue, the
        # latter from background jobs: the queue is read once they are done.
        e2e.wait_for_background_work(server.database)
        staff = session(e2e.STAFF["email"])
        page = staff.page
        page.goto("/staff/curation")
        expect(page.get_by_role("heading", name="对接遴选", level=1)).to_be_visible()
        pair_heading = f"{DEMAND_TITLE} ↔ {e2e.CARE_PROGRAMME}"
        card = page.locator("ol.card-list > li.card").filter(
            has=page.get_by_role("heading", name=pair_heading)
        )
        if card.count() == 0:  # not suggested by the engine: the accepted interest brings it in
            row = page.locator("section[aria-labelledby=interest-heading] tr").filter(has_text=DEMAND_TITLE)
            row.get_by_role("button", name="加入遴选").click()
            expect(page.get_by_text(f"已加入遴选：{DEMAND_TITLE} ↔ {e2e.CARE_PROGRAMME}。")).to_be_visible()
        expect(card).to_have_count(1)
        expect(card).to_contain_text("双方有意向")
        expect(card).to_contain_text(e2e.ENTERPRISE["name"])
        expect(card).to_contain_text(e2e.INSTITUTION["name"])
        expect(card.locator("details summary")).to_contain_text(re.compile(r"匹配说明（覆盖 [1-9]\d* 项"))
        card.get_by_label("理由（驳回时必填）").fill("双方已确认意向，课程覆盖护理岗位的主要职责。")
        card.get_by_role("button", name="通过").click()
        expect(page.get_by_text(f"已通过对接：{DEMAND_TITLE} ↔ {e2e.CARE_PROGRAMME}。")).to_be_visible()
        expect(card).to_contain_text("已通过")
        expect(card).to_contain_text("双方已确认意向")

        page.goto("/staff/platforms/new")
        expect(page.get_by_role("heading", name="新建示范平台")).to_be_visible()
        page.get_by_label("平台名称").fill(PLATFORM_NAME)
        page.get_by_label("简介").fill("养老机构与职业技能培训学校合作培养四级养老护理员。")
        page.get_by_label("培训人数目标").fill("6")
        page.get_by_label("公示天数").fill("0")
        page.get_by_label(re.compile(re.escape(DEMAND_TITLE))).check()
        page.get_by_role("button", name="保存").click()
        expect(page).to_have_url(re.compile(r"/staff/platforms/\d+$"))
        expect(page.get_by_text(f"示范平台“{PLATFORM_NAME}”已创建，等待各参与机构确认。")).to_be_visible()
        platform_url = page.url
        expect(page.get_by_text("待确认")).to_have_count(2)

        # ---------------------------------------------------------------- 4. both admins confirm
        ent_admin = session(e2e.ENTERPRISE_ADMIN["email"])
        for admin in (ent_admin, inst):
            admin.page.goto("/org/platforms")
            entry = admin.page.locator("li.card").filter(has_text=PLATFORM_NAME)
            expect(entry).to_contain_text(f"{DEMAND_TITLE} · {e2e.ENTERPRISE['name']}")
            entry.get_by_role("button", name="确认参与").click()
            expect(admin.page.get_by_text(f"已确认参与示范平台“{PLATFORM_NAME}”。")).to_be_visible()
            expect(admin.page.locator("li.card").filter(has_text=PLATFORM_NAME)).to_contain_text("确认参与。")

        # ---------------------------------------------------------------- 5. notice, then publish
        page = staff.page
        page.goto(platform_url)
        expect(page.get_by_text("待确认")).to_have_count(0)
        page.get_by_label("说明（可选）").fill("双方均已确认参与。")
        page.get_by_role("button", name="开始公示").click()
        expect(page.get_by_text("示范平台已开始公示。")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_contain_text("公示")
        expect(page.get_by_text("公示期结束后才能发布。")).to_have_count(0)  # zero days: over
        page.get_by_role("button", name="结束公示并发布").click()
        expect(page.get_by_text("示范平台已发布。")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_contain_text("已发布")

        # ---------------------------------------------------------------- 6. anonymous visitor
        visitor = session()
        page = visitor.page
        page.goto("/platforms/")
        link = page.get_by_role("link", name=PLATFORM_NAME)
        expect(link).to_be_visible()
        expect(page.locator("li.card").filter(has=link)).to_contain_text("已发布")
        link.click()
        expect(page).to_have_url(re.compile(r"/platforms/\d+$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text(PLATFORM_NAME)
        pairing_row = page.locator("table.data tbody tr").filter(has_text=DEMAND_TITLE)
        expect(pairing_row).to_have_count(1)
        expect(pairing_row).to_contain_text(e2e.CARE_PROGRAMME)
        expect(pairing_row).to_contain_text(e2e.ENTERPRISE["name"])
        expect(pairing_row).to_contain_text(e2e.INSTITUTION["name"])
        expect(page.locator(".columns > div").filter(has=page.get_by_role("heading", name="企业", exact=True))).to_contain_text(e2e.ENTERPRISE["name"])
        expect(page.locator(".columns > div").filter(has=page.get_by_role("heading", name="培训机构", exact=True))).to_contain_text(e2e.INSTITUTION["name"])
        page.screenshot(path=str(tmp_path / "public_platform.png"), full_page=True)
        assert (tmp_path / "public_platform.png").stat().st_size > 0
    except BaseException:
        print(f"--- gunicorn stderr (tail) ---\n{server.errors()}")
        raise
    finally:
        for s in sessions:
            s.close()
