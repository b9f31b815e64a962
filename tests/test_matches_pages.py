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
    # A calibrated level and probability, never a strength relative to the list's best.
    [match] = services.demand_matches(world["hr"], world["demand"].id).matches
    assert match.level in ("high", "good", "partial")
    assert str(labels.LEVEL_LABELS[match.level]) in html
    assert f"匹配概率 {labels.probability_percent(match.probability)}%" in html
    assert "/ 100" not in html and "<meter" not in html and "相对匹配度" not in html
    # The other institution's cooking course is below the threshold: not listed as a match.
    assert "中式烹调师实训" not in html and "暂时没有合适的培训项目" not in html
    assert 'name="csrf_token"' in html and "申请对接" in html
    assert "有合适的新项目时通知我" not in html  # offered only in the empty state


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
    offer = BundleOffer([first, second], ["动力电池故障诊断"], ["持有低压电工作业证", "两年以上经验"], 1.0,
                        {first.id: ["动力电池故障诊断"], second.id: ["高压系统安全操作"]})
    rec = _recommendation(world["demand"], first, conditions=["两年以上经验"])
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: [rec])
    monkeypatch.setattr("chanjiao.matchmaking.recommend_bundles", lambda demand, n=3: [offer])
    login(world["hr"])
    html = client.get(f"/my/demands/{world['demand'].id}/matches").get_data(as_text=True)
    assert "组合方案" in html and "仍未覆盖" in html and "持有低压电工作业证" in html
    assert "高压系统安全操作" in html
    bundles = html[html.index("组合方案"):]
    missing = bundles[bundles.index("仍未覆盖"):]
    missing = missing[:missing.index("</p>")]
    assert "两年以上经验" not in missing  # a condition is never a gap of a bundle


def _recommendation(demand, programme, **overrides) -> Recommendation:
    values = dict(
        demand=demand, programme=programme, score=2.0, rank=1,
        covered=[Requirement("<b>动力电池</b>", "duty", "<i>动力电池检测</i>", "module", 0.91, True, "covered")],
        gaps=[
            Requirement("高压系统安全操作", "duty", "高压安全与防护", "module", 0.62, False, "partial"),
            Requirement("持有低压电工作业证", "requirement", "无关的烹饪模块", "module", 0.1, False, "uncovered"),
        ],
        contributions=[("req_coverage", 0.8), ("bm25_all_rel", 0.3), ("a_future_feature", 1.09)],
        notes=["level_mismatch", "mode_mismatch", "level_below_role", "standing:good", "standing:B"],
        probability=0.834, level="high", conditions=["两年以上工作经验", "能适应夜班"],
    )
    values.update(overrides)
    return Recommendation(**values)


