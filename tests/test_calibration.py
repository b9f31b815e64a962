"""Calibrated probabilities, match levels, the abstention figures and thin postings in the engine."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matching.cache import MemoryVectorStore
from matching.calibration import (
    CALIBRATION_INPUTS,
    LEVELS,
    ProbabilityCalibrator,
    brier_score,
    calibration_inputs,
    expected_calibration_error,
    mann_whitney_auroc,
)
from matching.evaluate import abstention_figures, choose_tau, product_order
from matching.pipeline import Matcher
from matching.ranking import MODEL_DIR
from matching.types import Demand, Module, Programme

from .matching_fixtures import DEMANDS, PROGRAMMES

# ---------------------------------------------------------------------------- metrics, by hand


def test_ece_by_hand() -> None:
    # Bins: [0, 0.1) holds 0.05 (y 0): |0 - 0.05| = 0.05; [0.1, 0.2) holds 0.15, 0.15 (y 1, 0):
    # |0.5 - 0.15| = 0.35; [0.9, 1.0] holds 0.95 and 1.0 (y 1, 1): |1 - 0.975| = 0.025.
    # ECE = 1/5 * 0.05 + 2/5 * 0.35 + 2/5 * 0.025 = 0.01 + 0.14 + 0.01 = 0.16.
    p = [0.05, 0.15, 0.15, 0.95, 1.0]
    y = [0, 1, 0, 1, 1]
    assert expected_calibration_error(p, y) == pytest.approx(0.16)
    assert expected_calibration_error([], []) == 0.0
    # A perfectly calibrated bin adds nothing.
    assert expected_calibration_error([0.5, 0.5], [1, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        expected_calibration_error([0.1], [0, 1])


def test_brier_by_hand() -> None:
    assert brier_score([0.0, 1.0, 0.5], [0, 1, 1]) == pytest.approx(0.25 / 3)


def test_auroc_by_hand_with_ties() -> None:
    # (0.9 > 0.5, 0.9 > 0.1, 0.5 = 0.5 -> 1/2, 0.5 > 0.1) for each of the two 0.5s:
    # 1 + 1 + 0.5 + 1 + 0.5 + 1 = 5 of 6 pairs.
    assert mann_whitney_auroc([0.9, 0.5, 0.5], [0.5, 0.1]) == pytest.approx(5 / 6)
    assert mann_whitney_auroc([1.0], [0.0]) == 1.0
    assert mann_whitney_auroc([0.0], [1.0]) == 0.0
    with pytest.raises(ValueError):
        mann_whitney_auroc([], [0.1])


def test_abstention_figures_by_hand() -> None:
    figures = abstention_figures(
        with_best=[0.9, 0.6, 0.4, 0.8],
        without_best=[0.3, 0.55, 0.2, 0.1],
        tau=0.5,
        shown=([0.05, 0.15, 0.15, 0.95, 1.0], [0, 1, 0, 1, 1]),
        shown_programme=([0.5, 0.5], [1, 0]),
    )
    assert figures["tau"] == 0.5
    assert figures["ece"] == pytest.approx(0.16)
    assert figures["ece_programme"] == 0.0
    assert figures["abstain_kept"] == 0.75  # 0.9, 0.6, 0.8 reach 0.5
    assert figures["abstain_caught"] == 0.75  # 0.3, 0.2, 0.1 stay below
    # 16 pairs; with 0.9 and 0.8 above all four: 8; 0.6 above all but none higher: 4;
    # 0.4 above 0.3, 0.2, 0.1: 3. 15 / 16.
    assert figures["abstain_auroc"] == pytest.approx(15 / 16, abs=1e-4)


def test_choose_tau_keeps_the_share_asked_for() -> None:
    with_best = np.linspace(0.3, 0.99, 100)
    tau = choose_tau(with_best, np.zeros(100), kept=0.92)
    assert (with_best >= tau).mean() >= 0.92
    assert (with_best >= tau + 0.01).mean() < 0.92


# ---------------------------------------------------------------------------- the estimator


def _synthetic(n_lists: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lists whose pairs are relevant with probability sigmoid(score - 2)."""
    rng = np.random.default_rng(seed)
    Z, y = [], []
    for _ in range(n_lists):
        s = rng.normal(0.0, 2.0, 20) + rng.normal(0.0, 1.0)
        Z.append(calibration_inputs(s))
        y.append(rng.random(20) < 1.0 / (1.0 + np.exp(-(s - 2.0))))
    return np.vstack(Z), np.concatenate(y).astype(float)


