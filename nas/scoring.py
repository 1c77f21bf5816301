"""Classification scores from label arrays (numpy only, so they are cheap to test)."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "macro_f1"]


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
