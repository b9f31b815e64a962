"""`flask matching train` and `rollback`: retraining the ranker and refitting the probability
calibrator from staff decisions; every version carries its calibrator."""
from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from chanjiao import matchmaking
from chanjiao.extensions import db
from chanjiao.models import AuditLog, Pairing, RankerVersion
from matching.calibration import ProbabilityCalibrator
from matching.ranking import MODEL_DIR, load_ranker
from matching.retrain import RetrainReport

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
    catalogue = matchmaking.live_catalogue()
    matcher, ranker, version = catalogue.matcher, catalogue.matcher.ranker, catalogue.version
    runner.invoke(args=["matching", "train", "--force"])
    after = matchmaking.live_catalogue()
    # Swapped in place: the indexes stay, the model is the newly active one.
    assert after.version > version and after.matcher is matcher
    assert after.matcher.ranker is not ranker
    active = db.session.scalar(select(RankerVersion).where(RankerVersion.active.is_(True)))
    assert np.array_equal(after.matcher.ranker.coef_, matchmaking.ranker_from_files(active.files).coef_)


def test_too_few_decisions_are_refused_and_nothing_is_stored(app, runner, decisions):
    for pairing in db.session.scalars(select(Pairing)).all()[:10]:
        db.session.delete(pairing)
    db.session.commit()
    result = runner.invoke(args=["matching", "train"])
    assert result.exit_code != 0
    assert "26 decisions; at least 30 are needed" in result.output
    assert db.session.scalar(select(RankerVersion)) is None


# --------------------------------------------------------------------------- the calibrator

VARIANTS = (("", "培训", 0), ("熟练", "实操班", 1), ("资深", "技能提升班", 0))


@pytest.fixture
def many_decisions(app, make):
    """18 demands and 18 programmes, three of each per trade: 324 decisions, the 54 same-trade
    pairs accepted."""
    enterprise, institution = make.org("enterprise"), make.org("institution")
    demands, programmes = [], []
    for topic, (role, duties, modules) in TOPICS.items():
        for prefix, suffix, first in VARIANTS:
            demands.append((topic, make.demand(
                enterprise, title=f"{prefix}{role}", occupation=role, description="",
                duties=duties[first:] + duties[:first], requirements=[], skills=[])))
            programmes.append((topic, make.programme(
                institution, title=f"{topic}{suffix}", description="", outcomes=[],
                modules=[{"name": m, "hours": 20} for m in modules[first:] + modules[:first]])))
    staff = make.user()
    for d_topic, demand in demands:
        for p_topic, programme in programmes:
            db.session.add(Pairing(
                demand_id=demand.id, programme_id=programme.id,
                status="accepted" if d_topic == p_topic else "rejected", decided_by_id=staff.id,
            ))
    db.session.commit()
    return demands, programmes


def _files_of(calibrator: ProbabilityCalibrator) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        calibrator.save(tmp, meta=getattr(calibrator, "meta_", {}))
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir()}


def _calibrator_files(files: dict[str, str]) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in files.items() if name.startswith("calibrator")}


def _shipped_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (MODEL_DIR / "lexical").glob("calibrator*")}


def _live_calibrator_files() -> dict[str, bytes]:
    return _files_of(matchmaking.live_catalogue().matcher.calibrator)


def _overconfident(shipped: ProbabilityCalibrator) -> ProbabilityCalibrator:
    """A calibrator that calls every pair relevant (p ~ 0.98): badly calibrated on any data."""
    bad = ProbabilityCalibrator(isotonic=False, min_probability=shipped.min_probability,
                                level_thresholds={"high": 0.8, "good": 0.65})
    bad.mean_, bad.scale_ = np.zeros(2), np.ones(2)
    bad.coef_, bad.intercept_ = np.array([1e-3, 0.0]), 4.0
    bad.iso_x_ = bad.iso_y_ = np.zeros(0)
    bad.meta_ = {"made_by": "test"}
    return bad


