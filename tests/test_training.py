"""`flask matching train` and `rollback`: retraining the ranker from staff decisions."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from chanjiao import matchmaking
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Pairing, RankerVersion

TOPICS = {
    "养老护理": ("养老护理员", ["协助失能老人进食和洗浴", "为卧床老人定时翻身"], ["老年人生活照料", "压疮预防"]),
    "中式烹调": ("中餐厨师", ["热菜烹制与出品", "原料初加工与刀工"], ["刀工与火候", "川菜热菜制作"]),
    "低压电工作业": ("维修电工", ["低压配电线路检修", "照明与动力设备安装"], ["低压电工安全规程", "电气线路安装"]),
    "直播运营": ("直播运营专员", ["策划直播脚本", "直播间数据复盘"], ["直播脚本策划", "直播数据分析"]),
    "物业管理": ("物业管理员", ["处理业主报修与投诉", "巡查公共设施"], ["物业服务规范", "客户投诉处理"]),
    "汽车维修": ("汽车维修工", ["发动机故障诊断", "底盘保养与维修"], ["发动机检修", "汽车底盘维修"]),
}


@pytest.fixture
def decisions(app, make):
    """Six demands and six programmes on six trades; staff accepted the same-trade pairs and
    rejected the others (36 decisions)."""
    enterprise, institution = make.org("enterprise"), make.org("institution")
    demands, programmes = {}, {}
    for topic, (role, duties, modules) in TOPICS.items():
        demands[topic] = make.demand(enterprise, title=role, occupation=role, description="", duties=duties,
                                     requirements=[], skills=[])
        programmes[topic] = make.programme(
            institution, title=f"{topic}培训", description="", outcomes=[],
            modules=[{"name": m, "hours": 20} for m in modules],
        )
    staff = make.user()
    for d_topic, demand in demands.items():
        for p_topic, programme in programmes.items():
            db.session.add(Pairing(
                demand_id=demand.id, programme_id=programme.id,
                status="accepted" if d_topic == p_topic else "rejected", decided_by_id=staff.id,
            ))
    db.session.commit()
    return demands, programmes


def test_train_reports_metrics_and_stores_a_version(app, runner, decisions):
    result = runner.invoke(args=["matching", "train"])
    assert result.exit_code == 0, result.output
    assert "36 decisions on 6 demands" in result.output
    assert "ndcg@10" in result.output and "before" in result.output and "after" in result.output
    version = db.session.scalar(select(RankerVersion))
    assert version.decisions == 36
    assert set(version.metrics_before) == {"auc", "ndcg@10"}
    improved = (version.metrics_after["ndcg@10"], version.metrics_after["auc"]) >= (
        version.metrics_before["ndcg@10"], version.metrics_before["auc"])
    assert version.active is improved
    # The stored files rebuild a working ranker (JSON + arrays, no pickle).
    assert all(not name.endswith((".pkl", ".pickle")) for name in version.files)
    ranker = matchmaking.ranker_from_files(version.files)
    assert ranker.coef_.shape[0] == ranker.n_features_in_
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "ranker.train")) is not None


def test_forced_version_goes_live_and_rollback_restores_the_previous(app, runner, decisions):
    first = runner.invoke(args=["matching", "train", "--force"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["matching", "train", "--force"])
    assert second.exit_code == 0, second.output
    v1, v2 = db.session.scalars(select(RankerVersion).order_by(RankerVersion.id)).all()
    assert (v1.active, v2.active, v2.previous_id) == (False, True, v1.id)
    assert matchmaking.active_ranker()[0] == v2.id

    result = runner.invoke(args=["matching", "rollback"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert matchmaking.active_ranker()[0] == v1.id
    result = runner.invoke(args=["matching", "rollback"])
    assert "the ranker shipped with the engine" in result.output
    assert matchmaking.active_ranker() == (None, None)
    refused = runner.invoke(args=["matching", "rollback"])
    assert refused.exit_code != 0 and "no trained ranker is active" in refused.output


def test_live_matcher_switches_to_the_active_version(app, runner, decisions):
    demands, _ = decisions
    before = matchmaking.live_catalogue()
    runner.invoke(args=["matching", "train", "--force"])
    after = matchmaking.live_catalogue()
    assert after is not before
    assert after.matcher.ranker is not before.matcher.ranker


def test_too_few_decisions_are_refused_and_nothing_is_stored(app, runner, decisions):
    for pairing in db.session.scalars(select(Pairing)).all()[:10]:
        db.session.delete(pairing)
    db.session.commit()
    result = runner.invoke(args=["matching", "train"])
    assert result.exit_code != 0
    assert "26 decisions; at least 30 are needed" in result.output
    assert db.session.scalar(select(RankerVersion)) is None
