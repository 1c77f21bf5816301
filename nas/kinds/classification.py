"""Class probabilities: ``(batch, num_classes)``, scored by accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.scoring import accuracy, classification_report, macro_f1, mean_log_likelihood
from nas.core.task import Task
from nas.data.augment import Augmentation
from nas.kinds.base import OutputKind, ReportTable

__all__ = ["CLASSIFICATION", "Classification", "plot_confusion"]


class Classification(OutputKind):
    """A classifier's softmax probabilities, one per class."""

    name = "classification"
    default_split = "PublicTest"
    augmentation = Augmentation(flip=0.5, shift=0.1, zoom=0.1)
    metrics = frozenset({"accuracy", "accuracy_curve", "macro_f1"})
    has_accuracy = True

    def loss(self, task: Task, label_smoothing: float = 0.0) -> Any:
        """Sparse cross-entropy; with ``label_smoothing``, that share of a uniform target
        mixed into the one-hot one. One loss per face, which Keras weighs by the face's
        sample weight (``[budget] class_weight``) before it averages the batch: a loss that
        averaged the batch itself would weigh every face the same (issue 23: until the
        twelfth session of issue 20, class weights did nothing with label smoothing)."""
        if not label_smoothing:
            return "sparse_categorical_crossentropy"
        import keras
        import tensorflow as tf

        def loss(targets: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
            labels = tf.cast(tf.reshape(targets, [-1]), tf.int32)
            return keras.losses.categorical_crossentropy(
                tf.one_hot(labels, task.num_classes, dtype=predicted.dtype),
                predicted,
                label_smoothing=label_smoothing,
            )

        return loss

    def score(self, task: Task, targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        predicted = predictions.argmax(axis=1)
        return {
            "accuracy": accuracy(targets, predicted),
            "macro_f1": macro_f1(targets, predicted, task.num_classes),
        }

    def signal_scores(
        self, task: Task, targets: np.ndarray, predictions: np.ndarray
    ) -> dict[str, float]:
        """``log_likelihood``: the mean log probability of the true class
        (:func:`nas.core.scoring.mean_log_likelihood`)."""
        return {"log_likelihood": mean_log_likelihood(targets, predictions)}

    def named_outputs(self, outputs: Any, names: Any) -> dict[str, Any]:
        import tensorflow as tf

        label = tf.gather(names[0], tf.argmax(outputs, axis=-1))
        return {"probabilities": outputs, "label": label, "label_names": names}

    def output_problem(self, task: Task, output: np.ndarray) -> str | None:
        """``(2, num_classes)`` probabilities summing to 1, or what is wrong."""
        if output.shape != (2, task.num_classes):
            return f"shape {output.shape}, not (2, {task.num_classes})"
        if not np.all(np.isfinite(output)) or np.any(output < 0):
            return "probabilities that are negative or not finite"
        if not np.allclose(output.sum(axis=1), 1.0, atol=1e-4):
            return f"probabilities summing to {output.sum(axis=1)}, not 1"
        return None

    def serving_text(self) -> str:
        return "`probabilities` (batch, C), `label` (the most likely class) and `label_names`"

    def output_line(self, task: Task, names: Sequence[str]) -> str:
        return (
            f"Output: class probabilities, shape (batch, {task.num_classes}), in the order "
            f"{', '.join(names)}."
        )

    def describe(self, labels: Sequence[str], shape: str) -> str:
        return f"an emotion classifier ({len(labels)} classes, {shape} images"

    def report(self, targets: np.ndarray, predictions: np.ndarray, labels: Sequence[str]) -> dict:
        return classification_report(targets, predictions, labels)

    def report_table(self, report: dict) -> ReportTable:
        rows = [
            (
                name,
                f"{row['precision']:.3f}",
                f"{row['recall']:.3f}",
                f"{row['f1']:.3f}",
                f"{row['support']:,}",
            )
            for name, row in report["per_class"].items()
        ]
        title = f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}"
        return title, ("class", "precision", "recall", "F1", "faces"), rows

    def figure(
        self,
        report: dict,
        images: np.ndarray,
        targets: np.ndarray,
        predictions: np.ndarray,
        folder: Path,
        *,
        title: str,
    ) -> Path:
        return plot_confusion(report, folder / "confusion.png", title=title)


CLASSIFICATION = Classification()


def plot_confusion(report: dict, path: Path, *, title: str) -> Path:
    """The confusion matrix of a :func:`nas.core.scoring.classification_report`: each row (true
    class) as shares of its faces, coloured, with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(report["confusion"], dtype=float)
    names = report["class_names"]
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 1.1 * len(names) + 2.0
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[i, j] > 0.55 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(
        range(len(names)), [f"{n} ({int(r)})" for n, r in zip(names, rows[:, 0], strict=True)]
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (faces)")
    ax.set_title(f"{title}\naccuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
