"""Retraining the ranker and refitting the probability calibrator from curators' decisions.

The platform's staff accept or reject (demand, programme) pairings; those decisions are
labelled pairs. :func:`retrain_from_decisions` turns them into features with a
:class:`~matching.pipeline.Matcher`, measures the current ranker and a newly trained one by
cross-validation grouped by demand (no demand is in both a training and a test fold), and
returns both measurements with the new ranker fitted on all decisions, so that the caller can
refuse a model that scores worse.

:func:`refit_calibrator` fits a new :class:`~matching.calibration.ProbabilityCalibrator` on the
decisions, scoring each decided pair in its demand's own candidate list exactly as the matcher
scores it for display (:func:`scores_in_list`), and measures the calibrator in use and the new
one by expected calibration error on a quarter of the decisions held back by demand.

Decided pairs are a biased sample: staff decide the pairs the engine suggested (the top of
each list, above tau) and the pairs both parties asked for, almost never the long tail of low
scores. A calibrator refitted on them learns how often suggested pairs are accepted, which is
what staff and members see, but says little below the suggestion threshold; and "rejected"
can mean reasons no ranker sees (price, dates). Hence the minimum counts and the held-back
comparison before a refitted calibrator replaces the one in use.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.metrics import ndcg_score, roc_auc_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit

from .calibration import ProbabilityCalibrator, expected_calibration_error
from .errors import InputError
from .features import FEATURES, pair_features
from .pipeline import Matcher
from .ranking import PairwiseLinearRanker
from .types import Demand

MIN_DECISIONS = 30

#: Decisions needed to refit the calibrator, and of each outcome (accepted, rejected).
MIN_CALIBRATION_DECISIONS = 200
MIN_CALIBRATION_EACH = 50
#: Share of the decisions (by demand) held back to compare the calibrators, and its seed.
CALIBRATION_HOLDOUT = 0.25
CALIBRATION_SEED = 20260601


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


def _decisions_by_demand(
    demands: Sequence[Demand], decisions: Sequence[tuple[str, str, int]]
) -> tuple[dict[str, Demand], dict[str, list[tuple[str, int]]]]:
    """Demands by id and each demand's decided ``(programme_id, label)``, checked."""
    by_id = {d.id: d for d in demands}
    per_demand: dict[str, list[tuple[str, int]]] = {}
    for i, (demand_id, programme_id, label) in enumerate(decisions):
        if demand_id not in by_id:
            raise InputError(f"decision {i}: demand {demand_id!r} was not given")
        if label not in (0, 1):
            raise InputError(f"decision {i}: label must be 0 or 1, got {label!r}")
        per_demand.setdefault(demand_id, []).append((programme_id, label))
    return by_id, per_demand


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
    by_id, per_demand = _decisions_by_demand(demands, decisions)
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


# --------------------------------------------------------------------------- calibration


