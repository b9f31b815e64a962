"""A calibrated probability that a (demand, programme) pair is relevant.

The ranker's score orders one list well but is no probability. :class:`ProbabilityCalibrator`
turns it into ``P(relevant)`` with a logistic model of two inputs, the pair's ranker score and
the best ranker score of the demand's list, followed by an isotonic map, fitted on
out-of-fold scores. "Relevant" is grade >= 1 in CN-VocMatch terms: the official guide maps the
programme to the occupation or to another one of its group.

Why only these two inputs: on the development split, a pointwise model that also took the
absolute pair features (raw cosines of titles, profiles and requirements, z-scores against the
catalogue) and list statistics was no better calibrated (ECE 0.015 against 0.016), separated
demands with and without relevant programmes no better (AUROC 0.867 against 0.869), and, by
reordering lists, cost 0.003 nDCG@10. With a positive weight on the score the probability
rises with the score within a list, so ordering by probability keeps the ranker's order, and
levels never disagree with it; the list's best score carries what a list says about the
demand (a weak best means nothing in the catalogue fits).

The probability of a pair does not depend on the direction it is looked at from (it is always
computed in the demand's list), so the same number and the same match level show on a
demand's recommendations, a programme's opportunities and in the API.

Saved as ``calibrator.json`` plus ``calibrator_<array>.npy`` (no pickle), beside the ranker.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "CALIBRATION_INPUTS",
    "LEVELS",
    "ProbabilityCalibrator",
    "calibration_inputs",
    "expected_calibration_error",
    "brier_score",
    "mann_whitney_auroc",
]

FORMAT = "chanjiao-probability-calibrator/1"

#: Columns of :func:`calibration_inputs`, in order.
CALIBRATION_INPUTS: tuple[str, ...] = ("score", "list_best_score")

#: Match levels, best first, as codes the platform translates. A level is the first one whose
#: lower bound the probability reaches; below ``min_probability`` a pair has no level and is
#: not offered as a match.
LEVELS: tuple[str, ...] = ("high", "good", "partial")


def calibration_inputs(scores: np.ndarray) -> np.ndarray:
    """The calibrator's inputs for the candidates of one demand's list.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(n,)`` ranker scores (with priors) of one demand's candidates.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float64: each score and the list's best score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {scores.shape}")
    best = scores.max() if scores.size else 0.0
    return np.column_stack([scores, np.full(scores.shape, best)])


