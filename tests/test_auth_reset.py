"""One-time password-reset links issued by staff or an organisation admin."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from chanjiao.auth import services
from chanjiao.errors import NotFound, PermissionDenied
from chanjiao.extensions import db
from chanjiao.models import AuditLog, LoginThrottle, PasswordResetToken
from chanjiao.models._common import utcnow

NEW_PASSWORD = "Brand-new-pass-7"


def issue(client, url: str) -> str:
    response = client.post(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert response.headers["Cache-Control"] == "no-store"
    match = re.search(r'value="https?://[^/"]+(/reset/[A-Za-z0-9_-]+)"', response.get_data(as_text=True))
    assert match
    return match.group(1)


def set_password(client, path: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    return client.post(path, data={"password": password, "password_confirm": confirm or password})


def can_log_in(client, user, password) -> bool:
    client.post("/logout")
    return client.post("/login", data={"email": user.email, "password": password}).status_code == 302


def test_org_admin_issues_reset_for_own_member(app, client, make, login):
    organisation = make.org()
    admin = make.user(organisation)
    member = make.user(organisation, role="org_member")
    login(admin)
    path = issue(client, f"/org/members/{member.id}/reset")
    token = path.rsplit("/", 1)[1]
    reset = db.session.scalar(select(PasswordResetToken))
    assert reset.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert reset.created_by_id == admin.id and reset.user_id == member.id
    assert reset.expires_at - reset.created_at == timedelta(hours=app.config["PASSWORD_RESET_HOURS"])
    assert token not in client.get("/org/members").get_data(as_text=True)
    client.post("/logout")

    assert client.get(path).status_code == 200
    response = set_password(client, path)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert can_log_in(client, member, NEW_PASSWORD)
    assert not can_log_in(client, member, make.DEFAULT_PASSWORD)
    actions = list(db.session.scalars(select(AuditLog.action)))
    assert "user.reset_issued" in actions and "user.password_reset" in actions


def test_token_is_single_use(client, make, login):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    login(make.user(organisation))
    path = issue(client, f"/org/members/{member.id}/reset")
    client.post("/logout")
    assert set_password(client, path).status_code == 302
    response = set_password(client, path, "Another-pass-99")
    assert response.status_code == 410
    assert "已被使用" in response.get_data(as_text=True)
    assert can_log_in(client, member, NEW_PASSWORD)


def test_expired_token_is_refused(client, make, login):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    login(make.user(organisation))
    path = issue(client, f"/org/members/{member.id}/reset")
    reset = db.session.scalar(select(PasswordResetToken))
    reset.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    client.post("/logout")
    response = set_password(client, path)
    assert response.status_code == 410
    assert "已失效" in response.get_data(as_text=True)
    assert can_log_in(client, member, make.DEFAULT_PASSWORD)


def test_issuing_again_invalidates_older_links(client, make, login):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    login(make.user(organisation))
    first = issue(client, f"/org/members/{member.id}/reset")
    second = issue(client, f"/org/members/{member.id}/reset")
    client.post("/logout")
    assert client.get(first).status_code == 410
    assert set_password(client, second).status_code == 302


def test_unknown_token_is_404(client):
    response = client.get("/reset/nothing-here")
    assert response.status_code == 404
    assert "重置链接无效" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short-1", None, "密码至少需要"),
        ("onlyletterslong", None, "密码需同时包含字母和数字或符号"),
        (NEW_PASSWORD, "Different-pass-8", "两次输入的密码不一致"),
        ("", "", "请设置新密码"),
    ],
)
def test_weak_new_password_keeps_the_token(client, make, login, password, confirm, message):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    login(make.user(organisation))
    path = issue(client, f"/org/members/{member.id}/reset")
    client.post("/logout")
    response = set_password(client, path, password, confirm)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(PasswordResetToken)).used_at is None


def test_org_admin_cannot_reset_other_organisations_users(app, client, make, login):
    admin = make.user(make.org())
    stranger = make.user(make.org(), role="org_member")
    staff = make.user(None, role="staff")
    login(admin)
    assert client.post(f"/org/members/{stranger.id}/reset").status_code == 404
    assert client.post(f"/org/members/{staff.id}/reset").status_code == 404
    assert db.session.scalar(select(PasswordResetToken)) is None
    with pytest.raises(NotFound):
        services.issue_password_reset(admin, stranger)


def test_org_member_cannot_issue(app, make):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    colleague = make.user(organisation, role="org_member")
    with pytest.raises(NotFound):
        services.issue_password_reset(member, colleague)


def test_staff_resets_any_organisation_user_and_staff(client, make, login):
    staff = make.user(None, role="staff")
    member = make.user(make.org(), role="org_member")
    colleague = make.user(None, role="staff")
    login(staff)
    path = issue(client, f"/staff/users/{member.id}/reset")
    issue(client, f"/staff/users/{colleague.id}/reset")
    client.post("/logout")
    assert set_password(client, path).status_code == 302
    assert can_log_in(client, member, NEW_PASSWORD)


def test_staff_cannot_reset_an_admin_but_admin_can(app, client, make, login):
    staff = make.user(None, role="staff")
    admin = make.user(None, role="admin")
    login(staff)
    assert client.post(f"/staff/users/{admin.id}/reset").status_code == 403
    with pytest.raises(PermissionDenied):
        services.issue_password_reset(staff, admin)
    client.post("/logout")
    login(admin)
    issue(client, f"/staff/users/{staff.id}/reset")


def test_reset_for_unknown_user_is_404(client, make, login):
    login(make.user(None, role="staff"))
    assert client.post("/staff/users/99999/reset").status_code == 404


def test_reset_clears_a_login_lockout(app, client, make, login):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    login(make.user(organisation))
    path = issue(client, f"/org/members/{member.id}/reset")
    client.post("/logout")
    for _ in range(app.config["LIMIT_LOGIN_FAILURES"]):
        client.post("/login", data={"email": member.email, "password": "wrong-pass-1"})
    assert db.session.get(LoginThrottle, f"login:{member.email}|127.0.0.1").locked_until
    set_password(client, path)
    assert can_log_in(client, member, NEW_PASSWORD)


def test_reset_without_csrf_is_refused(client, make, login):
    organisation = make.org()
    member = make.user(organisation, role="org_member")
    login(make.user(organisation))
    path = issue(client, f"/org/members/{member.id}/reset")
    client.post("/logout")
    response = client.post(path, data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert db.session.scalar(select(PasswordResetToken)).used_at is None


def test_reset_ends_sessions_opened_with_the_old_password(app, make):
    from tests.conftest import CSRFClient

    app.test_client_class = CSRFClient
    organisation = make.org()
    admin = make.user(organisation)
    member = make.user(organisation, role="org_member")
    admin_client, member_client, anonymous = app.test_client(), app.test_client(), app.test_client()
    for c, u in ((admin_client, admin), (member_client, member)):
        response = c.post("/login", data={"email": u.email, "password": make.DEFAULT_PASSWORD})
        assert response.status_code == 302
    path = issue(admin_client, f"/org/members/{member.id}/reset")
    assert member_client.get("/dashboard/").status_code == 200  # issuing changes nothing
    assert set_password(anonymous, path).status_code == 302
    response = member_client.get("/dashboard/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert admin_client.get("/dashboard/").status_code == 200
