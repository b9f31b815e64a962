"""One-time and counted actions are decided by the database, not by what a request read.

Each test loads an object, lets "another request" change its row behind the session's back
(a separate connection, so the session keeps its stale copy and every check in Python still
passes), then runs the service: the conditional update finds nothing to change, the service
raises the user-facing :class:`DomainError`, and nothing (no effect, no audit record, no
notification) is written. tests/test_concurrency.py does the same with twenty real clients.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from chanjiao.auth import services as accounts
from chanjiao.common import change_if
from chanjiao.curation import services as curation
from chanjiao.errors import DomainError, InvalidTransition
from chanjiao.extensions import db
from chanjiao.matches import services as matches
from chanjiao.models import (
    AuditLog,
    Demand,
    DemoPlatform,
    DemoPlatformParticipant,
    Invitation,
    LoginThrottle,
    Notification,
    Objection,
    OutboxMessage,
    Pairing,
    PasswordResetToken,
    Programme,
    User,
)
from chanjiao.models._common import utcnow
from chanjiao.models.curation import InterestRequest
from chanjiao.orgs import services as orgs
from chanjiao.platforms import services as platforms
from chanjiao.postings import services as postings

from .test_interest_requests import build_pair
from .test_platforms import confirm_all, new_platform, world  # noqa: F401 (fixture)

PASSWORD = "Atomic-test-2026"


@pytest.fixture(autouse=True)
def _app(app):
    # Every test here needs the app (the shared ``world`` fixture does not ask for it).
    return app


def behind_the_back(statement) -> None:
    """Commit ``statement`` on another connection: the session's objects stay stale."""
    with db.engine.begin() as conn:
        conn.execute(statement)


def counts() -> tuple[int, int]:
    """(audit records, notifications), read fresh."""
    with db.engine.connect() as conn:
        return (conn.scalar(select(func.count()).select_from(AuditLog)),
                conn.scalar(select(func.count()).select_from(Notification)))


def refused(action, message: str) -> None:
    """``action()`` raises a DomainError saying ``message`` and writes nothing."""
    before = counts()
    with pytest.raises(DomainError) as caught:
        action()
    db.session.rollback()
    assert message in caught.value.message
    assert counts() == before


# --------------------------------------------------------------------------- the helper


def test_change_if_has_one_winner_and_the_loser_sees_its_state(app):
    message = OutboxMessage(kind="test.helper", state="failed", attempts=3)
    db.session.add(message)
    db.session.commit()
    assert message.state == "failed"  # loaded by this request's session
    with app.app_context():  # another request at the same moment, with its own session
        theirs = db.session.get(OutboxMessage, message.id)
        assert theirs is not message
        assert change_if(theirs, OutboxMessage.state == "failed",
                         state="pending", attempts=OutboxMessage.attempts + 1)
        assert (theirs.state, theirs.attempts) == ("pending", 4)  # computed by the database
        db.session.commit()
    assert message.state == "failed"  # stale: every check in Python would still pass
    assert not change_if(message, OutboxMessage.state == "failed", state="pending", attempts=0)
    assert (message.state, message.attempts) == ("pending", 4)  # the winner's, not ours


def test_change_if_can_leave_a_loser_unrefreshed(app):
    message = OutboxMessage(kind="test.helper", state="failed")
    db.session.add(message)
    db.session.commit()
    assert message.state == "failed"
    behind_the_back(update(OutboxMessage).where(OutboxMessage.id == message.id).values(state="done"))
    assert not change_if(message, OutboxMessage.state == "failed", refresh_unchanged=False, state="pending")
    assert message.state == "failed"
    assert change_if(message, refresh_unchanged=False, state="failed")
    assert message.state == "failed"
    with pytest.raises(ValueError):
        change_if(OutboxMessage(kind="test.helper"), state="done")  # no row yet


# --------------------------------------------------------------------------- invitations, resets


