"""Authorisation on every postings route, and CSRF refusal of every write."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.models import AuditLog, Demand, Programme, Skill

from .test_postings_demands import VALID as DEMAND
from .test_postings_programmes import VALID as PROGRAMME

# (method, url template, form data); {id} is the posting's id.
DEMAND_ROUTES = [
    ("GET", "/my/demands", None),
    ("GET", "/my/demands/new", None),
    ("POST", "/my/demands/new", DEMAND),
    ("GET", "/my/demands/{id}/edit", None),
    ("POST", "/my/demands/{id}/edit", DEMAND),
    ("GET", "/my/demands/{id}/preview", None),
    ("POST", "/my/demands/{id}/publish", {}),
    ("POST", "/my/demands/{id}/close", {}),
    ("POST", "/my/demands/{id}/archive", {}),
    ("POST", "/my/demands/{id}/delete", {}),
]
PROGRAMME_ROUTES = [
    ("GET", "/my/programmes", None),
    ("GET", "/my/programmes/new", None),
    ("POST", "/my/programmes/new", PROGRAMME),
    ("GET", "/my/programmes/{id}/edit", None),
    ("POST", "/my/programmes/{id}/edit", PROGRAMME),
    ("GET", "/my/programmes/{id}/preview", None),
    ("POST", "/my/programmes/{id}/publish", {}),
    ("POST", "/my/programmes/{id}/archive", {}),
    ("POST", "/my/programmes/{id}/delete", {}),
]
STAFF_ROUTES = [
    ("GET", "/skills/manage", None),
    ("POST", "/skills/merge", {"source": "甲", "target": "乙"}),
    ("POST", "/skills/{skill}/synonyms", {"synonyms": "丙"}),
]
ALL_ROUTES = [("demand", *r) for r in DEMAND_ROUTES] + [("programme", *r) for r in PROGRAMME_ROUTES] + [
    ("staff", *r) for r in STAFF_ROUTES
]


def _ids(routes):
    return [f"{kind}-{method}-{url}" for kind, method, url, _data in routes]


@pytest.fixture
def world(make):
    """One enterprise and one institution, each with a draft posting, and two tags."""
    enterprise = make.org("enterprise")
    institution = make.org("institution")
    demand = make.demand(enterprise, status="draft", title="原需求")
    programme = make.programme(institution, status="draft", title="原项目")
    first, second = make.skill("甲"), make.skill("乙")
    return {
        "enterprise": enterprise,
        "institution": institution,
        "demand": demand.id,
        "programme": programme.id,
        "skill": first.id,
        "skills": (first.id, second.id),
    }


def _url(template: str, kind: str, world) -> str:
    posting_id = world["demand"] if kind == "demand" else world["programme"]
    return template.format(id=posting_id, skill=world["skill"])


def _snapshot():
    """Everything a refused request must leave untouched."""
    db.session.expire_all()
    return (
        [(d.id, d.title, d.status) for d in db.session.scalars(select(Demand).order_by(Demand.id))],
        [(p.id, p.title, p.status) for p in db.session.scalars(select(Programme).order_by(Programme.id))],
        [(s.id, s.name, list(s.synonyms), s.merged_into_id) for s in db.session.scalars(select(Skill).order_by(Skill.id))],
        db.session.scalar(select(func.count(AuditLog.id))),
    )


def _call(client, method, url, data, **kwargs):
    if method == "GET":
        return client.get(url)
    return client.post(url, data=dict(data or {}), **kwargs)


@pytest.mark.parametrize(("kind", "method", "url", "data"), ALL_ROUTES, ids=_ids(ALL_ROUTES))
def test_anonymous_is_sent_to_login(client, world, kind, method, url, data):
    before = _snapshot()
    response = _call(client, method, _url(url, kind, world), data)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert _snapshot() == before


@pytest.mark.parametrize(("kind", "method", "url", "data"), ALL_ROUTES, ids=_ids(ALL_ROUTES))
def test_wrong_kind_of_account_gets_403(client, world, make, login, kind, method, url, data):
    # Demands: an institution member; programmes: an enterprise member; staff pages: both.
    wrong = world["institution"] if kind in ("demand", "staff") else world["enterprise"]
    login(make.user(wrong, "org_admin"))
    before = _snapshot()
    response = _call(client, method, _url(url, kind, world), data)
    assert response.status_code == 403
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("kind", "method", "url", "data"),
    [r for r in ALL_ROUTES if r[0] != "staff"],
    ids=_ids([r for r in ALL_ROUTES if r[0] != "staff"]),
)
def test_staff_cannot_use_member_pages(client, world, make, login, kind, method, url, data):
    login(make.user(None, "staff"))
    before = _snapshot()
    assert _call(client, method, _url(url, kind, world), data).status_code == 403
    assert _snapshot() == before


OBJECT_ROUTES = [r for r in ALL_ROUTES if "{id}" in r[2]]


@pytest.mark.parametrize(("kind", "method", "url", "data"), OBJECT_ROUTES, ids=_ids(OBJECT_ROUTES))
@pytest.mark.parametrize("other_status", ["approved", "pending"])
def test_other_organisations_posting_is_404(client, world, make, login, kind, method, url, data, other_status):
    other = make.org(kind="enterprise" if kind == "demand" else "institution", status=other_status)
    login(make.user(other, "org_admin"))
    before = _snapshot()
    response = _call(client, method, _url(url, kind, world), data)
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)
    assert _snapshot() == before


@pytest.mark.parametrize("kind", ["demand", "programme"])
def test_missing_posting_is_404(client, world, make, login, kind):
    owner = world["enterprise"] if kind == "demand" else world["institution"]
    login(make.user(owner))
    base = "/my/demands" if kind == "demand" else "/my/programmes"
    assert client.get(f"{base}/999999/edit").status_code == 404
    assert client.post(f"{base}/999999/publish").status_code == 404


WRITE_ROUTES = [r for r in ALL_ROUTES if r[1] == "POST"]


@pytest.mark.parametrize(("kind", "method", "url", "data"), WRITE_ROUTES, ids=_ids(WRITE_ROUTES))
def test_post_without_csrf_token_is_refused(client, world, make, login, kind, method, url, data):
    if kind == "staff":
        login(make.user(None, "staff"))
    else:
        login(make.user(world["enterprise"] if kind == "demand" else world["institution"]))
    before = _snapshot()
    response = _call(client, method, _url(url, kind, world), data, csrf=False)
    assert response.status_code == 400
    assert "表单安全校验失败" in response.get_data(as_text=True)
    assert _snapshot() == before


def _written(kind: str, url: str, world) -> bool:
    """Whether the write route's own change is in the database."""
    db.session.expire_all()
    action = url.rsplit("/", 1)[1]
    if kind == "staff":
        source, target = (db.session.get(Skill, i) for i in world["skills"])
        return source.merged_into_id == target.id if action == "merge" else "丙" in source.synonyms
    model, valid = (Demand, DEMAND) if kind == "demand" else (Programme, PROGRAMME)
    posting = db.session.get(model, world[kind])
    if action == "new":
        return db.session.scalar(select(func.count()).where(model.title == valid["title"])) == 1
    if action == "delete":
        return posting is None
    if action == "edit":
        return posting.title == valid["title"]
    published = "open" if kind == "demand" else "published"
    return posting.status == {"publish": published, "close": "closed", "archive": "archived"}[action]


