"""Invitations: an organisation admin brings colleagues in with a one-time link."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.models import AuditLog, Invitation, User
from chanjiao.models._common import utcnow

PASSWORD = "Colleague-pass-1"


@pytest.fixture
def org_admin(make, login):
    organisation = make.org()
    admin = make.user(organisation, role="org_admin", name="钱管理")
    login(admin)
    return admin


def invite(client, **data) -> str:
    """Create an invitation through the page; return its one-time path."""
    response = client.post("/org/invitations", data={"role": "org_member", **data})
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    assert response.headers["Cache-Control"] == "no-store"
    match = re.search(r'value="https?://[^/"]+(/invite/[A-Za-z0-9_-]+)"', response.get_data(as_text=True))
    assert match, "the one-time link is shown"
    return match.group(1)


def accept(client, path: str, **data):
    payload = {
        "user_name": "孙同事",
        "email": "sun@example.cn",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        **data,
    }
    return client.post(path, data=payload)


def user_count() -> int:
    return db.session.scalar(select(func.count(User.id)))


def test_create_and_accept(app, client, org_admin):
    path = invite(client, role="org_admin")
    code = path.rsplit("/", 1)[1]
    invitation = db.session.scalar(select(Invitation))
    # Only the hash is stored, and the code is not guessable.
    assert invitation.code_hash == hashlib.sha256(code.encode()).hexdigest()
    assert len(code) >= 40
    assert invitation.expires_at - invitation.created_at == timedelta(days=app.config["INVITATION_DAYS"])
    # The members page lists the invitation but never shows the link again.
    members = client.get("/org/members").get_data(as_text=True)
    assert code not in members and "待使用的邀请" in members
    client.post("/logout")

    page = client.get(path)
    assert page.status_code == 200 and org_admin.organisation.name in page.get_data(as_text=True)
    response = accept(client, path)
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "sun@example.cn"))
    assert user.organisation_id == org_admin.organisation_id and user.role == "org_admin"
    db.session.refresh(invitation)
    assert invitation.used_at is not None and invitation.used_by_id == user.id
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"invitation.create", "invitation.accept"} <= actions
    assert "孙同事" in client.get("/dashboard/").get_data(as_text=True)


def test_used_invitation_is_refused(client, org_admin):
    path = invite(client)
    client.post("/logout")
    assert accept(client, path).status_code == 302
    client.post("/logout")
    before = user_count()
    response = client.get(path)
    assert response.status_code == 410
    assert "已被使用" in response.get_data(as_text=True)
    response = accept(client, path, email="other@example.cn")
    assert response.status_code == 410
    assert user_count() == before


def test_expired_invitation_is_refused(client, org_admin):
    path = invite(client)
    invitation = db.session.scalar(select(Invitation))
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    client.post("/logout")
    response = accept(client, path)
    assert response.status_code == 410
    assert "已过期" in response.get_data(as_text=True)
    assert user_count() == 1


def test_revoked_invitation_is_refused(client, org_admin):
    path = invite(client)
    invitation = db.session.scalar(select(Invitation))
    response = client.post(f"/org/invitations/{invitation.id}/revoke")
    assert response.status_code == 302
    assert "没有待使用的邀请" in client.get("/org/members").get_data(as_text=True)
    client.post("/logout")
    response = accept(client, path)
    assert response.status_code == 410
    assert "已被机构管理员撤销" in response.get_data(as_text=True)
    assert user_count() == 1


def test_unknown_code_is_404(client):
    response = client.get("/invite/not-a-real-code")
    assert response.status_code == 404
    assert "邀请链接无效" in response.get_data(as_text=True)


def test_email_restriction(client, org_admin):
    path = invite(client, email="Only.Me@Example.cn")
    client.post("/logout")
    assert 'value="only.me@example.cn"' in client.get(path).get_data(as_text=True)
    response = accept(client, path, email="someone.else@example.cn")
    assert response.status_code == 400
    assert "此邀请仅限邮箱 only.me@example.cn 使用" in response.get_data(as_text=True)
    assert user_count() == 1
    assert accept(client, path, email="ONLY.ME@example.cn").status_code == 302


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"user_name": ""}, "请输入您的姓名"),
        ({"email": "bad"}, "请输入有效的电子邮箱地址"),
        ({"password": "short", "password_confirm": "short"}, "密码至少需要"),
        ({"password_confirm": "Something-else-1"}, "两次输入的密码不一致"),
    ],
)
def test_bad_account_input_keeps_the_invitation(client, org_admin, data, message):
    path = invite(client)
    client.post("/logout")
    response = accept(client, path, **data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert user_count() == 1
    assert db.session.scalar(select(Invitation)).used_at is None


def test_existing_email_is_refused(client, make, org_admin):
    other = make.user(make.org())
    path = invite(client)
    client.post("/logout")
    response = accept(client, path, email=other.email)
    assert response.status_code == 400
    assert "该邮箱已注册" in response.get_data(as_text=True)
    assert db.session.scalar(select(Invitation)).used_at is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"role": "staff"}, "请选择有效的角色"),
        ({"role": "admin"}, "请选择有效的角色"),
        ({"email": "not-an-address"}, "请输入有效的电子邮箱地址"),
    ],
)
def test_bad_invitation_input(client, org_admin, data, message):
    response = client.post("/org/invitations", data={"role": "org_member", **data})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Invitation.id))) == 0


def test_logged_in_user_cannot_accept(client, org_admin):
    path = invite(client)
    response = client.get(path)
    assert response.status_code == 409
    assert "请先退出" in response.get_data(as_text=True)


def test_cross_organisation_revoke_is_404(client, make, org_admin):
    other_org = make.org()
    other_admin = make.user(other_org)
    foreign = Invitation(
        organisation_id=other_org.id, code_hash="0" * 64, created_by_id=other_admin.id,
        expires_at=utcnow() + timedelta(days=1),
    )
    db.session.add(foreign)
    db.session.commit()
    assert client.post(f"/org/invitations/{foreign.id}/revoke").status_code == 404
    db.session.refresh(foreign)
    assert foreign.revoked_at is None


def test_used_invitation_cannot_be_revoked(client, org_admin, login):
    path = invite(client)
    invitation = db.session.scalar(select(Invitation))
    client.post("/logout")
    accept(client, path)
    client.post("/logout")
    login(org_admin)
    client.post(f"/org/invitations/{invitation.id}/revoke")
    db.session.refresh(invitation)
    assert invitation.revoked_at is None
