"""A learned ranker in scikit-learn style, saved as JSON parameters plus ``.npy`` arrays.

:class:`PairwiseLinearRanker` learns a linear scoring function from graded pairs (a qrels file,
or curators' accept/reject decisions) by logistic regression on within-query feature
differences (RankNet with a linear model). A linear model is transparent: each feature's
contribution to a score is ``weight * standardised value``, which is what explanations show.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, validate_data

__all__ = ["PairwiseLinearRanker", "load_ranker"]

FORMAT = "chanjiao-pairwise-linear-ranker/1"


class PairwiseLinearRanker(BaseEstimator):
    """Linear ranker trained on pairwise preferences within groups.

    Parameters
    ----------
    C : float, default 1.0
        Inverse L2 regularisation strength of the pairwise logistic regression.
    max_pairs_per_group : int, default 1000
        Pairs sampled per group (query); pairs of different grades only.
    random_state : int, default 0
        Seed of the pair sampling.
    pair_weight : {"gain", "uniform"}, default "gain"
        ``gain`` weighs a pair by the difference of its gains ``2^y``, so that ordering a
        grade-2 above a grade-0 matters more than a grade-1 above a grade-0, as in nDCG
        (the LambdaRank idea without the rank-dependent part).
    feature_names : sequence of str, optional
        Names of the columns, kept with the model so that a matcher can check it feeds the
        same features and explain scores by name.

    Attributes
    ----------
    mean_, scale_ : numpy.ndarray
        Standardisation of each feature.
    coef_ : numpy.ndarray
        Weights on standardised features.
    n_features_in_ : int
    """

    def __init__(
        self,
        C: float = 1.0,
        max_pairs_per_group: int = 1000,
        random_state: int = 0,
        feature_names: Sequence[str] | None = None,
        pair_weight: str = "gain",
    ) -> None:
        self.C = C
        self.max_pairs_per_group = max_pairs_per_group
        self.random_state = random_state
        self.feature_names = feature_names
        self.pair_weight = pair_weight

    def fit(self, X: Any, y: Any, groups: Any = None) -> PairwiseLinearRanker:
        """Learn weights from graded examples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Relevance grades (higher is better); any real values.
        groups : array-like of shape (n_samples,), optional
            Query of each sample; pairs are only formed within a query. Without it all
            samples form one query.

        Returns
        -------
        PairwiseLinearRanker
            ``self``.
        """
        X, y = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        X, y = validate_data(self, X, y, reset=True, dtype=np.float64, y_numeric=True)
        if self.feature_names is not None and len(self.feature_names) != X.shape[1]:
            raise ValueError(f"feature_names has {len(self.feature_names)} names for {X.shape[1]} features")
        if X.shape[0] < 2:
            raise ValueError(f"PairwiseLinearRanker needs at least 2 samples; got {X.shape[0]} sample")
        if self.pair_weight not in ("gain", "uniform"):
            raise ValueError(f"pair_weight must be 'gain' or 'uniform', got {self.pair_weight!r}")
        groups = np.zeros(len(y), dtype=np.int64) if groups is None else np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(f"groups has shape {groups.shape}, y has {y.shape}")
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        Z = (X - self.mean_) / self.scale_
        rng = np.random.default_rng(self.random_state)
        diffs: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        # Grades may be any reals (e.g. scikit-learn's checks); gains are computed on grades
        # shifted to start at 0 and capped, so weights stay finite.
        gain = 2.0 ** np.clip(y - y.min(), 0, 30)
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            yi = y[idx]
            hi, lo = np.nonzero(yi[:, None] > yi[None, :])
            if hi.size == 0:
                continue
            if hi.size > self.max_pairs_per_group:
                pick = rng.choice(hi.size, self.max_pairs_per_group, replace=False)
                hi, lo = hi[pick], lo[pick]
            diffs.append(Z[idx[hi]] - Z[idx[lo]])
            w = gain[idx[hi]] - gain[idx[lo]] if self.pair_weight == "gain" else np.ones(hi.size)
            weights.append(w)
        if not diffs:
            raise ValueError("PairwiseLinearRanker needs samples of at least two different grades in a group")
        D = np.vstack(diffs)
        W = np.concatenate(weights)
        W = W / W.mean()
        # The problem is symmetric (a pair and its reverse), so no intercept is needed. Without
        # an intercept the loss of (d, 1) equals that of (-d, 0): each pair enters once, half of
        # them reversed so that both classes occur, and C is doubled. That is the same objective
        # as listing every pair in both orientations, at half the rows and fitting time.
        flip = rng.random(len(D)) < 0.5
        flip[0], flip[-1] = len(D) > 1, False
        Xp = np.where(flip[:, None], -D, D)
        yp = np.where(flip, 0.0, 1.0)
        lr = LogisticRegression(C=2.0 * self.C, fit_intercept=False, max_iter=2000)
        lr.fit(Xp, yp, sample_weight=W)
        self.coef_ = lr.coef_.ravel().astype(np.float64)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Score samples; higher means more relevant.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return ((X - self.mean_) / self.scale_) @ self.coef_

    def contributions(self, X: Any) -> np.ndarray:
        """Per-feature contributions to :meth:`predict` (they sum to the score).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self, "coef_")
        X = check_array(X, dtype=np.float64)
        return ((X - self.mean_) / self.scale_) * self.coef_

    @classmethod
    def from_weights(cls, feature_names: Sequence[str], weights: dict[str, float]) -> PairwiseLinearRanker:
        """Build an unlearned ranker from hand-set weights on raw feature values.

        Used as the starting point before any training data exists (and by the evaluator,
        which needs candidates before it can learn).

        Parameters
        ----------
        feature_names : sequence of str
        weights : dict
            ``{feature: weight}``; unnamed features weigh 0.

        Returns
        -------
        PairwiseLinearRanker
        """
        unknown = set(weights) - set(feature_names)
        if unknown:
            raise ValueError(f"unknown features: {sorted(unknown)}")
        obj = cls(feature_names=list(feature_names))
        obj.mean_ = np.zeros(len(feature_names))
        obj.scale_ = np.ones(len(feature_names))
        obj.coef_ = np.array([float(weights.get(f, 0.0)) for f in feature_names])
        obj.n_features_in_ = len(feature_names)
        obj.meta_ = {}
        return obj

    def save(self, directory: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        """Write ``ranker.json`` and ``ranker_<array>.npy`` files (no pickle).

        Parameters
        ----------
        directory : path-like
        meta : dict, optional
            Extra JSON-serialisable facts to keep with the model (encoder name, thresholds,
            evaluation figures).
        """
        check_is_fitted(self, "coef_")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        params = self.get_params()
        params["feature_names"] = None if self.feature_names is None else list(self.feature_names)
        doc = {"format": FORMAT, "params": params, "n_features_in": int(self.n_features_in_), "meta": meta or {}}
        (d / "ranker.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        for name in ("mean_", "scale_", "coef_"):
            np.save(d / f"ranker_{name.rstrip('_')}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PairwiseLinearRanker:
        """Read a ranker written by :meth:`save`.

        Parameters
        ----------
        directory : path-like

        Returns
        -------
        PairwiseLinearRanker
            With the saved ``meta`` dictionary as attribute ``meta_``.
        """
        d = Path(directory)
        doc = json.loads((d / "ranker.json").read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"{d / 'ranker.json'}: unknown format {doc.get('format')!r}")
        obj = cls(**doc["params"])
        for name in ("mean_", "scale_", "coef_"):
            arr = np.load(d / f"ranker_{name.rstrip('_')}.npy", allow_pickle=False)
            if arr.shape != (doc["n_features_in"],):
                raise ValueError(f"{d}: array {name} has shape {arr.shape}, expected ({doc['n_features_in']},)")
            setattr(obj, name, arr)
        obj.n_features_in_ = doc["n_features_in"]
        obj.meta_ = doc.get("meta", {})
        return obj


MODEL_DIR = Path(__file__).with_name("model")


def load_ranker(kind: str = "dense") -> PairwiseLinearRanker:
    """Load a ranker shipped with the package.

    Parameters
    ----------
    kind : {"dense", "lexical"}
        ``dense`` for the default encoder plus lexical features, ``lexical`` for matching
        without an encoder.

    Returns
    -------
    PairwiseLinearRanker
    """
    if kind not in ("dense", "lexical"):
        raise ValueError(f"kind must be 'dense' or 'lexical', got {kind!r}")
    return PairwiseLinearRanker.load(MODEL_DIR / kind)
