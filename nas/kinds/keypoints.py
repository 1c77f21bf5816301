"""Pixel coordinates of named keypoints: ``(batch, num_keypoints, 2)`` as ``(x, y)`` in the
input image, scored by RMSE over the points present (Kaggle's metric)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.scoring import keypoint_report, keypoint_rmse
from nas.core.task import Task
from nas.data.augment import Augmentation
from nas.kinds.base import OutputKind, ReportTable

__all__ = [
    "KEYPOINTS",
    "Keypoints",
    "masked_keypoint_loss",
    "mirror_permutation",
    "plot_keypoint_faces",
]


class Keypoints(OutputKind):
    """A keypoint model's pixel coordinates, with NaN targets where a point is missing."""

    name = "keypoints"
    default_split = "validation"
    augmentation = Augmentation(flip=0.5, shift=0.05, zoom=0.05)
    metrics = frozenset({"rmse"})
    head_form = "points"
    spatial_targets = True

    def loss(self, task: Task, label_smoothing: float = 0.0) -> Any:
        """The masked squared error in image sides (:func:`masked_keypoint_loss`)."""
        return masked_keypoint_loss(float(max(task.input_shape[:2])))

    def score(self, task: Task, targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        return {"rmse": keypoint_rmse(targets, predictions)}

    def prepare_head(
        self, model: Any, train_targets: np.ndarray, task: Task, *, layer_prefix: str = ""
    ) -> None:
        """Start a regression head at the mean face of ``train_targets`` instead of the image
        centre: the output Dense (``task.head.dense_name``) maps to pixels through
        ``(side - 1) / 2 * (1 + y)``; its bias is set to the mean keypoints in that scale and its kernel shrunk tenfold, so an
        untrained net predicts the mean face (which alone scores about 3.2 px RMSE on
        Kaggle's faces) and training learns the deviations from it. A model without that
        layer (a heatmap head) is left as it is."""
        try:
            output = model.get_layer(f"{layer_prefix}{task.head.dense_name}")
        except ValueError:
            return
        mean = np.nanmean(train_targets.reshape(len(train_targets), -1).astype(np.float64), axis=0)
        if not np.all(np.isfinite(mean)):
            return
        head = task.head
        kernel, _ = output.get_weights()
        output.set_weights([kernel * 0.1, ((mean - head.offset) / head.scale).astype(np.float32)])

    def named_outputs(self, outputs: Any, names: Any) -> dict[str, Any]:
        return {"keypoints": outputs, "keypoint_names": names}

    def output_problem(self, task: Task, output: np.ndarray) -> str | None:
        """``(2, num_keypoints, 2)`` finite ``(x, y)`` pixel coordinates within a pixel of
        the image (``[-1, width] x [-1, height]``, loose enough for a soft-argmax over cell
        centres or a regression head), or what is wrong."""
        if output.shape != (2, task.num_keypoints, 2):
            return f"shape {output.shape}, not (2, {task.num_keypoints}, 2)"
        if not np.all(np.isfinite(output)):
            return "coordinates that are not finite"
        height, width, _ = task.input_shape
        x, y = output[..., 0], output[..., 1]
        if not np.all((x >= -1) & (x <= width)):
            return "x outside the image"
        if not np.all((y >= -1) & (y <= height)):
            return "y outside the image"
        return None

    def serving_text(self) -> str:
        return "`keypoints` (batch, K, 2) pixel (x, y) and `keypoint_names`"

    def output_line(self, task: Task, names: Sequence[str]) -> str:
        return (
            f"Output: pixel coordinates (x, y), shape (batch, {task.num_keypoints}, 2), in the "
            f"order {', '.join(names)}."
        )

    def mirror_map(self, names: Sequence[str], width: int) -> tuple[np.ndarray, np.ndarray]:
        """Points found on a mirrored face -> the face's points: left and right swapped by
        name (:func:`mirror_permutation`), ``x -> W - 1 - x``; on the flattened ``(K, 2)``."""
        count = len(names)
        kernel = np.zeros((2 * count, 2 * count), dtype=np.float32)
        bias = np.zeros(2 * count, dtype=np.float32)
        for k, source in enumerate(mirror_permutation(names)):
            kernel[2 * source, 2 * k] = -1.0
            kernel[2 * source + 1, 2 * k + 1] = 1.0
            bias[2 * k] = width - 1.0
        return kernel, bias

    def describe(self, labels: Sequence[str], shape: str) -> str:
        return f"a keypoint model ({len(labels)} points, {shape} images"

    def report(self, targets: np.ndarray, predictions: np.ndarray, labels: Sequence[str]) -> dict:
        return keypoint_report(targets, predictions, labels)

    def report_table(self, report: dict) -> ReportTable:
        rows = [
            (name, "-" if row["rmse"] is None else f"{row['rmse']:.3f}", f"{row['faces']:,}")
            for name, row in report["per_keypoint"].items()
        ]
        title = (
            f"RMSE {report['rmse']:.3f} px over {report['points']:,} points "
            f"(mean distance {report['mean_distance']:.3f} px)"
        )
        return title, ("keypoint", "RMSE (px)", "faces"), rows

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
        return plot_keypoint_faces(
            images, targets, predictions, folder / "keypoints.png", title=title
        )


KEYPOINTS = Keypoints()


def masked_keypoint_loss(scale: float) -> Any:
    """Mean squared error over the coordinates present, in units of ``scale`` pixels.

    Targets hold NaN where a point is missing: those coordinates add nothing to the loss
    or to its gradient, and the mean is over the coordinates present in the batch.
    """
    import tensorflow as tf

    def loss(targets: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
        present = tf.math.is_finite(targets)
        error = tf.where(present, (predicted - tf.where(present, targets, 0.0)) / scale, 0.0)
        count = tf.reduce_sum(tf.cast(present, error.dtype))
        return tf.reduce_sum(tf.square(error)) / tf.maximum(count, 1.0)

    return loss


def mirror_permutation(names: Sequence[str]) -> tuple[int, ...]:
    """Keypoint ``i`` of a mirrored face is keypoint ``permutation[i]`` of the face: names
    with ``left`` and ``right`` swapped (``mouth_left_corner`` <-> ``mouth_right_corner``);
    a name without a mirrored twin (``nose_tip``) stays."""
    index = {name: i for i, name in enumerate(names)}

    def mirrored(name: str) -> str:
        swap = {"left": "right", "right": "left"}
        return "_".join(swap.get(part, part) for part in name.split("_"))

    return tuple(index.get(mirrored(name), i) for i, name in enumerate(names))


def plot_keypoint_faces(
    images: np.ndarray,
    targets: np.ndarray,
    predicted: np.ndarray,
    path: Path,
    *,
    title: str,
    columns: int = 6,
    rows: int = 4,
) -> Path:
    """A grid of faces: true points as green circles, predicted ones as red crosses, each
    face titled with its own RMSE. The faces shown are spread evenly over the split's
    errors, from the best to the worst, so the grid shows what typical and bad look like."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    error = np.sqrt(np.nanmean((predicted - targets) ** 2, axis=(1, 2)))
    order = np.argsort(np.where(np.isfinite(error), error, np.inf))
    count = min(len(order), columns * rows)
    picked = order[np.linspace(0, len(order) - 1, count).round().astype(int)] if count else []
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.1 + 0.6))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, index in zip(np.ravel(axes)[:count], picked, strict=True):
        ax.imshow(images[index, :, :, 0], cmap="gray", vmin=0, vmax=255)
        ax.scatter(*targets[index].T, s=14, facecolors="none", edgecolors="lime", linewidths=1)
        ax.scatter(*predicted[index].T, s=14, c="red", marker="x", linewidths=1)
        ax.set_title(f"#{index}: {error[index]:.2f} px", fontsize=8)
    fig.suptitle(f"{title}\ngreen o: true, red x: predicted (best to worst)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
