"""Authorisation on every route of the auth, orgs, staff and dashboard blueprints:
anonymous visitors go to the login page, wrong roles get 403, other organisations' objects 404,
and writes without a CSRF token are refused."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.models import AuditLog, Invitation
from chanjiao.models._common import utcnow


@pytest.fixture
def world(make):
    """Two organisations A and B, each with an admin and a member, staff, and B's invitation."""
    org_a = make.org(status="pending")
    org_b = make.org(kind="institution")
    people = {
        "admin_a": make.user(org_a, role="org_admin"),
        "member_a": make.user(org_a, role="org_member"),
        "admin_b": make.user(org_b, role="org_admin"),
        "member_b": make.user(org_b, role="org_member"),
        "staff": make.user(None, role="staff"),
    }
    invitation_b = Invitation(
        organisation_id=org_b.id, code_hash="f" * 64, created_by_id=people["admin_b"].id,
        expires_at=utcnow() + timedelta(days=3),
    )
    db.session.add(invitation_b)
    db.session.commit()
    return {"org_a": org_a, "org_b": org_b, "invitation_b": invitation_b, **people}


# (method, url template, allowed roles). Templates use ids from ``world``.
ORG_ADMIN_ROUTES = [
    ("GET", "/org/members"),
    ("POST", "/org/invitations"),
    ("POST", "/org/invitations/{invitation_b}/revoke"),
    ("POST", "/org/members/{member_b}/role"),
    ("POST", "/org/members/{member_b}/deactivate"),
    ("POST", "/org/members/{member_b}/activate"),
    ("POST", "/org/members/{member_b}/reset"),
    ("GET", "/org/profile"),
    ("POST", "/org/profile"),
]
STAFF_ROUTES = [
    ("GET", "/staff/"),
    ("GET", "/staff/organisations"),
    ("GET", "/staff/organisations/{org_b}"),
    ("POST", "/staff/organisations/{org_a}/approve"),
    ("POST", "/staff/organisations/{org_a}/reject"),
    ("POST", "/staff/organisations/{org_b}/suspend"),
    ("POST", "/staff/organisations/{org_b}/reinstate"),
    ("POST", "/staff/organisations/{org_b}/membership"),
    ("GET", "/staff/users"),
    ("POST", "/staff/users/{member_b}/reset"),
]
LOGIN_ROUTES = [("GET", "/dashboard/")]
ALL_PROTECTED = ORG_ADMIN_ROUTES + STAFF_ROUTES + LOGIN_ROUTES


def url(template: str, world) -> str:
    return template.format(**{key: value.id for key, value in world.items()})


def call(client, method: str, target: str, **kwargs):
    return client.get(target, **kwargs) if method == "GET" else client.post(target, **kwargs)


def audit_count() -> int:
    return db.session.scalar(select(func.count(AuditLog.id)))


@pytest.mark.parametrize(("method", "template"), ALL_PROTECTED)
def test_anonymous_is_sent_to_login(client, world, method, template):
    response = call(client, method, url(template, world))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert audit_count() == 0


@pytest.mark.parametrize(("method", "template"), ORG_ADMIN_ROUTES)
@pytest.mark.parametrize("who", ["member_a", "staff"])
def test_org_admin_pages_refuse_other_roles(client, world, login, method, template, who):
    login(world[who])
    assert call(client, method, url(template, world)).status_code == 403
    assert audit_count() == 0


@pytest.mark.parametrize(("method", "template"), STAFF_ROUTES)
@pytest.mark.parametrize("who", ["admin_a", "member_a"])
def test_staff_pages_refuse_organisation_users(client, world, login, method, template, who):
    login(world[who])
    assert call(client, method, url(template, world)).status_code == 403
    assert audit_count() == 0


@pytest.mark.parametrize(
    ("method", "template", "data"),
    [
        ("POST", "/org/invitations/{invitation_b}/revoke", {}),
        ("POST", "/org/members/{member_b}/role", {"role": "org_admin"}),
        ("POST", "/org/members/{member_b}/role", {"role": "bogus"}),
        ("POST", "/org/members/{member_b}/deactivate", {}),
        ("POST", "/org/members/{admin_b}/deactivate", {}),
        ("POST", "/org/members/{member_b}/activate", {}),
        ("POST", "/org/members/{member_b}/reset", {}),
        ("POST", "/org/members/{staff}/reset", {}),
        ("POST", "/org/invitations/999999/revoke", {}),
        ("POST", "/org/members/999999/role", {"role": "org_member"}),
    ],
)
def test_other_organisations_objects_are_404(client, world, login, method, template, data):
    login(world["admin_a"])
    response = call(client, method, url(template, world), data=data)
    assert response.status_code == 404
    assert audit_count() == 0
    db.session.refresh(world["member_b"])
    db.session.refresh(world["invitation_b"])
    assert world["member_b"].active and world["member_b"].role == "org_member"
    assert world["invitation_b"].revoked_at is None


