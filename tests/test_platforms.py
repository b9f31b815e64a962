"""Demonstration platforms: creation, confirmations, the lifecycle, objections, public pages."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from chanjiao.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from chanjiao.extensions import db
from chanjiao.models import AuditLog, DemoPlatform, Notification, Objection, Pairing
from chanjiao.models._common import utcnow
from chanjiao.platforms import services
from chanjiao.platforms.services import Outcomes, PlatformInput


@pytest.fixture
def world(make):
    enterprise = make.org("enterprise", name="绿能汽车服务公司")
    institution = make.org("institution", name="朝阳汽修学校")
    stranger_org = make.org("enterprise", name="无关企业")
    hr, trainer = make.user(enterprise), make.user(institution)
    member = make.user(enterprise, role="org_member")
    stranger = make.user(stranger_org)
    staff = make.user(None, role="staff", name="李遴选")
    demand, programme = make.demand(enterprise), make.programme(institution)
    accepted = Pairing(demand_id=demand.id, programme_id=programme.id, status="accepted", score=0.8)
    suggested = Pairing(demand_id=demand.id, programme_id=make.programme(institution, title="另一个项目").id,
                        status="suggested", score=0.5)
    db.session.add_all([accepted, suggested])
    db.session.commit()
    return {"enterprise": enterprise, "institution": institution, "hr": hr, "trainer": trainer,
            "member": member, "stranger": stranger, "staff": staff, "demand": demand,
            "programme": programme, "accepted": accepted, "suggested": suggested}


def form(world, **changes) -> dict:
    data = {"name": "新能源汽车维修示范平台", "description": "校企共建", "goal_trainees": "40",
            "period_start": "2026-09-01", "period_end": "2026-12-31", "notice_days": "7",
            "pairing_ids": [str(world["accepted"].id)]}
    data.update(changes)
    return data


def new_platform(world, **changes) -> DemoPlatform:
    values = {"name": "示范平台", "goal_trainees": 30, "notice_days": 7, "pairing_ids": [world["accepted"].id]}
    values.update(changes)
    platform = services.create_platform(world["staff"], PlatformInput(**values))
    db.session.commit()
    return platform


def confirm_all(world, platform) -> None:
    services.confirm_participation(world["hr"], platform.id)
    services.confirm_participation(world["trainer"], platform.id)
    db.session.commit()


def trail(platform) -> list[str]:
    return [e.action for e in services.history(platform)]


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("method,path", [
    ("get", "/staff/platforms"), ("get", "/staff/platforms/new"), ("post", "/staff/platforms/new"),
    ("get", "/staff/platforms/{id}"), ("get", "/staff/platforms/{id}/edit"),
    ("post", "/staff/platforms/{id}/notice"), ("post", "/staff/platforms/{id}/publish"),
    ("post", "/staff/platforms/{id}/complete"), ("post", "/staff/objections/1/dismiss"),
    ("get", "/org/platforms"), ("post", "/org/platforms/{id}/confirm"),
])
def test_anonymous_is_sent_to_login(client, world, method, path):
    platform = new_platform(world)
    response = getattr(client, method)(path.format(id=platform.id))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("method,path", [
    ("get", "/staff/platforms"), ("get", "/staff/platforms/new"), ("post", "/staff/platforms/new"),
    ("get", "/staff/platforms/{id}"), ("get", "/staff/platforms/{id}/edit"),
    ("post", "/staff/platforms/{id}/notice"), ("post", "/staff/platforms/{id}/publish"),
    ("post", "/staff/platforms/{id}/complete"), ("post", "/staff/objections/1/uphold"),
])
def test_organisation_users_get_403_on_staff_pages(client, login, world, method, path):
    platform = new_platform(world)
    login(world["hr"])
    assert getattr(client, method)(path.format(id=platform.id)).status_code == 403


def test_staff_get_403_on_org_pages(client, login, world):
    login(world["staff"])
    assert client.get("/org/platforms").status_code == 403


def test_only_a_participants_own_admin_confirms(client, login, world):
    platform = new_platform(world, name="甲乙共建平台")
    login(world["stranger"])
    assert client.post(f"/org/platforms/{platform.id}/confirm").status_code == 404
    assert "甲乙共建平台" not in client.get("/org/platforms").get_data(as_text=True)
    client.post("/logout")
    login(world["member"])
    assert client.post(f"/org/platforms/{platform.id}/confirm").status_code == 403
    db.session.expire_all()
    assert all(p.confirmed_at is None for p in db.session.get(DemoPlatform, platform.id).participants)
    with pytest.raises(NotFound):
        services.confirm_participation(world["stranger"], platform.id)
    with pytest.raises(PermissionDenied):
        services.confirm_participation(world["member"], platform.id)


def test_confirm_without_csrf_and_unknown_ids(client, login, world):
    platform = new_platform(world)
    login(world["hr"])
    assert client.post(f"/org/platforms/{platform.id}/confirm", csrf=False).status_code == 400
    assert client.post("/org/platforms/999/confirm").status_code == 404
    assert client.post(f"/org/platforms/{2**31}/confirm").status_code == 404
    db.session.expire_all()
    assert all(p.confirmed_at is None for p in db.session.get(DemoPlatform, platform.id).participants)


def test_services_refuse_non_staff(app, world):
    with pytest.raises(PermissionDenied):
        services.create_platform(world["hr"], PlatformInput(name="x", pairing_ids=[world["accepted"].id]))


# --------------------------------------------------------------------------- create and edit


def test_staff_create_a_platform_from_accepted_pairings(client, login, world):
    login(world["staff"])
    page = client.get("/staff/platforms/new").get_data(as_text=True)
    assert "绿能汽车服务公司" in page and "另一个项目" not in page
    response = client.post("/staff/platforms/new", data=form(world))
    assert response.status_code == 302, response.get_data(as_text=True)
    platform = db.session.scalar(select(DemoPlatform))
    assert platform.status == "draft" and platform.notice_days == 7 and platform.goal_trainees == 40
    assert {p.organisation_id for p in platform.participants} == {world["enterprise"].id, world["institution"].id}
    assert trail(platform) == ["demo_platform.create"]
    assert db.session.scalar(select(func.count(Notification.id)).where(Notification.user_id == world["hr"].id)) == 1
    html = client.get(f"/staff/platforms/{platform.id}").get_data(as_text=True)
    assert "待确认" in html and "创建" in html


@pytest.mark.parametrize("changes,message", [
    ({"name": ""}, "此项为必填项"),
    ({"notice_days": "61"}, "公示天数应为 0 到 60"),
    ({"notice_days": "-1"}, "公示天数应为 0 到 60"),
    ({"notice_days": "abc"}, "请输入整数"),
    ({"goal_trainees": "-5"}, "培训人数目标应为"),
    ({"period_start": "2026-12-31", "period_end": "2026-01-01"}, "结束日期不能早于开始日期"),
    ({"period_start": "2026-13-45"}, "请输入有效日期"),
    ({"pairing_ids": []}, "请至少选择一个已通过的对接"),
    ({"pairing_ids": ["999"]}, "所选对接不存在"),
    ({"pairing_ids": [str(2**40)]}, "所选对接不存在"),
    ({"pairing_ids": ["x"]}, "所选对接无效"),
    ({"pairing_ids": ["SUGGESTED"]}, "只能选择协会已通过的对接"),
])
def test_create_refuses_bad_input(client, login, world, changes, message):
    if changes.get("pairing_ids") == ["SUGGESTED"]:
        changes["pairing_ids"] = [str(world["suggested"].id)]
    login(world["staff"])
    response = client.post("/staff/platforms/new", data=form(world, **changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(DemoPlatform)) is None


def test_create_without_csrf_is_refused(client, login, world):
    login(world["staff"])
    assert client.post("/staff/platforms/new", data=form(world), csrf=False).status_code == 400
    assert db.session.scalar(select(DemoPlatform)) is None


def test_edit_a_draft_resets_confirmations_and_edit_after_notice_is_refused(client, login, world):
    platform = new_platform(world, notice_days=0)
    confirm_all(world, platform)
    login(world["staff"])
    response = client.post(f"/staff/platforms/{platform.id}/edit", data=form(world, name="改名后的平台"))
    assert response.status_code == 302
    db.session.expire_all()
    platform = db.session.get(DemoPlatform, platform.id)
    assert platform.name == "改名后的平台"
    assert all(p.confirmed_at is None for p in platform.participants)
    assert trail(platform)[-1] == "demo_platform.update"
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    db.session.commit()
    response = client.get(f"/staff/platforms/{platform.id}/edit", follow_redirects=True)
    assert "进入公示后不能再修改" in response.get_data(as_text=True)
    response = client.post(f"/staff/platforms/{platform.id}/edit", data=form(world, name="再改"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(DemoPlatform, platform.id).name == "改名后的平台"
    with pytest.raises(InvalidTransition):
        services.update_platform(world["staff"], platform.id, PlatformInput(name="再改", pairing_ids=[world["accepted"].id]))


def test_unknown_platform_ids_are_404(client, login, world):
    login(world["staff"])
    for path in ("/staff/platforms/999", f"/staff/platforms/{2**31}", "/staff/platforms/999/edit"):
        assert client.get(path).status_code == 404
    assert client.post("/staff/platforms/999/notice").status_code == 404
    assert client.post("/staff/objections/999/dismiss", data={"reason": "x"}).status_code == 404


# --------------------------------------------------------------------------- lifecycle


def test_full_lifecycle_through_the_pages(client, login, world):
    platform = new_platform(world, notice_days=0)
    login(world["staff"])
    # Not every participant has confirmed yet.
    response = client.post(f"/staff/platforms/{platform.id}/notice")
    assert response.status_code == 400 and "所有参与机构确认参与后才能开始公示" in response.get_data(as_text=True)
    client.post("/logout")
    login(world["hr"])
    html = client.get("/org/platforms").get_data(as_text=True)
    assert "示范平台" in html and "确认参与" in html
    assert client.post(f"/org/platforms/{platform.id}/confirm").status_code == 302
    client.post("/logout")
    login(world["trainer"])
    assert client.post(f"/org/platforms/{platform.id}/confirm").status_code == 302
    assert client.post(f"/org/platforms/{platform.id}/confirm", follow_redirects=True).status_code == 200
    client.post("/logout")
    login(world["staff"])
    # Out of order: publish and complete before notice.
    assert client.post(f"/staff/platforms/{platform.id}/publish").status_code == 400
    assert client.post(f"/staff/platforms/{platform.id}/complete",
                       data={"enrolled": "1", "certified": "1", "hired": "1"}).status_code == 400
    assert client.post(f"/staff/platforms/{platform.id}/notice", data={"reason": "材料齐全"}).status_code == 302
    assert client.post(f"/staff/platforms/{platform.id}/publish").status_code == 302
    response = client.post(f"/staff/platforms/{platform.id}/complete",
                           data={"enrolled": "30", "certified": "40", "hired": "10"})
    assert response.status_code == 400 and "取证人数不能多于参训人数" in response.get_data(as_text=True)
    response = client.post(f"/staff/platforms/{platform.id}/complete",
                           data={"enrolled": "30", "certified": "-1", "hired": "10"})
    assert response.status_code == 400 and "人数应为不小于 0 的整数" in response.get_data(as_text=True)
    response = client.post(f"/staff/platforms/{platform.id}/complete",
                           data={"enrolled": "30", "certified": "20", "hired": "31"})
    assert response.status_code == 400 and "就业人数不能多于参训人数" in response.get_data(as_text=True)
    response = client.post(f"/staff/platforms/{platform.id}/complete",
                           data={"enrolled": "30", "certified": "25", "hired": "20"})
    assert response.status_code == 302
    db.session.expire_all()
    platform = db.session.get(DemoPlatform, platform.id)
    assert (platform.status, platform.trainees_enrolled, platform.trainees_certified, platform.trainees_hired) == (
        "completed", 30, 25, 20)
    assert trail(platform) == ["demo_platform.create", "demo_platform.confirm", "demo_platform.confirm",
                               "demo_platform.notice", "demo_platform.publish", "demo_platform.complete"]
    notice = db.session.scalar(select(AuditLog).where(AuditLog.action == "demo_platform.notice"))
    assert notice.actor_id == world["staff"].id and notice.reason == "材料齐全"
    html = client.get(f"/staff/platforms/{platform.id}").get_data(as_text=True)
    assert "操作记录" in html and "材料齐全" in html and "结束公示并发布" in html


def test_notice_sets_the_period_and_publish_waits_for_it(app, world):
    platform = new_platform(world, notice_days=7)
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    db.session.commit()
    assert platform.notice_ends_at - platform.notice_started_at == timedelta(days=7)
    with pytest.raises(InvalidTransition, match="公示期尚未结束"):
        services.publish(world["staff"], platform.id)
    platform.notice_ends_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    services.publish(world["staff"], platform.id)
    assert platform.status == "published" and platform.published_at is not None


def test_notice_refused_when_a_pairing_is_no_longer_accepted(app, world):
    platform = new_platform(world)
    confirm_all(world, platform)
    world["accepted"].status = "rejected"
    db.session.commit()
    with pytest.raises(InvalidTransition):
        services.start_notice(world["staff"], platform.id)


def test_complete_validates_outcomes(app, world):
    platform = new_platform(world, notice_days=0)
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    services.publish(world["staff"], platform.id)
    for bad in (Outcomes(-1, 0, 0), Outcomes(5, 6, 0), Outcomes(5, 0, 6), Outcomes(None, 0, 0)):
        with pytest.raises(ValidationFailed):
            services.complete(world["staff"], platform.id, bad)
    assert platform.status == "published"


# --------------------------------------------------------------------------- objections


def in_notice(world, days=7) -> DemoPlatform:
    platform = new_platform(world, notice_days=days)
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    db.session.commit()
    return platform


def test_public_objection_form_and_staff_dismissal(client, login, world):
    platform = in_notice(world)
    html = client.get("/platforms/").get_data(as_text=True)
    assert "公示中" in html and "提出异议" in html and "公示截止" in html
    response = client.post(f"/platforms/{platform.id}/objection",
                           data={"name": "王某", "contact": "13900000000", "text": "该企业并未参与此项目<b>"})
    assert response.status_code == 302
    objection = db.session.scalar(select(Objection))
    assert objection.status == "open"
    staff_notes = db.session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == world["staff"].id, Notification.kind == "platform.objection"))
    assert staff_notes == 1
    platform.notice_ends_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(InvalidTransition, match="未处理的异议"):
        services.publish(world["staff"], platform.id)
    login(world["staff"])
    html = client.get(f"/staff/platforms/{platform.id}").get_data(as_text=True)
    assert "该企业并未参与此项目&lt;b&gt;" in html
    response = client.post(f"/staff/objections/{objection.id}/dismiss", data={"reason": ""})
    assert response.status_code == 400 and "处理异议时必须填写理由" in response.get_data(as_text=True)
    assert client.post(f"/staff/objections/{objection.id}/dismiss", data={"reason": "经核实不属实"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Objection, objection.id).status == "dismissed"
    assert client.post(f"/staff/objections/{objection.id}/uphold", data={"reason": "再次"}).status_code == 400
    assert client.post(f"/staff/platforms/{platform.id}/publish").status_code == 302


def test_upheld_objection_sends_the_platform_back_to_draft(client, login, world):
    platform = in_notice(world)
    objection = services.submit_objection(platform.id, "王某", "wang@example.cn", "该平台的培训项目并未开班。")
    db.session.commit()
    login(world["staff"])
    response = client.post(f"/staff/objections/{objection.id}/uphold", data={"reason": "情况属实"})
    assert response.status_code == 302
    db.session.expire_all()
    platform = db.session.get(DemoPlatform, platform.id)
    assert platform.status == "draft" and platform.notice_ends_at is None
    assert all(p.confirmed_at is None for p in platform.participants)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "demo_platform.objection_upheld"))
    assert entry.reason == "情况属实" and entry.actor_id == world["staff"].id
    assert "退回草稿" in db.session.scalar(
        select(Notification.title).where(Notification.user_id == world["hr"].id).order_by(Notification.id.desc()))
    client.post("/logout")
    assert client.get(f"/platforms/{platform.id}").status_code == 404


@pytest.mark.parametrize("data,message", [
    ({"name": "", "contact": "x", "text": "足够长的异议内容内容"}, "此项为必填项"),
    ({"name": "王某", "contact": "x", "text": "太短"}, "异议内容应为"),
    ({"name": "王某", "contact": "x", "text": "长" * 2001}, "异议内容应为"),
    ({"name": "王" * 51, "contact": "x", "text": "足够长的异议内容内容"}, "最多 50 个字"),
])
def test_objection_validation(client, world, data, message):
    platform = in_notice(world)
    response = client.post(f"/platforms/{platform.id}/objection", data=data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db.session.scalar(select(Objection)) is None


def test_objection_csrf_rate_limit_and_outside_notice(client, world):
    platform = in_notice(world)
    data = {"name": "王某", "contact": "139 0000 0000", "text": "该平台的培训项目并未开班。"}
    assert client.post(f"/platforms/{platform.id}/objection", data=data, csrf=False).status_code == 400
    for _ in range(5):
        assert client.post(f"/platforms/{platform.id}/objection", data=data).status_code == 302
    response = client.post(f"/platforms/{platform.id}/objection", data={**data, "contact": "13900000000"})
    assert response.status_code == 400 and "每天对同一平台最多提交" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Objection.id))) == 5
    draft = new_platform(world)
    assert client.get(f"/platforms/{draft.id}/objection").status_code == 404
    assert client.post(f"/platforms/{draft.id}/objection", data=data).status_code == 404
    platform.notice_ends_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.post(f"/platforms/{platform.id}/objection", data={**data, "contact": "other"})
    assert response.status_code == 400 and "不在公示期" in response.get_data(as_text=True)
    assert client.post(f"/platforms/{2**31}/objection", data=data).status_code == 404


# --------------------------------------------------------------------------- public pages


def test_public_pages(client, world):
    draft = new_platform(world, name="草稿平台")
    assert client.get(f"/platforms/{draft.id}").status_code == 404
    assert client.get("/platforms/999").status_code == 404
    assert client.get(f"/platforms/{2**31}").status_code == 404
    assert "草稿平台" not in client.get("/platforms/").get_data(as_text=True)
    platform = new_platform(world, name="<i>发布平台</i>", notice_days=0, description="校企共建")
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    services.publish(world["staff"], platform.id)
    db.session.commit()
    html = client.get("/platforms/").get_data(as_text=True)
    assert "&lt;i&gt;发布平台&lt;/i&gt;" in html and "<i>发布平台" not in html
    html = client.get(f"/platforms/{platform.id}").get_data(as_text=True)
    assert "绿能汽车服务公司" in html and "朝阳汽修学校" in html and "校企共建" in html
    assert f"/demands/{world['demand'].id}" in html and f"/programmes/{world['programme'].id}" in html
    assert "成效" not in html
    services.complete(world["staff"], platform.id, Outcomes(30, 25, 20))
    db.session.commit()
    html = client.get(f"/platforms/{platform.id}").get_data(as_text=True)
    assert "成效" in html and "就业人数" in html


def test_private_postings_are_not_linked(client, world):
    platform = new_platform(world, notice_days=0)
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    world["demand"].status = "closed"
    db.session.commit()
    html = client.get(f"/platforms/{platform.id}").get_data(as_text=True)
    assert f"/demands/{world['demand'].id}" not in html
    assert world["demand"].title in html


def test_editing_the_pairings_of_a_draft_updates_participants(client, login, world, make):
    other_school = make.org("institution", name="望京职业技能学校")
    extra = Pairing(demand_id=world["demand"].id, programme_id=make.programme(other_school).id,
                    status="accepted", score=0.7)
    db.session.add(extra)
    db.session.commit()
    platform = new_platform(world)
    services.confirm_participation(world["hr"], platform.id)
    db.session.commit()
    login(world["staff"])
    response = client.post(f"/staff/platforms/{platform.id}/edit",
                           data=form(world, pairing_ids=[str(world["accepted"].id), str(extra.id)]))
    assert response.status_code == 302
    db.session.expire_all()
    platform = db.session.get(DemoPlatform, platform.id)
    assert {link.pairing_id for link in platform.pairings} == {world["accepted"].id, extra.id}
    assert {p.organisation_id for p in platform.participants} == {
        world["enterprise"].id, world["institution"].id, other_school.id}
    assert all(p.confirmed_at is None for p in platform.participants)
    response = client.post(f"/staff/platforms/{platform.id}/edit", data=form(world, pairing_ids=[str(extra.id)]))
    assert response.status_code == 302
    db.session.expire_all()
    platform = db.session.get(DemoPlatform, platform.id)
    assert [link.pairing_id for link in platform.pairings] == [extra.id]
    assert {p.organisation_id for p in platform.participants} == {world["enterprise"].id, other_school.id}
    html = client.get(f"/staff/platforms/{platform.id}/edit").get_data(as_text=True)
    assert f'value="{extra.id}" checked' in html


def test_members_see_their_platforms_without_a_confirm_button(client, login, world):
    platform = new_platform(world, name="甲乙共建平台")
    login(world["member"])
    html = client.get("/org/platforms").get_data(as_text=True)
    assert "甲乙共建平台" in html and "待机构管理员确认参与" in html
    assert f"/org/platforms/{platform.id}/confirm" not in html


def test_objection_resolution_bad_input_changes_nothing(client, login, world):
    platform = in_notice(world)
    objection = services.submit_objection(platform.id, "王某", "wang@example.cn", "该平台的培训项目并未开班。")
    db.session.commit()
    login(world["staff"])
    assert client.post(f"/staff/objections/{objection.id}/uphold", data={"reason": "长" * 1001}).status_code == 400
    assert client.post(f"/staff/objections/{objection.id}/uphold", data={"reason": "x"}, csrf=False).status_code == 400
    assert client.post(f"/staff/objections/{2**31}/uphold", data={"reason": "x"}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Objection, objection.id).status == "open"
    assert db.session.get(DemoPlatform, platform.id).status == "notice"


def test_the_tick_tells_staff_once_when_a_notice_period_ends(app, world):
    from chanjiao import jobs
    from chanjiao.models import Notification

    platform = new_platform(world, notice_days=7)
    confirm_all(world, platform)
    services.start_notice(world["staff"], platform.id)
    db.session.commit()

    def told() -> list[Notification]:
        return list(db.session.scalars(select(Notification).where(Notification.kind == "platform.notice_ended")))

    assert jobs.tick(only="platforms.notice_ended").ran == ["platforms.notice_ended"]
    assert told() == []  # still in notice
    platform.notice_ends_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    jobs.tick(only="platforms.notice_ended")
    jobs.tick(only="platforms.notice_ended")  # a second tick: no second notice
    [note] = told()
    assert note.user_id == world["staff"].id and platform.name in note.title
    assert "可以发布" in note.body and note.link == f"/staff/platforms/{platform.id}"
