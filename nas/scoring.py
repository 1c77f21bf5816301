"""Scores from label arrays (numpy only, so they are cheap to test)."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "keypoint_rmse", "macro_f1"]


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Fraction of ``predicted`` equal to ``labels``."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return float(np.mean(labels == predicted)) if labels.size else 0.0


def macro_f1(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the ``num_classes`` classes.

    A class absent from both ``labels`` and ``predicted`` scores 0, as in scikit-learn's
    ``f1_score(average="macro", labels=range(num_classes), zero_division=0)``.

    >>> macro_f1(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    0.7333333333333334
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_pos = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * true_pos, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return float(f1.mean())


def keypoint_rmse(targets: np.ndarray, predicted: np.ndarray) -> float:
    """Root-mean-square error in pixels over the coordinates present (Kaggle's metric).

    ``targets`` holds NaN where a point is missing; those coordinates count for nothing.

    >>> keypoint_rmse(np.array([[[1.0, 2.0], [np.nan, np.nan]]]), np.array([[[4.0, 6.0], [0.0, 0.0]]]))
    3.5355339059327378
    """
    targets, predicted = np.asarray(targets, dtype=float), np.asarray(predicted, dtype=float)
    present = np.isfinite(targets)
    if not present.any():
        return float("nan")
    return float(np.sqrt(np.mean((predicted[present] - targets[present]) ** 2)))
