"""Interest requests through the pages: sending, deciding, contacts only after acceptance,
clear messages for bad input and nothing written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao.extensions import db
from chanjiao.matches import services
from chanjiao.models import AuditLog, Notification
from chanjiao.models.curation import InterestRequest

from .test_interest_requests import build_pair


@pytest.fixture
def pair(make):
    return build_pair(make)


def _requests() -> list[InterestRequest]:
    db.session.expire_all()
    return list(db.session.scalars(select(InterestRequest).order_by(InterestRequest.id)))


def _writes():
    db.session.expire_all()
    return (
        [(r.id, r.status) for r in _requests()],
        db.session.scalar(select(func.count()).select_from(Notification)),
        db.session.scalar(select(func.count()).select_from(AuditLog)),
    )


def _send(client, pair, **overrides):
    data = {"demand_id": pair["demand"].id, "programme_id": pair["programme"].id,
            "message": "请问何时开班？", "next": f"/my/demands/{pair['demand'].id}/matches"}
    data.update(overrides)
    return client.post("/interests/new", data=data)


def test_enterprise_sends_from_the_matches_page_and_returns_there(client, login, pair):
    login(pair["hr"])
    response = _send(client, pair)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/my/demands/{pair['demand'].id}/matches")
    [request] = _requests()
    assert request.message == "请问何时开班？" and request.created_by_id == pair["hr"].id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "对接申请已发送" in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_next_is_same_site_only(client, login, pair, target):
    login(pair["hr"])
    response = _send(client, pair, next=target)
    assert response.headers["Location"].endswith("/interests")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"message": "长" * 1001}, "最多 1000 个字"),
        ({"programme_id": "999999"}, "培训项目不存在"),
        ({"programme_id": str(2**31)}, "培训项目不存在"),
        ({"programme_id": "9" * 40}, "培训项目不存在"),
        ({"programme_id": "abc"}, "培训项目不存在"),
        ({"demand_id": "-3"}, "需求不存在"),
        ({"programme_id": ""}, "请选择培训项目"),
    ],
)
def test_bad_input_gets_a_clear_message_and_writes_nothing(client, login, pair, overrides, message):
    login(pair["hr"])
    before = _writes()
    response = _send(client, pair, **overrides)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _writes() == before


def test_requests_to_draft_or_closed_postings_are_refused(client, login, pair, make):
    pair["demand"].status = "closed"
    draft = make.programme(pair["institution"], status="draft")
    db.session.commit()
    login(pair["hr"])
    response = _send(client, pair)
    assert response.status_code == 400 and "需求发布（征集中）后才能申请对接" in response.get_data(as_text=True)
    pair["demand"].status = "open"
    db.session.commit()
    response = _send(client, pair, programme_id=draft.id)
    assert response.status_code == 400 and "培训项目不存在或未发布" in response.get_data(as_text=True)
    assert _requests() == []


def test_duplicate_request_is_refused_with_a_message(client, login, pair):
    login(pair["hr"])
    _send(client, pair)
    before = _writes()
    response = _send(client, pair)
    assert response.status_code == 400 and "无需重复提交" in response.get_data(as_text=True)
    assert _writes() == before


def test_institution_sends_from_the_public_demand_page(client, login, pair):
    login(pair["trainer"])
    detail = client.get(f"/demands/{pair['demand'].id}").get_data(as_text=True)
    assert f"/interests/new?demand_id={pair['demand'].id}" in detail
    form = client.get(f"/interests/new?demand_id={pair['demand'].id}")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert pair["demand"].title in html and pair["programme"].title in html
    response = client.post("/interests/new", data={
        "demand_id": pair["demand"].id, "programme_id": pair["programme"].id, "message": "",
    })
    assert response.status_code == 302
    [request] = _requests()
    assert request.from_organisation_id == pair["institution"].id


def test_enterprise_sees_the_button_on_a_public_programme_page(client, login, pair):
    login(pair["hr"])
    html = client.get(f"/programmes/{pair['programme'].id}").get_data(as_text=True)
    assert f"/interests/new?programme_id={pair['programme'].id}" in html
    # but not on a demand page (its own side)
    assert "/interests/new" not in client.get(f"/demands/{pair['demand'].id}").get_data(as_text=True)


@pytest.mark.parametrize("query", ["demand_id=999999", "programme_id=2147483648", "", "programme_id=abc"])
def test_new_request_page_for_unknown_postings_is_404(client, login, pair, query):
    login(pair["hr"])
    assert client.get(f"/interests/new?{query}").status_code == 404


def test_new_request_page_for_a_draft_programme_is_404(client, login, pair, make):
    draft = make.programme(pair["institution"], status="draft")
    login(pair["hr"])
    assert client.get(f"/interests/new?programme_id={draft.id}").status_code == 404


def test_contacts_are_shown_to_both_sides_only_after_acceptance(client, login, pair):
    pair["enterprise"].contact_name = "企业联系人王经理"
    pair["enterprise"].contact_phone = "13911112222"
    pair["institution"].contact_name = "机构联系人李老师"
    pair["institution"].contact_phone = "13733334444"
    db.session.commit()
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id, "<b>你好</b>")
    db.session.commit()
    secrets = ("王经理", "13911112222", "李老师", "13733334444", pair["hr"].email)

    login(pair["trainer"])
    html = client.get("/interests").get_data(as_text=True)
    assert "收到的申请" in html and pair["demand"].title in html and "&lt;b&gt;你好" in html
    assert not any(s in html for s in secrets)
    client.post("/logout")
    login(pair["hr"])
    html = client.get("/interests").get_data(as_text=True)
    assert "撤回申请" in html
    assert not any(s in html for s in secrets)
    client.post("/logout")

    login(pair["trainer"])
    response = client.post(f"/interests/{request.id}/accept", data={"response": "欢迎来电"},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "已接受对接申请" in html
    assert "王经理" in html and "13911112222" in html and pair["hr"].email in html
    client.post("/logout")
    login(pair["hr"])
    html = client.get("/interests").get_data(as_text=True)
    assert "李老师" in html and "13733334444" in html and "欢迎来电" in html


def test_deciding_twice_gives_a_message_and_changes_nothing(client, login, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    login(pair["trainer"])
    client.post(f"/interests/{request.id}/decline", data={"response": "名额已满"})
    before = _writes()
    for action in ("accept", "decline"):
        html = client.post(f"/interests/{request.id}/{action}", follow_redirects=True).get_data(as_text=True)
        assert "该申请已处理" in html
    assert _writes() == before
    assert _requests()[0].response == "名额已满"


def test_over_long_reply_is_refused(client, login, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    login(pair["trainer"])
    before = _writes()
    html = client.post(f"/interests/{request.id}/accept", data={"response": "长" * 1001},
                       follow_redirects=True).get_data(as_text=True)
    assert "最多 1000 个字" in html
    assert _writes() == before


def test_sender_cannot_accept_and_receiver_cannot_withdraw(client, login, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    before = _writes()
    login(pair["hr2"])
    html = client.post(f"/interests/{request.id}/accept", follow_redirects=True).get_data(as_text=True)
    assert "只有收到申请的一方可以接受或拒绝" in html
    client.post("/logout")
    login(pair["trainer"])
    html = client.post(f"/interests/{request.id}/withdraw", follow_redirects=True).get_data(as_text=True)
    assert "只有发出申请的一方可以撤回" in html
    assert _writes() == before


def test_withdraw_through_the_page(client, login, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    login(pair["hr"])
    html = client.post(f"/interests/{request.id}/withdraw", follow_redirects=True).get_data(as_text=True)
    assert "已撤回对接申请" in html
    assert _requests()[0].status == "withdrawn"


def test_owners_see_links_to_their_matches_on_their_posting_pages(client, login, pair):
    login(pair["hr"])
    html = client.get(f"/my/demands/{pair['demand'].id}/preview").get_data(as_text=True)
    assert f"/my/demands/{pair['demand'].id}/matches" in html
    assert f"/my/demands/{pair['demand'].id}/matches" in client.get("/my/demands").get_data(as_text=True)
    client.post("/logout")
    login(pair["trainer"])
    html = client.get(f"/programmes/{pair['programme'].id}").get_data(as_text=True)
    assert f"/my/programmes/{pair['programme'].id}/opportunities" in html
    assert "/interests/new" not in html  # no request to one's own programme
