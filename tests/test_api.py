"""The JSON API: authentication before any lookup, ownership, organisation kinds, the caller's
demands and programmes, matches, and every error in one JSON shape."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from chanjiao.common import MAX_ID
from chanjiao.extensions import db
from chanjiao.models import ApiToken, AuditLog, Demand, Programme, SearchTerm, Skill

from .test_api_helpers import assert_documented, assert_error, bearer, token_for

DEMAND = {
    "title": "养老护理员",
    "occupation": "养老护理员",
    "description": "为机构内失能老人提供生活照料与康复辅助。",
    "duties": ["协助老人进食、清洁与翻身", "记录护理日志"],
    "requirements": ["持健康证"],
    "skills": ["养老护理", "失能照护"],
    "skill_level": "L4",
    "headcount": 8,
    "district": "常营地区",
    "location": "常营民族家园养老驿站",
    "mode": "blended",
    "desired_start": "2026-09-01",
    "budget_per_person": 2500,
}
PROGRAMME = {
    "title": "养老护理员（四级）技能培训",
    "description": "面向养老机构护理员的生活照料与基础护理培训。",
    "modules": [{"name": "老年人生活照料", "hours": 40}, {"name": "压疮预防与翻身护理", "hours": 30}],
    "outcomes": ["能为失能老人完成进食、清洁和移动照料"],
    "skills": ["养老护理"],
    "level": "L4",
    "certificate_kind": "skill_level",
    "certificate_name": "养老护理员（四级）",
    "total_hours": 120,
    "mode": "offline",
    "district": "双井街道",
    "location": "双井培训中心",
    "capacity": 40,
    "fee": 2600,
    "subsidy_eligible": True,
    "schedule": "每周六全天",
}


@pytest.fixture
def world(make):
    """Two enterprises and two institutions, each with a member, a token and a posting."""
    enterprise, rival_enterprise = make.org("enterprise"), make.org("enterprise")
    institution, rival_institution = make.org("institution"), make.org("institution")
    hr, rival_hr = make.user(enterprise), make.user(rival_enterprise, "org_member")
    trainer, rival_trainer = make.user(institution, "org_member"), make.user(rival_institution)
    return {
        "hr": hr,
        "trainer": trainer,
        "rival_hr": rival_hr,
        "rival_trainer": rival_trainer,
        "enterprise": enterprise,
        "institution": institution,
        "demand": make.demand(enterprise, status="open", title="新能源汽车维修技师"),
        "rival_demand": make.demand(rival_enterprise, status="draft", title="对手的需求"),
        "programme": make.programme(institution, status="published"),
        "rival_programme": make.programme(rival_institution, status="draft", title="对手的项目"),
        "hr_token": token_for(hr),
        "trainer_token": token_for(trainer),
        "rival_hr_token": token_for(rival_hr),
        "rival_trainer_token": token_for(rival_trainer),
    }


def api_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every API route that needs a token."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((method, rule.rule))
    return out


def concrete(rule: str, object_id: int) -> str:
    return rule.replace("<int:demand_id>", str(object_id)).replace("<int:programme_id>", str(object_id))


def snapshot() -> dict[str, int]:
    """Row counts of everything a write could touch."""
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Demand, Programme, Skill, SearchTerm, AuditLog)
    }


# --------------------------------------------------------------------------- authentication


def test_every_route_refuses_a_call_without_a_token_before_any_lookup(app, client, world):
    routes = api_routes(app)
    assert len(routes) == 10
    for method, rule in routes:
        for object_id in (world["demand"].id, world["rival_demand"].id, 999999, MAX_ID + 10):
            url = concrete(rule, object_id)
            response = client.open(url, method=method, json={"title": "x"})
            error = assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "Location" not in response.headers
            assert error["message"]
            assert_documented(response, method, url)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token {secret}",
        "Bearer {secret} extra",
        "Bearer cj_not-a-real-token",
        "Bearer not-our-format",
        "Bearer " + "cj_" + "a" * 500,
        "Bearer {secret}x",
        "Bearer cj_令牌",
    ],
)
def test_malformed_or_unknown_tokens_are_401(client, world, header):
    response = client.get("/api/v1/demands", headers={"Authorization": header.format(secret=world["hr_token"])})
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_scheme_is_case_insensitive(client, world):
    response = client.get("/api/v1/demands", headers={"Authorization": f"bearer {world['hr_token']}"})
    assert response.status_code == 200


def test_a_revoked_token_is_401(client, world):
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == world["hr"].id))
    from chanjiao.tokens import services

    services.revoke_token(world["hr"], token.id)
    db.session.commit()
    response = client.get(f"/api/v1/demands/{world['demand'].id}", headers=bearer(world["hr_token"]))
    assert_error(response, 401, "unauthorized")


def test_a_session_cookie_alone_never_authenticates(client, login, world):
    login(world["hr"])
    assert client.get("/dashboard/").status_code == 200  # the session works for pages
    for url in ("/api/v1/demands", f"/api/v1/demands/{world['demand'].id}"):
        assert_error(client.get(url), 401, "unauthorized")
    response = client.post("/api/v1/demands", json=DEMAND)
    assert_error(response, 401, "unauthorized")
    assert db.session.scalar(select(func.count()).select_from(Demand)) == 2


def test_inactive_user_is_403(client, world):
    world["hr"].active = False
    db.session.commit()
    error = assert_error(client.get("/api/v1/demands", headers=bearer(world["hr_token"])), 403, "forbidden")
    assert "停用" in error["message"]


@pytest.mark.parametrize("kind", ["enterprise", "institution"])
def test_users_of_a_suspended_organisation_are_403(client, world, kind):
    world[kind].status = "suspended"
    db.session.commit()
    url, secret = ("/api/v1/demands", world["hr_token"]) if kind == "enterprise" else (
        "/api/v1/programmes", world["trainer_token"])
    assert_error(client.get(url, headers=bearer(secret)), 403, "forbidden")


def test_use_updates_last_used_at(client, world):
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == world["hr"].id))
    assert token.last_used_at is None
    assert client.get("/api/v1/demands", headers=bearer(world["hr_token"])).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, token.id).last_used_at is not None


def test_enterprise_tokens_serve_demands_only_and_institution_tokens_programmes_only(app, client, world, make):
    staff_token = token_for(make.user(None, "staff"))
    for method, rule in api_routes(app):
        if "/demands" in rule:
            refused, object_id = (world["trainer_token"], staff_token), world["demand"].id
        else:
            refused, object_id = (world["hr_token"], staff_token), world["programme"].id
        for secret in refused:
            before = snapshot()
            response = client.open(concrete(rule, object_id), method=method, json={"title": "改"}, headers=bearer(secret))
            assert_error(response, 403, "forbidden")
            assert snapshot() == before


# --------------------------------------------------------------------------- ownership


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("GET", "/api/v1/demands/{rival_demand}", None),
        ("PATCH", "/api/v1/demands/{rival_demand}", {"title": "被改了"}),
        ("GET", "/api/v1/demands/{rival_demand}/matches", None),
        ("GET", "/api/v1/programmes/{rival_programme}", None),
        ("PATCH", "/api/v1/programmes/{rival_programme}", {"title": "被改了"}),
        ("GET", "/api/v1/programmes/{rival_programme}/matches", None),
    ],
)
def test_another_organisations_posting_is_404_and_unchanged(client, world, method, url, body):
    target = world["rival_demand"] if "demand" in url else world["rival_programme"]
    secret = world["hr_token"] if "demand" in url else world["trainer_token"]
    before = (target.title, target.updated_at, snapshot())
    url = url.format(rival_demand=target.id, rival_programme=target.id)
    response = client.open(url, method=method, json=body, headers=bearer(secret))
    assert_error(response, 404, "not_found")
    assert_documented(response, method, url)
    db.session.expire_all()
    assert (target.title, target.updated_at, snapshot()) == before
    # The same answer as for an id that does not exist: the rival's posting does not leak.
    missing = client.open(url.replace(str(target.id), "987654"), method=method, json=body, headers=bearer(secret))
    assert missing.get_json() == response.get_json()


@pytest.mark.parametrize("url", ["/api/v1/demands/{id}", "/api/v1/demands/{id}/matches"])
def test_ids_beyond_32_bits_are_422(client, world, url):
    response = client.get(url.format(id=2**31), headers=bearer(world["hr_token"]))
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"demand_id"}
    assert client.get(url.format(id=2**31 - 1), headers=bearer(world["hr_token"])).status_code == 404


def test_list_shows_only_the_callers_organisation(client, world, make):
    for n in range(3):
        make.demand(world["enterprise"], status="draft", title=f"草稿{n}")
    response = client.get("/api/v1/demands", headers=bearer(world["hr_token"]))
    assert response.status_code == 200
    assert_documented(response, "GET", "/api/v1/demands")
    body = response.get_json()
    assert body["total"] == 4 and body["page"] == 1 and body["pages"] == 1
    assert "对手的需求" not in {item["title"] for item in body["items"]}
    response = client.get("/api/v1/programmes", headers=bearer(world["rival_trainer_token"]))
    assert [item["title"] for item in response.get_json()["items"]] == ["对手的项目"]


def test_pagination(client, world, make):
    for n in range(4):
        make.demand(world["enterprise"], status="draft", title=f"草稿{n}")
    headers = bearer(world["hr_token"])
    first = client.get("/api/v1/demands?per_page=2", headers=headers).get_json()
    second = client.get("/api/v1/demands?per_page=2&page=2", headers=headers).get_json()
    last = client.get("/api/v1/demands?per_page=2&page=3", headers=headers).get_json()
    beyond = client.get("/api/v1/demands?per_page=2&page=9", headers=headers).get_json()
    assert (first["total"], first["pages"]) == (5, 3)
    ids = [i["id"] for page in (first, second, last) for i in page["items"]]
    assert len(ids) == len(set(ids)) == 5
    assert beyond["items"] == [] and beyond["page"] == 9
    assert len(client.get("/api/v1/demands?per_page=100", headers=headers).get_json()["items"]) == 5


@pytest.mark.parametrize(
    "query, field",
    [("per_page=101", "per_page"), ("per_page=0", "per_page"), ("page=0", "page"), ("page=abc", "page"),
     ("page=-1", "page"), ("per_page=1.5", "per_page"), ("page=99999999999999", "page")],
)
def test_bad_pagination_is_422(client, world, query, field):
    response = client.get(f"/api/v1/demands?{query}", headers=bearer(world["hr_token"]))
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {field}
    assert_documented(response, "GET", "/api/v1/demands")


# --------------------------------------------------------------------------- demands


def test_create_read_update_a_demand(client, world):
    headers = bearer(world["hr_token"])
    response = client.post("/api/v1/demands", json=DEMAND, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert_documented(response, "POST", "/api/v1/demands")
    created = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/demands/{created['id']}")
    assert created["status"] == "draft"
    assert created["skills"] == sorted(DEMAND["skills"]) or set(created["skills"]) == set(DEMAND["skills"])
    demand = db.session.get(Demand, created["id"])
    assert demand.organisation_id == world["enterprise"].id and demand.created_by_id == world["hr"].id

    url = f"/api/v1/demands/{created['id']}"
    response = client.get(url, headers=headers)
    assert response.status_code == 200 and response.get_json() == created
    assert_documented(response, "GET", url)

    response = client.patch(url, json={"headcount": 12, "desired_start": None, "duties": ["新职责"]}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "PATCH", url)
    updated = response.get_json()
    assert (updated["headcount"], updated["desired_start"], updated["duties"]) == (12, None, ["新职责"])
    # Fields not in the patch keep their values.
    for name in ("title", "description", "requirements", "skill_level", "district", "budget_per_person"):
        assert updated[name] == created[name]
    assert set(updated["skills"]) == set(created["skills"])


def test_patching_an_archived_demand_is_409(client, world, make):
    archived = make.demand(world["enterprise"], status="archived")
    url = f"/api/v1/demands/{archived.id}"
    response = client.patch(url, json={"title": "新标题"}, headers=bearer(world["hr_token"]))
    assert_error(response, 409, "conflict")
    assert_documented(response, "PATCH", url)
    db.session.expire_all()
    assert db.session.get(Demand, archived.id).title != "新标题"


def without(body: dict, *names: str) -> dict:
    return {k: v for k, v in body.items() if k not in names}


DEMAND_ERRORS = [
    (without(DEMAND, "title", "district", "skill_level"), {"title", "district", "skill_level"}, "此项为必填项。"),
    ({**DEMAND, "title": 5}, {"title"}, "应为字符串。"),
    ({**DEMAND, "title": None}, {"title"}, "应为字符串。"),
    ({**DEMAND, "headcount": "8"}, {"headcount"}, "应为整数。"),
    ({**DEMAND, "headcount": True}, {"headcount"}, "应为整数。"),
    ({**DEMAND, "headcount": 8.5}, {"headcount"}, "应为整数。"),
    ({**DEMAND, "budget_per_person": "2500"}, {"budget_per_person"}, "应为整数或 null。"),
    ({**DEMAND, "duties": "协助老人进食"}, {"duties"}, "应为数组。"),
    ({**DEMAND, "duties": ["好", 3]}, {"duties[1]"}, "应为字符串。"),
    ({**DEMAND, "skills": [{"name": "养老"}]}, {"skills[0]"}, "应为字符串。"),
    ({**DEMAND, "id": 1}, {"id"}, None),
    ({**DEMAND, "status": "open"}, {"status"}, None),
    ({**DEMAND, "salary": 9000}, {"salary"}, None),
    ({**DEMAND, "desired_start": "2026-13-01"}, {"desired_start"}, "请输入有效日期。"),
    ({**DEMAND, "desired_start": "下个月"}, {"desired_start"}, "请输入有效日期。"),
    ({**DEMAND, "district": "海淀区"}, {"district"}, "请选择列表中的选项。"),
    ({**DEMAND, "skill_level": "L9"}, {"skill_level"}, "请选择列表中的选项。"),
    ({**DEMAND, "mode": "by-post"}, {"mode"}, "请选择列表中的选项。"),
    ({**DEMAND, "title": "长" * 101}, {"title"}, "最多 100 个字。"),
    ({**DEMAND, "duties": ["行"] * 51}, {"duties"}, None),
    ({**DEMAND, "headcount": 0}, {"headcount"}, None),
    ({**DEMAND, "headcount": 10**30}, {"headcount"}, None),
    ({**DEMAND, "budget_per_person": -1}, {"budget_per_person"}, None),
    ({**DEMAND, "skills": ["新技能甲", "技" * 51]}, {"skills[1]"}, None),
    ({**DEMAND, "title": "   "}, {"title"}, "此项为必填项。"),
]


@pytest.mark.parametrize("body, fields, message", DEMAND_ERRORS)
def test_bad_demand_input_is_422_and_writes_nothing(client, world, body, fields, message):
    before = snapshot()
    response = client.post("/api/v1/demands", json=body, headers=bearer(world["hr_token"]))
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == fields
    if message:
        assert set(error["fields"].values()) == {message}
    assert_documented(response, "POST", "/api/v1/demands")
    assert snapshot() == before


@pytest.mark.parametrize("body, fields, message", DEMAND_ERRORS[1:])
def test_bad_demand_patch_is_422_and_changes_nothing(client, world, body, fields, message):
    demand = world["demand"]
    before = (demand.title, demand.headcount, demand.updated_at, snapshot())
    patch = {name: body[name] for name in fields if "[" not in name and name in body}
    patch = patch or {name.split("[")[0]: body[name.split("[")[0]] for name in fields}
    url = f"/api/v1/demands/{demand.id}"
    response = client.patch(url, json=patch, headers=bearer(world["hr_token"]))
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == fields
    db.session.expire_all()
    assert (demand.title, demand.headcount, demand.updated_at, snapshot()) == before


@pytest.mark.parametrize(
    "data, content_type",
    [
        ("[]", "application/json"),
        ('["title"]', "application/json"),
        ('"title"', "application/json"),
        ("null", "application/json"),
        ("{title: 1}", "application/json"),
        ("", "application/json"),
        (b'{"title": "\xff\xfe"}', "application/json"),
        ('{"title": "养老护理员"}', "text/plain"),
        ("title=养老护理员", "application/x-www-form-urlencoded"),
        ("[" * 100_000 + "]" * 100_000, "application/json"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "application/json"),
    ],
    ids=["array", "array-of-str", "string", "null", "not-json", "empty", "bad-utf8", "text-plain", "form",
         "deep-array", "deep-object"],
)
def test_bodies_that_are_not_a_json_object_are_422(client, world, data, content_type):
    before = snapshot()
    for method, url in (("POST", "/api/v1/demands"), ("PATCH", f"/api/v1/demands/{world['demand'].id}")):
        response = client.open(url, method=method, data=data, content_type=content_type,
                               headers=bearer(world["hr_token"]))
        error = assert_error(response, 422, "validation_error")
        assert error["fields"] == {}
        assert_documented(response, method, url)
    assert snapshot() == before


def test_a_body_over_the_size_limit_is_413_json(app, client, world):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post("/api/v1/demands", json={**DEMAND, "description": "长" * 2000},
                           headers=bearer(world["hr_token"]))
    assert_error(response, 413, "payload_too_large")
    assert_documented(response, "POST", "/api/v1/demands")


def test_json_writes_need_no_csrf_token(client, world):
    # CSRF protection is global for forms; the API authenticates by token instead.
    response = client.post("/api/v1/demands", json=DEMAND, headers=bearer(world["hr_token"]), csrf=False)
    assert response.status_code == 201


# --------------------------------------------------------------------------- programmes


def test_create_read_update_a_programme(client, world):
    headers = bearer(world["trainer_token"])
    response = client.post("/api/v1/programmes", json=PROGRAMME, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert_documented(response, "POST", "/api/v1/programmes")
    created = response.get_json()
    assert created["modules"] == PROGRAMME["modules"] and created["status"] == "draft"
    url = f"/api/v1/programmes/{created['id']}"
    assert client.get(url, headers=headers).get_json() == created
    response = client.patch(url, json={"fee": 0, "subsidy_eligible": False, "level": None}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "PATCH", url)
    updated = response.get_json()
    assert (updated["fee"], updated["subsidy_eligible"], updated["level"]) == (0, False, None)
    assert updated["modules"] == created["modules"] and updated["title"] == created["title"]
    listed = client.get("/api/v1/programmes", headers=headers)
    assert_documented(listed, "GET", "/api/v1/programmes")
    assert created["id"] in {item["id"] for item in listed.get_json()["items"]}


PROGRAMME_ERRORS = [
    (without(PROGRAMME, "title", "total_hours", "district"), {"title", "total_hours", "district"}, "此项为必填项。"),
    ({**PROGRAMME, "total_hours": "120"}, {"total_hours"}, "应为整数。"),
    ({**PROGRAMME, "subsidy_eligible": "yes"}, {"subsidy_eligible"}, "应为 true 或 false。"),
    ({**PROGRAMME, "level": 4}, {"level"}, "应为字符串或 null。"),
    ({**PROGRAMME, "modules": {"name": "x", "hours": 1}}, {"modules"}, "应为数组。"),
    ({**PROGRAMME, "modules": ["照料"]}, {"modules[0]"}, "应为对象。"),
    ({**PROGRAMME, "modules": [{"name": "照料"}]}, {"modules[0].hours"}, "此项为必填项。"),
    ({**PROGRAMME, "modules": [{"name": "照料", "hours": "8"}]}, {"modules[0].hours"}, "应为整数。"),
    ({**PROGRAMME, "modules": [{"name": "照料", "hours": 8, "teacher": "王"}]}, {"modules[0].teacher"}, None),
    ({**PROGRAMME, "modules": [{"name": "照料", "hours": 0}]}, {"modules[0].hours"}, None),
    ({**PROGRAMME, "total_hours": 10}, {"total_hours"}, None),  # less than the modules' sum
    ({**PROGRAMME, "certificate_kind": "diploma"}, {"certificate_kind"}, "请选择列表中的选项。"),
    ({**PROGRAMME, "certificate_name": ""}, {"certificate_name"}, "请填写证书名称。"),
    ({**PROGRAMME, "schedule": "周" * 201}, {"schedule"}, None),
    ({**PROGRAMME, "organisation_id": 1}, {"organisation_id"}, None),
]


@pytest.mark.parametrize("body, fields, message", PROGRAMME_ERRORS)
def test_bad_programme_input_is_422_and_writes_nothing(client, world, body, fields, message):
    before = snapshot()
    response = client.post("/api/v1/programmes", json=body, headers=bearer(world["trainer_token"]))
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == fields
    if message:
        assert set(error["fields"].values()) == {message}
    assert_documented(response, "POST", "/api/v1/programmes")
    assert snapshot() == before


def test_bad_programme_patch_changes_nothing(client, world):
    programme = world["programme"]
    before = (programme.title, programme.total_hours, programme.updated_at, snapshot())
    url = f"/api/v1/programmes/{programme.id}"
    for patch in ({"total_hours": 1}, {"title": ""}, {"modules": [{"name": "x", "hours": 1.5}]}, {"skills": ["新", "技" * 51]}):
        response = client.patch(url, json=patch, headers=bearer(world["trainer_token"]))
        assert_error(response, 422, "validation_error")
    db.session.expire_all()
    assert (programme.title, programme.total_hours, programme.updated_at, snapshot()) == before


# --------------------------------------------------------------------------- matches


@pytest.fixture
def market(make, world):
    """Published programmes of two institutions and open demands of two enterprises."""
    other = make.org("institution")
    make.programme(other, title="养老护理员培训", description="失能老人生活照料", modules=[{"name": "生活照料", "hours": 20}],
                   outcomes=["完成翻身与进食照料"], certificate_name="养老护理员（四级）", total_hours=20)
    make.programme(other, title="中式烹调师实训", description="酒店后厨热菜", modules=[{"name": "刀工", "hours": 20}],
                   outcomes=["出品热菜"], certificate_name="中式烹调师（四级）", total_hours=20)
    make.demand(make.org("enterprise"), status="open", title="新能源汽车高压检修工")
    return world


def test_demand_matches_are_ranked_and_explained(client, market):
    url = f"/api/v1/demands/{market['demand'].id}/matches?k=2"
    response = client.get(url, headers=bearer(market["hr_token"]))
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "GET", url)
    body = response.get_json()
    assert body["demand_id"] == market["demand"].id and body["k"] == 2
    matches = body["matches"]
    assert 1 <= len(matches) <= 2
    assert [m["rank"] for m in matches] == list(range(1, len(matches) + 1))
    assert matches[0]["programme"]["id"] == market["programme"].id  # the EV programme fits the EV demand
    assert matches[0]["programme"]["institution"]["name"] == market["institution"].name
    assert "contact_phone" not in str(matches)  # contact details only after an accepted request
    assert matches[0]["covered"] or matches[0]["gaps"]
    # Ranked by probability; within one demand's list that is also the ranker's order.
    assert all(m["probability"] >= n["probability"] for m, n in itertools.pairwise(matches))
    assert all(m["score"] >= n["score"] for m, n in itertools.pairwise(matches))


def test_programme_matches_list_open_demands(client, market):
    url = f"/api/v1/programmes/{market['programme'].id}/matches"
    response = client.get(url, headers=bearer(market["trainer_token"]))
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "GET", url)
    body = response.get_json()
    assert body["k"] == 10
    titles = [m["demand"]["title"] for m in body["matches"]]
    assert "新能源汽车维修技师" in titles
    assert "对手的需求" not in titles  # a draft is not open


def test_a_draft_programme_has_no_matches(client, world):
    url = f"/api/v1/programmes/{world['rival_programme'].id}/matches"
    response = client.get(url, headers=bearer(world["rival_trainer_token"]))
    assert response.status_code == 200 and response.get_json()["matches"] == []


@pytest.mark.parametrize("k", ["0", "51", "-1", "ten", "x", "1e3", "1.5", "", " 5", "５"])
@pytest.mark.parametrize("side", ["demands", "programmes"])
def test_k_out_of_range_is_422_with_the_range(client, world, k, side):
    posting, secret = (world["demand"], world["hr_token"]) if side == "demands" else (
        world["programme"], world["trainer_token"])
    url = f"/api/v1/{side}/{posting.id}/matches?k={k}"
    response = client.get(url, headers=bearer(secret))
    error = assert_error(response, 422, "validation_error")
    assert set(error["fields"]) == {"k"}
    assert error["fields"]["k"] == "请输入 1 到 50 之间的整数。"
    assert_documented(response, "GET", url)
    english = client.get(url, headers=bearer(secret, **{"Accept-Language": "en"})).get_json()["error"]
    assert "1" in english["fields"]["k"] and "50" in english["fields"]["k"]


@pytest.mark.parametrize("k", ["1", "50"])
def test_k_at_the_bounds_is_accepted(client, market, k):
    url = f"/api/v1/demands/{market['demand'].id}/matches?k={k}"
    response = client.get(url, headers=bearer(market["hr_token"]))
    assert response.status_code == 200
    assert_documented(response, "GET", url)
    body = response.get_json()
    assert body["k"] == int(k) and len(body["matches"]) <= int(k)


# --------------------------------------------------------------------------- probabilities and levels


def _levels_agree(body: dict) -> None:
    tau, bounds = body["min_probability"], body["level_thresholds"]
    assert bounds["partial"] == tau and bounds["high"] > bounds["good"] > tau
    for match in body["matches"]:
        p, level = match["probability"], match["level"]
        assert isinstance(p, float) and 0.0 <= p <= 1.0 and round(p, 4) == p
        assert (level is None) == (p < tau), match
        if level is not None:
            expected = next(name for name in ("high", "good", "partial") if p >= bounds[name])
            assert level == expected, (p, level, bounds)


@pytest.fixture
def crowd(make, market):
    """Enough unrelated programmes and demands that some candidates fall below tau."""
    other = make.org("institution")
    for title, module in [("西式面点师培训", "面包烘焙"), ("插花艺术入门", "花材养护"),
                          ("茶艺师培训", "冲泡技艺"), ("网络直播带货", "直播脚本")]:
        make.programme(other, title=title, description=f"{module}课程", modules=[{"name": module, "hours": 20}],
                       outcomes=[f"掌握{module}"], certificate_name=f"{title}证书", total_hours=20)
    enterprise = make.org("enterprise")
    for title in ("酒店面点师", "花店店员", "茶馆服务员"):
        make.demand(enterprise, status="open", title=title, occupation=title, description="",
                    duties=[f"{title}日常工作"], requirements=[])
    return market


def test_matches_carry_probability_level_and_tau(client, crowd):
    from chanjiao import matchmaking

    for url, secret in ((f"/api/v1/demands/{crowd['demand'].id}/matches?k=50", crowd["hr_token"]),
                        (f"/api/v1/programmes/{crowd['programme'].id}/matches?k=50", crowd["trainer_token"])):
        response = client.get(url, headers=bearer(secret))
        assert response.status_code == 200, response.get_json()
        assert_documented(response, "GET", url)
        body = response.get_json()
        assert body["min_probability"] == matchmaking.min_probability()
        assert body["level_thresholds"] == matchmaking.level_thresholds()
        _levels_agree(body)
        assert all("conditions" in m and isinstance(m["conditions"], list) for m in body["matches"])
        assert all(r["status"] in ("covered", "partial", "uncovered")
                   for m in body["matches"] for r in m["covered"] + m["gaps"])
    # The EV demand's list reaches unrelated programmes below tau: returned, with no level.
    body = client.get(f"/api/v1/demands/{crowd['demand'].id}/matches?k=50", headers=bearer(crowd["hr_token"])).get_json()
    assert body["matches"][0]["level"] is not None
    assert any(m["level"] is None for m in body["matches"])
    assert [m["level"] is None for m in body["matches"]] == sorted(m["level"] is None for m in body["matches"])


def test_a_pair_has_the_same_probability_from_both_sides(client, crowd):
    demand_side = client.get(f"/api/v1/demands/{crowd['demand'].id}/matches?k=50",
                             headers=bearer(crowd["hr_token"])).get_json()["matches"]
    programme_side = client.get(f"/api/v1/programmes/{crowd['programme'].id}/matches?k=50",
                                headers=bearer(crowd["trainer_token"])).get_json()["matches"]
    from_demand = next(m for m in demand_side if m["programme"]["id"] == crowd["programme"].id)
    from_programme = next(m for m in programme_side if m["demand"]["id"] == crowd["demand"].id)
    for name in ("probability", "level", "score"):
        assert from_demand[name] == from_programme[name]


def test_conditions_are_listed_and_not_counted_as_gaps(client, market, make):
    demand = make.demand(market["enterprise"], status="open", title="新能源汽车维修技师",
                         requirements=["持有低压电工作业证", "年龄 45 周岁以下", "3 年以上汽修工作经验"])
    url = f"/api/v1/demands/{demand.id}/matches?k=3"
    response = client.get(url, headers=bearer(market["hr_token"]))
    assert response.status_code == 200
    assert_documented(response, "GET", url)
    match = response.get_json()["matches"][0]
    requirement_texts = {r["text"] for r in match["covered"] + match["gaps"]}
    assert match["conditions"], match
    assert not set(match["conditions"]) & requirement_texts


# --------------------------------------------------------------------------- sparse postings


def test_title_only_demand_and_programme_are_created_published_and_matched(client, market, app):
    from chanjiao.postings import services

    headers_hr, headers_trainer = bearer(market["hr_token"]), bearer(market["trainer_token"])
    response = client.post("/api/v1/demands", json={"title": "养老护理员", "district": "常营地区", "skill_level": "L4"},
                           headers=headers_hr)
    assert response.status_code == 201, response.get_json()
    demand = response.get_json()
    assert (demand["duties"], demand["requirements"], demand["skills"]) == ([], [], [])
    response = client.post("/api/v1/programmes", json={"title": "养老护理员培训", "district": "双井街道", "total_hours": 40},
                           headers=headers_trainer)
    assert response.status_code == 201, response.get_json()
    programme = response.get_json()
    # The API has no publish endpoint: publish as the site's buttons do.
    services.publish_demand(market["hr"], demand["id"])
    services.publish_programme(market["trainer"], programme["id"])
    db.session.commit()

    url = f"/api/v1/demands/{demand['id']}/matches"
    response = client.get(url, headers=headers_hr)
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "GET", url)
    body = response.get_json()
    _levels_agree(body)
    assert body["matches"], body
    assert all(m["coverage"] is None and m["covered"] == [] and m["gaps"] == [] for m in body["matches"])
    assert programme["id"] in {m["programme"]["id"] for m in body["matches"]}

    url = f"/api/v1/programmes/{programme['id']}/matches"
    response = client.get(url, headers=headers_trainer)
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "GET", url)
    _levels_agree(response.get_json())
    assert demand["id"] in {m["demand"]["id"] for m in response.get_json()["matches"]}


BLANK_DEMAND = {
    "title": "养老护理员", "district": "常营地区", "skill_level": "L4", "occupation": "   ", "description": " \n\t ",
    "duties": ["", "  ", "\u3000"], "requirements": [" "], "skills": ["  ", ""], "location": "  ",
}
BLANK_PROGRAMME = {
    "title": "养老护理员培训", "district": "双井街道", "total_hours": 40, "description": "   ", "outcomes": ["", " "],
    "skills": [" "], "location": " ", "schedule": "\t", "certificate_kind": "none", "certificate_name": "  ",
}


def test_blank_optional_fields_are_accepted_as_empty_and_matched(client, market):
    from chanjiao.postings import services

    response = client.post("/api/v1/demands", json=BLANK_DEMAND, headers=bearer(market["hr_token"]))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert (created["occupation"], created["description"], created["duties"], created["requirements"],
            created["skills"], created["location"]) == ("", "", [], [], [], "")
    response = client.post("/api/v1/programmes", json=BLANK_PROGRAMME, headers=bearer(market["trainer_token"]))
    assert response.status_code == 201, response.get_json()
    programme = response.get_json()
    assert (programme["description"], programme["outcomes"], programme["skills"]) == ("", [], [])
    services.publish_demand(market["hr"], created["id"])
    services.publish_programme(market["trainer"], programme["id"])
    db.session.commit()
    for url, secret in ((f"/api/v1/demands/{created['id']}/matches", market["hr_token"]),
                        (f"/api/v1/programmes/{programme['id']}/matches", market["trainer_token"])):
        response = client.get(url, headers=bearer(secret))
        assert response.status_code == 200, response.get_json()
        assert_documented(response, "GET", url)
    # Blanking every optional field of a published demand by a patch is accepted and matched too.
    url = f"/api/v1/demands/{market['demand'].id}"
    patch = {name: BLANK_DEMAND[name] for name in ("occupation", "description", "duties", "requirements", "skills")}
    response = client.patch(url, json=patch, headers=bearer(market["hr_token"]))
    assert response.status_code == 200, response.get_json()
    response = client.get(url + "/matches", headers=bearer(market["hr_token"]))
    assert response.status_code == 200 and all(m["coverage"] is None for m in response.get_json()["matches"])


@pytest.mark.parametrize("title", ["", " ", "\u3000\t\n"])
@pytest.mark.parametrize("side", ["demands", "programmes"])
def test_blank_titles_are_422_on_create_and_patch(client, world, title, side):
    body, posting, secret = (
        (BLANK_DEMAND, world["demand"], world["hr_token"]) if side == "demands"
        else (BLANK_PROGRAMME, world["programme"], world["trainer_token"])
    )
    before = snapshot()
    response = client.post(f"/api/v1/{side}", json={**body, "title": title}, headers=bearer(secret))
    error = assert_error(response, 422, "validation_error")
    assert error["fields"] == {"title": "此项为必填项。"}
    assert_documented(response, "POST", f"/api/v1/{side}")
    url = f"/api/v1/{side}/{posting.id}"
    response = client.patch(url, json={"title": title}, headers=bearer(secret))
    error = assert_error(response, 422, "validation_error")
    assert error["fields"] == {"title": "此项为必填项。"}
    assert_documented(response, "PATCH", url)
    assert snapshot() == before


@pytest.mark.parametrize(
    "patch, field, message",
    [
        ({"modules": [{"name": "  ", "hours": 8}]}, "modules", "第 1 个模块名称为空或过长。"),
        ({"certificate_kind": "skill_level", "certificate_name": " \t"}, "certificate_name", "请填写证书名称。"),
    ],
)
def test_blank_parts_that_a_programme_needs_are_a_clear_422(client, world, patch, field, message):
    # A module needs its name, and a certificate its name: blank ones are refused, not dropped.
    url = f"/api/v1/programmes/{world['programme'].id}"
    response = client.patch(url, json=patch, headers=bearer(world["trainer_token"]))
    error = assert_error(response, 422, "validation_error")
    assert error["fields"] == {field: message}
    assert_documented(response, "PATCH", url)


@pytest.mark.parametrize(
    "title", ["！！！", "x", "Welder", "123", "护", "🙂", "<b>焊工</b>"],
)
def test_odd_titles_still_match(client, market, title):
    from chanjiao.postings import services

    response = client.post("/api/v1/demands", json={"title": title, "district": "常营地区", "skill_level": "L4"},
                           headers=bearer(market["hr_token"]))
    assert response.status_code == 201, response.get_json()
    services.publish_demand(market["hr"], response.get_json()["id"])
    db.session.commit()
    url = f"/api/v1/demands/{response.get_json()['id']}/matches"
    response = client.get(url, headers=bearer(market["hr_token"]))
    assert response.status_code == 200, response.get_json()
    assert_documented(response, "GET", url)
    _levels_agree(response.get_json())


# --------------------------------------------------------------------------- errors


def test_unknown_paths_and_methods_answer_json(client, world):
    headers = bearer(world["hr_token"])
    for url in ("/api/v1/nothing", "/api/v1", "/api/v1/", "/api/v1/demands/abc", "/api/v1/demands/1/matches/x"):
        assert_error(client.get(url, headers=headers), 404, "not_found")
    response = client.delete(f"/api/v1/demands/{world['demand'].id}", headers=headers)
    assert_error(response, 405, "method_not_allowed")
    assert "PATCH" in response.headers["Allow"]
    response = client.put("/api/v1/demands", json={"title": "x"}, headers=headers)
    assert_error(response, 405, "method_not_allowed")
    # Outside the API the HTML pages stay.
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_server_errors_answer_json(app, client, world, monkeypatch):
    from chanjiao.postings import services

    def boom(actor):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "list_own_demands", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/api/v1/demands", headers=bearer(world["hr_token"]))
    error = assert_error(response, 500, "internal_error")
    assert "boom" not in error["message"]
    assert_documented(response, "GET", "/api/v1/demands")


def test_messages_are_chinese_by_default_and_english_on_request(client, world):
    url = f"/api/v1/demands/{world['demand'].id}"
    chinese = client.delete(url, headers=bearer(world["hr_token"]))
    assert chinese.get_json()["error"]["message"] == "该地址不支持此请求方式。"
    english = client.delete(url, headers=bearer(world["hr_token"], **{"Accept-Language": "en-GB,en;q=0.9"}))
    message = english.get_json()["error"]["message"]
    assert message.isascii() and message


def test_the_site_language_cookie_does_not_change_api_messages(client, world):
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    response = client.delete(f"/api/v1/demands/{world['demand'].id}")
    assert response.get_json()["error"]["message"] == "该地址不支持此请求方式。"


def test_openapi_document_needs_no_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"].startswith("3.1")


def test_openapi_documents_probability_level_and_tau(client):
    served = client.get("/api/v1/openapi.json").get_json()
    schemas = served["components"]["schemas"]
    for name, partner in (("ProgrammeMatch", "programme"), ("DemandMatch", "demand")):
        match = schemas[name]
        assert {"probability", "level", "score", "coverage", "conditions", partner} <= set(match["required"])
        props = match["properties"]
        assert (props["probability"]["minimum"], props["probability"]["maximum"]) == (0, 1)
        assert "calibrated probability" in props["probability"]["description"].lower()
        assert "both sides" in props["probability"]["description"]
        assert props["level"]["enum"] == ["high", "good", "partial", None]
        assert "min_probability" in props["level"]["description"]
        assert "only within one" in props["score"]["description"]
        assert props["coverage"]["type"] == ["number", "null"]
        assert "training" in props["conditions"]["description"]
    for name in ("ProgrammeMatches", "DemandMatches"):
        answer = schemas[name]
        assert {"min_probability", "level_thresholds", "matches"} <= set(answer["required"])
        assert "below `min_probability`" in answer["description"]
    operation = served["paths"]["/demands/{demand_id}/matches"]["get"]
    assert "level` null" in operation["description"]
    assert "1 to 50" in served["components"]["parameters"]["k"]["description"]
    assert schemas["Requirement"]["properties"]["status"]["enum"] == ["covered", "partial", "uncovered"]
