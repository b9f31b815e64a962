"""The account journeys in Debian's Chromium against gunicorn: register, confirm the address from
the e-mail, then forget the password and set a new one from the second e-mail."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from . import e2e_support as e2e
from .conftest import fresh_database
from .factories import credit_code

EMAIL = "zhao.min@example.cn"
PASSWORD = "Wangjing-2026!"
NEW_PASSWORD = "Shuangjing-2027!"


@pytest.fixture
def live(tmp_path):
    e2e.require_chromium()
    with fresh_database(tmp_path) as database:
        env = e2e.server_env(tmp_path / "instance", database)
        env["CHANJIAO_MATCHING_ENCODER"] = "lexical"
        env["CHANJIAO_MAIL_BACKEND"] = "file"  # instance/mail/*.eml, read back below
        e2e._run([e2e.sys.executable, "-m", "flask", "--app", "wsgi", "init-instance", "--no-seed"], env)
        with e2e.live_server(env, tmp_path) as server:
            server.mail = tmp_path / "instance" / "mail"
            yield server


def _link(mail: Path, pattern: str, timeout: float = 60) -> str:
    """The path matching ``pattern`` in the e-mails the server's outbox runner has written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sorted(mail.glob("*.eml")) if mail.exists() else []:
            found = re.search(pattern, message.read_text(errors="replace"))
            if found:
                return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no e-mail with {pattern} in {mail}")


@pytest.mark.slow
@pytest.mark.browser
def test_register_confirm_then_reset_a_forgotten_password(live):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=e2e.CHROMIUM, args=e2e.CHROMIUM_ARGS)
        try:
            page = chromium.new_context(base_url=live.url, locale="zh-CN").new_page()
            page.set_default_timeout(15_000)
            page.goto("/register")
            page.get_by_role("radio", name="企业", exact=True).check()
            page.get_by_label("机构名称").fill("北京望京数智科技有限公司")
            page.get_by_label("统一社会信用代码").fill(credit_code(424242))
            page.get_by_label("所在街道/地区").select_option(label="望京街道")
            page.get_by_label("详细地址").fill("朝阳区望京东路 8 号")
            page.get_by_label("所属行业（企业填写）").select_option(index=1)
            page.get_by_label("联系人").fill("赵经理")
            page.get_by_label("联系电话").fill("010-64701234")
            page.get_by_label("您的姓名").fill("赵敏")
            page.get_by_label("电子邮箱（登录账号）").fill(EMAIL)
            page.get_by_label("密码", exact=True).fill(PASSWORD)
            page.get_by_label("确认密码").fill(PASSWORD)
            page.get_by_role("button", name="提交注册").click()
            expect(page.get_by_role("heading", name="申请已提交，请查收邮件")).to_be_visible()

            # Not yet: the address is unconfirmed.
            page.goto("/login")
            page.get_by_label("电子邮箱").fill(EMAIL)
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录", exact=True).click()
            expect(page.get_by_text(re.compile("您的邮箱尚未确认"))).to_be_visible()

            page.goto(_link(live.mail, r"https?://[^/\s]+(/confirm/[\w.-]+)"))
            page.get_by_role("button", name="确认并登录").click()
            expect(page).to_have_url(re.compile(r"/dashboard/$"))
            expect(page.get_by_text(re.compile("邮箱已确认"))).to_be_visible()
            page.get_by_role("button", name=re.compile("退出")).click()

            page.goto("/login")
            page.get_by_role("link", name="忘记密码？").click()
            page.get_by_label("注册时使用的电子邮箱").fill(EMAIL.upper())
            page.get_by_role("button", name="发送重置链接").click()
            expect(page.get_by_role("heading", name="申请已提交，请查收邮件")).to_be_visible()
            page.goto(_link(live.mail, r"https?://[^/\s]+(/reset/[\w-]+)"))
            page.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
            page.get_by_label("确认新密码").fill(NEW_PASSWORD)
            page.get_by_role("button", name="设置新密码").click()
            expect(page.get_by_text("密码已重置，请使用新密码登录。")).to_be_visible()
            page.get_by_label("电子邮箱").fill(EMAIL)
            page.get_by_label("密码").fill(NEW_PASSWORD)
            page.get_by_role("button", name="登录", exact=True).click()
            expect(page).to_have_url(re.compile(r"/dashboard/$"))
        finally:
            chromium.close()
