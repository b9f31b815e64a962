"""Sessions end on the server (logout, new password, new role, deactivation, suspension); a
new password revokes API tokens; registration and "forgot password" answer the same whether or
not an address has an account, and the e-mail tells the truth; per-address limits answer 429
with Retry-After and a Chinese page."""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from chanjiao import create_app
from chanjiao.auth.services import confirmation_token
from chanjiao.extensions import db
from chanjiao.models import (
    ApiToken,
    AuditLog,
    Organisation,
    OutboxMessage,
    PasswordResetToken,
    User,
)

from .conftest import CSRFClient
from .test_api_helpers import bearer, token_for
from .test_auth_register import form as registration_form
from .test_auth_register import valid_code


def _client(app) -> CSRFClient:
    app.test_client_class = CSRFClient
    return app.test_client()  # type: ignore[return-value]


def _logged_in(app, make, user) -> CSRFClient:
    client = _client(app)
    response = client.post("/login", data={"email": user.email, "password": make.DEFAULT_PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def _copy(app, client: CSRFClient) -> CSRFClient:
    """A second browser holding the same session cookie (stolen, or copied before logout)."""
    thief = _client(app)
    domain = app.config.get("SERVER_NAME") or "localhost"
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"], domain=domain)
    assert cookie is not None
    thief.set_cookie(cookie.key, cookie.value, domain=domain)
    return thief


def _page(client, path: str) -> str:
    """The page without what differs per visitor anyway (the form tokens)."""
    html = client.get(path).get_data(as_text=True)
    return re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "", html)


def _is_anonymous(client) -> bool:
    response = client.get("/dashboard/")
    return response.status_code == 302 and "/login" in response.headers["Location"]


# --------------------------------------------------------------------------- sessions


def test_logout_ends_a_copied_session_cookie(app, make):
    user = make.user(make.org())
    browser = _logged_in(app, make, user)
    thief = _copy(app, browser)
    assert thief.get("/dashboard/").status_code == 200
    browser.post("/logout")
    assert _is_anonymous(thief)
    before = db.session.scalar(select(func.count()).select_from(ApiToken))
    response = thief.post("/account/tokens/", data={"name": "偷来的"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == before


def test_a_new_password_ends_sessions_and_revokes_api_tokens(app, make):
    organisation = make.org()
    admin, member = make.user(organisation), make.user(organisation, role="org_member")
    secret = token_for(member)
    member_browser = _logged_in(app, make, member)
    assert _client(app).get("/api/v1/demands", headers=bearer(secret)).status_code == 200
    admin_browser = _logged_in(app, make, admin)
    page = admin_browser.post(f"/org/members/{member.id}/reset").get_data(as_text=True)
    path = re.search(r"(/reset/[A-Za-z0-9_-]+)", page).group(1)
    response = _client(app).post(path, data={"password": "New-pass-2026!", "password_confirm": "New-pass-2026!"})
    assert response.status_code == 302
    assert _is_anonymous(member_browser)
    assert _client(app).get("/api/v1/demands", headers=bearer(secret)).status_code == 401
    db.session.expire_all()
    assert db.session.scalar(select(ApiToken).where(ApiToken.user_id == member.id)).revoked_at
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "token.revoke_all"))
    assert admin_browser.get("/dashboard/").status_code == 200  # others keep theirs


def test_a_role_change_ends_the_members_sessions(app, make):
    organisation = make.org()
    admin = make.user(organisation)
    other_admin = make.user(organisation)
    other = _logged_in(app, make, other_admin)
    response = _logged_in(app, make, admin).post(
        f"/org/members/{other_admin.id}/role", data={"role": "org_member"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, other_admin.id).role == "org_member"
    assert _is_anonymous(other)


def test_reactivation_does_not_bring_back_a_session_from_before(app, make):
    organisation = make.org()
    admin, member = make.user(organisation), make.user(organisation, role="org_member")
    member_browser = _logged_in(app, make, member)
    admin_browser = _logged_in(app, make, admin)
    assert admin_browser.post(f"/org/members/{member.id}/deactivate").status_code == 302
    assert admin_browser.post(f"/org/members/{member.id}/activate").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, member.id).active
    assert _is_anonymous(member_browser)


def test_suspending_an_organisation_ends_the_sessions_of_all_its_accounts(app, make):
    organisation = make.org()
    members = [make.user(organisation), make.user(organisation, role="org_member")]
    bystander = make.user(make.org())
    browsers = [_logged_in(app, make, user) for user in members]
    bystander_browser = _logged_in(app, make, bystander)
    staff_browser = _client(app)
    staff = make.user(None, role="staff")
    from .factories import totp_code

    response = staff_browser.post("/login", data={"email": staff.email, "password": make.DEFAULT_PASSWORD})
    if "/login/verify" in response.headers.get("Location", ""):
        staff_browser.post("/login/verify", data={"code": totp_code(staff)})
    response = staff_browser.post(
        f"/staff/organisations/{organisation.id}/suspend", data={"reason": "违反自律公约"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, organisation.id).status == "suspended"
    assert all(_is_anonymous(browser) for browser in browsers)
    assert bystander_browser.get("/dashboard/").status_code == 200


# --------------------------------------------------------------------------- registration


def _mails(template: str) -> list[dict]:
    db.session.expire_all()
    return [
        m.payload for m in db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "mail.send").order_by(OutboxMessage.id)
        )
        if m.payload["template"] == template
    ]


