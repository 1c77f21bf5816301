"""A surrogate learnt from the run's own trials, to pre-screen children by predicted quality.

Pre-screening by size alone (:mod:`nas.strategies.prescreen`) knows nothing about
accuracy: of ``K x population`` children it keeps those that fill the front's gaps in
parameters and FLOPs, and the trained objectives are learnt only by training. With
``[search] prescreen_by = "surrogate"``, NSGA-II also predicts each child's trained
objectives from the trials the run has already told, and keeps the children that would
be best by NSGA-II's own rule (non-dominated sorting, then crowding distance) on the
predicted trained objectives together with the exact free ones. Until the run has told
:data:`MIN_TRIALS` genomes, the size rule is used.

The model. Each genome is flattened into named numbers (:func:`genome_features`): every
number and flag of its JSON, one indicator per categorical value, and for every list its
length and the mean of each of its items' numbers and values, so any search space's
genome works without a hand-written encoding; the free objectives (on the hypervolume's
scale) are added as features when the experiment has them. The target of each trained
objective is its *rank* among the told trials (0 worst, 1 best), not its value: a search
needs the order, and ranks keep failed or chance-level candidates from dominating a
least-squares fit. The model is ridge regression on standardised features, its penalty
chosen by exact leave-one-out error (the hat-matrix identity, no refitting); it is small
(a few dozen trials, a few dozen features), deterministic, NumPy only, and refitted on
every generation. Surrogate-assisted pre-selection is the classic scheme of
surrogate-assisted evolution (Jin 2011); BANANAS and NASLib found such predictors of a
net's final score, trained on a few dozen architectures, to rank better than zero-cost
proxies.

Its running quality is reported as the search goes: for each generation the children
kept on a prediction are compared, once trained, with what was predicted
(:func:`nas.core.ranking.kendall_tau` over every such pair so far).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.core.ranking import rank

__all__ = [
    "MIN_TRIALS",
    "PENALTIES",
    "Surrogate",
    "feature_matrix",
    "genome_features",
    "rank_targets",
]

MIN_TRIALS = 12
"""Told genomes the surrogate needs before it screens (before: the size rule)."""

PENALTIES = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
"""Ridge penalties tried, per standardised feature; leave-one-out picks one."""


def genome_features(data: Any, prefix: str = "") -> dict[str, float]:
    """A genome's JSON flattened into named numbers, for any space.

    Numbers and flags are themselves (``stem.width``, ``stem.pool``); a string is an
    indicator (``head.pooling=max``); a list gives its length (``stages#``) and, over its
    items, the mean of each feature the items have (``stages[].width``,
    ``stages[].block=basic``), so genomes of different depths share their names.

    >>> genome_features({"stem": {"width": 8, "pool": False}, "stages": [{"depth": 2}, {"depth": 4}]})
    {'stem.width': 8.0, 'stem.pool': 0.0, 'stages#': 2.0, 'stages[].depth': 3.0}
    """
    if isinstance(data, bool):
        return {prefix: float(data)}
    if isinstance(data, int | float):
        return {prefix: float(data)} if np.isfinite(data) else {}
    if isinstance(data, str):
        return {f"{prefix}={data}": 1.0}
    if isinstance(data, Mapping):
        features: dict[str, float] = {}
        for key in data:
            features.update(genome_features(data[key], f"{prefix}.{key}" if prefix else str(key)))
        return features
    if isinstance(data, list | tuple):
        features = {f"{prefix}#": float(len(data))}
        sums: dict[str, float] = {}
        for item in data:
            for name, value in genome_features(item, f"{prefix}[]").items():
                sums[name] = sums.get(name, 0.0) + value
        features.update({name: total / len(data) for name, total in sums.items()})
        return features
    return {}


def feature_matrix(
    rows: Sequence[Mapping[str, float]], names: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """``rows`` as a matrix with one column per name (the sorted union of the rows' names
    when ``names`` is None); a name a row lacks is 0 there."""
    if names is None:
        names = sorted({name for row in rows for name in row})
    matrix = np.array([[row.get(name, 0.0) for name in names] for row in rows], dtype=float)
    return matrix.reshape(len(rows), len(names)), list(names)


@dataclass(frozen=True)
class Surrogate:
    """Ridge regression from features to a target, standardised, penalty by leave-one-out.

    >>> model = Surrogate.fit([{"w": 1}, {"w": 2}, {"w": 3}, {"w": 4}], [0.1, 0.2, 0.3, 0.4])
    >>> bool(model.predict([{"w": 5}])[0] > model.predict([{"w": 1}])[0])
    True
    """

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    penalty: float
    loo_error: float
    """Mean squared leave-one-out error of the chosen penalty."""

    @classmethod
    def fit(cls, rows: Sequence[Mapping[str, float]], targets: Sequence[float]) -> Surrogate:
        """Fit on ``rows`` (feature dicts) and their ``targets``; at least two rows."""
        y = np.asarray(targets, dtype=float)
        if len(rows) != len(y) or len(y) < 2:
            raise ValueError(
                f"need two or more rows with one target each, got {len(rows)}/{len(y)}"
            )
        x, names = feature_matrix(rows)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        keep = scale > 1e-12  # constant features say nothing
        z = (x[:, keep] - mean[keep]) / scale[keep]
        y_mean = float(y.mean())
        centred = y - y_mean
        best: tuple[float, float, np.ndarray] | None = None
        for penalty in PENALTIES:
            # ridge in the dual (n x n), exact leave-one-out residuals from the hat matrix
            gram = z @ z.T
            inverse = np.linalg.inv(gram + penalty * np.eye(len(y)))
            hat = gram @ inverse
            residuals = (centred - hat @ centred) / np.maximum(1.0 - np.diag(hat), 1e-9)
            error = float(np.mean(residuals**2))
            if best is None or error < best[0] - 1e-12:
                best = (error, penalty, z.T @ (inverse @ centred))
        assert best is not None
        error, penalty, kept = best
        coefficients = np.zeros(len(names))
        coefficients[keep] = kept
        return cls(
            names=tuple(names),
            mean=mean,
            scale=np.where(keep, scale, 1.0),
            coefficients=coefficients,
            intercept=y_mean,
            penalty=penalty,
            loo_error=error,
        )

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The predicted target of each row; features the fit never saw are ignored."""
        x, _ = feature_matrix(rows, self.names)
        return self.intercept + ((x - self.mean) / self.scale) @ self.coefficients


def rank_targets(values: Sequence[float], weight: float) -> np.ndarray:
    """Each told value's rank among them on [0, 1], 1 for the best (``weight`` +1 to
    maximise, -1 to minimise); a non-finite value (a failure) counts as the worst."""
    oriented = np.nan_to_num(np.asarray(values, dtype=float) * weight, nan=-np.inf)
    oriented = np.where(np.isfinite(oriented), oriented, -np.inf)
    finite = oriented[np.isfinite(oriented)]
    floor = (finite.min() - 1.0) if len(finite) else 0.0
    ranks = rank(np.where(np.isfinite(oriented), oriented, floor))
    return (ranks - 1.0) / max(len(ranks) - 1, 1)