def test_calibrator_is_calibrated_on_held_out_lists() -> None:
    Z, y = _synthetic(seed=1)
    cal = ProbabilityCalibrator().fit(Z, y)
    Zt, yt = _synthetic(seed=2)
    p = cal.predict_proba(Zt)
    assert ((p >= 0) & (p <= 1)).all()
    assert expected_calibration_error(p, yt) < 0.03
    # Probability rises with the score within a list: ordering by it keeps the ranker's order.
    s = np.array([3.0, 1.0, -1.0, 0.5])
    probs = cal.probabilities(s)
    assert list(product_order(probs, s)) == [0, 1, 3, 2]


def test_calibrator_round_trip_and_no_pickle(tmp_path: Path) -> None:
    Z, y = _synthetic()
    cal = ProbabilityCalibrator(min_probability=0.4, level_thresholds={"high": 0.8, "good": 0.6}).fit(Z, y)
    cal.save(tmp_path, meta={"note": "test"})
    doc = json.loads((tmp_path / "calibrator.json").read_text(encoding="utf-8"))
    assert doc["inputs"] == list(CALIBRATION_INPUTS) and doc["min_probability"] == 0.4
    for f in tmp_path.glob("calibrator_*.npy"):
        np.load(f, allow_pickle=False)
    back = ProbabilityCalibrator.load(tmp_path)
    assert np.allclose(back.predict_proba(Z[:50]), cal.predict_proba(Z[:50]))
    assert back.meta_ == {"note": "test"}
    assert back.thresholds() == {"high": 0.8, "good": 0.6, "partial": 0.4}


def test_levels_follow_the_thresholds() -> None:
    Z, y = _synthetic()
    cal = ProbabilityCalibrator(min_probability=0.4, level_thresholds={"high": 0.8, "good": 0.6}).fit(Z, y)
    assert [cal.level(p) for p in (0.95, 0.8, 0.7, 0.6, 0.45, 0.4, 0.39, 0.0)] == [
        "high", "high", "good", "good", "partial", "partial", None, None]
    assert LEVELS == ("high", "good", "partial")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_probability": 0.0}, "strictly between"), ({"min_probability": 0.7}, "decrease"),
     ({"level_thresholds": {"high": 0.5, "good": 0.6}}, "decrease")],
)
def test_bad_thresholds_are_refused(kwargs: dict, message: str) -> None:
    Z, y = _synthetic()
    with pytest.raises(ValueError, match=message):
        ProbabilityCalibrator(**kwargs).fit(Z, y)


def test_fit_refuses_bad_labels() -> None:
    Z, _ = _synthetic(10)
    with pytest.raises(ValueError, match="0/1"):
        ProbabilityCalibrator().fit(Z, np.full(len(Z), 2.0))
    with pytest.raises(ValueError, match="relevant and non-relevant"):
        ProbabilityCalibrator().fit(Z, np.zeros(len(Z)))