def test_an_invitation_used_meanwhile_makes_no_second_account(app, make):
    admin = make.user(make.org("enterprise"))
    invitation, code = orgs.create_invitation(admin)
    db.session.commit()
    assert orgs.find_invitation(code) is invitation  # loaded: the session holds it as open
    behind_the_back(update(Invitation).where(Invitation.id == invitation.id).values(used_at=utcnow()))
    users = db.session.scalar(select(func.count(User.id)))
    refused(lambda: orgs.accept_invitation(code, orgs.AccountData("新同事", "new@example.cn", PASSWORD)),
            "该邀请链接已被使用")
    assert db.session.scalar(select(func.count(User.id))) == users


def test_an_invitation_revoked_meanwhile_says_so(app, make):
    admin = make.user(make.org("enterprise"))
    invitation, code = orgs.create_invitation(admin)
    db.session.commit()
    orgs.find_invitation(code)
    behind_the_back(update(Invitation).where(Invitation.id == invitation.id).values(revoked_at=utcnow()))
    refused(lambda: orgs.accept_invitation(code, orgs.AccountData("新同事", "new@example.cn", PASSWORD)),
            "已被机构管理员撤销")


def test_revoking_an_invitation_used_meanwhile_is_refused(app, make):
    admin = make.user(make.org("enterprise"))
    invitation, _code = orgs.create_invitation(admin)
    db.session.commit()
    assert invitation.used_at is None
    behind_the_back(update(Invitation).where(Invitation.id == invitation.id).values(used_at=utcnow()))
    refused(lambda: orgs.revoke_invitation(admin, invitation.id), "该邀请已被使用，不能撤销")


def test_a_reset_link_used_meanwhile_sets_no_password(app, make):
    admin = make.user(make.org("enterprise"))
    member = make.user(admin.organisation, role="org_member")
    reset, token = accounts.issue_password_reset(admin, member)
    db.session.commit()
    old_hash = member.password_hash
    assert accounts.find_password_reset(token) is reset
    behind_the_back(update(PasswordResetToken).where(PasswordResetToken.id == reset.id)
                    .values(used_at=utcnow()))
    refused(lambda: accounts.reset_password(token, PASSWORD), "该重置链接已被使用")
    db.session.expire_all()
    assert db.session.get(User, member.id).password_hash == old_hash


# --------------------------------------------------------------------------- login failures


def _failures(key: str) -> int | None:
    with db.engine.connect() as conn:
        return conn.scalar(select(LoginThrottle.failures).where(LoginThrottle.key == key))


def test_login_failures_are_counted_by_the_database(app, make):
    user = make.user(make.org("enterprise"))
    key = f"login:{user.email}|10.0.0.1"
    with pytest.raises(DomainError):
        accounts.authenticate(user.email, "wrong-password-1", "10.0.0.1")
    db.session.commit()
    assert db.session.get(LoginThrottle, key).failures == 1  # the session now holds the row
    # Two more failures counted by other workers: a count kept in Python would write 2 here.
    behind_the_back(update(LoginThrottle).where(LoginThrottle.key == key).values(failures=3))
    with pytest.raises(DomainError):
        accounts.authenticate(user.email, "wrong-password-2", "10.0.0.1")
    db.session.commit()
    assert _failures(key) == 4
    assert _failures(f"login:{user.email}|10.0.0.2") is None  # another address counts apart


