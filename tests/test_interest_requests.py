"""Interest requests (申请对接): creation rules, decisions, notifications, audit and contacts."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chanjiao.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from chanjiao.extensions import db
from chanjiao.matches import services
from chanjiao.models import AuditLog, Notification
from chanjiao.models.curation import InterestRequest


@pytest.fixture
def pair(make):
    """See :func:`build_pair`."""
    return build_pair(make)


def build_pair(make) -> dict:
    """An approved enterprise with an open demand and an approved institution with a published
    programme, each with an admin and a member; plus an unrelated enterprise."""
    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr = make.user(enterprise)
    hr_colleague = make.user(enterprise, role="org_member")
    trainer = make.user(institution)
    trainer_colleague = make.user(institution, role="org_member")
    demand = make.demand(enterprise)
    programme = make.programme(institution)
    other = make.org("enterprise")
    outsider = make.user(other)
    return {
        "enterprise": enterprise, "institution": institution, "hr": hr, "hr2": hr_colleague,
        "trainer": trainer, "trainer2": trainer_colleague, "demand": demand,
        "programme": programme, "outsider": outsider, "other": other,
    }


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def _notes(user) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.user_id == user.id)))


def test_enterprise_requests_a_programme_and_the_institution_is_notified(app, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id, "想了解开班时间")
    db.session.commit()
    assert request.from_organisation_id == pair["enterprise"].id
    assert request.to_organisation_id == pair["institution"].id
    assert request.status == "pending"
    received = [n for n in _notes(pair["trainer"]) + _notes(pair["trainer2"])]
    assert {n.kind for n in received} == {"interest.received"} and len(received) == 2
    assert all(n.link == "/interests" for n in received)
    # the sender's colleagues are told too, the sender is not
    assert [n.kind for n in _notes(pair["hr2"])] == ["interest.sent"]
    assert _notes(pair["hr"]) == []
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "interest.create")).one()
    assert audit.actor_id == pair["hr"].id and audit.object_id == request.id


def test_institution_proposes_its_programme_for_a_demand(app, pair):
    request = services.create_interest(pair["trainer"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    assert request.from_organisation_id == pair["institution"].id
    assert request.to_organisation_id == pair["enterprise"].id
    assert {n.kind for n in _notes(pair["hr"])} == {"interest.received"}


@pytest.mark.parametrize(
    "change, who, error",
    [
        ({"demand": "draft"}, "hr", InvalidTransition),
        ({"demand": "closed"}, "hr", InvalidTransition),
        ({"programme": "draft"}, "hr", NotFound),
        ({"programme": "archived"}, "hr", NotFound),
        ({"demand": "draft"}, "trainer", NotFound),
        ({"demand": "closed"}, "trainer", NotFound),
        ({"programme": "draft"}, "trainer", InvalidTransition),
        ({"institution_status": "suspended"}, "hr", NotFound),
        ({"enterprise_status": "suspended"}, "trainer", NotFound),
        ({"enterprise_status": "suspended"}, "hr", PermissionDenied),
        ({}, "outsider", NotFound),
    ],
)
def test_refused_requests_write_nothing(app, pair, change, who, error):
    if "demand" in change:
        pair["demand"].status = change["demand"]
    if "programme" in change:
        pair["programme"].status = change["programme"]
    if "institution_status" in change:
        pair["institution"].status = change["institution_status"]
    if "enterprise_status" in change:
        pair["enterprise"].status = change["enterprise_status"]
    db.session.commit()
    with pytest.raises(error) as raised:
        services.create_interest(pair[who], pair["demand"].id, pair["programme"].id)
    db.session.rollback()
    assert raised.value.message  # a Chinese sentence for the user
    assert _count(InterestRequest) == 0 and _count(Notification) == 0 and _count(AuditLog) == 0


@pytest.mark.parametrize("demand_id, programme_id", [(0, None), (999999, None), (2**31, None), (2**40, None),
                                                     (None, 0), (None, 2**31), (None, 999999)])
def test_unknown_ids_are_not_found(app, pair, demand_id, programme_id):
    with pytest.raises(NotFound):
        services.create_interest(
            pair["hr"], demand_id if demand_id is not None else pair["demand"].id,
            programme_id if programme_id is not None else pair["programme"].id,
        )
    assert _count(InterestRequest) == 0


def test_staff_cannot_send_requests(app, pair, make):
    with pytest.raises(PermissionDenied):
        services.create_interest(make.user(None, "staff"), pair["demand"].id, pair["programme"].id)


def test_over_long_message_is_refused(app, pair):
    with pytest.raises(ValidationFailed):
        services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id, "长" * 1001)
    assert _count(InterestRequest) == 0


def test_duplicate_pending_or_accepted_request_is_refused_either_way(app, pair):
    first = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    for actor in ("hr", "hr2", "trainer"):
        with pytest.raises(ValidationFailed, match="重复"):
            services.create_interest(pair[actor], pair["demand"].id, pair["programme"].id)
        db.session.rollback()
    services.accept_interest(pair["trainer"], first.id)
    db.session.commit()
    with pytest.raises(ValidationFailed):
        services.create_interest(pair["trainer"], pair["demand"].id, pair["programme"].id)
    db.session.rollback()
    assert _count(InterestRequest) == 1


def test_a_new_request_may_follow_a_declined_or_withdrawn_one(app, pair):
    first = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    services.decline_interest(pair["trainer"], first.id, "本期已满")
    second = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    services.withdraw_interest(pair["hr2"], second.id)
    third = services.create_interest(pair["trainer"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    assert [r.status for r in (first, second, third)] == ["declined", "withdrawn", "pending"]
    assert first.response == "本期已满"


def test_accept_by_receiver_notifies_and_audits(app, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    services.accept_interest(pair["trainer2"], request.id, "欢迎联系")
    db.session.commit()
    assert request.status == "accepted" and request.decided_by_id == pair["trainer2"].id
    assert request.decided_at is not None and request.response == "欢迎联系"
    assert "interest.accepted" in {n.kind for n in _notes(pair["hr"])}
    assert "interest.accepted" in {n.kind for n in _notes(pair["trainer"])}
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "interest.accept")) == 1


@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_only_the_receiver_decides_and_only_once(app, pair, decision):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    decide = getattr(services, f"{decision}_interest")
    with pytest.raises(PermissionDenied):
        decide(pair["hr2"], request.id)  # the sender's side
    with pytest.raises(NotFound):
        decide(pair["outsider"], request.id)
    db.session.rollback()
    decide(pair["trainer"], request.id)
    db.session.commit()
    for again in (services.accept_interest, services.decline_interest):
        with pytest.raises(InvalidTransition, match="已处理"):
            again(pair["trainer"], request.id)
        db.session.rollback()
    with pytest.raises(InvalidTransition):
        services.withdraw_interest(pair["hr"], request.id)


def test_only_the_sender_withdraws_while_pending(app, pair):
    request = services.create_interest(pair["trainer"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    with pytest.raises(PermissionDenied):
        services.withdraw_interest(pair["hr"], request.id)
    with pytest.raises(NotFound):
        services.withdraw_interest(pair["outsider"], request.id)
    services.withdraw_interest(pair["trainer2"], request.id)
    db.session.commit()
    assert request.status == "withdrawn"
    assert "interest.withdrawn" in {n.kind for n in _notes(pair["hr"])}
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "interest.withdraw")) == 1


def test_contacts_only_after_acceptance(app, pair):
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    db.session.commit()
    assert services.contact_for(pair["hr"], request) is None
    assert services.contact_for(pair["trainer"], request) is None
    services.accept_interest(pair["trainer"], request.id)
    assert services.contact_for(pair["outsider"], request) is None
    to_enterprise = services.contact_for(pair["hr"], request)
    to_institution = services.contact_for(pair["trainer"], request)
    assert to_enterprise.organisation == pair["institution"].name
    assert to_institution.organisation == pair["enterprise"].name
    assert to_institution.requester_email == pair["hr"].email


def test_acceptance_hooks_run_inside_accept(app, pair, monkeypatch):
    seen = []
    monkeypatch.setattr(services, "_acceptance_hooks", [lambda r, a: seen.append((r.id, a.id))])
    request = services.create_interest(pair["hr"], pair["demand"].id, pair["programme"].id)
    services.accept_interest(pair["trainer"], request.id)
    assert seen == [(request.id, pair["trainer"].id)]


def test_domain_errors_are_chinese_sentences(app, pair):
    with pytest.raises(DomainError) as raised:
        services.create_interest(pair["outsider"], pair["demand"].id, pair["programme"].id)
    assert raised.value.message.endswith("。")