@pytest.mark.parametrize(
    ("who", "template"),
    [
        ("admin_a", "/org/invitations"),
        ("admin_a", "/org/members/{member_a}/deactivate"),
        ("admin_a", "/org/members/{member_a}/reset"),
        ("admin_a", "/org/profile"),
        ("staff", "/staff/organisations/{org_a}/approve"),
        ("staff", "/staff/organisations/{org_b}/membership"),
        ("staff", "/staff/users/{member_a}/reset"),
    ],
)
def test_writes_without_csrf_token_are_refused(client, world, login, who, template):
    login(world[who])
    response = client.post(url(template, world), data={"contact_name": "x"}, csrf=False)
    assert response.status_code == 400
    assert "表单安全校验失败" in response.get_data(as_text=True)
    assert audit_count() == 0
    db.session.refresh(world["member_a"])
    db.session.refresh(world["org_a"])
    assert world["member_a"].active and world["org_a"].status == "pending"


@pytest.mark.parametrize(
    "target", ["/register", "/invite/whatever", "/reset/whatever"]
)
def test_public_account_pages_refuse_posts_without_csrf(client, target):
    # The CSRF check runs before any view, so even an unknown code is refused by it.
    response = client.post(target, data={"password": "x"}, csrf=False)
    assert response.status_code == 400
    assert "表单安全校验失败" in response.get_data(as_text=True)


def test_staff_may_open_every_staff_page(client, world, login):
    login(world["staff"])
    for method, template in STAFF_ROUTES:
        if method == "GET":
            assert call(client, method, url(template, world)).status_code == 200, template


def test_org_admin_may_open_admin_pages(client, world, login):
    login(world["admin_a"])
    assert client.get("/org/members").status_code == 200
    assert client.get("/org/profile").status_code == 200
    assert client.get("/dashboard/").status_code == 200


def test_nav_links_for_each_role(client, world, login):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/register"' in html
    login(world["staff"])
    html = client.get("/").get_data(as_text=True)
    assert 'href="/staff/"' in html and 'href="/dashboard/"' in html


@pytest.mark.parametrize(
    ("who", "path"),
    [
        (None, "/register"),
        ("admin_a", "/dashboard/"),
        ("admin_a", "/org/members"),
        ("admin_a", "/org/profile"),
        ("staff", "/staff/"),
        ("staff", "/staff/organisations"),
        ("staff", "/staff/organisations/{org_a}"),
        ("staff", "/staff/users"),
    ],
)
def test_pages_render_in_english_too(client, world, login, who, path):
    if who:
        login(world[who])
    client.post("/lang/en", data={"next": "/"})
    response = client.get(url(path, world))
    assert response.status_code == 200
    assert '<html lang="en">' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("who", "method", "template"),
    [
        ("staff", "GET", "/staff/organisations/99999999999"),
        ("staff", "POST", "/staff/organisations/99999999999/approve"),
        ("staff", "POST", "/staff/users/99999999999/reset"),
        ("admin_a", "POST", "/org/members/99999999999/deactivate"),
        ("admin_a", "POST", "/org/invitations/99999999999/revoke"),
    ],
)
def test_ids_beyond_32_bits_are_404(client, world, login, who, method, template):
    login(world[who])
    assert call(client, method, template).status_code == 404


def test_nul_characters_never_cause_a_500(client, world, login):
    response = client.post("/login", data={"email": "x\x00@y.cn", "password": "abc\x00"})
    assert response.status_code == 400
    response = client.post("/register", data={"name": "名\x00称", "email": "a\x00@b.cn"})
    assert response.status_code == 400
    login(world["staff"])
    assert client.get("/staff/users?q=a%00b").status_code == 200
    assert client.get("/staff/users?page=" + "9" * 30).status_code == 200
    assert client.get("/staff/organisations?page=" + "9" * 30).status_code == 200
    organisation = world["org_a"]
    response = client.post(f"/staff/organisations/{organisation.id}/reject", data={"reason": "资料\x00不全"})
    assert response.status_code == 400
    assert "含有不可见的控制字符（U+0000）" in response.get_data(as_text=True)
    db.session.refresh(organisation)
    assert organisation.status == "pending" and organisation.status_reason == ""