class ProbabilityCalibrator(BaseEstimator):
    """Logistic model on :data:`CALIBRATION_INPUTS`, then an isotonic map of its logit.

    Parameters
    ----------
    C : float, default 0.1
        Inverse L2 regularisation of the logistic model (inputs are standardised).
    isotonic : bool, default True
        Follow the logistic model with isotonic regression of its logit, fitted on the same
        pairs, so that the probabilities match observed frequencies bin by bin.
    min_probability : float, default 0.5
        ``tau``: the lowest match level's lower bound. Pairs below it are not offered as
        matches. Kept with the model; the platform and the evaluator read it from here.
    level_thresholds : mapping, optional
        Lower bound of each level of :data:`LEVELS` except the last, whose bound is
        ``min_probability``. Default ``{"high": 0.8, "good": 0.65}``.

    Attributes
    ----------
    mean_, scale_, coef_ : numpy.ndarray
    intercept_ : float
    iso_x_, iso_y_ : numpy.ndarray
        Knots of the isotonic map (logit to probability), empty without it.
    """

    def __init__(
        self,
        C: float = 0.1,
        isotonic: bool = True,
        min_probability: float = 0.5,
        level_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        self.C = C
        self.isotonic = isotonic
        self.min_probability = min_probability
        self.level_thresholds = level_thresholds

    # ------------------------------------------------------------------ fitting
    def fit(self, Z: Any, y: Any, sample_weight: Any = None) -> ProbabilityCalibrator:
        """Fit on calibration inputs ``Z`` (rows of :func:`calibration_inputs`) and 0/1 labels.

        Returns
        -------
        ProbabilityCalibrator
            ``self``.
        """
        Z = np.asarray(Z, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if Z.ndim != 2 or Z.shape[1] != len(CALIBRATION_INPUTS):
            raise ValueError(f"Z must have shape (n, {len(CALIBRATION_INPUTS)}), got {Z.shape}")
        if Z.shape[0] != y.shape[0]:
            raise ValueError(f"Z has {Z.shape[0]} rows, y has {y.shape[0]}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("y must hold 0/1 labels")
        if len(np.unique(y)) < 2:
            raise ValueError("the calibrator needs relevant and non-relevant pairs")
        self._check_thresholds()
        self.mean_ = Z.mean(axis=0)
        scale = Z.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        lr = LogisticRegression(C=self.C, max_iter=5000)
        lr.fit((Z - self.mean_) / self.scale_, y, sample_weight=sample_weight)
        self.coef_ = lr.coef_.ravel().astype(np.float64)
        self.intercept_ = float(lr.intercept_[0])
        if self.coef_[0] <= 0:
            # Ordering by probability must keep the ranker's order within a list.
            raise ValueError("the ranker score does not raise the probability on these pairs; check the labels")
        if self.isotonic:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
            iso.fit(self.decision_function(Z), y, sample_weight=sample_weight)
            self.iso_x_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.iso_y_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        else:
            self.iso_x_ = np.zeros(0)
            self.iso_y_ = np.zeros(0)
        return self

    def _check_thresholds(self) -> None:
        tau = float(self.min_probability)
        if not 0.0 < tau < 1.0:
            raise ValueError(f"min_probability must lie strictly between 0 and 1, got {tau}")
        bounds = self.thresholds()
        values = [bounds[level] for level in LEVELS]
        if any(a <= b for a, b in zip(values, values[1:])):
            raise ValueError(f"level thresholds must decrease from {LEVELS[0]} to {LEVELS[-1]}: {bounds}")

    # ------------------------------------------------------------------ prediction
    def decision_function(self, Z: Any) -> np.ndarray:
        """The logistic model's logit for each row of ``Z``."""
        check_is_fitted(self, "coef_")
        Z = np.asarray(Z, dtype=np.float64)
        return ((Z - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def predict_proba(self, Z: Any) -> np.ndarray:
        """``P(relevant)`` for each row of ``Z``, shape ``(n,)``."""
        logit = self.decision_function(Z)
        if self.iso_x_.size:
            return np.interp(logit, self.iso_x_, self.iso_y_)
        return 1.0 / (1.0 + np.exp(-logit))

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        """``P(relevant)`` of one list's candidates from their ranker scores."""
        if len(scores) == 0:
            return np.zeros(0)
        return self.predict_proba(calibration_inputs(scores))

    # ------------------------------------------------------------------ levels
    def thresholds(self) -> dict[str, float]:
        """Lower bound of every level, best first (the last one is ``min_probability``)."""
        given = dict(self.level_thresholds or {"high": 0.8, "good": 0.65})
        return {"high": float(given["high"]), "good": float(given["good"]), "partial": float(self.min_probability)}

    def level(self, probability: float) -> str | None:
        """The match level of a probability, None below ``min_probability``."""
        for name, bound in self.thresholds().items():
            if probability >= bound:
                return name
        return None

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str], meta: Mapping[str, Any] | None = None) -> None:
        """Write ``calibrator.json`` and ``calibrator_<array>.npy`` files (no pickle)."""
        check_is_fitted(self, "coef_")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": FORMAT,
            "inputs": list(CALIBRATION_INPUTS),
            "C": float(self.C),
            "isotonic": bool(self.isotonic),
            "min_probability": float(self.min_probability),
            "level_thresholds": {k: v for k, v in self.thresholds().items() if k != "partial"},
            "intercept": self.intercept_,
            "meta": dict(meta or {}),
        }
        (d / "calibrator.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        for name in ("mean_", "scale_", "coef_", "iso_x_", "iso_y_"):
            np.save(d / f"calibrator_{name.rstrip('_')}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ProbabilityCalibrator:
        """Read a calibrator written by :meth:`save` (``meta`` becomes ``meta_``)."""
        d = Path(directory)
        doc = json.loads((d / "calibrator.json").read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"{d / 'calibrator.json'}: unknown format {doc.get('format')!r}")
        if doc.get("inputs") != list(CALIBRATION_INPUTS):
            raise ValueError(f"{d / 'calibrator.json'}: fitted on other inputs; refit it")
        obj = cls(
            C=doc["C"],
            isotonic=doc["isotonic"],
            min_probability=doc["min_probability"],
            level_thresholds=doc["level_thresholds"],
        )
        n = len(CALIBRATION_INPUTS)
        for name in ("mean_", "scale_", "coef_", "iso_x_", "iso_y_"):
            arr = np.load(d / f"calibrator_{name.rstrip('_')}.npy", allow_pickle=False)
            if name in ("mean_", "scale_", "coef_") and arr.shape != (n,):
                raise ValueError(f"{d}: array {name} has shape {arr.shape}, expected ({n},)")
            setattr(obj, name, arr.astype(np.float64))
        if obj.iso_x_.shape != obj.iso_y_.shape:
            raise ValueError(f"{d}: isotonic knots of different lengths")
        obj.intercept_ = float(doc["intercept"])
        obj.meta_ = doc.get("meta", {})
        obj._check_thresholds()
        return obj

    @staticmethod
    def exists(directory: str | os.PathLike[str]) -> bool:
        """True when ``directory`` holds a saved calibrator."""
        return (Path(directory) / "calibrator.json").is_file()


# --------------------------------------------------------------------------- metrics

#: Bin edges of the expected calibration error: [0, 0.1), ..., [0.8, 0.9), [0.9, 1.0].
ECE_BINS = 10


def expected_calibration_error(p: Sequence[float], y: Sequence[float], bins: int = ECE_BINS) -> float:
    """ECE = sum over bins of (n_b / N) * |mean(y_b) - mean(p_b)|; the last bin includes 1.0.

    Parameters
    ----------
    p : sequence of float
        Predicted probabilities in [0, 1].
    y : sequence of float
        0/1 outcomes.
    bins : int, default 10

    Returns
    -------
    float
        0 for no pairs; empty bins add nothing.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape:
        raise ValueError(f"p has shape {p.shape}, y has {y.shape}")
    if p.size == 0:
        return 0.0
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += m.sum() / p.size * abs(float(y[m].mean()) - float(p[m].mean()))
    return total


def brier_score(p: Sequence[float], y: Sequence[float]) -> float:
    """Mean squared difference between probabilities and 0/1 outcomes."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if p.size else 0.0


def mann_whitney_auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Share of (positive, negative) pairs where the positive is higher, ties counting 1/2."""
    pos = np.sort(np.asarray(positives, dtype=np.float64))
    neg = np.sort(np.asarray(negatives, dtype=np.float64))
    if not pos.size or not neg.size:
        raise ValueError("AUROC needs at least one positive and one negative")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (pos.size * neg.size))