def scores_in_list(
    matcher: Matcher,
    demand: Demand,
    programme_ids: Sequence[str],
    *,
    ranker: PairwiseLinearRanker | None = None,
    exclude: Sequence[str] = (),
) -> tuple[np.ndarray, float]:
    """Ranker scores of named programmes as the demand's own ranked list computes them.

    Several features are relative to the candidate set (BM25 scores relative to the list's
    best, ranks, neighbours), so a pair scored alone (:meth:`Matcher.pair_features`) gets
    another score than the one its probability is computed from on a page. Here the features
    are computed over the retrieved candidates and the named programmes together, the ranker
    scores them, the documented priors are added, exactly as :meth:`Matcher.match_demand`
    does, and the list's best score (the calibrator's second input) is taken over that set.

    Parameters
    ----------
    matcher : Matcher
        With every named programme indexed.
    demand : Demand
    programme_ids : sequence of str
    ranker : PairwiseLinearRanker, optional
        Score with this ranker instead of the matcher's (the features do not depend on it).
    exclude : sequence of str, optional
        Programme ids left out of retrieval, as if not in the catalogue (e.g. archived ones the
        live catalogue does not hold); a named programme is scored even when excluded.

    Returns
    -------
    (numpy.ndarray, float)
        ``(len(programme_ids),)`` scores and the list's best score.

    Raises
    ------
    InputError
        A programme id that is not indexed, or not a Demand.
    """
    # The matcher's retrieval and prior steps are reused as they are, so that nothing here can
    # drift from what the product computes.
    idx = matcher._require_index()
    if not isinstance(demand, Demand):
        raise InputError(f"expected a Demand, got {type(demand).__name__}")
    unknown = [pid for pid in programme_ids if pid not in matcher._pos]
    if unknown:
        raise InputError(f"programmes not indexed: {', '.join(map(repr, unknown[:5]))}")
    q = (
        matcher._dqueries[matcher._dpos[demand.id]]
        if matcher._is_indexed_demand(demand)
        else matcher._prepare_demands([demand])[0]
    )
    allowed = None
    if exclude:
        allowed = matcher._allowed.copy()
        allowed[[matcher._pos[pid] for pid in exclude if pid in matcher._pos]] = False
    s = matcher._catalogue_scores(q, allowed)
    named = np.array([matcher._pos[pid] for pid in programme_ids], dtype=np.int64)
    positions = np.union1d(matcher._candidates(s), named)
    X, _ = pair_features(q, idx, positions, s, matcher.coverage_threshold)
    scores = (ranker if ranker is not None else matcher.ranker).predict(X).astype(np.float64)
    for j, c in enumerate(positions):
        scores[j] += matcher._prior(q.demand, idx.programmes[c])[0]
    at = {int(c): j for j, c in enumerate(positions)}
    return scores[[at[int(c)] for c in named]], float(scores.max())


