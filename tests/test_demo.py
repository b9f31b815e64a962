"""The demo dataset and the ``seed-demo`` / ``init-instance`` commands."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from chanjiao import choices, create_app, search
from chanjiao.demo.commands import database_is_empty
from chanjiao.demo.loader import ADMIN_EMAIL, DEMO_PASSWORD, STAFF_EMAIL, demo_credit_code
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Demand, Organisation, Programme, Skill, User
from chanjiao.skill_vocabulary import VOCABULARY
from chanjiao.skills import normalise_skill_name
from chanjiao.validators import credit_code_problem

ISSUE_INDUSTRIES = {
    "finance", "internet", "logistics", "hospitality", "elderly_care", "property",
    "new_energy_vehicles", "cultural_creative", "ecommerce",
}


def _table_counts() -> dict[str, int]:
    return {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Organisation, User, Demand, Programme, Skill, AuditLog)
    }


@pytest.fixture
def seeded(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    return result


# --- the vocabulary -------------------------------------------------------------------------

def test_vocabulary_size_and_no_collisions():
    assert 150 <= len(VOCABULARY) <= 300
    owner: dict[str, str] = {}
    for tag, synonyms in VOCABULARY:
        for name in (tag, *synonyms):
            name = normalise_skill_name(name)
            assert name, f"empty name under {tag}"
            assert len(name) <= 50
            assert name not in owner, f"{name!r} belongs to both {owner.get(name)} and {tag}"
            owner[name] = tag


def test_demo_credit_codes_are_valid_and_distinct():
    codes = {demo_credit_code("91110105MA0", n) for n in range(1, 200)}
    assert len(codes) == 199
    assert all(credit_code_problem(code) is None for code in codes)


# --- seed-demo ------------------------------------------------------------------------------

def test_seed_demo_loads_the_required_volume(seeded):
    orgs = db.session.scalars(select(Organisation)).all()
    enterprises = [o for o in orgs if o.kind == "enterprise"]
    institutions = [o for o in orgs if o.kind == "institution"]
    assert len(enterprises) >= 25
    assert len(institutions) >= 15
    assert {o.category for o in institutions} == set(choices.INSTITUTION_CATEGORIES)
    assert {o.industry for o in enterprises} >= ISSUE_INDUSTRIES
    assert db.session.scalar(select(func.count()).select_from(Demand)) >= 60
    assert db.session.scalar(select(func.count()).select_from(Programme)) >= 120
    assert "演示数据已载入" in seeded.output and STAFF_EMAIL in seeded.output


def test_statuses_membership_and_approval_history(seeded):
    orgs = db.session.scalars(select(Organisation)).all()
    statuses = Counter(o.status for o in orgs)
    assert statuses["pending"] == 2 and statuses["suspended"] == 1
    assert statuses["approved"] == len(orgs) - 3
    suspended = next(o for o in orgs if o.status == "suspended")
    assert suspended.status_reason and suspended.status_decided_at is not None
    founders = [o for o in orgs if o.founding_member]
    assert len(founders) == 13 and all(o.kind == "institution" and o.member_since for o in founders)

    staff = db.session.scalar(select(User).where(User.email == STAFF_EMAIL))
    approvals = db.session.scalars(select(AuditLog).where(AuditLog.action == "organisation.approve")).all()
    assert len(approvals) == statuses["approved"] + statuses["suspended"]
    assert all(entry.actor_id == staff.id for entry in approvals)
    suspensions = db.session.scalars(select(AuditLog).where(AuditLog.action == "organisation.suspend")).all()
    assert [(s.object_id, s.reason) for s in suspensions] == [(suspended.id, suspended.status_reason)]

    # Organisations that may not publish have nothing public.
    for org in orgs:
        if not org.can_publish:
            assert all(d.status != "open" for d in org.demands)
            assert all(p.status != "published" for p in org.programmes)
    demand_statuses = Counter(db.session.scalars(select(Demand.status)))
    programme_statuses = Counter(db.session.scalars(select(Programme.status)))
    assert demand_statuses["open"] > demand_statuses["draft"] + demand_statuses["closed"] > 0
    assert demand_statuses["draft"] > 0 and demand_statuses["closed"] > 0
    assert programme_statuses["published"] > programme_statuses["draft"] > 0


def test_credit_codes_districts_and_codes_are_valid(seeded):
    orgs = db.session.scalars(select(Organisation)).all()
    codes = [o.credit_code for o in orgs]
    assert len(set(codes)) == len(codes)
    assert all(credit_code_problem(code) is None for code in codes)
    for org in orgs:
        assert org.district in choices.CHAOYANG_AREAS
        if org.kind == "enterprise":
            assert org.industry in choices.INDUSTRIES and org.category is None
        else:
            assert org.category in choices.INSTITUTION_CATEGORIES and org.industry is None
    for demand in db.session.scalars(select(Demand)):
        assert demand.district in choices.CHAOYANG_AREAS
        assert demand.skill_level in choices.SKILL_LEVELS
        assert demand.mode in choices.TRAINING_MODES
        assert demand.status in choices.DEMAND_STATUSES
    for programme in db.session.scalars(select(Programme)):
        assert programme.district in choices.CHAOYANG_AREAS
        assert programme.level in choices.SKILL_LEVELS
        assert programme.mode in choices.TRAINING_MODES
        assert programme.certificate_kind in choices.CERTIFICATE_KINDS
        assert programme.status in choices.PROGRAMME_STATUSES


def test_every_demand_is_complete(seeded):
    demands = db.session.scalars(select(Demand)).all()
    for demand in demands:
        assert demand.title and demand.occupation and demand.description, demand
        assert demand.duties and demand.requirements, demand
        assert demand.skills, demand
        assert demand.headcount > 0 and demand.budget_per_person > 0
        assert demand.desired_start is not None and 2026 <= demand.desired_start.year <= 2027
        assert demand.organisation.kind == "enterprise"
        assert demand.created_by is not None and demand.created_by.organisation_id == demand.organisation_id
        assert (demand.published_at is not None) == (demand.status != "draft")


def test_every_programme_is_complete(seeded):
    programmes = db.session.scalars(select(Programme)).all()
    for programme in programmes:
        assert programme.modules and programme.outcomes and programme.skills, programme
        hours = [module["hours"] for module in programme.modules]
        assert all(isinstance(h, int) and h > 0 for h in hours), programme
        assert sum(hours) <= programme.total_hours, programme
        if programme.certificate_kind != "none":
            assert programme.certificate_name, programme
        else:
            assert programme.certificate_name == ""
        assert programme.capacity > 0 and programme.fee >= 0 and programme.schedule
        assert programme.organisation.kind == "institution"
    assert any(p.subsidy_eligible for p in programmes) and not all(p.subsidy_eligible for p in programmes)
    assert {p.certificate_kind for p in programmes} == set(choices.CERTIFICATE_KINDS)
    assert {p.mode for p in programmes} == set(choices.TRAINING_MODES)


def test_postings_use_the_vocabulary_and_pair_up(seeded):
    vocabulary_tags = {normalise_skill_name(tag) for tag, _ in VOCABULARY}
    assert set(db.session.scalars(select(Skill.name))) == vocabulary_tags  # nothing ad hoc
    demands = db.session.scalars(select(Demand).where(Demand.status == "open")).all()
    programmes = db.session.scalars(select(Programme).where(Programme.status == "published")).all()
    taught = [{s.id for s in p.skills} for p in programmes]
    covered = 0
    for demand in demands:
        needed = {s.id for s in demand.skills}
        if any(needed & skills for skills in taught):
            covered += 1
    # Nearly every open demand has relevant programmes; the few without are deliberate gaps.
    assert covered >= len(demands) - 3
    # Some demands need a bundle: no single programme teaches all their skills.
    assert any(
        not any({s.id for s in d.skills} <= skills for skills in taught) for d in demands
    )
    # Some demands are fully covered by one programme.
    assert any(any({s.id for s in d.skills} <= skills for skills in taught) for d in demands)
    # Some programmes answer no current demand at all.
    wanted = {s.id for d in demands for s in d.skills}
    assert any(not (skills & wanted) for skills in taught)
    # Tags typed as synonyms were stored as their canonical tag.
    demand = db.session.scalar(select(Demand).where(Demand.title == "中餐热菜厨师"))
    assert [s.name for s in demand.skills] == ["中式烹调", "餐饮食品安全"]  # typed as 中餐厨师


def test_staff_can_log_in_with_the_demo_password(seeded, client):
    response = client.post("/login", data={"email": STAFF_EMAIL, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    roles = dict(db.session.execute(select(User.email, User.role)).all())
    assert roles[STAFF_EMAIL] == "staff" and roles[ADMIN_EMAIL] == "admin"
    org_admins = db.session.scalars(select(User).where(User.role == "org_admin")).all()
    assert len(org_admins) == db.session.scalar(select(func.count()).select_from(Organisation))
    assert all(u.email.endswith("@chanjiao.demo") and u.organisation_id for u in org_admins)
    client.post("/logout")
    response = client.post("/login", data={"email": "org01@chanjiao.demo", "password": DEMO_PASSWORD})
    assert response.status_code == 302


def test_search_finds_demo_postings(seeded):
    assert search.ranked_ids("programme", "养老护理")
    assert search.ranked_ids("demand", "养老护理")
    assert search.ranked_ids("programme", "新能源汽车 维修")
    assert search.ranked_ids("demand", "直播")


def test_second_run_refuses_and_changes_nothing(seeded, runner):
    before = _table_counts()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert "空数据库" in result.output
    db.session.rollback()
    assert _table_counts() == before


def test_seed_demo_refuses_when_accounts_exist(app, runner, make):
    make.user()
    assert not database_is_empty()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code != 0
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 0


# --- init-instance --------------------------------------------------------------------------

def test_init_instance_seeds_an_empty_database_and_keeps_data(tmp_path, monkeypatch):
    # A separate app on a fresh SQLite file: init-instance runs the real migrations.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CHANJIAO_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "x",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
            "MATCHING_ENCODER": "lexical",  # encoding the whole demo set is the reindex test's job
        }
    )
    runner = app.test_cli_runner()
    # The test runner invokes app.cli directly; unlike ``flask``, it pushes no app context.
    try:
        with app.app_context():
            result = runner.invoke(args=["init-instance"])
            assert result.exit_code == 0, result.output
            assert "演示数据已载入" in result.output
            first = _table_counts()
            db.session.remove()
        assert first["Organisation"] >= 40 and first["Programme"] >= 120

        with app.app_context():
            result = runner.invoke(args=["init-instance"])
            assert result.exit_code == 0, result.output
            assert "演示数据已载入" not in result.output
            assert _table_counts() == first
            db.session.remove()
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
