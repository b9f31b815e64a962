"""matching.retrain's calibrator refit: scores as the product computes them, the minimum counts,
the demand-grouped hold-out and the keep-or-switch rule (lexical, no encoder needed)."""
from __future__ import annotations

import numpy as np
import pytest

from matching import InputError, Matcher, Programme
from matching.calibration import ProbabilityCalibrator
from matching.ranking import MODEL_DIR, load_ranker
from matching.retrain import (
    RecalibrationReport,
    decision_calibration_inputs,
    refit_calibrator,
    scores_in_list,
)
from matching.types import Demand

TRADES = ["养老护理", "中式烹调", "低压电工", "直播运营", "物业管理", "汽车维修"]
LEVELS = ["初级", "中级", "高级"]


@pytest.fixture(scope="module")
def setting():
    programmes = [
        Programme(id=f"p{t}{v}", title=f"{trade}{level}培训", skills=(trade,),
                  modules=({"name": f"{trade}实务{level}", "hours": 20},))
        for t, trade in enumerate(TRADES) for v, level in enumerate(LEVELS)
    ]
    demands = [
        Demand(id=f"d{t}{v}", title=f"{level}{trade}岗位", skills=(trade,), duties=(f"从事{trade}工作",))
        for t, trade in enumerate(TRADES) for v, level in enumerate(LEVELS)
    ]
    matcher = Matcher(None)
    matcher.index_programmes(programmes)
    # Same trade: accepted (54); other trades: rejected (270).
    decisions = [(d.id, p.id, int(d.id[1] == p.id[1])) for d in demands for p in programmes]
    return matcher, demands, decisions


def shipped() -> ProbabilityCalibrator:
    return ProbabilityCalibrator.load(MODEL_DIR / "lexical")


def test_scores_in_list_are_the_scores_the_matcher_shows(setting):
    matcher, demands, _ = setting
    for demand in demands[:4]:
        shown = matcher.match_demand(demand, k=50, explain=False)
        ids = [m.programme_id for m in shown]
        scores, best = scores_in_list(matcher, demand, ids)
        assert np.allclose(scores, [m.score for m in shown])
        assert best == pytest.approx(max(m.score for m in shown))
        # And so the probabilities the calibrator gives are the ones shown.
        assert np.allclose(np.round(matcher.calibrator.probabilities(
            np.array([m.score for m in shown])), 4), [m.probability for m in shown])
    # A pair scored alone gets other features (several are relative to the list).
    alone = matcher.ranker.predict(matcher.pair_features(demands[0], ids[:1]))[0]
    assert not np.isclose(alone, scores_in_list(matcher, demands[0], ids[:1])[0][0])


def test_scores_in_list_with_another_ranker_and_exclusions(setting):
    matcher, demands, _ = setting
    other = load_ranker("lexical")
    other.coef_ = other.coef_ * 2.0
    a, best_a = scores_in_list(matcher, demands[0], ["p00", "p10"])
    b, best_b = scores_in_list(matcher, demands[0], ["p00", "p10"], ranker=other)
    assert not np.allclose(a, b)
    # An excluded programme that is named is still scored; it just leaves the retrieved pool.
    c, _ = scores_in_list(matcher, demands[0], ["p00"], exclude=["p00", "p01"])
    assert c.shape == (1,)
    with pytest.raises(InputError, match="not indexed: 'nope'"):
        scores_in_list(matcher, demands[0], ["nope"])


def test_calibration_inputs_of_decisions(setting):
    matcher, demands, decisions = setting
    Z, y, groups = decision_calibration_inputs(matcher, demands, decisions)
    assert Z.shape == (324, 2) and y.sum() == 54 and len(set(groups)) == 18
    # The second column is constant per demand: the list's best score.
    for g in set(groups):
        assert len(set(Z[groups == g, 1])) == 1 and Z[groups == g, 1][0] >= Z[groups == g, 0].max() - 1e-9


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda ds: ds[:199], "199 decisions; at least 200 are needed to refit the calibrator"),
        (lambda ds: [(d, p, 0 if (y and int(d[2]) == 0) else y) for d, p, y in ds],
         "36 accepted and 288 rejected decisions; at least 50 of each are needed"),
    ],
)
def test_too_few_decisions_are_not_refitted_and_say_why(setting, mutate, reason):
    matcher, demands, decisions = setting
    report = refit_calibrator(matcher, demands, mutate(decisions), shipped())
    assert not report.refitted and reason in report.reason
    assert report.calibrator is None and report.ece_before is None and not report.improved


def test_refit_holds_back_a_quarter_of_the_demands_and_keeps_tau(setting):
    matcher, demands, decisions = setting
    current = shipped()
    report = refit_calibrator(matcher, demands, decisions, current)
    assert report.refitted and (report.decisions, report.accepted, report.rejected) == (324, 54, 270)
    # 18 demands, 18 decisions each: 5 demands (a quarter, rounded up) held back whole.
    assert (report.held_out_demands, report.held_out, report.fitted) == (5, 90, 234)
    new = report.calibrator
    assert new.min_probability == current.min_probability and new.thresholds() == current.thresholds()
    assert (new.C, new.isotonic) == (current.C, current.isotonic)
    assert 0.0 <= report.ece_after <= 1.0 and 0.0 <= report.ece_before <= 1.0
    assert report.improved == (report.ece_after < report.ece_before)
    assert new.meta_["held_out"] == 90 and new.meta_["ece_held_out"] == report.ece_after
    # A fixed seed: the same split and the same calibrator every time.
    again = refit_calibrator(matcher, demands, decisions, current)
    assert (again.ece_before, again.ece_after) == (report.ece_before, report.ece_after)
    assert np.array_equal(again.calibrator.coef_, new.coef_)
    # Measured against itself the refit is no better: the rule keeps the one in use.
    same = refit_calibrator(matcher, demands, decisions, new)
    assert same.ece_before == same.ece_after and not same.improved


def test_improved_is_strictly_lower_ece():
    def report(before, after):
        return RecalibrationReport(300, 60, 240, True, ece_before=before, ece_after=after)

    assert report(0.2, 0.1).improved and not report(0.1, 0.1).improved and not report(0.1, 0.2).improved
    assert not RecalibrationReport(10, 5, 5, False, reason="few").improved