def test_the_delay_doubles_per_failure_and_a_stale_window_starts_again(app, make):
    user = make.user(make.org("enterprise"))
    address = "10.0.0.9"
    key = f"login:{user.email}|{address}"
    free, base = app.config["LIMIT_LOGIN_FAILURES"], app.config["LIMIT_LOGIN_DELAY_SECONDS"]
    waits = []
    for n in range(free + 2):
        with pytest.raises(DomainError) as caught:
            accounts.authenticate(user.email, f"wrong-{n}", address)
        db.session.commit()
        assert not isinstance(caught.value, accounts.LoginThrottled)
        row = db.session.get(LoginThrottle, key)
        db.session.refresh(row)
        waits.append(None if row.locked_until is None else (row.locked_until - utcnow()).total_seconds())
        if row.locked_until is not None:
            # While the wait lasts even the right password is refused, from this address only.
            with pytest.raises(accounts.LoginThrottled) as throttled:
                accounts.authenticate(user.email, "Chanjiao-test-2026", address)
            db.session.rollback()
            assert 0 < throttled.value.retry_after <= base * 2 ** (n + 1 - free)
            assert accounts.authenticate(user.email, "Chanjiao-test-2026", "10.0.0.10").id == user.id
            db.session.commit()
            behind_the_back(update(LoginThrottle).where(LoginThrottle.key == key)
                            .values(locked_until=utcnow()))
            db.session.expire_all()
    assert waits[:free - 1] == [None] * (free - 1)
    for n, wait in enumerate(waits[free - 1:]):
        assert base * 2 ** n - 5 < wait <= base * 2 ** n
    assert _failures(key) == free + 2
    # Long after the window: the next failure starts a new count.
    long_ago = utcnow() - timedelta(seconds=app.config["LIMIT_LOGIN_FAILURE_WINDOW_SECONDS"] + 60)
    behind_the_back(update(LoginThrottle).where(LoginThrottle.key == key)
                    .values(window_started_at=long_ago, locked_until=long_ago))
    db.session.expire_all()
    with pytest.raises(DomainError) as caught:
        accounts.authenticate(user.email, "wrong-later", address)
    db.session.commit()
    assert not isinstance(caught.value, accounts.LoginThrottled)
    row = db.session.get(LoginThrottle, key)
    db.session.refresh(row)
    assert (row.failures, row.locked_until) == (1, None)
    assert accounts.authenticate(user.email, "Chanjiao-test-2026", address).id == user.id
    db.session.commit()
    assert _failures(key) is None  # a good login forgets the failures of its address


# --------------------------------------------------------------------------- interest requests


@pytest.fixture
def pending(app, make):
    pair = build_pair(make)
    request = matches.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    assert request.status == "pending"
    return pair, request


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_an_interest_decided_meanwhile_is_decided_once(pending, action):
    pair, request = pending
    behind_the_back(update(InterestRequest).where(InterestRequest.id == request.id)
                    .values(status="accepted"))
    decide = matches.accept_interest if action == "accept" else matches.decline_interest
    refused(lambda: decide(pair["trainer"], request.id, "好的"), "该申请已处理（当前状态：已接受）")


def test_an_interest_accepted_meanwhile_cannot_be_withdrawn(pending):
    pair, request = pending
    behind_the_back(update(InterestRequest).where(InterestRequest.id == request.id)
                    .values(status="accepted"))
    refused(lambda: matches.withdraw_interest(pair["hr"], request.id), "该申请已处理")


def test_a_second_live_request_for_a_pair_is_refused(pending):
    pair, request = pending
    refused(lambda: matches.create_interest(pair["trainer"], pair["demand"].id, pair["programme"].id),
            "已有待处理或已接受的对接申请")


# --------------------------------------------------------------------------- pairings


def test_a_pairing_decided_meanwhile_is_decided_once(world):  # noqa: F811
    suggested = world["suggested"]
    assert suggested.status == "suggested"
    behind_the_back(update(Pairing).where(Pairing.id == suggested.id).values(status="accepted"))
    refused(lambda: curation.decide(world["staff"], suggested.id, "accept"), "该对接已通过")


def test_a_rejection_racing_an_acceptance_is_told_to_refresh(world):  # noqa: F811
    suggested = world["suggested"]
    assert suggested.status == "suggested"
    behind_the_back(update(Pairing).where(Pairing.id == suggested.id).values(status="accepted"))
    refused(lambda: curation.decide(world["staff"], suggested.id, "reject", "不合适"),
            "状态已变化，请刷新页面")


def test_a_pair_with_a_pairing_is_not_added_twice(world):  # noqa: F811
    refused(lambda: curation.create_pairing(world["staff"], world["demand"].id, world["programme"].id),
            "该对接已在遴选中")
    assert db.session.scalar(select(func.count(Pairing.id))) == 2


# --------------------------------------------------------------------------- platforms


def _set_status(platform: DemoPlatform, **values) -> None:
    behind_the_back(update(DemoPlatform).where(DemoPlatform.id == platform.id).values(**values))


