"""One unit of work per request and per CLI command: a refusal, a failure at the commit or a
failure midway writes nothing, and nested units commit only at the outer level."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from chanjiao import search
from chanjiao.curation import services as curation
from chanjiao.errors import InvalidTransition, ValidationFailed
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Demand, Pairing, Skill
from chanjiao.postings import services as postings
from chanjiao.uow import in_unit_of_work, run, unit_of_work

DEMAND = {
    "title": "养老护理员",
    "occupation": "养老护理员",
    "description": "为机构内失能老人提供生活照料与康复辅助。",
    "duties": "协助老人进食、清洁与翻身",
    "requirements": "持健康证",
    "skills": "养老护理，失能照护",
    "skill_level": "L4",
    "headcount": "8",
    "district": "常营地区",
    "location": "常营民族家园养老驿站",
    "mode": "blended",
    "desired_start": "2026-09-01",
    "budget_per_person": "2500",
}


@pytest.fixture
def member(make, login):
    user = make.user(make.org("enterprise"), "org_member")
    login(user)
    return user


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def committed_count(table: str) -> int:
    """Rows another connection sees: what is committed, whatever this session holds."""
    with db.engine.connect() as conn:
        return conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))


# --------------------------------------------------------------------------- (a) views


def test_a_refusal_after_a_flush_leaves_nothing_in_the_database(client, member, monkeypatch):
    real_create = postings.create_demand
    flushed = {}

    def create_then_refuse(actor, data):
        demand = real_create(actor, data)  # flushes the demand, its new tags and its index
        flushed["demand"] = demand.id is not None and count(Skill) == 2
        raise ValidationFailed("预算不合理。", field="budget_per_person")

    monkeypatch.setattr(postings, "create_demand", create_then_refuse)
    response = client.post("/my/demands/new", data=DEMAND)
    assert response.status_code == 400
    assert "预算不合理。" in response.get_data(as_text=True)
    assert flushed["demand"], "the real service should have flushed before the refusal"
    assert count(Demand) == 0 and count(Skill) == 0 and count(AuditLog) == 0
    assert search.ranked_ids("demand", "养老 护理") == []


def test_a_refused_button_writes_nothing_and_flashes_the_message(client, member, make, monkeypatch):
    demand = make.demand(member.organisation, status="draft")
    real_publish = postings.publish_demand

    def publish_then_refuse(actor, demand_id):
        real_publish(actor, demand_id)
        db.session.flush()
        raise InvalidTransition("此刻不能发布。")

    monkeypatch.setattr(postings, "publish_demand", publish_then_refuse)
    response = client.post(f"/my/demands/{demand.id}/publish", follow_redirects=True)
    assert response.status_code == 200 and "此刻不能发布。" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Demand, demand.id).status == "draft"
    assert count(AuditLog, AuditLog.action == "demand.publish") == 0


# --------------------------------------------------------------------------- (b) nesting


def test_a_nested_unit_commits_nothing_and_the_outer_failure_undoes_it(app):
    with pytest.raises(RuntimeError), unit_of_work():
        with unit_of_work():
            db.session.add(Skill(name="焊工", synonyms=[]))
        db.session.flush()
        assert in_unit_of_work() and count(Skill) == 1
        assert committed_count("skill") == 0, "the inner unit must not commit"
        raise RuntimeError("after the inner unit")
    assert not in_unit_of_work()
    assert count(Skill) == 0 and committed_count("skill") == 0


def test_the_outer_unit_commits_the_inner_units_writes(app):
    with unit_of_work():
        run(lambda: db.session.add(Skill(name="焊工", synonyms=[])))
        db.session.add(Skill(name="电工", synonyms=[]))
    assert committed_count("skill") == 2


def test_an_inner_failure_caught_inside_the_outer_unit_does_not_roll_it_back(app):
    # Inner units join the outer transaction: only the outer one decides.
    with unit_of_work():
        db.session.add(Skill(name="焊工", synonyms=[]))
        with pytest.raises(ValueError), unit_of_work():
            raise ValueError("refused")
    assert committed_count("skill") == 1


# --------------------------------------------------------------------------- (c) the commit


def test_an_integrity_error_at_the_commit_is_the_409_form_message(client, member, make, monkeypatch):
    make.skill("电工")
    real_create = postings.create_demand

    def create_and_clash(actor, data):
        demand = real_create(actor, data)
        # Someone else created this tag meanwhile: the clash shows only when the unit commits.
        db.session.add(Skill(name="电工", synonyms=[]))
        return demand

    monkeypatch.setattr(postings, "create_demand", create_and_clash)
    response = client.post("/my/demands/new", data=DEMAND)
    assert response.status_code == 409
    assert "保存时与其他人的修改冲突，请重新提交。" in response.get_data(as_text=True)
    assert count(Demand) == 0 and committed_count("demand") == 0
    assert [s.name for s in db.session.scalars(select(Skill))] == ["电工"]
    assert count(AuditLog) == 0


# --------------------------------------------------------------------------- (d) CLI commands


def test_a_command_that_fails_midway_writes_nothing(app, runner, make, monkeypatch):
    enterprise = make.org("enterprise", industry="new_energy_vehicles")
    institution = make.org("institution")
    make.demand(enterprise)
    make.demand(enterprise, title="新能源汽车维修工")
    make.programme(institution)
    real_refresh = curation._refresh
    pairings_after = []

    def refresh_then_fail(demand, k, counts):
        if pairings_after:
            raise RuntimeError("engine down on the second demand")
        real_refresh(demand, k, counts)
        db.session.flush()
        pairings_after.append(count(Pairing))

    monkeypatch.setattr(curation, "_refresh", refresh_then_fail)
    result = runner.invoke(args=["matching", "suggest"])
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    assert pairings_after[0] >= 1, "the first demand should have got pairings"
    db.session.rollback()
    assert count(Pairing) == 0 and committed_count("pairing") == 0


def test_a_command_that_succeeds_commits_once(app, runner, make):
    result = runner.invoke(args=["seed-skills"])
    assert result.exit_code == 0, result.output
    assert committed_count("skill") > 0
