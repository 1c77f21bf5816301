from __future__ import annotations

import numpy as np

from nas.core.scoring import accuracy, macro_f1


def test_accuracy():
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75


def test_macro_f1_matches_hand_computation():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fn 1 -> 2/3
    assert np.isclose(macro_f1(labels, predicted, 3), (0.5 + 0.8 + 2 / 3) / 3)


def test_macro_f1_counts_absent_classes_as_zero():
    assert macro_f1(np.array([0, 0]), np.array([0, 0]), 2) == 0.5
