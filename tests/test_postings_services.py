"""The postings service layer called directly, as CLI commands and later features do."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from chanjiao.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from chanjiao.extensions import db
from chanjiao.models import Demand, Programme, Skill
from chanjiao.postings import services
from chanjiao.postings.services import DemandInput, ProgrammeInput


def demand_input(**overrides) -> DemandInput:
    values = dict(
        title="仓储物流专员", district="首都机场街道", skill_level="L4", headcount=3,
        mode="offline", skills=["叉车操作", "仓储管理"], desired_start=date(2026, 10, 1),
    )
    values.update(overrides)
    return DemandInput(**values)


def programme_input(**overrides) -> ProgrammeInput:
    values = dict(
        title="叉车司机培训", district="首都机场街道", total_hours=40,
        modules=[{"name": "叉车结构", "hours": 8}, {"name": "场地驾驶", "hours": 32}],
        certificate_kind="special_operation", certificate_name="特种设备作业人员证（叉车）",
        capacity=20, fee=1200,
    )
    values.update(overrides)
    return ProgrammeInput(**values)


def test_create_and_publish_through_services(app, make):
    actor = make.user(make.org("enterprise"))
    demand = services.create_demand(actor, demand_input())
    assert demand.status == "draft" and sorted(s.name for s in demand.skills) == sorted(["仓储管理", "叉车操作"])
    services.publish_demand(actor, demand.id)
    db.session.commit()
    assert db.session.get(Demand, demand.id).published_at is not None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"skill_level": "XYZ"}, "skill_level"),
        ({"mode": "fly"}, "mode"),
        ({"district": "海淀"}, "district"),
        ({"headcount": 0}, "headcount"),
        ({"headcount": True}, "headcount"),
        ({"budget_per_person": -5}, "budget_per_person"),
        ({"title": "  "}, "title"),
        ({"title": "长" * 101}, "title"),
        ({"duties": ["长" * 201]}, "duties"),
        ({"skills": [f"技能{i}" for i in range(31)]}, "skills"),
    ],
)
def test_services_check_demand_input_themselves(app, make, overrides, field):
    actor = make.user(make.org("enterprise"))
    with pytest.raises(ValidationFailed) as error:
        services.create_demand(actor, demand_input(**overrides))
    assert error.value.field == field
    db.session.rollback()
    assert db.session.scalar(select(func.count(Demand.id))) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"total_hours": 30}, "total_hours"),
        ({"certificate_name": ""}, "certificate_name"),
        ({"certificate_kind": "phd"}, "certificate_kind"),
        ({"modules": [{"name": "", "hours": 3}]}, "modules"),
        ({"modules": [{"name": "甲", "hours": "3"}]}, "modules"),
        ({"capacity": 0}, "capacity"),
        ({"fee": -1}, "fee"),
        ({"level": "L9"}, "level"),
    ],
)
def test_services_check_programme_input_themselves(app, make, overrides, field):
    actor = make.user(make.org("institution"))
    with pytest.raises(ValidationFailed) as error:
        services.create_programme(actor, programme_input(**overrides))
    assert error.value.field == field


def test_certificate_name_is_dropped_when_there_is_no_certificate(app, make):
    actor = make.user(make.org("institution"))
    programme = services.create_programme(
        actor, programme_input(certificate_kind="none", certificate_name="随便写的")
    )
    assert programme.certificate_name == ""


def test_wrong_kind_of_organisation_cannot_create(app, make):
    with pytest.raises(PermissionDenied):
        services.create_demand(make.user(make.org("institution")), demand_input())
    with pytest.raises(PermissionDenied):
        services.create_programme(make.user(make.org("enterprise")), programme_input())
    with pytest.raises(PermissionDenied):
        services.create_demand(make.user(None, "staff"), demand_input())


def test_other_organisation_and_staff_get_not_found(app, make):
    owner = make.org("enterprise")
    demand = make.demand(owner, status="draft")
    for actor in (make.user(make.org("enterprise")), make.user(None, "staff")):
        for call in (services.get_own_demand, services.publish_demand, services.close_demand,
                     services.archive_demand, services.delete_demand):
            with pytest.raises(NotFound):
                call(actor, demand.id)
        with pytest.raises(NotFound):
            services.update_demand(actor, demand.id, demand_input())
    with pytest.raises(NotFound):
        services.get_own_demand(make.user(owner), 2**40)


def test_transitions_raise_invalid_transition(app, make):
    organisation = make.org("institution")
    actor = make.user(organisation)
    programme = make.programme(organisation, status="archived")
    with pytest.raises(InvalidTransition):
        services.publish_programme(actor, programme.id)
    with pytest.raises(InvalidTransition):
        services.update_programme(actor, programme.id, programme_input())
    with pytest.raises(InvalidTransition):
        services.delete_programme(actor, programme.id)


def test_registered_reference_check_turns_delete_into_archive(app, make, monkeypatch):
    monkeypatch.setattr(services, "_reference_checks", [])
    organisation = make.org("institution")
    actor = make.user(organisation)
    programme = make.programme(organisation, status="draft")

    @services.register_reference_check
    def referenced(posting):
        return isinstance(posting, Programme) and posting.id == programme.id

    assert services.is_referenced(programme) is True
    assert services.delete_programme(actor, programme.id) == "archived"
    other = make.programme(organisation, status="draft")
    assert services.delete_programme(actor, other.id) == "deleted"
    db.session.commit()
    assert db.session.get(Programme, other.id) is None


def test_skill_tags_created_by_a_refused_save_are_not_kept(app, make):
    """The service may flush new tags before refusing; the caller's rollback removes them."""
    actor = make.user(make.org("institution"))
    with pytest.raises(ValidationFailed):
        services.create_programme(actor, programme_input(skills=["全新技能"], total_hours=1))
    db.session.rollback()
    assert db.session.scalar(select(func.count(Skill.id))) == 0


def test_suggest_skills_service(app, make):
    make.skill("电工", ["低压电工"])
    make.skill("焊工", [])
    assert services.suggest_skills("电工") == ["电工", "低压电工"]
    assert services.suggest_skills("") == []


def test_an_engine_failure_never_fails_a_programme_publish(app, make, monkeypatch, caplog):
    from chanjiao import matchmaking
    from matching import MatchingError

    def broken(*args, **kwargs):
        raise MatchingError("index unreadable")

    monkeypatch.setattr(matchmaking, "recommend_demands", broken)
    monkeypatch.setattr(matchmaking, "recommend_programmes", broken)
    institution = make.org("institution")
    enterprise_actor = make.user(make.org("enterprise"))
    services.publish_demand(enterprise_actor, services.create_demand(enterprise_actor, demand_input()).id)
    actor = make.user(institution)
    programme = services.create_programme(actor, programme_input())
    services.publish_programme(actor, programme.id)
    db.session.commit()
    assert db.session.get(Programme, programme.id).status == "published"
    # Suggestions follow from the outbox after the commit: that job failed and is retried.
    from chanjiao.models import OutboxMessage

    jobs = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "matching.after_publish")).all()
    assert jobs and all(j.state == "pending" and "index unreadable" in j.last_error for j in jobs)
