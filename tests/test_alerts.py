"""Match alerts (有合适的新项目/新需求时通知我): subscribing from the empty state, authorisation,
CSRF, audit, and notifications when a matching posting is published (once, never for drafts
or postings below the threshold, never failing the publish)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from chanjiao import matchmaking
from chanjiao.alerts import services
from chanjiao.extensions import db
from chanjiao.models import (
    AuditLog,
    MatchAlert,
    MatchAlertDelivery,
    Notification,
    OutboxMessage,
    Programme,
)

COOKING = dict(title="中式烹调师实训", description="酒店后厨热菜制作", modules=[{"name": "刀工", "hours": 40}],
               outcomes=["能出品热菜"], certificate_name="中式烹调师（四级）", subsidy_eligible=False)


@pytest.fixture
def world(make):
    """An enterprise (two members) whose open EV-repair demand has no programme to match yet, an
    institution (two members) with nothing published, and outsiders of both kinds."""
    enterprise, institution = make.org("enterprise"), make.org("institution")
    other_enterprise, other_institution = make.org("enterprise"), make.org("institution")
    return {
        "enterprise": enterprise, "institution": institution,
        "hr": make.user(enterprise), "hr2": make.user(enterprise, role="org_member"),
        "trainer": make.user(institution), "trainer2": make.user(institution, role="org_member"),
        "other_hr": make.user(other_enterprise), "other_trainer": make.user(other_institution),
        "staff": make.user(None, "staff"),
        "demand": make.demand(enterprise),
        "other_institution": other_institution,
    }


def _alerts() -> list[MatchAlert]:
    db.session.expire_all()
    return list(db.session.scalars(select(MatchAlert).order_by(MatchAlert.id)))


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _notes(user) -> list[Notification]:
    db.session.expire_all()
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)))


def _subscribe_url(demand) -> str:
    return f"/my/demands/{demand.id}/alert"


# --------------------------------------------------------------------------- subscribing


def test_empty_state_offers_the_alert_and_subscribing_creates_one_audited_alert(client, login, world):
    demand = world["demand"]
    login(world["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert "暂时没有合适的培训项目" in html and "有合适的新项目时通知我" in html
    assert f'action="{_subscribe_url(demand)}"' in html

    response = client.post(_subscribe_url(demand))
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/my/demands/{demand.id}/matches")
    [alert] = _alerts()
    assert alert.demand_id == demand.id and alert.programme_id is None and alert.active
    assert alert.organisation_id == world["enterprise"].id and alert.created_by_id == world["hr"].id
    [entry] = db.session.scalars(select(AuditLog).where(AuditLog.action == "alert.subscribe")).all()
    assert (entry.actor_id, entry.object_type, entry.object_id) == (world["hr"].id, "match_alert", alert.id)
    assert entry.details == {"demand_id": demand.id}

    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已开启提醒" in html and "取消提醒" in html and "有合适的新项目时通知我" not in html


def test_a_second_subscription_is_refused_with_a_message(client, login, world):
    login(world["hr"])
    client.post(_subscribe_url(world["demand"]))
    client.post("/logout")
    login(world["hr2"])  # a colleague presses the button too
    response = client.post(_subscribe_url(world["demand"]), follow_redirects=True)
    assert response.status_code == 200
    assert "已开启提醒，有合适的新培训项目时会通知您，无需重复开启。" in response.get_data(as_text=True)
    assert len(_alerts()) == 1
    assert _count(AuditLog, AuditLog.action == "alert.subscribe") == 1


def test_the_database_allows_one_active_alert_per_posting(app, world):
    db.session.add(MatchAlert(demand_id=world["demand"].id, organisation_id=world["enterprise"].id,
                              created_by_id=world["hr"].id))
    db.session.commit()
    db.session.add(MatchAlert(demand_id=world["demand"].id, organisation_id=world["enterprise"].id,
                              created_by_id=world["hr"].id))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_cancel_and_subscribe_again(client, login, world):
    demand = world["demand"]
    login(world["hr"])
    client.post(_subscribe_url(demand))
    response = client.post(f"/my/demands/{demand.id}/alert/cancel", follow_redirects=True)
    assert "已取消新项目提醒。" in response.get_data(as_text=True)
    [alert] = _alerts()
    assert not alert.active and alert.cancelled_by_id == world["hr"].id
    assert _count(AuditLog, AuditLog.action == "alert.cancel") == 1
    response = client.post(f"/my/demands/{demand.id}/alert/cancel", follow_redirects=True)
    assert "提醒未开启或已经取消。" in response.get_data(as_text=True)
    assert _count(AuditLog, AuditLog.action == "alert.cancel") == 1
    client.post(_subscribe_url(demand))
    assert [a.active for a in _alerts()] == [False, True]


def test_a_closed_demand_cannot_subscribe(client, login, world, make):
    closed = make.demand(world["enterprise"], status="closed", title="已关闭岗位")
    login(world["hr"])
    response = client.post(_subscribe_url(closed), follow_redirects=True)
    assert "该需求已关闭或归档，不能开启新项目提醒。" in response.get_data(as_text=True)
    assert _alerts() == []


def test_an_institution_subscribes_on_a_published_programme_only(client, login, world, make):
    published = make.programme(world["institution"], **COOKING)
    draft = make.programme(world["institution"], status="draft", title="草稿项目")
    login(world["trainer"])
    html = client.get(f"/my/programmes/{published.id}/opportunities").get_data(as_text=True)
    assert "暂时没有合适的需求" in html and "有合适的新需求时通知我" in html
    response = client.post(f"/my/programmes/{draft.id}/alert", follow_redirects=True)
    assert "培训项目发布后才能开启新需求提醒。" in response.get_data(as_text=True)
    assert _alerts() == []
    client.post(f"/my/programmes/{published.id}/alert")
    [alert] = _alerts()
    assert alert.programme_id == published.id and alert.demand_id is None
    response = client.post(f"/my/programmes/{published.id}/alert", follow_redirects=True)
    assert "无需重复开启" in response.get_data(as_text=True) and len(_alerts()) == 1
    response = client.post(f"/my/programmes/{published.id}/alert/cancel", follow_redirects=True)
    assert "已取消新需求提醒。" in response.get_data(as_text=True)


ROUTES = [
    ("/my/demands/{demand}/alert", "enterprise"),
    ("/my/demands/{demand}/alert/cancel", "enterprise"),
    ("/my/programmes/{programme}/alert", "institution"),
    ("/my/programmes/{programme}/alert/cancel", "institution"),
]


def _url(world, make, template: str) -> str:
    programme = make.programme(world["institution"], **COOKING)
    return template.format(demand=world["demand"].id, programme=programme.id)


@pytest.mark.parametrize("template, kind", ROUTES, ids=[t for t, _k in ROUTES])
def test_other_organisations_get_404_and_others_403(client, login, world, make, template, kind):
    url = _url(world, make, template)
    before = (_count(MatchAlert), _count(AuditLog))
    response = client.post(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    login(world["other_hr"] if kind == "enterprise" else world["other_trainer"])
    assert client.post(url).status_code == 404
    client.post("/logout")
    login(world["trainer"] if kind == "enterprise" else world["hr"])
    assert client.post(url).status_code == 403
    client.post("/logout")
    login(world["staff"])
    assert client.post(url).status_code == 403
    assert (_count(MatchAlert), _count(AuditLog)) == before


@pytest.mark.parametrize("template, kind", ROUTES, ids=[t for t, _k in ROUTES])
def test_alert_buttons_need_a_csrf_token(client, login, world, make, template, kind):
    url = _url(world, make, template)
    login(world["hr"] if kind == "enterprise" else world["trainer"])
    assert client.post(url, csrf=False).status_code == 400
    assert _alerts() == []


@pytest.mark.parametrize("template", ["/my/demands/999999/alert", "/my/demands/2147483648/alert/cancel"])
def test_unknown_ids_are_404(client, login, world, template):
    login(world["hr"])
    assert client.post(template).status_code == 404


def test_get_is_not_allowed(client, login, world):
    login(world["hr"])
    assert client.get(_subscribe_url(world["demand"])).status_code == 405


# --------------------------------------------------------------------------- firing


@pytest.fixture
def subscribed(world):
    services.subscribe_demand(world["hr"], world["demand"].id)
    db.session.commit()
    return world


def _publish_programme(client, login, world, programme, who="trainer") -> None:
    login(world[who])
    response = client.post(f"/my/programmes/{programme.id}/publish")
    assert response.status_code == 302
    client.post("/logout")
    db.session.expire_all()
    assert db.session.get(Programme, programme.id).status == "published"


def test_publishing_a_matching_programme_notifies_the_enterprise_once(client, login, subscribed, make):
    world = subscribed
    cooking = make.programme(world["other_institution"], status="draft", **COOKING)
    _publish_programme(client, login, world, cooking, "other_trainer")  # below the threshold
    assert _notes(world["hr"]) == [] and _count(MatchAlertDelivery) == 0

    ev = make.programme(world["institution"], status="draft")
    assert _notes(world["hr"]) == []  # a draft is nothing to report
    _publish_programme(client, login, world, ev)
    for member in (world["hr"], world["hr2"]):
        [note] = _notes(member)
        assert note.kind == "alert.programme" and "新能源汽车高压系统检修培训" in note.title
        assert note.link == f"/my/demands/{world['demand'].id}/matches"
        assert "新能源汽车维修技师" in note.body and "匹配概率" in note.body
    assert _notes(world["trainer"]) == []
    [delivery] = db.session.scalars(select(MatchAlertDelivery)).all()
    assert delivery.found_programme_id == ev.id and delivery.probability >= matchmaking.min_probability()
    assert _count(AuditLog, AuditLog.action == "alert.notify") == 1

    # Editing the published programme checks again, but the pair was reported already.
    from chanjiao.postings.services import ProgrammeInput, update_programme

    update_programme(world["trainer"], ev.id, ProgrammeInput(
        title=ev.title, district=ev.district, total_hours=48, level=ev.level, description=ev.description,
        modules=ev.modules, outcomes=ev.outcomes, certificate_kind=ev.certificate_kind,
        certificate_name=ev.certificate_name, capacity=ev.capacity, fee=ev.fee,
    ))
    db.session.commit()
    assert len(_notes(world["hr"])) == 1 and _count(MatchAlertDelivery) == 1

    # The enterprise's page now lists the programme with its level, and keeps the alert.
    login(world["hr"])
    html = client.get(f"/my/demands/{world['demand'].id}/matches").get_data(as_text=True)
    assert "新能源汽车高压系统检修培训" in html and "匹配概率" in html and "取消提醒" in html


def test_a_cancelled_alert_does_not_fire(client, login, subscribed, make):
    world = subscribed
    services.cancel_demand_alert(world["hr"], world["demand"].id)
    db.session.commit()
    _publish_programme(client, login, world, make.programme(world["institution"], status="draft"))
    assert _notes(world["hr"]) == []


def test_a_closed_demand_is_not_notified(client, login, subscribed, make):
    world = subscribed
    world["demand"].status = "closed"
    db.session.commit()
    _publish_programme(client, login, world, make.programme(world["institution"], status="draft"))
    assert _notes(world["hr"]) == []


def test_an_engine_failure_never_fails_the_publish(client, login, subscribed, make, monkeypatch, caplog):
    world = subscribed

    def broken(*args, **kwargs):
        raise RuntimeError("engine down")

    monkeypatch.setattr(matchmaking, "recommend_programmes", broken)
    _publish_programme(client, login, subscribed, make.programme(world["institution"], status="draft"))
    assert _notes(world["hr"]) == [] and _count(MatchAlertDelivery) == 0
    assert _count(AuditLog, AuditLog.action == "programme.publish") == 1
    # The alert check runs after the commit, from the outbox: it failed and will be retried.
    [job] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "matching.after_publish")).all()
    assert (job.state, job.attempts) == ("pending", 1) and "engine down" in job.last_error


def test_check_new_posting_is_safe_to_call_twice(app, subscribed, make):
    world = subscribed
    ev = make.programme(world["institution"])
    assert services.check_new_posting(ev) == 1
    assert services.check_new_posting(ev) == 0
    db.session.commit()
    assert len(_notes(world["hr"])) == 1


def test_publishing_a_matching_demand_notifies_the_institution_once(client, login, world, make):
    programme = make.programme(world["institution"])
    world["demand"].status = "closed"  # the only demand is not public: nothing to offer yet
    db.session.commit()
    services.subscribe_programme(world["trainer"], programme.id)
    db.session.commit()

    draft = make.demand(world["enterprise"], status="draft", title="新能源汽车电池维修工")
    unrelated = make.demand(world["enterprise"], status="draft", title="中餐热菜厨师", occupation="中式烹调师",
                            description="酒店后厨热菜出品。", duties=["热菜烹制"], requirements=["持中式烹调师证"])
    login(world["hr"])
    assert client.post(f"/my/demands/{unrelated.id}/publish").status_code == 302
    assert _notes(world["trainer"]) == []
    assert client.post(f"/my/demands/{draft.id}/publish").status_code == 302
    for member in (world["trainer"], world["trainer2"]):
        [note] = _notes(member)
        assert note.kind == "alert.demand" and "新能源汽车电池维修工" in note.title
        assert note.link == f"/my/programmes/{programme.id}/opportunities"
    # Closing and reopening publishes it again: still one notification for the pair.
    assert client.post(f"/my/demands/{draft.id}/close").status_code == 302
    assert client.post(f"/my/demands/{draft.id}/publish").status_code == 302
    assert len(_notes(world["trainer"])) == 1


def test_two_cancels_at_once_make_one_change_and_one_audit_record(app, subscribed):
    from chanjiao.errors import InvalidTransition

    world = subscribed
    stale = services.demand_alert(world["demand"])  # what a second request read before either wrote
    services.cancel_demand_alert(world["hr"], world["demand"].id)
    db.session.commit()
    with pytest.raises(InvalidTransition, match="已经取消"):
        services._cancel(world["hr2"], stale, demand_id=world["demand"].id)
    db.session.rollback()
    assert _count(AuditLog, AuditLog.action == "alert.cancel") == 1
    alert = _alerts()[0]
    assert alert.cancelled_by_id == world["hr"].id
