"""How well one ranking predicts another: Kendall's tau, Spearman's rho, top-k overlap, regret.

Pure NumPy, used by the fidelity benchmark (:mod:`nas.analysis.fidelity_report`) and by the
surrogate's running report. Higher is better for both arrays (scores, not losses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["kendall_tau", "rank", "rank_average", "regret", "spearman_rho", "top_k_overlap"]


def _pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length, got {x.shape} and {y.shape}")
    return x, y


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties counted as neither concordant nor discordant, and corrected
    for); NaN with fewer than two items or when either side is constant.

    >>> kendall_tau([1, 2, 3], [1, 2, 3]), kendall_tau([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    """
    x, y = _pair(a, b)
    n = len(x)
    if n < 2:
        return math.nan
    i, j = np.triu_indices(n, k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    pairs = len(i)
    ties_x, ties_y = int(np.sum(dx == 0)), int(np.sum(dy == 0))
    denominator = math.sqrt((pairs - ties_x) * (pairs - ties_y))
    if denominator == 0:
        return math.nan
    return float(np.sum(dx * dy) / denominator)


def rank(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1 (smallest), ties sharing their average rank."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def rank_average(*columns: Sequence[float]) -> np.ndarray:
    """Each item's mean rank over ``columns`` (1 = the smallest, ties sharing their average
    rank; higher is better in every column): a combination of scores on different scales
    with nothing fitted, e.g. a brief score and the FLOPs (:data:`nas.core.config.CHOOSE_BY`).

    >>> rank_average([0.5, 0.4, 0.3], [1e6, 1e7, 1e8]).tolist()
    [2.0, 2.0, 2.0]
    >>> rank_average([0.5, 0.4, 0.3], [1e8, 1e6, 1e7]).tolist()
    [3.0, 1.5, 1.5]
    """
    if not columns:
        raise ValueError("need at least one column")
    ranks = [rank(column) for column in columns]
    if len({len(r) for r in ranks}) != 1:
        raise ValueError(f"columns of different lengths {[len(r) for r in ranks]}")
    return np.mean(ranks, axis=0)


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks; NaN when undefined.

    >>> spearman_rho([1, 2, 3, 4], [10, 20, 30, 40])
    1.0
    """
    x, y = _pair(a, b)
    if len(x) < 2:
        return math.nan
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float(np.sum(rx**2) * np.sum(ry**2)))
    if denominator == 0:
        return math.nan
    return float(np.sum(rx * ry) / denominator)


def top_k_overlap(signal: Sequence[float], truth: Sequence[float], k: int = 5) -> int:
    """How many of the truth's ``k`` best are among the signal's ``k`` best (ties broken
    by position)."""
    x, y = _pair(signal, truth)
    k = min(k, len(x))
    best_signal = set(np.argsort(-x, kind="stable")[:k].tolist())
    best_truth = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(best_signal & best_truth)


def regret(signal: Sequence[float], truth: Sequence[float]) -> float:
    """The best truth minus the truth of the signal's pick (its highest score; the first
    of tied ones): what choosing by the signal loses. 0 when it picks the best."""
    x, y = _pair(signal, truth)
    if not len(x):
        return math.nan
    return float(y.max() - y[int(np.argmax(x))])