def test_load_refuses_other_inputs(tmp_path: Path) -> None:
    Z, y = _synthetic()
    ProbabilityCalibrator().fit(Z, y).save(tmp_path)
    doc = json.loads((tmp_path / "calibrator.json").read_text(encoding="utf-8"))
    doc["inputs"] = ["score"]
    (tmp_path / "calibrator.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="other inputs"):
        ProbabilityCalibrator.load(tmp_path)


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_shipped_calibrators_load_with_their_tau(mode: str) -> None:
    cal = ProbabilityCalibrator.load(MODEL_DIR / mode)
    bounds = cal.thresholds()
    assert 0.0 < cal.min_probability == bounds["partial"] < bounds["good"] < bounds["high"] < 1.0
    assert cal.meta_["trained_on"] == "vocmatch" and cal.meta_["folds"] == 5


# ---------------------------------------------------------------------------- matches carry them


def test_matches_carry_probability_and_level_in_both_directions() -> None:
    m = Matcher(encoder=None)
    m.index_programmes(PROGRAMMES)
    m.index_demands(DEMANDS)
    tau = m.min_probability
    for d in DEMANDS:
        matches = m.match_demand(d, k=len(PROGRAMMES))
        probs = [x.probability for x in matches]
        assert probs == sorted(probs, reverse=True)
        for x in matches:
            assert (x.level is None) == (x.probability < tau)
            assert x.level == m.calibrator.level(x.probability)
    # A pair has the same probability seen from the programme's side.
    by_pair = {(x.demand_id, x.programme_id): x.probability for d in DEMANDS for x in m.match_demand(d, k=50)}
    for p in PROGRAMMES:
        for x in m.match_programme(p.id, k=50):
            assert by_pair[(x.demand_id, x.programme_id)] == x.probability


def test_level_is_read_from_the_shown_probability() -> None:
    # 0.49996 would show as 0.5 (4 decimals): it must then have the level of 0.5, not none.
    m = Matcher(encoder=None)
    m.index_programmes(PROGRAMMES)
    tau = m.min_probability
    for d in DEMANDS:
        for x in m.match_demand(d, k=20):
            assert x.probability == round(x.probability, 4)
            assert (x.level is not None) == (x.probability >= tau)


def test_bundles_take_only_offered_programmes() -> None:
    m = Matcher(encoder=None)
    m.index_programmes(PROGRAMMES)
    for d in DEMANDS:
        offered = {x.programme_id for x in m.match_demand(d, k=50) if x.level is not None}
        for b in m.bundles(d):
            assert set(b.programme_ids) <= offered


def test_conditions_are_no_gap_and_no_bundle_requirement() -> None:
    demand = Demand(
        id="d-cond",
        title="低压电工",
        duties=("负责配电柜巡检维护", "按图纸安装照明线路"),
        requirements=("两年以上相关工作经验", "能适应倒班", "持有低压电工作业证"),
    )
    m = Matcher(encoder=None)
    m.index_programmes(PROGRAMMES)
    matches = m.match_demand(demand, k=5)
    for x in matches:
        e = x.explanation
        assert e is not None
        assert set(e.conditions) == {"两年以上相关工作经验", "能适应倒班"}
        listed = {c.requirement for c in (*e.covered, *e.gaps)}
        assert "持有低压电工作业证" in listed and not listed & set(e.conditions)
    for b in m.bundles(demand):
        assert not set(b.missing + b.covered) & {"两年以上相关工作经验", "能适应倒班"}


# ---------------------------------------------------------------------------- thin postings


THIN_PROGRAMMES = [Programme(id="p-thin-1", title="钢琴调律"), Programme(id="p-thin-2", title="电梯维修")]


@pytest.mark.slow
def test_title_only_catalogue_with_a_dense_encoder(minilm_encoder: object) -> None:
    # No programme has a skill, module, outcome or certificate: no evidence unit at all. This
    # used to raise IndexError in the pair features.
    m = Matcher(encoder=minilm_encoder, store=MemoryVectorStore(), require_chinese=False)  # type: ignore[arg-type]
    m.index_programmes(THIN_PROGRAMMES)
    demand = Demand(id="d-1", title="电梯修理工", duties=("负责电梯日常维护保养",))
    m.index_demands([demand, Demand(id="d-2", title="钢琴调律师")])
    matches = m.match_demand(demand, k=5)
    assert {x.programme_id for x in matches} == {"p-thin-1", "p-thin-2"}
    assert all(0.0 <= x.probability <= 1.0 for x in matches)
    assert all(c.evidence is None for x in matches for c in x.explanation.gaps)
    assert m.match_programme("p-thin-2", k=5)  # the other direction
    assert m.bundles(demand) == []


def test_title_only_demand_and_programme_lexical() -> None:
    m = Matcher(encoder=None)
    m.index_programmes([*PROGRAMMES, *THIN_PROGRAMMES])
    demand = Demand(id="d-title", title="钢琴调律师")
    m.index_demands([demand, *DEMANDS])
    matches = m.match_demand(demand, k=3)
    assert matches and all(x.explanation.covered == () and x.explanation.gaps == () for x in matches)
    assert m.bundles(demand) == []
    m.match_programme("p-thin-1", k=3)


def test_whitespace_only_fields_are_empty() -> None:
    p = Programme(id="p-ws", title="电工", description="   ", modules=(Module("  "),), skills=("  ",))
    assert p.description == "" and p.skills == ()
    with pytest.raises(Exception, match="title"):
        Demand(id="d-ws", title="   ")
