"""Enterprise recommendations and institution opportunities (商机): pages, explanations and
authorisation of every matches and interests route."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.matches import labels, services
from chanjiao.matchmaking import Recommendation, Requirement
from chanjiao.models import AuditLog, Notification
from chanjiao.models.curation import InterestRequest


@pytest.fixture
def world(make):
    enterprise, institution = make.org("enterprise"), make.org("institution")
    other_enterprise, other_institution = make.org("enterprise"), make.org("institution")
    demand = make.demand(enterprise)
    draft_demand = make.demand(enterprise, status="draft", title="草稿岗位")
    programme = make.programme(institution)
    draft_programme = make.programme(institution, status="draft", title="草稿项目")
    make.programme(other_institution, title="中式烹调师实训", description="酒店后厨热菜制作",
                   modules=[{"name": "刀工", "hours": 40}], outcomes=["能出品热菜"],
                   certificate_name="中式烹调师（四级）", subsidy_eligible=False)
    other_demand = make.demand(other_enterprise, title="其他企业岗位")
    return {
        "enterprise": enterprise, "institution": institution,
        "hr": make.user(enterprise), "trainer": make.user(institution),
        "other_hr": make.user(other_enterprise), "other_trainer": make.user(other_institution),
        "staff": make.user(None, "staff"),
        "demand": demand, "draft_demand": draft_demand, "programme": programme,
        "draft_programme": draft_programme, "other_demand": other_demand,
    }


def test_enterprise_sees_explained_programmes_for_its_demand(client, login, world):
    login(world["hr"])
    page = client.get(f"/my/demands/{world['demand'].id}/matches")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "新能源汽车高压系统检修培训" in html
    assert world["institution"].name in html
    assert "覆盖" in html and "项要求" in html
    assert "汽车维修工（四级）" in html and "3800" in html and "补贴性培训" in html
    assert "相对匹配度" in html and "<meter" in html
    assert 'name="csrf_token"' in html and "申请对接" in html


def test_a_draft_demand_sees_recommendations_but_cannot_request(client, login, world):
    login(world["hr"])
    html = client.get(f"/my/demands/{world['draft_demand'].id}/matches").get_data(as_text=True)
    assert "需求发布（征集中）后才能" in html
    assert 'action="/interests/new"' not in html


def test_institution_sees_opportunities_for_a_published_programme(client, login, world):
    login(world["trainer"])
    html = client.get(f"/my/programmes/{world['programme'].id}/opportunities").get_data(as_text=True)
    assert "新能源汽车维修技师" in html and "推荐本项目" in html


def test_a_draft_programme_must_be_published_first(client, login, world):
    login(world["trainer"])
    page = client.get(f"/my/programmes/{world['draft_programme'].id}/opportunities")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "请先发布项目" in html and "action=\"/interests/new\"" not in html


def test_existing_request_replaces_the_form(client, login, world):
    services.create_interest(world["hr"], world["demand"].id, world["programme"].id)
    db.session.commit()
    login(world["hr"])
    html = client.get(f"/my/demands/{world['demand'].id}/matches").get_data(as_text=True)
    assert "待处理" in html


def test_bundles_show_when_no_programme_covers_alone(client, login, world, monkeypatch):
    from chanjiao.matchmaking import BundleOffer

    first, second = world["programme"], world["draft_programme"]
    offer = BundleOffer([first, second], ["动力电池故障诊断"], ["持有低压电工作业证"], 1.0,
                        {first.id: ["动力电池故障诊断"], second.id: ["高压系统安全操作"]})
    monkeypatch.setattr("chanjiao.matchmaking.recommend_bundles", lambda demand, n=3: [offer])
    login(world["hr"])
    html = client.get(f"/my/demands/{world['demand'].id}/matches").get_data(as_text=True)
    assert "组合方案" in html and "仍未覆盖" in html and "持有低压电工作业证" in html
    assert "高压系统安全操作" in html


def test_explanations_render_labels_notes_and_escape_user_text(app, client, login, world, monkeypatch):
    demand, programme = world["demand"], world["programme"]
    programme.title = "<script>alert(1)</script>项目"
    db.session.commit()
    rec = Recommendation(
        demand=demand, programme=programme, score=2.0, rank=1,
        covered=[Requirement("<b>动力电池</b>", "duty", "<i>动力电池检测</i>", "module", 0.91, True)],
        gaps=[Requirement("持有低压电工作业证", "requirement", None, None, 0.1, False)],
        contributions=[("req_coverage", 0.8), ("bm25_all_rel", 0.3), ("a_future_feature", 0.2)],
        notes=["level_mismatch", "mode_mismatch", "level_below_role", "standing:good", "standing:B"],
    )
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: [rec])
    login(world["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<b>动力电池" not in html and "&lt;b&gt;动力电池" in html
    assert "覆盖 1/2 项要求" in html
    assert "课程模块" in html and "岗位职责" in html and "0.91" in html
    assert str(labels.FEATURE_LABELS["req_coverage"]) in html
    assert str(labels.GENERIC_FEATURE) in html
    assert "技能等级与需求相差两级以上" in html and "培训方式与需求不一致" in html
    assert "该岗位属专业技术岗位" in html
    assert "培训机构评级：B" in html
    assert "100 / 100" in html


def test_labels_cover_every_engine_feature():
    from matching.features import FEATURES, INDICATOR_FEATURES

    assert set(FEATURES) <= set(labels.FEATURE_LABELS)
    # A raised flag comes back as an explanation note of the same name.
    assert all(labels.note_sentence(flag) for flag in INDICATOR_FEATURES)
    assert labels.note_sentence("standing:good") is None
    assert labels.note_sentence("something_new") is None


# --------------------------------------------------------------------------- authorisation


ROUTES = [
    ("GET", "/my/demands/{demand}/matches", None, "enterprise"),
    ("GET", "/my/programmes/{programme}/opportunities", None, "institution"),
    ("GET", "/interests", None, "member"),
    ("GET", "/interests/new?programme_id={programme}", None, "member"),
    ("POST", "/interests/new", "create", "member"),
    ("POST", "/interests/{request}/accept", {}, "member"),
    ("POST", "/interests/{request}/decline", {}, "member"),
    ("POST", "/interests/{request}/withdraw", {}, "member"),
]


def _snapshot():
    db.session.expire_all()
    return (
        [(r.id, r.status, r.response) for r in db.session.scalars(select(InterestRequest).order_by(InterestRequest.id))],
        db.session.scalar(select(func.count()).select_from(Notification)),
        db.session.scalar(select(func.count()).select_from(AuditLog)),
    )


def _prepare(world, method, template, data):
    request = services.create_interest(world["hr"], world["demand"].id, world["programme"].id)
    db.session.commit()
    url = template.format(demand=world["demand"].id, programme=world["programme"].id, request=request.id)
    if data == "create":
        data = {"demand_id": world["other_demand"].id, "programme_id": world["programme"].id}
    return url, data


@pytest.mark.parametrize("method, template, data, who", ROUTES, ids=[f"{m}-{t}" for m, t, _d, _w in ROUTES])
def test_anonymous_is_sent_to_login(client, world, method, template, data, who):
    url, data = _prepare(world, method, template, data)
    before = _snapshot()
    response = client.open(url, method=method, data=data)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert _snapshot() == before


@pytest.mark.parametrize("method, template, data, who", ROUTES, ids=[f"{m}-{t}" for m, t, _d, _w in ROUTES])
def test_staff_and_wrong_kind_get_403(client, login, world, method, template, data, who):
    url, data = _prepare(world, method, template, data)
    before = _snapshot()
    login(world["staff"])
    assert client.open(url, method=method, data=data).status_code == 403
    if who != "member":
        client.post("/logout")
        login(world["trainer"] if who == "enterprise" else world["hr"])
        assert client.open(url, method=method, data=data).status_code == 403
    assert _snapshot() == before


@pytest.mark.parametrize("method, template, data, who", ROUTES[:2] + ROUTES[5:],
                         ids=[f"{m}-{t}" for m, t, _d, _w in ROUTES[:2] + ROUTES[5:]])
def test_other_organisations_objects_are_404(client, login, world, method, template, data, who):
    url, data = _prepare(world, method, template, data)
    before = _snapshot()
    login(world["other_trainer"] if who == "institution" else world["other_hr"])
    assert client.open(url, method=method, data=data).status_code == 404
    assert _snapshot() == before


@pytest.mark.parametrize("url", [
    "/my/demands/999999/matches", "/my/demands/2147483648/matches", "/my/demands/99999999999999999999/matches",
])
def test_unknown_or_huge_demand_ids_are_404(client, login, world, url):
    login(world["hr"])
    assert client.get(url).status_code == 404


@pytest.mark.parametrize("url", [
    "/my/programmes/999999/opportunities", "/my/programmes/2147483648/opportunities",
    "/interests/2147483648/accept", "/interests/999999/withdraw",
])
def test_unknown_or_huge_ids_are_404(client, login, world, url):
    login(world["trainer"])
    method = "POST" if "/interests/" in url else "GET"
    assert client.open(url, method=method).status_code == 404


@pytest.mark.parametrize("url", ["/interests/new", "/interests/1/accept", "/interests/1/decline",
                                 "/interests/1/withdraw", "/inbox/read-all", "/inbox/1/read"])
def test_writes_without_csrf_token_are_refused(client, login, world, url):
    services.create_interest(world["hr"], world["demand"].id, world["programme"].id)
    db.session.commit()
    before = _snapshot()
    login(world["trainer"])
    data = {"demand_id": world["demand"].id, "programme_id": world["programme"].id}
    response = client.post(url, data=data, csrf=False)
    assert response.status_code == 400
    assert _snapshot() == before


def test_strength_is_relative_to_the_best_of_the_list():
    strengths = [services._strength(s, 3.0) for s in (3.0, 2.5, 1.0, -5.0, -50.0)]
    assert strengths[0] == 100
    assert strengths == sorted(strengths, reverse=True) and strengths[-1] == 1
