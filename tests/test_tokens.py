"""The API tokens page: who may use it, creating (secret shown once, only its hash stored),
listing and revoking."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.models import ApiToken, AuditLog

from .test_api_helpers import bearer, token_for


@pytest.fixture
def member(make, login):
    user = make.user(make.org("enterprise"), "org_member")
    login(user)
    return user


def token_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ApiToken))


def secret_on(page: str) -> str:
    match = re.search(r'value="(cj_[A-Za-z0-9_-]+)"', page)
    assert match, page[:3000]
    return match.group(1)


@pytest.mark.parametrize(
    "method, url", [("GET", "/account/tokens/"), ("POST", "/account/tokens/"), ("POST", "/account/tokens/1/revoke")]
)
def test_anonymous_visitors_are_sent_to_login(client, method, url):
    response = client.open(url, method=method, data={"name": "x"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert token_count() == 0


@pytest.mark.parametrize(
    "method, url", [("GET", "/account/tokens/"), ("POST", "/account/tokens/"), ("POST", "/account/tokens/1/revoke")]
)
def test_staff_are_refused(client, login, make, method, url):
    login(make.user(None, "staff"))
    assert client.open(url, method=method, data={"name": "x"}).status_code == 403
    assert token_count() == 0


@pytest.mark.parametrize("kind, role", [("enterprise", "org_admin"), ("institution", "org_member")])
def test_organisation_users_see_the_page_and_the_dashboard_links_to_it(client, login, make, kind, role):
    login(make.user(make.org(kind), role))
    page = client.get("/account/tokens/")
    assert page.status_code == 200
    assert "API 令牌" in page.get_data(as_text=True)
    assert 'href="/account/tokens/"' in client.get("/dashboard/").get_data(as_text=True)


def test_create_shows_the_secret_once_and_stores_only_its_hash(client, member):
    response = client.post("/account/tokens/", data={"name": "人事系统同步"})
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    secret = secret_on(response.get_data(as_text=True))
    assert secret.startswith("cj_") and len(secret) >= 40
    token = db.session.scalar(select(ApiToken))
    assert (token.user_id, token.name) == (member.id, "人事系统同步")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix) and len(token.prefix) < 15
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "api_token.create")) is not None

    listing = client.get("/account/tokens/").get_data(as_text=True)
    assert secret not in listing
    assert token.prefix in listing and "人事系统同步" in listing and "从未使用" in listing
    # The secret works for the API.
    assert client.get("/api/v1/demands", headers=bearer(secret)).status_code == 200


@pytest.mark.parametrize("name", ["", "   ", "名" * 61])
def test_name_is_required_and_short(client, member, name):
    response = client.post("/account/tokens/", data={"name": name})
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)
    assert token_count() == 0


def test_a_name_of_60_characters_is_fine(client, member):
    assert client.post("/account/tokens/", data={"name": "名" * 60}).status_code == 200
    assert token_count() == 1


def test_writes_need_a_csrf_token(client, member):
    assert client.post("/account/tokens/", data={"name": "x"}, csrf=False).status_code == 400
    secret = token_for(member)
    token = db.session.scalar(select(ApiToken))
    assert client.post(f"/account/tokens/{token.id}/revoke", csrf=False).status_code == 400
    db.session.expire_all()
    assert token.revoked_at is None and token_count() == 1
    assert client.get("/api/v1/demands", headers=bearer(secret)).status_code == 200


def test_the_list_shows_only_the_users_own_tokens(client, member, make):
    colleague = make.user(member.organisation, "org_admin")
    token_for(colleague, "同事的令牌")
    token_for(member, "我的令牌")
    page = client.get("/account/tokens/").get_data(as_text=True)
    assert "我的令牌" in page and "同事的令牌" not in page


def test_revoke_own_token(client, member):
    secret = token_for(member, "旧系统")
    token = db.session.scalar(select(ApiToken))
    response = client.post(f"/account/tokens/{token.id}/revoke")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/tokens/")
    db.session.expire_all()
    assert token.revoked_at is not None
    assert client.get("/api/v1/demands", headers=bearer(secret)).status_code == 401
    page = client.get("/account/tokens/").get_data(as_text=True)
    assert "已撤销" in page and f"/account/tokens/{token.id}/revoke" not in page
    # Revoking again changes nothing.
    revoked_at = token.revoked_at
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 302
    db.session.expire_all()
    assert token.revoked_at == revoked_at


@pytest.mark.parametrize("owner", ["colleague", "stranger", "staff"])
def test_revoking_someone_elses_token_is_404(client, member, make, owner):
    user = {
        "colleague": lambda: make.user(member.organisation, "org_admin"),
        "stranger": lambda: make.user(make.org("institution")),
        "staff": lambda: make.user(None, "staff"),
    }[owner]()
    token_for(user)
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert client.post(f"/account/tokens/{token.id}/revoke").status_code == 404
    db.session.expire_all()
    assert token.revoked_at is None


@pytest.mark.parametrize("token_id", ["999999", str(2**31), str(2**63)])
def test_revoking_a_missing_token_is_404(client, member, token_id):
    assert client.post(f"/account/tokens/{token_id}/revoke").status_code == 404


def test_last_use_appears_in_the_list(client, member):
    secret = token_for(member, "同步")
    client.get("/api/v1/demands", headers=bearer(secret))
    page = client.get("/account/tokens/").get_data(as_text=True)
    assert "从未使用" not in page
