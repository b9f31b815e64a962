"""Member management and the organisation profile."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from chanjiao.extensions import db
from chanjiao.models import AuditLog, Organisation


@pytest.fixture
def team(make, login):
    organisation = make.org()
    admin = make.user(organisation, role="org_admin", name="钱管理")
    member = make.user(organisation, role="org_member", name="李成员")
    login(admin)
    return organisation, admin, member


def test_members_page_lists_members(client, team):
    _organisation, admin, member = team
    html = client.get("/org/members").get_data(as_text=True)
    assert admin.email in html and member.email in html and "机构成员" in html


def test_change_role_both_ways(client, team):
    _organisation, admin, member = team
    assert client.post(f"/org/members/{member.id}/role", data={"role": "org_admin"}).status_code == 302
    db.session.refresh(member)
    assert member.role == "org_admin"
    client.post(f"/org/members/{member.id}/role", data={"role": "org_member"})
    db.session.refresh(member)
    assert member.role == "org_member"
    entries = db.session.scalars(select(AuditLog).where(AuditLog.action == "user.role")).all()
    assert len(entries) == 2 and all(e.actor_id == admin.id for e in entries)


@pytest.mark.parametrize("role", ["staff", "admin", ""])
def test_change_role_refuses_other_roles(client, team, role):
    _organisation, _admin, member = team
    response = client.post(f"/org/members/{member.id}/role", data={"role": role}, follow_redirects=True)
    assert "请选择有效的角色" in response.get_data(as_text=True)
    db.session.refresh(member)
    assert member.role == "org_member"


def test_cannot_change_own_role(client, team):
    _organisation, admin, _member = team
    response = client.post(f"/org/members/{admin.id}/role", data={"role": "org_member"}, follow_redirects=True)
    assert "不能修改自己的角色" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role == "org_admin"


def test_deactivate_and_reactivate_member(client, team):
    _organisation, _admin, member = team
    assert client.post(f"/org/members/{member.id}/deactivate").status_code == 302
    db.session.refresh(member)
    assert not member.active
    client.post("/logout")
    response = client.post("/login", data={"email": member.email, "password": "Chanjiao-test-2026"})
    assert response.status_code == 403  # a deactivated member cannot log in


def test_reactivate(client, team):
    _organisation, _admin, member = team
    client.post(f"/org/members/{member.id}/deactivate")
    client.post(f"/org/members/{member.id}/activate")
    db.session.refresh(member)
    assert member.active


def test_cannot_deactivate_self(client, team):
    _organisation, admin, _member = team
    response = client.post(f"/org/members/{admin.id}/deactivate", follow_redirects=True)
    assert "不能停用自己的账号" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.active


def test_cannot_remove_the_last_admin(client, make, team):
    organisation, admin, _member = team
    second = make.user(organisation, role="org_admin")
    assert client.post(f"/org/members/{second.id}/deactivate").status_code == 302
    db.session.refresh(second)
    assert not second.active  # fine: the logged-in admin remains
    # Through the pages an admin never acts on themself, so the last active admin can only be
    # reached by an actor who is no longer an active admin; the service refuses all the same.
    from chanjiao.errors import InvalidTransition
    from chanjiao.orgs import services

    with pytest.raises(InvalidTransition):
        services.change_role(second, admin.id, "org_member")
    db.session.rollback()
    with pytest.raises(InvalidTransition):
        services.set_member_active(second, admin.id, False)
    db.session.rollback()
    db.session.refresh(admin)
    assert admin.active and admin.role == "org_admin"


def test_members_of_other_organisations_are_404(client, make, team):
    other = make.user(make.org(), role="org_member")
    for action, data in (("role", {"role": "org_admin"}), ("deactivate", {}), ("activate", {}), ("reset", {})):
        assert client.post(f"/org/members/{other.id}/{action}", data=data).status_code == 404
    db.session.refresh(other)
    assert other.role == "org_member" and other.active


def test_member_action_without_csrf_is_refused(client, team):
    _organisation, _admin, member = team
    response = client.post(f"/org/members/{member.id}/deactivate", csrf=False)
    assert response.status_code == 400
    db.session.refresh(member)
    assert member.active


# --- Profile --------------------------------------------------------------------------------


def profile_data(**overrides):
    data = {
        "contact_name": "周主任",
        "contact_phone": "13911112222",
        "address": "朝阳区酒仙桥路 10 号",
        "description": "<em>专注</em>新能源汽车维修培训。",
    }
    data.update(overrides)
    return data


def test_approved_profile_edit_keeps_name_and_code(client, team):
    organisation, admin, _member = team
    name, code = organisation.name, organisation.credit_code
    page = client.get("/org/profile").get_data(as_text=True)
    assert "名称和统一社会信用代码不能修改" in page
    response = client.post(
        "/org/profile", data=profile_data(name="改名企业", credit_code="91110105MA0000000X")
    )
    assert response.status_code == 302
    db.session.refresh(organisation)
    assert organisation.contact_name == "周主任" and organisation.contact_phone == "13911112222"
    assert organisation.description == "<em>专注</em>新能源汽车维修培训。"  # stored as typed
    assert organisation.name == name and organisation.credit_code == code
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "organisation.profile"))
    assert entry.actor_id == admin.id


def test_profile_bad_input(client, team):
    organisation, _admin, _member = team
    response = client.post("/org/profile", data=profile_data(contact_phone="abc", address=""))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "请输入有效的手机号" in html and "请输入详细地址" in html
    db.session.refresh(organisation)
    assert organisation.contact_phone == "13800138000"


def test_pending_organisation_may_fix_its_name(client, make, login):
    organisation = make.org(status="pending")
    login(make.user(organisation))
    response = client.post("/org/profile", data=profile_data(name="更正后的名称", credit_code=organisation.credit_code))
    assert response.status_code == 302
    db.session.refresh(organisation)
    assert organisation.name == "更正后的名称" and organisation.status == "pending"


def test_pending_organisation_credit_code_is_validated(client, make, login):
    organisation = make.org(status="pending")
    taken = make.org()
    login(make.user(organisation))
    response = client.post("/org/profile", data=profile_data(name=organisation.name, credit_code=taken.credit_code))
    assert response.status_code == 400
    assert "该统一社会信用代码已注册" in response.get_data(as_text=True)
    response = client.post("/org/profile", data=profile_data(name=organisation.name, credit_code="123"))
    assert "应为 18 位" in response.get_data(as_text=True)


def test_rejected_organisation_resubmits_by_editing(client, make, login):
    organisation = make.org(status="rejected", status_reason="资料不全")
    login(make.user(organisation))
    response = client.post("/org/profile", data=profile_data(name=organisation.name, credit_code=organisation.credit_code))
    assert response.status_code == 302
    db.session.refresh(organisation)
    assert organisation.status == "pending"
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert "organisation.resubmit" in actions


def test_profile_markup_is_escaped_on_staff_detail(client, make, login, team):
    organisation, _admin, _member = team
    client.post("/org/profile", data=profile_data())
    client.post("/logout")
    login(make.user(None, role="staff"))
    html = client.get(f"/staff/organisations/{organisation.id}").get_data(as_text=True)
    assert "&lt;em&gt;专注&lt;/em&gt;" in html and "<em>专注</em>" not in html


def test_unique_organisation_rows_unchanged_on_refusal(client, team):
    before = db.session.scalar(select(Organisation.description))
    client.post("/org/profile", data=profile_data(contact_name=""))
    assert db.session.scalar(select(Organisation.description)) == before


def test_deactivation_ends_the_members_open_session(app, make):
    from tests.conftest import CSRFClient

    app.test_client_class = CSRFClient
    organisation = make.org()
    admin = make.user(organisation)
    member = make.user(organisation, role="org_member")
    admin_client, member_client = app.test_client(), app.test_client()
    for c, u in ((admin_client, admin), (member_client, member)):
        response = c.post("/login", data={"email": u.email, "password": make.DEFAULT_PASSWORD})
        assert response.status_code == 302
    assert member_client.get("/dashboard/").status_code == 200
    assert admin_client.post(f"/org/members/{member.id}/deactivate").status_code == 302
    db.session.refresh(member)
    assert not member.active
    response = member_client.get("/dashboard/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
