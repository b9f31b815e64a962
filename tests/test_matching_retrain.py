"""matching.retrain: learning from curators' decisions, lexically (no encoder needed)."""
from __future__ import annotations

import pytest

from matching import InputError, Matcher, Programme, load_ranker
from matching.features import FEATURES
from matching.retrain import retrain_from_decisions
from matching.types import Demand

TRADES = ["养老护理", "中式烹调", "低压电工", "直播运营", "物业管理", "汽车维修"]


@pytest.fixture(scope="module")
def setting():
    programmes = [
        Programme(id=f"p{i}", title=f"{t}培训", skills=(t,), modules=({"name": f"{t}实务", "hours": 20},))
        for i, t in enumerate(TRADES)
    ]
    demands = [Demand(id=f"d{i}", title=f"{t}岗位", skills=(t,), duties=(f"从事{t}工作",)) for i, t in enumerate(TRADES)]
    matcher = Matcher(None)
    matcher.index_programmes(programmes)
    decisions = [(d.id, p.id, int(d.id[1:] == p.id[1:])) for d in demands for p in programmes]
    return matcher, demands, decisions


def test_retrain_measures_both_rankers_on_demand_grouped_folds(setting):
    matcher, demands, decisions = setting
    report = retrain_from_decisions(matcher, demands, decisions, load_ranker("lexical"), cv=3)
    assert (report.decisions, report.demands, report.folds) == (36, 6, 3)
    for metrics in (report.before, report.after):
        assert set(metrics) == {"auc", "ndcg@10"} and 0.0 <= metrics["auc"] <= 1.0
    # Same-trade pairs are easy: the new ranker must learn to put them first.
    assert report.after["ndcg@10"] > 0.9
    assert report.ranker.coef_.shape == (len(FEATURES),)
    assert report.improved == ((report.after["ndcg@10"], report.after["auc"]) >= (report.before["ndcg@10"], report.before["auc"]))


def test_matcher_pair_features_names_programmes_and_refuses_unknown_ones(setting):
    matcher, demands, _ = setting
    X = matcher.pair_features(demands[0], ["p0", "p3"])
    assert X.shape == (2, len(FEATURES))
    assert X[0].sum() != X[1].sum()
    with pytest.raises(InputError, match="not indexed: 'nope'"):
        matcher.pair_features(demands[0], ["nope"])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds[:29], "29 decisions; at least 30"),
        (lambda ds: [(d, p, 1) for d, p, _ in ds], "all accepted or all rejected"),
        (lambda ds: [(d, p, 2) for d, p, _ in ds], "label must be 0 or 1"),
        (lambda ds: [("d0", p, y) for _, p, y in ds][:6] * 6, "single demand"),
        (lambda ds: [("zz", p, y) for _, p, y in ds], "demand 'zz' was not given"),
    ],
)
def test_bad_decisions_are_refused_with_the_reason(setting, mutate, message):
    matcher, demands, decisions = setting
    with pytest.raises(InputError, match=message):
        retrain_from_decisions(matcher, demands, mutate(decisions), load_ranker("lexical"))
