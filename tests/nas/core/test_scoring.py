from __future__ import annotations

import numpy as np
import pytest

from nas.core.scoring import accuracy, macro_f1, mean_log_likelihood


def test_accuracy():
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75


def test_macro_f1_matches_hand_computation():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fn 1 -> 2/3
    assert np.isclose(macro_f1(labels, predicted, 3), (0.5 + 0.8 + 2 / 3) / 3)


def test_macro_f1_counts_absent_classes_as_zero():
    assert macro_f1(np.array([0, 0]), np.array([0, 0]), 2) == 0.5


def test_the_mean_log_likelihood_orders_nets_that_accuracy_ties():
    labels = np.array([0, 0, 1])
    majority_unsure = np.array([[0.5, 0.5], [0.5, 0.5], [0.6, 0.4]])
    majority_sure = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    assert accuracy(labels, majority_unsure.argmax(1)) == accuracy(labels, majority_sure.argmax(1))
    unsure = mean_log_likelihood(labels, majority_unsure)
    assert unsure == pytest.approx((2 * np.log(0.5) + np.log(0.4)) / 3)
    assert mean_log_likelihood(labels, majority_sure) != unsure
    assert mean_log_likelihood(np.array([1]), np.array([[1.0, 0.0]])) == pytest.approx(
        np.log(1e-7)
    )  # one confident mistake costs at most ln(1e7)