def test_a_confirmation_made_meanwhile_is_made_once(world):  # noqa: F811
    platform = new_platform(world)
    participant = db.session.get(DemoPlatformParticipant, (platform.id, world["enterprise"].id))
    assert participant.confirmed_at is None
    behind_the_back(update(DemoPlatformParticipant)
                    .where(DemoPlatformParticipant.platform_id == platform.id,
                           DemoPlatformParticipant.organisation_id == world["enterprise"].id)
                    .values(confirmed_at=utcnow(), confirmed_by_id=world["hr"].id))
    refused(lambda: platforms.confirm_participation(world["hr"], platform.id), "贵机构已确认参与")


def test_each_transition_happens_once(world):  # noqa: F811
    platform = new_platform(world, notice_days=0)
    confirm_all(world, platform)
    assert platform.status == "draft"
    _set_status(platform, status="notice")
    refused(lambda: platforms.start_notice(world["staff"], platform.id), "状态已变化，请刷新页面")

    _set_status(platform, status="draft")
    db.session.expire_all()  # this time the session sees the draft
    platforms.start_notice(world["staff"], platform.id)
    db.session.commit()
    assert platform.status == "notice"
    _set_status(platform, status="published")
    refused(lambda: platforms.publish(world["staff"], platform.id), "状态已变化，请刷新页面")

    assert platform.status == "published"
    _set_status(platform, status="completed")
    refused(lambda: platforms.complete(world["staff"], platform.id, platforms.Outcomes(10, 8, 6)),
            "状态已变化，请刷新页面")


def test_an_edit_racing_the_notice_is_refused(world):  # noqa: F811
    platform = new_platform(world)
    assert platform.status == "draft"
    _set_status(platform, status="notice")
    data = platforms.PlatformInput(name="改名后的平台", goal_trainees=30, notice_days=7,
                                   pairing_ids=[world["accepted"].id])
    refused(lambda: platforms.update_platform(world["staff"], platform.id, data), "状态已变化")
    db.session.expire_all()
    assert db.session.get(DemoPlatform, platform.id).name == "示范平台"


@pytest.mark.parametrize("decision", ["uphold", "dismiss"])
def test_an_objection_is_handled_once(world, decision):  # noqa: F811
    platform = new_platform(world)
    confirm_all(world, platform)
    platforms.start_notice(world["staff"], platform.id)
    db.session.commit()
    objection = platforms.submit_objection(platform.id, "王先生", "13900001111", "该平台的培训计划与实际不符。")
    db.session.commit()
    assert objection.status == "open"
    behind_the_back(update(Objection).where(Objection.id == objection.id).values(status="dismissed"))
    refused(lambda: platforms.resolve_objection(world["staff"], objection.id, decision, "已核实"),
            "该异议已处理")
    db.session.expire_all()
    assert db.session.get(DemoPlatform, platform.id).status == "notice"


# --------------------------------------------------------------------------- postings


def test_a_posting_published_meanwhile_is_published_once(app, make):
    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr, trainer = make.user(enterprise), make.user(institution)
    demand = make.demand(enterprise, status="draft")
    programme = make.programme(institution, status="draft")
    assert (demand.status, programme.status) == ("draft", "draft")
    behind_the_back(update(Demand).where(Demand.id == demand.id).values(status="open"))
    behind_the_back(update(Programme).where(Programme.id == programme.id).values(status="published"))
    refused(lambda: postings.publish_demand(hr, demand.id), "当前状态为“征集中”")
    refused(lambda: postings.publish_programme(trainer, programme.id), "不能执行此操作")


def test_a_transition_from_a_status_still_current_succeeds(app, make):
    hr = make.user(make.org("enterprise"))
    demand = make.demand(hr.organisation, status="draft")
    postings.publish_demand(hr, demand.id)
    db.session.commit()
    with db.engine.connect() as conn:
        assert conn.scalar(select(Demand.status).where(Demand.id == demand.id)) == "open"
        actions = list(conn.scalars(select(AuditLog.action).where(AuditLog.object_id == demand.id,
                                                                  AuditLog.object_type == "demand")))
    assert actions.count("demand.publish") == 1
    with pytest.raises(InvalidTransition):
        postings.publish_demand(hr, demand.id)