@pytest.fixture
def bad_version(app):
    """An active version: the shipped ranker with an overconfident calibrator."""
    shipped = ProbabilityCalibrator.load(MODEL_DIR / "lexical")
    ranker = load_ranker("lexical")
    version = RankerVersion(mode="lexical", encoder="lexical", active=True, decisions=0,
                            files=matchmaking.ranker_to_files(ranker, dict(ranker.meta_), calibrator=_overconfident(shipped)))
    db.session.add(version)
    db.session.commit()
    return version


def _ece(output: str) -> tuple[float, float]:
    line = next(line for line in output.splitlines() if line.strip().startswith("ece"))
    parts = line.split()
    return float(parts[parts.index("before") + 1]), float(parts[parts.index("after") + 1])


def test_fewer_than_200_decisions_keep_the_calibrator_and_say_why(app, runner, decisions):
    assert matchmaking.active_calibrator() is None
    result = runner.invoke(args=["matching", "train", "--force"])
    assert result.exit_code == 0, result.output
    assert "calibrator not refitted: 36 decisions; at least 200 are needed to refit the calibrator" in result.output
    assert "ece" not in result.output
    version = db.session.scalar(select(RankerVersion))
    # The version carries the calibrator in use (the shipped one), byte for byte.
    assert _calibrator_files(version.files) == _shipped_files()
    assert _live_calibrator_files() == _shipped_files()


def test_too_few_of_one_outcome_keep_the_calibrator_and_say_why(app, runner, many_decisions):
    accepted = db.session.scalars(select(Pairing).where(Pairing.status == "accepted")).all()
    for pairing in accepted[:10]:
        pairing.status, pairing.decision_reason = "rejected", "价格不合适"
    db.session.commit()
    result = runner.invoke(args=["matching", "train"])
    assert result.exit_code == 0, result.output
    assert ("calibrator not refitted: 44 accepted and 280 rejected decisions; at least 50 of each are needed"
            in result.output)
    assert _calibrator_files(db.session.scalar(select(RankerVersion)).files) == _shipped_files()


def _tau_and_levels(calibrator: ProbabilityCalibrator) -> tuple[float, dict[str, float]]:
    return calibrator.min_probability, calibrator.thresholds()


def test_a_better_calibrator_is_switched_to_with_the_old_tau(app, runner, many_decisions, bad_version):
    old = matchmaking.active_calibrator()
    result = runner.invoke(args=["matching", "train"])
    assert result.exit_code == 0, result.output
    assert "calibrator refitted on" in result.output and "held back" in result.output
    before, after = _ece(result.output)
    assert before > 0.5 and after < before  # the overconfident one is far off
    switched = next(line for line in result.output.splitlines() if "the new calibrator" in line)
    assert "is now in use" in switched and "(forced)" not in switched
    db.session.expire_all()
    active = db.session.scalar(select(RankerVersion).where(RankerVersion.active.is_(True)))
    assert active.id != bad_version.id and active.previous_id == bad_version.id
    new = matchmaking.active_calibrator()
    assert new.meta_["fitted_on"] == "staff decisions"
    assert (new.meta_["ece_held_out"], new.meta_["ece_held_out_previous"]) == (after, before)
    assert _tau_and_levels(new) == _tau_and_levels(old)
    assert _live_calibrator_files() == _calibrator_files(active.files)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "ranker.train"))
    assert entry.details["calibrator_switched"] is True and entry.details["ece_after"] == after


