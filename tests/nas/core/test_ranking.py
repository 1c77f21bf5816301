"""Rank statistics against values worked out by hand (and agreeing with SciPy's)."""

from __future__ import annotations

import math

import pytest

from nas.core.ranking import kendall_tau, rank, regret, spearman_rho, top_k_overlap


def test_kendall_tau_counts_concordant_and_discordant_pairs():
    # pairs of [1..5] against [3, 1, 2, 5, 4]: 7 concordant, 3 discordant -> (7 - 3) / 10
    assert kendall_tau([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == pytest.approx(0.4)
    assert kendall_tau([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_kendall_tau_b_corrects_for_ties():
    # 4 concordant of 6 pairs, one tie on each side: 4 / sqrt(5 x 5) (scipy.stats.kendalltau)
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(0.8)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1], [1]))


def test_spearman_rho_is_pearson_of_average_ranks():
    # d = [-2, 1, 1, -1, 1], sum d^2 = 8: 1 - 6 x 8 / (5 x 24)
    assert spearman_rho([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == pytest.approx(0.6)
    assert list(rank([10, 20, 20, 5])) == [2.0, 3.5, 3.5, 1.0]
    # ties: ranks [1, 2.5, 2.5, 4] and [1, 2, 3.5, 3.5]: 3.75 / 4.5 (scipy.stats.spearmanr)
    assert spearman_rho([1, 2, 2, 3], [1, 2, 3, 3]) == pytest.approx(5 / 6)


def test_top_k_overlap_and_regret():
    signal = [0.9, 0.8, 0.1, 0.2, 0.3]
    truth = [0.5, 0.7, 0.6, 0.1, 0.2]
    assert top_k_overlap(signal, truth, k=2) == 1  # {0, 1} against {1, 2}
    assert top_k_overlap(signal, truth, k=10) == 5
    assert regret(signal, truth) == pytest.approx(0.2)  # picks 0 (0.5), the best is 0.7
    assert regret(truth, truth) == 0.0


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one length"):
        kendall_tau([1, 2], [1, 2, 3])