def decision_calibration_inputs(
    matcher: Matcher,
    demands: Sequence[Demand],
    decisions: Sequence[tuple[str, str, int]],
    *,
    ranker: PairwiseLinearRanker | None = None,
    exclude: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrator inputs (score, list best), labels and demand groups of decided pairs.

    Each pair is scored in its demand's own list (:func:`scores_in_list`).

    Returns
    -------
    (Z, y, groups)
    """
    by_id, per_demand = _decisions_by_demand(demands, decisions)
    rows, labels, groups = [], [], []
    for demand_id, pairs in per_demand.items():
        scores, best = scores_in_list(matcher, by_id[demand_id], [p for p, _ in pairs], ranker=ranker, exclude=exclude)
        rows.append(np.column_stack([scores, np.full(scores.shape, best)]))
        labels.extend(label for _, label in pairs)
        groups.extend([demand_id] * len(pairs))
    if not rows:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=object)
    return np.vstack(rows), np.asarray(labels, dtype=np.float64), np.asarray(groups)


@dataclass(frozen=True)
class RecalibrationReport:
    """What :func:`refit_calibrator` did.

    Attributes
    ----------
    decisions, accepted, rejected : int
        Usable decisions and their outcomes.
    refitted : bool
        A new calibrator was fitted and measured.
    reason : str
        Why not, when ``refitted`` is False (English, for logs and the CLI).
    fitted, held_out, held_out_demands : int
        Decisions the new calibrator was fitted on, decisions held back and their demands.
    ece_before, ece_after : float or None
        Expected calibration error on the held-back decisions of the calibrator in use and of
        the new one, both from the scores of the ranker given.
    calibrator : ProbabilityCalibrator or None
        The new calibrator (fitted on the decisions not held back), with the tau and level
        thresholds of the one in use.
    """

    decisions: int
    accepted: int
    rejected: int
    refitted: bool
    reason: str = ""
    fitted: int = 0
    held_out: int = 0
    held_out_demands: int = 0
    ece_before: float | None = None
    ece_after: float | None = None
    calibrator: ProbabilityCalibrator | None = None

    @property
    def improved(self) -> bool:
        """True when the new calibrator has a strictly lower held-back ECE."""
        return self.refitted and self.ece_after is not None and self.ece_after < self.ece_before


def _fresh_like(current: ProbabilityCalibrator) -> ProbabilityCalibrator:
    bounds = current.thresholds()
    return ProbabilityCalibrator(
        C=current.C,
        isotonic=current.isotonic,
        min_probability=current.min_probability,
        level_thresholds={name: bound for name, bound in bounds.items() if name != "partial"},
    )


def refit_calibrator(
    matcher: Matcher,
    demands: Sequence[Demand],
    decisions: Sequence[tuple[str, str, int]],
    current: ProbabilityCalibrator,
    *,
    ranker: PairwiseLinearRanker | None = None,
    exclude: Sequence[str] = (),
    min_decisions: int = MIN_CALIBRATION_DECISIONS,
    min_each: int = MIN_CALIBRATION_EACH,
    holdout: float = CALIBRATION_HOLDOUT,
    seed: int = CALIBRATION_SEED,
) -> RecalibrationReport:
    """Fit a new probability calibrator on curators' decisions and compare it with ``current``.

    Accepted pairs count as relevant, rejected ones as not. A share ``holdout`` of the
    demands (fixed ``seed``) is held back with all their decisions; the new calibrator is
    fitted on the rest, and both calibrators' expected calibration error is measured on the
    held-back decisions, from the same scores: those of ``ranker`` (the one that will be
    active), each pair scored in its demand's own list. The new calibrator keeps ``current``'s
    tau (``min_probability``), level thresholds and hyperparameters.

    Decided pairs are a biased sample (mostly pairs the engine suggested, above tau): see the
    module docstring. Below ``min_decisions`` decisions, or fewer than ``min_each`` of either
    outcome, nothing is fitted and ``reason`` says why.

    Parameters
    ----------
    matcher : Matcher
        Indexes every decided programme.
    demands : sequence of Demand
    decisions : sequence of (demand_id, programme_id, label)
    current : ProbabilityCalibrator
        The calibrator in use.
    ranker : PairwiseLinearRanker, optional
        Default: the matcher's.
    exclude : sequence of str, optional
        Programmes left out of retrieval (see :func:`scores_in_list`).
    min_decisions, min_each : int
    holdout : float, default 0.25
    seed : int

    Returns
    -------
    RecalibrationReport
    """
    labels = [label for _, _, label in decisions]
    accepted, rejected = sum(1 for y in labels if y == 1), sum(1 for y in labels if y == 0)
    counts = {"decisions": len(decisions), "accepted": accepted, "rejected": rejected}
    if len(decisions) < min_decisions:
        return RecalibrationReport(
            **counts, refitted=False,
            reason=f"{len(decisions)} decisions; at least {min_decisions} are needed to refit the calibrator",
        )
    if min(accepted, rejected) < min_each:
        return RecalibrationReport(
            **counts, refitted=False,
            reason=f"{accepted} accepted and {rejected} rejected decisions; at least {min_each} of each "
            "are needed to refit the calibrator",
        )
    Z, y, groups = decision_calibration_inputs(matcher, demands, decisions, ranker=ranker, exclude=exclude)
    if len(np.unique(groups)) < 2:
        return RecalibrationReport(**counts, refitted=False, reason="decisions cover a single demand")
    split = GroupShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    fit_rows, held_rows = next(split.split(Z, y, groups))
    if len(np.unique(y[fit_rows])) < 2:
        return RecalibrationReport(
            **counts, refitted=False, reason="the decisions not held back are all of one outcome"
        )
    new = _fresh_like(current)
    try:
        new.fit(Z[fit_rows], y[fit_rows])
    except ValueError as error:
        return RecalibrationReport(**counts, refitted=False, reason=f"the new calibrator could not be fitted: {error}")
    before = expected_calibration_error(current.predict_proba(Z[held_rows]), y[held_rows])
    after = expected_calibration_error(new.predict_proba(Z[held_rows]), y[held_rows])
    new.meta_ = {
        "fitted_on": "staff decisions",
        "decisions": int(len(fit_rows)),
        "held_out": int(len(held_rows)),
        "held_out_demands": int(len(np.unique(groups[held_rows]))),
        "seed": int(seed),
        "ece_held_out": round(float(after), 4),
        "ece_held_out_previous": round(float(before), 4),
    }
    return RecalibrationReport(
        **counts,
        refitted=True,
        fitted=int(len(fit_rows)),
        held_out=int(len(held_rows)),
        held_out_demands=int(len(np.unique(groups[held_rows]))),
        ece_before=round(float(before), 4),
        ece_after=round(float(after), 4),
        calibrator=new,
    )