def test_a_calibrator_that_is_not_better_is_kept_unless_forced(app, runner, many_decisions):
    first = runner.invoke(args=["matching", "train", "--force"])
    assert first.exit_code == 0, first.output
    v1 = db.session.scalar(select(RankerVersion).where(RankerVersion.active.is_(True)))
    in_use = _calibrator_files(v1.files)
    # Same decisions, same split, same ranker: the refit is the same calibrator, no better.
    second = runner.invoke(args=["matching", "train"])
    assert second.exit_code == 0, second.output
    before, after = _ece(second.output)
    assert after >= before
    assert "the new calibrator is not better on the held-back decisions" in second.output
    db.session.expire_all()
    v2 = db.session.scalars(select(RankerVersion).order_by(RankerVersion.id.desc())).first()
    assert v2.id != v1.id and _calibrator_files(v2.files) == in_use  # kept, stored with the new version
    assert _live_calibrator_files() == in_use
    forced = runner.invoke(args=["matching", "train", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "the new calibrator is now in use" in forced.output and "(forced)" in forced.output


def test_calibrator_switched_without_the_ranker_gets_a_version_of_its_own(app, runner, many_decisions,
                                                                         bad_version, monkeypatch):
    monkeypatch.setattr(RetrainReport, "improved", property(lambda self: False))
    result = runner.invoke(args=["matching", "train"])
    assert result.exit_code == 0, result.output
    assert "scores worse and was kept inactive" in result.output
    assert "the new calibrator is now in use" in result.output
    db.session.expire_all()
    trained, recalibrated = db.session.scalars(
        select(RankerVersion).where(RankerVersion.id != bad_version.id).order_by(RankerVersion.id)).all()
    assert (trained.active, recalibrated.active) == (False, True)
    assert trained.previous_id == recalibrated.previous_id == bad_version.id
    # The ranker in use stays, now with the new calibrator; the trained one keeps the old calibrator.
    ranker_files = {n: v for n, v in bad_version.files.items() if n.startswith("ranker")}
    assert {n: v for n, v in recalibrated.files.items() if n.startswith("ranker")} == ranker_files
    assert _calibrator_files(trained.files) == _calibrator_files(bad_version.files)
    assert matchmaking.active_calibrator().meta_["fitted_on"] == "staff decisions"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "ranker.recalibrate")) is not None


def test_rollback_restores_ranker_and_calibrator_together(app, runner, many_decisions, bad_version):
    result = runner.invoke(args=["matching", "train", "--force"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    trained = db.session.scalar(select(RankerVersion).where(RankerVersion.active.is_(True)))
    assert _live_calibrator_files() == _calibrator_files(trained.files) != _calibrator_files(bad_version.files)

    result = runner.invoke(args=["matching", "rollback"])
    assert result.exit_code == 0, result.output
    assert f"now using version {bad_version.id} (its ranker and calibrator)" in result.output
    db.session.expire_all()
    assert matchmaking.active_ranker()[0] == bad_version.id
    assert _live_calibrator_files() == _calibrator_files(bad_version.files)
    live_ranker = matchmaking.live_catalogue().matcher.ranker
    assert np.array_equal(live_ranker.coef_, matchmaking.ranker_from_files(bad_version.files).coef_)

    result = runner.invoke(args=["matching", "rollback"])
    assert result.exit_code == 0, result.output
    assert "now using the ranker shipped with the engine and its calibrator" in result.output
    assert matchmaking.active_calibrator() is None
    assert _live_calibrator_files() == _shipped_files()
    assert np.array_equal(matchmaking.live_catalogue().matcher.ranker.coef_, load_ranker("lexical").coef_)


def test_a_version_without_a_calibrator_rolls_back_to_the_shipped_one(app, runner, decisions):
    ranker = load_ranker("lexical")
    old = RankerVersion(mode="lexical", encoder="lexical", active=True, decisions=30,
                        files=matchmaking.ranker_to_files(ranker, dict(ranker.meta_)))
    db.session.add(old)
    db.session.commit()
    assert runner.invoke(args=["matching", "train", "--force"]).exit_code == 0
    result = runner.invoke(args=["matching", "rollback"])
    assert f"version {old.id} (its ranker, with the calibrator shipped with the engine)" in result.output
    assert _live_calibrator_files() == _shipped_files()


def test_help_says_decisions_are_a_biased_sample(runner):
    result = runner.invoke(args=["matching", "train", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "biased sample" in text and "at least 200" in text and "ECE" in text and "--force" in text
