"""The inbox: a user's own notifications, unread first; marking read; links stay on the site."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from chanjiao.extensions import db
from chanjiao.inbox import services as inbox
from chanjiao.models import Notification


@pytest.fixture
def people(make):
    organisation = make.org("enterprise")
    return make.user(organisation), make.user(organisation, role="org_member")


def _note(user, title, link="", read=False):
    [note] = inbox.notify([user], "test", title, "正文", link)
    if read:
        from chanjiao.models._common import utcnow

        note.read_at = utcnow()
    db.session.commit()
    return note


def test_anonymous_is_sent_to_login(client):
    response = client.get("/inbox/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/inbox/read-all").status_code == 302


def test_inbox_lists_own_notifications_unread_first_and_escaped(client, login, people):
    me, colleague = people
    _note(me, "旧消息", read=True)
    _note(me, "<script>新消息</script>", "/interests")
    _note(colleague, "别人的消息")
    login(me)
    html = client.get("/inbox/").get_data(as_text=True)
    assert "别人的消息" not in html
    assert "&lt;script&gt;新消息" in html and "<script>新消息" not in html
    assert html.index("新消息") < html.index("旧消息")
    assert "全部标为已读" in html
    assert 'class="count-badge">1<' in html


def test_read_marks_and_follows_a_same_site_link(client, login, people):
    me, _ = people
    note = _note(me, "对接申请", "/interests")
    login(me)
    response = client.post(f"/inbox/{note.id}/read")
    assert response.status_code == 302 and response.headers["Location"].endswith("/interests")
    db.session.expire_all()
    assert db.session.get(Notification, note.id).read_at is not None


@pytest.mark.parametrize("link", ["https://evil.example/", "//evil.example", "/\\evil.example", ""])
def test_read_never_redirects_off_site(client, login, people, link):
    me, _ = people
    note = _note(me, "消息", link)
    login(me)
    response = client.post(f"/inbox/{note.id}/read")
    assert response.headers["Location"].endswith("/inbox/")
    html = client.get("/inbox/").get_data(as_text=True)
    assert "evil.example" not in html


@pytest.mark.parametrize("which", ["colleague", "missing", "huge"])
def test_another_users_or_unknown_notification_is_404(client, login, people, which):
    me, colleague = people
    note = _note(colleague, "别人的消息")
    login(me)
    target = {"colleague": note.id, "missing": 999999, "huge": 2**31}[which]
    assert client.post(f"/inbox/{target}/read").status_code == 404
    db.session.expire_all()
    assert db.session.get(Notification, note.id).read_at is None


def test_read_all_marks_only_own(client, login, people):
    me, colleague = people
    _note(me, "一"), _note(me, "二")
    theirs = _note(colleague, "三")
    login(me)
    html = client.post("/inbox/read-all", follow_redirects=True).get_data(as_text=True)
    assert "已将 2 条消息标为已读" in html
    db.session.expire_all()
    mine = db.session.scalars(select(Notification).where(Notification.user_id == me.id)).all()
    assert all(n.read_at is not None for n in mine)
    assert db.session.get(Notification, theirs.id).read_at is None
    assert "没有未读消息" in client.post("/inbox/read-all", follow_redirects=True).get_data(as_text=True)


def test_staff_have_an_inbox_too(client, login, make):
    staff = make.user(None, "staff")
    _note(staff, "待审核")
    login(staff)
    assert "待审核" in client.get("/inbox/").get_data(as_text=True)


def test_interest_steps_arrive_in_both_inboxes(client, login, make):
    from chanjiao.matches import services

    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr, trainer = make.user(enterprise), make.user(institution)
    demand, programme = make.demand(enterprise), make.programme(institution)
    request = services.create_interest(hr, demand.id, programme.id)
    db.session.commit()
    login(trainer)
    assert "收到对接申请" in client.get("/inbox/").get_data(as_text=True)
    client.post(f"/interests/{request.id}/accept")
    client.post("/logout")
    login(hr)
    html = client.get("/inbox/").get_data(as_text=True)
    assert "对接申请已被接受" in html