def test_registration_answers_the_same_for_a_new_and_a_registered_address(app, make):
    existing = make.user(make.org(), email="taken@example.cn")
    answers = []
    for n, address in enumerate(["new@example.cn", "Taken@Example.cn"]):
        client = _client(app)
        response = client.post("/register", data=registration_form(
            email=address, credit_code=valid_code(n + 1)
        ))
        answers.append((response.status_code, response.headers["Location"],
                        _page(client, response.headers["Location"])))
    assert answers[0] == answers[1]
    assert "申请已提交，请查收邮件" in answers[0][2]
    # Only the new address has an account now; the registered one is unchanged.
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "taken@example.cn")) == 1
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 2
    [confirm] = _mails("registration_confirm")
    [attempt] = _mails("registration_exists")
    assert confirm["to"] == ["new@example.cn"] and "/confirm/" in confirm["body"]
    assert attempt["to"] == [existing.email]
    assert "该邮箱已有账号" in attempt["body"] and "/forgot" in attempt["body"]


def test_the_confirmation_link_needs_a_press_and_then_logs_in(app, make):
    client = _client(app)
    client.post("/register", data=registration_form())
    user = db.session.scalar(select(User))
    [mail] = _mails("registration_confirm")
    path = re.search(r"(/confirm/[\w.-]+)", mail["body"]).group(1)
    page = client.get(path)  # what a mail scanner does: changes nothing
    assert page.status_code == 200 and "确认并登录" in page.get_data(as_text=True)
    db.session.refresh(user)
    assert user.email_confirmed_at is None
    response = client.post(path)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard/")
    db.session.refresh(user)
    assert user.email_confirmed_at is not None
    assert client.get("/dashboard/").status_code == 200
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "user.email_confirmed"))


@pytest.mark.parametrize("tamper", [lambda t: t[:-3] + "abc", lambda t: "x" + t])
def test_a_tampered_confirmation_link_is_refused(app, make, tamper):
    user = make.user(make.org(), email_confirmed_at=None)
    token = tamper(confirmation_token(user))
    response = _client(app).post(f"/confirm/{token}")
    assert response.status_code == 404
    db.session.refresh(user)
    assert user.email_confirmed_at is None


def test_a_confirmation_link_for_an_address_the_account_no_longer_has_does_nothing(app, make):
    user = make.user(make.org(), email_confirmed_at=None)
    token = confirmation_token(user)
    user.email = "changed@example.cn"
    db.session.commit()
    assert _client(app).post(f"/confirm/{token}").status_code == 404


def test_registering_again_with_an_unconfirmed_address_resends_the_link(app, make):
    _client(app).post("/register", data=registration_form())
    _client(app).post("/register", data=registration_form(credit_code=valid_code(7)))
    mails = _mails("registration_confirm")
    assert [m["to"] for m in mails] == [["liu.yang@example.cn"]] * 2
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


# --------------------------------------------------------------------------- forgot password


def test_forgot_password_answers_the_same_and_mails_only_an_account(app, make):
    user = make.user(make.org())
    answers = []
    for address in [user.email.upper(), "nobody@example.cn"]:
        client = _client(app)
        response = client.post("/forgot", data={"email": address})
        answers.append((response.status_code, response.headers["Location"],
                        _page(client, response.headers["Location"])))
    assert answers[0] == answers[1]
    [mail] = _mails("password_reset")
    assert mail["to"] == [user.email]
    path = re.search(r"(/reset/[A-Za-z0-9_-]+)", mail["body"]).group(1)
    response = _client(app).post(path, data={"password": "New-pass-2026!", "password_confirm": "New-pass-2026!"})
    assert response.status_code == 302
    reset = db.session.scalar(select(PasswordResetToken))
    assert reset.created_by_id == user.id and reset.used_at is not None