def test_explanations_render_levels_statuses_conditions_and_escape_user_text(app, client, login, world, monkeypatch):
    demand, programme = world["demand"], world["programme"]
    programme.title = "<script>alert(1)</script>项目"
    db.session.commit()
    rec = _recommendation(demand, programme)
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: [rec])
    login(world["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<b>动力电池" not in html and "&lt;b&gt;动力电池" in html
    assert "高度匹配" in html and "匹配概率 83%" in html and "/ 100" not in html
    assert "覆盖 1/3 项要求" in html and "另有 1 项部分覆盖" in html
    # Evidence for covered and partly covered requirements only.
    assert "依据（课程模块）：&lt;i&gt;动力电池检测&lt;/i&gt;" in html
    assert "依据（课程模块）：高压安全与防护" in html
    assert "无关的烹饪模块" not in html
    covered, partial = html.index("已覆盖的要求"), html.index("部分覆盖的要求")
    uncovered, conditions = html.index("未覆盖的要求"), html.index("非培训条件")
    assert covered < partial < uncovered
    gaps_section = html[uncovered:html.index("</ul>", uncovered)]
    assert "持有低压电工作业证" in gaps_section and "两年以上工作经验" not in gaps_section
    assert "两年以上工作经验" in html[conditions:] and "能适应夜班" in html[conditions:]
    assert "以下要求无法通过培训满足，未计入培训缺口" in html
    assert "岗位职责" in html and "任职要求" in html
    assert "技能等级与需求相差两级以上" in html and "培训方式与需求不一致" in html
    assert "该岗位属专业技术岗位" in html and "培训机构评级：B" in html
    # No raw similarities or ranker weights for organisations.
    assert "技术细节" not in html and "0.91" not in html and "+1.09" not in html
    assert str(labels.FEATURE_LABELS["req_coverage"]) not in html


def test_staff_see_the_technical_details_fold(client, login, world, monkeypatch):
    rec = _recommendation(world["demand"], world["programme"])
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: [rec])
    login(world["staff"])
    page = client.get(f"/staff/matches/demands/{world['demand'].id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "高度匹配" in html and "匹配概率 83%" in html
    fold = html[html.index("<details class=\"technical-details\">"):]
    fold = fold[:fold.index("</details>")]
    assert "技术细节" in fold and "0.834" in fold and "相似度 0.91" in fold
    assert str(labels.FEATURE_LABELS["req_coverage"]) in fold and "+1.09" in fold
    assert str(labels.GENERIC_FEATURE) in fold
    assert 'action="/interests/new"' not in html  # staff read, they do not ask for contact


def test_staff_see_an_institutions_opportunities_with_the_details(client, login, world):
    login(world["staff"])
    html = client.get(f"/staff/matches/programmes/{world['programme'].id}").get_data(as_text=True)
    assert "新能源汽车维修技师" in html and "技术细节" in html and "匹配概率" in html
    assert 'action="/interests/new"' not in html


@pytest.mark.parametrize("url", ["/staff/matches/demands/{demand}", "/staff/matches/programmes/{programme}"])
def test_staff_pages_are_for_staff_only(client, login, world, url):
    url = url.format(demand=world["demand"].id, programme=world["programme"].id)
    assert client.get(url).status_code == 302  # to the login page
    login(world["hr"])
    assert client.get(url).status_code == 403
    client.post("/logout")
    login(world["staff"])
    assert client.get(url.replace(str(world["demand"].id), "999999").replace(
        str(world["programme"].id), "999999")).status_code == 404


def test_the_same_level_on_the_demand_and_the_programme_page(client, login, world):
    login(world["hr"])
    html = client.get(f"/my/demands/{world['demand'].id}/matches").get_data(as_text=True)
    [match] = services.demand_matches(world["hr"], world["demand"].id).matches
    badge = f"匹配概率 {match.percent}%"
    assert badge in html
    client.post("/logout")
    login(world["trainer"])
    html = client.get(f"/my/programmes/{world['programme'].id}/opportunities").get_data(as_text=True)
    assert badge in html and str(labels.LEVEL_LABELS[match.level]) in html


def test_only_offered_matches_are_listed_in_the_given_order(client, login, world, make, monkeypatch):
    demand = world["demand"]
    programmes = [make.programme(world["institution"], title=f"项目{i}号") for i in range(4)]
    recs = [
        _recommendation(demand, programmes[0], probability=0.91, level="high", rank=1),
        _recommendation(demand, programmes[1], probability=0.7, level="good", rank=2),
        _recommendation(demand, programmes[2], probability=0.55, level="partial", rank=3),
        _recommendation(demand, programmes[3], probability=0.2, level=None, rank=4),
    ]
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: recs)
    monkeypatch.setattr("chanjiao.matchmaking.recommend_bundles", lambda d, n=3: [])
    login(world["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    positions = [html.index(f"项目{i}号") for i in range(3)]
    assert positions == sorted(positions)
    assert "项目3号" not in html and "相关度较低，仅供参考" not in html
    assert html.index("高度匹配") < html.index("较匹配") < html.index("部分匹配")
    assert "匹配概率 91%" in html and "匹配概率 70%" in html and "匹配概率 55%" in html


def test_empty_state_shows_at_most_three_nearest_without_a_level(client, login, world, make, monkeypatch):
    demand = world["demand"]
    programmes = [make.programme(world["institution"], title=f"相近项目{i}号") for i in range(5)]
    recs = [_recommendation(demand, p, probability=0.3 - i / 100, level=None, rank=i + 1)
            for i, p in enumerate(programmes)]
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: recs)
    bundles_asked = []
    monkeypatch.setattr("chanjiao.matchmaking.recommend_bundles", lambda d, n=3: bundles_asked.append(d) or [])
    login(world["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert "暂时没有合适的培训项目" in html and "相关度较低，仅供参考" in html
    assert [f"相近项目{i}号" in html for i in range(5)] == [True, True, True, False, False]
    for name in labels.LEVEL_LABELS.values():
        assert str(name) not in html
    assert "匹配概率" not in html and 'class="match-list' not in html
    nearest = html[html.index("相关度较低，仅供参考"):]
    assert "button-secondary" in nearest[:nearest.index("申请对接") + 200]
    assert "有合适的新项目时通知我" in html
    assert "组合方案" not in html and bundles_asked == []


def test_institution_empty_state_and_its_alert_button(client, login, world, monkeypatch):
    programme = world["programme"]
    rec = _recommendation(world["other_demand"], programme, probability=0.12, level=None)
    monkeypatch.setattr("chanjiao.matchmaking.recommend_demands", lambda p, k=10: [rec])
    login(world["trainer"])
    html = client.get(f"/my/programmes/{programme.id}/opportunities").get_data(as_text=True)
    assert "暂时没有合适的需求" in html and "相关度较低，仅供参考" in html and "其他企业岗位" in html
    assert "匹配概率" not in html and "有合适的新需求时通知我" in html
    nearest = html[html.index("相关度较低，仅供参考"):]
    assert "button-secondary" in nearest[:nearest.index("推荐本项目") + 200]


def test_title_only_postings_render_without_a_coverage_count(client, login, make, world):
    bare_demand = make.demand(world["enterprise"], title="仓库管理员", occupation="", description="",
                              duties=[], requirements=[], skill_level=None, district="")
    bare_programme = make.programme(world["institution"], title="仓储管理实务", description="", modules=[],
                                    outcomes=[], level=None, certificate_kind="none", certificate_name="",
                                    total_hours=0, district="", fee=0)
    login(world["hr"])
    for demand in (bare_demand, world["demand"]):
        page = client.get(f"/my/demands/{demand.id}/matches")
        assert page.status_code == 200
        assert "覆盖 0/0" not in page.get_data(as_text=True)
    client.post("/logout")
    login(world["trainer"])
    page = client.get(f"/my/programmes/{bare_programme.id}/opportunities")
    assert page.status_code == 200 and "覆盖 0/0" not in page.get_data(as_text=True)
    client.post("/logout")
    login(world["staff"])
    for url in (f"/staff/matches/demands/{bare_demand.id}", f"/staff/matches/programmes/{bare_programme.id}"):
        assert client.get(url).status_code == 200
    for url in (f"/demands/{bare_demand.id}", f"/programmes/{bare_programme.id}"):
        assert client.get(url).status_code == 200


def test_a_title_only_demand_match_has_no_coverage_count(client, login, world, monkeypatch):
    rec = _recommendation(world["demand"], world["programme"], covered=[], gaps=[], conditions=[])
    monkeypatch.setattr("chanjiao.matchmaking.recommend_programmes", lambda d, k=10: [rec])
    login(world["hr"])
    html = client.get(f"/my/demands/{world['demand'].id}/matches").get_data(as_text=True)
    assert "高度匹配" in html and "覆盖 0/0" not in html and "项要求" not in html
    assert "该需求没有列出岗位职责、任职要求或技能" in html


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


def test_probability_percent_is_rounded_down_and_never_certain():
    assert labels.probability_percent(0.834) == 83
    assert labels.probability_percent(0.7999) == 79  # below the 80% bound: never shown as 80%
    assert labels.probability_percent(0.8) == 80 and labels.probability_percent(0.29) == 29
    assert labels.probability_percent(1.0) == 99 and labels.probability_percent(0.0) == 1
    assert labels.level_label(None) == "" and labels.level_label("good") == "较匹配"
    assert not hasattr(services, "_strength")
