"""Login, logout, throttling and the create-user command."""
from __future__ import annotations

from chanjiao.auth.services import find_user_by_email
from chanjiao.models import LoginThrottle


def test_login_and_logout(client, make):
    user = make.user(make.org())
    response = client.post("/login", data={"email": user.email.upper(), "password": make.DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert user.name in client.get("/").get_data(as_text=True)
    client.post("/logout")
    assert user.name not in client.get("/").get_data(as_text=True)


def test_wrong_password_is_refused_with_a_chinese_message(client, make):
    user = make.user(make.org())
    response = client.post("/login", data={"email": user.email, "password": "wrong-password-1"})
    assert response.status_code == 401
    assert "邮箱或密码不正确" in response.get_data(as_text=True)


def test_missing_fields_are_named(client):
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "请输入电子邮箱" in html and "请输入密码" in html


def test_repeated_failures_delay_that_account_from_that_address_only(app, client, make):
    user = make.user(make.org())
    for _ in range(app.config["LIMIT_LOGIN_FAILURES"]):
        assert client.post("/login", data={"email": user.email, "password": "bad-password-9"}).status_code == 401
    # Now even the right password waits, from this address...
    response = client.post("/login", data={"email": user.email, "password": make.DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= app.config["LIMIT_LOGIN_DELAY_SECONDS"]
    assert "登录失败次数过多" in response.get_data(as_text=True)
    key = f"login:{user.email}|127.0.0.1"
    assert app.extensions["sqlalchemy"].session.get(LoginThrottle, key).locked_until
    # ... but the owner elsewhere is never locked out.
    elsewhere = app.test_client()
    response = elsewhere.post(
        "/login", data={"email": user.email, "password": make.DEFAULT_PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
    )
    assert response.status_code == 302


def test_login_next_parameter_refuses_offsite(client, make):
    user = make.user(make.org())
    response = client.post(
        "/login?next=//evil.example/", data={"email": user.email, "password": make.DEFAULT_PASSWORD}
    )
    assert "evil" not in response.headers["Location"]


def test_inactive_user_cannot_log_in(client, make):
    user = make.user(make.org(), active=False)
    response = client.post("/login", data={"email": user.email, "password": make.DEFAULT_PASSWORD})
    assert response.status_code == 403
    assert "已停用" in response.get_data(as_text=True)


def test_create_user_command_makes_staff_with_scrypt_hash(app, runner):
    result = runner.invoke(
        args=["create-user", "--email", "Staff@Assoc.cn", "--name", "王主任", "--role", "staff"],
        input="Assoc-pass-2026\nAssoc-pass-2026\n",
    )
    assert result.exit_code == 0, result.output
    user = find_user_by_email("staff@assoc.cn")
    assert user.role == "staff" and user.organisation_id is None
    assert user.password_hash.startswith("scrypt:")


def test_create_user_command_rejects_weak_password(app, runner):
    result = runner.invoke(
        args=["create-user", "--email", "a@b.cn", "--name", "李", "--role", "admin"],
        input="12345\n12345\n",
    )
    assert result.exit_code != 0
    assert "密码至少需要" in result.output
    assert find_user_by_email("a@b.cn") is None