@pytest.mark.parametrize(("kind", "method", "url", "data"), WRITE_ROUTES, ids=_ids(WRITE_ROUTES))
def test_owner_or_staff_can_use_every_write_route(client, world, make, login, kind, method, url, data):
    """The positive control for the refusals above: the same requests succeed for the owner,
    and the change is made (the views redirect after a refusal too, so the status alone
    proves nothing)."""
    if kind == "staff":
        login(make.user(None, "staff"))
    else:
        login(make.user(world["enterprise"] if kind == "demand" else world["institution"]))
    if url.endswith("/close"):
        # Only an open demand can be closed.
        db.session.get(Demand, world["demand"]).status = "open"
        db.session.commit()
    assert not _written(kind, url, world)
    response = _call(client, method, _url(url, kind, world), data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert _written(kind, url, world), (kind, url)


def test_nav_links_to_own_pages_by_account_kind(client, make, login):
    enterprise, institution = make.org("enterprise"), make.org("institution")
    login(make.user(enterprise))
    html = client.get("/").get_data(as_text=True)
    assert 'href="/my/demands"' in html and 'href="/my/programmes"' not in html
    client.post("/logout")
    login(make.user(institution))
    html = client.get("/").get_data(as_text=True)
    assert 'href="/my/programmes"' in html and 'href="/my/demands"' not in html
    client.post("/logout")
    login(make.user(None, "staff"))
    assert 'href="/skills/manage"' in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("url", ["/my/demands", "/my/demands/new", "/my/programmes", "/my/programmes/new", "/skills/manage"])
def test_member_and_staff_pages_render_in_english_too(client, make, login, world, url):
    if url.startswith("/my/demands"):
        login(make.user(world["enterprise"]))
    elif url.startswith("/my/programmes"):
        login(make.user(world["institution"]))
    else:
        login(make.user(None, "staff"))
    client.post("/lang/en", data={"next": url})
    response = client.get(url)
    assert response.status_code == 200 and '<html lang="en">' in response.get_data(as_text=True)
