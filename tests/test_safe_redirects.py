"""One rule for every ``next`` a visitor sends: only same-site paths survive; whatever a browser
could read as another host (tabs, backslashes, schemes, //) goes to the page's default."""
from __future__ import annotations

import pytest

from chanjiao.extensions import db
from chanjiao.models import Notification
from chanjiao.views_common import is_same_site_path, safe_next

from .factories import DEFAULT_PASSWORD
from .test_interest_requests import build_pair

# What an attacker sends: each would make a browser leave the site (browsers drop tabs and line
# breaks inside URLs and read a backslash as a slash).
ESCAPES = [
    "//evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r\n/evil.example/",
    "/\\evil.example",
    "\\/evil.example",
    "/ /evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/\u200b/evil.example",
    "/\u3000/evil.example",
    "",
]
SAME_SITE = ["/", "/dashboard/", "/demands?q=%E6%8A%A4%E7%90%86&page=2", "/my/demands/3/matches#top"]


@pytest.mark.parametrize("target", ESCAPES)
def test_anything_a_browser_could_read_as_another_host_is_refused(target):
    assert not is_same_site_path(target)
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize("target", SAME_SITE)
def test_same_site_paths_survive(target):
    assert safe_next(target, "/home") == target


def test_a_path_outside_the_allowed_section_is_refused():
    assert safe_next("/staff/curation?page=2", "/q", under="/staff/curation") == "/staff/curation?page=2"
    assert safe_next("/dashboard/", "/q", under="/staff/curation") == "/q"


def _location(response) -> str:
    assert response.status_code == 302, response.status_code
    return response.headers["Location"]


@pytest.mark.parametrize("target", ["/%09/evil.example/", "//evil.example/", "/%5Cevil.example"])
def test_login_next(client, make, target):
    user = make.user(make.org("enterprise"))
    response = client.post(
        f"/login?next={target}", data={"email": user.email, "password": DEFAULT_PASSWORD}
    )
    assert _location(response) == "/dashboard/"


def test_login_next_same_site_is_kept(client, make):
    user = make.user(make.org("enterprise"))
    response = client.post(
        "/login?next=/my/demands", data={"email": user.email, "password": DEFAULT_PASSWORD}
    )
    assert _location(response) == "/my/demands"


@pytest.mark.parametrize("target", ESCAPES)
def test_language_switch_next(client, target):
    assert _location(client.post("/lang/en", data={"next": target})) == "/"


def test_language_switch_next_same_site_is_kept(client):
    assert _location(client.post("/lang/en", data={"next": "/demands?page=2"})) == "/demands?page=2"


@pytest.mark.parametrize("target", ["/\t/evil.example/", "//evil.example/", "/\\evil.example"])
def test_interest_request_next(client, make, login, target):
    pair = build_pair(make)
    login(pair["hr"])
    page = client.get(
        "/interests/new", query_string={"programme_id": pair["programme"].id, "next": target}
    ).get_data(as_text=True)
    assert '<input id="next" name="next" type="hidden" value="">' in page
    response = client.post("/interests/new", data={
        "demand_id": pair["demand"].id, "programme_id": pair["programme"].id, "next": target,
    })
    assert _location(response) == "/interests"


@pytest.mark.parametrize("link, expected", [
    ("/\t/evil.example/", "/inbox/"),
    ("//evil.example/", "/inbox/"),
    ("/my/demands", "/my/demands"),
])
def test_a_notification_link_is_followed_only_on_this_site(client, make, login, link, expected):
    user = make.user(make.org("enterprise"))
    note = Notification(user_id=user.id, kind="test", title="测试", link=link)
    db.session.add(note)
    db.session.commit()
    login(user)
    assert _location(client.post(f"/inbox/{note.id}/read")) == expected
