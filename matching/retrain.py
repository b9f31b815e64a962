"""Retraining the ranker from curators' decisions (accepted / rejected pairs).

The platform's staff accept or reject (demand, programme) pairings; those decisions are
labelled pairs. :func:`retrain_from_decisions` turns them into features with a
:class:`~matching.pipeline.Matcher`, measures the current ranker and a newly trained one by
cross-validation grouped by demand (no demand is in both a training and a test fold), and
returns both measurements with the new ranker fitted on all decisions, so that the caller can
refuse a model that scores worse.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.metrics import ndcg_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from .errors import InputError
from .features import FEATURES
from .pipeline import Matcher
from .ranking import PairwiseLinearRanker
from .types import Demand

MIN_DECISIONS = 30


@dataclass(frozen=True)
class RetrainReport:
    """Cross-validated quality of the current and the new ranker on the decisions.

    Attributes
    ----------
    before, after : dict
        ``{"auc", "ndcg@10"}`` of the current and the new ranker, averaged over the folds
        where they are defined (0 where never). ``ndcg@10`` is the mean over held-out
        demands that have an accepted pair among several decisions.
    decisions, demands, folds : int
    ranker : PairwiseLinearRanker
        The new ranker, fitted on every decision.
    """

    before: dict[str, float]
    after: dict[str, float]
    decisions: int
    demands: int
    folds: int
    ranker: PairwiseLinearRanker

    @property
    def improved(self) -> bool:
        """True when the new ranker is at least as good on nDCG@10, then AUC."""
        return (self.after["ndcg@10"], self.after["auc"]) >= (self.before["ndcg@10"], self.before["auc"])


def decision_features(
    matcher: Matcher, demands: Sequence[Demand], decisions: Sequence[tuple[str, str, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows, labels and demand groups for decided pairs.

    Parameters
    ----------
    matcher : Matcher
        With every decided programme indexed.
    demands : sequence of Demand
        Every demand named in ``decisions``.
    decisions : sequence of (demand_id, programme_id, label)
        ``label`` 1 for accepted, 0 for rejected.

    Returns
    -------
    (X, y, groups)
    """
    by_id = {d.id: d for d in demands}
    per_demand: dict[str, list[tuple[str, int]]] = {}
    for i, (demand_id, programme_id, label) in enumerate(decisions):
        if demand_id not in by_id:
            raise InputError(f"decision {i}: demand {demand_id!r} was not given")
        if label not in (0, 1):
            raise InputError(f"decision {i}: label must be 0 or 1, got {label!r}")
        per_demand.setdefault(demand_id, []).append((programme_id, label))
    rows, labels, groups = [], [], []
    for demand_id, pairs in per_demand.items():
        X = matcher.pair_features(by_id[demand_id], [p for p, _ in pairs])
        rows.append(X)
        labels.extend(label for _, label in pairs)
        groups.extend([demand_id] * len(pairs))
    return np.vstack(rows), np.asarray(labels, dtype=np.float64), np.asarray(groups)


def _measure(scores: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    auc = roc_auc_score(y, scores) if len(np.unique(y)) == 2 else float("nan")
    ndcgs = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        if y[idx].max() > 0 and len(idx) > 1:
            ndcgs.append(ndcg_score(y[idx][None, :], scores[idx][None, :], k=10))
    return auc, float(np.mean(ndcgs)) if ndcgs else float("nan")


def _mean(per_fold: list[tuple[float, float]]) -> dict[str, float]:
    values = np.array(per_fold, dtype=np.float64)
    with np.errstate(all="ignore"):
        means = [float(np.nanmean(col)) if not np.isnan(col).all() else 0.0 for col in values.T]
    return {"auc": round(means[0], 4), "ndcg@10": round(means[1], 4)}


def retrain_from_decisions(
    matcher: Matcher,
    demands: Sequence[Demand],
    decisions: Sequence[tuple[str, str, int]],
    current: PairwiseLinearRanker,
    *,
    cv: int = 5,
    template: PairwiseLinearRanker | None = None,
    min_decisions: int = MIN_DECISIONS,
) -> RetrainReport:
    """Train a ranker on curators' decisions and compare it with ``current``.

    Parameters
    ----------
    matcher : Matcher
        Indexes every decided programme; supplies the features.
    demands : sequence of Demand
    decisions : sequence of (demand_id, programme_id, label)
    current : PairwiseLinearRanker
        The ranker in use, scored on the same held-out folds.
    cv : int, default 5
        Folds, grouped by demand (fewer when there are fewer demands).
    template : PairwiseLinearRanker, optional
        Hyperparameters of the new ranker; default a strongly regularised one (C=0.1), since
        decisions are few.
    min_decisions : int, default 30

    Returns
    -------
    RetrainReport

    Raises
    ------
    InputError
        Fewer than ``min_decisions`` decisions, only one kind of label, or fewer than two
        demands.
    """
    if len(decisions) < min_decisions:
        raise InputError(f"{len(decisions)} decisions; at least {min_decisions} are needed to retrain")
    X, y, groups = decision_features(matcher, demands, decisions)
    if len(np.unique(y)) < 2:
        raise InputError("decisions are all accepted or all rejected; both kinds are needed")
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError("decisions cover a single demand; at least two are needed")
    template = template or PairwiseLinearRanker(C=0.1, feature_names=FEATURES)
    folds = min(cv, n_groups)
    measured: dict[str, list[tuple[float, float]]] = {"before": [], "after": []}
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        current_scores = current.predict(X[test])
        measured["before"].append(_measure(current_scores, y[test], groups[test]))
        if len(np.unique(y[train])) < 2:
            # A fold without both labels cannot teach anything: the current model stands.
            measured["after"].append(measured["before"][-1])
            continue
        # Decisions judge pairs in absolute terms ("worth a demonstration platform or not"),
        # so training pairs are formed across demands; the folds still keep demands apart.
        model = clone(template).fit(X[train], y[train])
        measured["after"].append(_measure(model.predict(X[test]), y[test], groups[test]))
    before, after = (_mean(measured[k]) for k in ("before", "after"))
    final = clone(template).fit(X, y)
    return RetrainReport(before, after, len(y), n_groups, folds, final)
