"""Scores from label arrays (numpy only, so they are cheap to test)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "keypoint_report",
    "keypoint_rmse",
    "macro_f1",
    "mean_log_likelihood",
]


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Fraction of ``predicted`` equal to ``labels``."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return float(np.mean(labels == predicted)) if labels.size else 0.0


def mean_log_likelihood(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The mean natural log of the probability given to each true class (the negative
    validation cross-entropy): unlike accuracy it still orders nets that all predict the
    majority class, by how sure they are of the right one. Probabilities are floored at
    1e-7, so one confident mistake costs at most ln(1e7) = 16.1.

    >>> round(mean_log_likelihood(np.array([0, 1]), np.array([[0.5, 0.5], [0.2, 0.8]])), 4)
    -0.4581
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not labels.size:
        return 0.0
    chosen = probabilities[np.arange(labels.size), labels]
    return float(np.mean(np.log(np.maximum(chosen, 1e-7))))


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


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (np.asarray(labels), np.asarray(predicted)), 1)
    return confusion


def classification_report(
    labels: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...]
) -> dict:
    """Accuracy, macro-F1, per-class precision, recall, F1 and support, and the confusion
    matrix of ``probabilities`` ``(N, C)`` against ``labels`` ``(N,)``; plain data (JSON).

    A class never predicted has precision 0, one absent from ``labels`` recall 0
    (scikit-learn's ``zero_division=0``).
    """
    predicted = np.asarray(probabilities).argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, len(class_names))
    true_pos = np.diag(confusion).astype(float)
    predicted_count, true_count = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(
        true_pos, predicted_count, out=np.zeros(len(true_pos)), where=predicted_count > 0
    )
    recall = np.divide(true_pos, true_count, out=np.zeros(len(true_pos)), where=true_count > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(len(true_pos)), where=both > 0)
    return {
        "images": len(labels),
        "accuracy": accuracy(labels, predicted),
        "macro_f1": macro_f1(labels, predicted, len(class_names)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(true_count[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion": confusion.tolist(),
        "class_names": list(class_names),
    }


def keypoint_report(
    targets: np.ndarray, predicted: np.ndarray, keypoint_names: tuple[str, ...]
) -> dict:
    """RMSE in pixels over the points present, overall and per keypoint (with how many
    faces have it), and the mean distance between predicted and true points; plain data."""
    targets, predicted = np.asarray(targets, dtype=float), np.asarray(predicted, dtype=float)
    per_point = {}
    for k, name in enumerate(keypoint_names):
        present = np.isfinite(targets[:, k, 0]) & np.isfinite(targets[:, k, 1])
        per_point[name] = {
            "rmse": keypoint_rmse(targets[present, k], predicted[present, k])
            if present.any()
            else None,
            "faces": int(present.sum()),
        }
    present = np.isfinite(targets).all(axis=2)
    distance = np.linalg.norm(predicted - np.nan_to_num(targets), axis=2)[present]
    return {
        "images": len(targets),
        "rmse": keypoint_rmse(targets, predicted),
        "mean_distance": float(distance.mean()) if distance.size else float("nan"),
        "points": int(present.sum()),
        "per_keypoint": per_point,
    }