# --------------------------------------------------------------------------- per-address limits


def test_login_attempts_per_address_are_limited_with_retry_after(app, make):
    app.config["LIMIT_LOGIN"] = "3 per 15 minutes"
    user = make.user(make.org())
    client = _client(app)
    for _ in range(3):
        assert client.post("/login", data={"email": "x@example.cn", "password": "whatever-1"}).status_code == 401
    response = client.post("/login", data={"email": user.email, "password": make.DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60 + 1  # whole seconds, rounded up
    assert "操作过于频繁" in response.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # reading the page is not limited
    other = _client(app)
    response = other.post(
        "/login", data={"email": user.email, "password": make.DEFAULT_PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 302


def test_anonymous_forms_are_limited_per_address(app):
    app.config["LIMIT_ANONYMOUS_FORM"] = "2 per hour"
    client = _client(app)
    for _ in range(2):
        assert client.post("/forgot", data={"email": "a@example.cn"}).status_code == 302
    response = client.post("/forgot", data={"email": "a@example.cn"})
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert client.post("/register", data={}).status_code == 400  # each form counts on its own


WORKER_SCRIPT = """
import json, sys
from chanjiao import create_app
app = create_app(json.loads(sys.argv[1]))
client = app.test_client()
codes = [
    client.post("/forgot", data={"email": "a@example.cn"},
                environ_base={"REMOTE_ADDR": sys.argv[2]}).status_code
    for _ in range(2)
]
print(json.dumps(codes))
"""


def test_with_redis_every_worker_shares_one_count(app, database_uri, tmp_path):
    """Two processes (as two gunicorn workers or machines) and one real Redis: the limit holds
    across them, where per-process memory would allow it twice. (``app`` made the schema.)"""

    config = {
        "TESTING": True, "SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": database_uri,
        "SERVER_NAME": "chanjiao.test", "MATCHING_ENCODER": "lexical", "JOBS_MODE": "manual",
        "MAIL_BACKEND": "locmem", "WTF_CSRF_ENABLED": False,
        "LIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0",
        "LIMIT_ANONYMOUS_FORM": "3 per hour",
        "MATCHING_UNIT_VECTOR_DIR": "",
    }
    # An address of its own: Redis outlives this test, and another test run may share it.
    address = "10.{}.{}.{}".format(*secrets.token_bytes(3))
    shared = create_app(config)
    with shared.app_context():
        client = shared.test_client()

        def post() -> int:
            return client.post(
                "/forgot", data={"email": "a@example.cn"}, environ_base={"REMOTE_ADDR": address}
            ).status_code

        assert post() == 302
        out = subprocess.run(
            [sys.executable, "-c", WORKER_SCRIPT, json.dumps(config), address],
            capture_output=True, text=True, timeout=120, check=True,
            env={**os.environ, "CHANJIAO_INSTANCE_PATH": str(tmp_path)},
        )
        assert json.loads(out.stdout.strip().splitlines()[-1]) == [302, 302]
        assert post() == 429
        for engine in db.engines.values():
            engine.dispose()


def test_second_factor_codes_count_with_the_login_attempts_of_an_address(app, make):
    app.config["LIMIT_LOGIN"] = "3 per 15 minutes"
    staff = make.user(None, role="staff")
    client = _client(app)
    response = client.post("/login", data={"email": staff.email, "password": make.DEFAULT_PASSWORD})
    assert response.headers["Location"].endswith("/login/verify")
    assert client.post("/login/verify", data={"code": "000000"}).status_code != 429
    assert client.post("/login/verify", data={"code": "000001"}).status_code != 429
    assert client.post("/login/verify", data={"code": "000002"}).status_code == 429


def test_forgot_and_confirm_refuse_a_post_without_its_csrf_token(app, make):
    user = make.user(make.org(), email_confirmed_at=None)
    client = _client(app)
    response = client.post("/forgot", data={"email": user.email}, csrf=False)
    assert response.status_code == 400 and "表单安全校验失败" in response.get_data(as_text=True)
    assert _mails("password_reset") == []
    response = client.post(f"/confirm/{confirmation_token(user)}", csrf=False)
    assert response.status_code == 400
    db.session.refresh(user)
    assert user.email_confirmed_at is None and _is_anonymous(client)


def test_forgot_refuses_a_malformed_address_and_writes_nothing(app):
    response = _client(app).post("/forgot", data={"email": ""})
    assert response.status_code == 400 and "请输入电子邮箱" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PasswordResetToken)) == 0
