"""A new kind of output, added by the tests without touching ``nas/`` or a space: values
in [0, 1] per image, here how wide the mouth is.

The kind (:class:`Scalars`, registered as ``KIND``) owns its head (a sigmoid Dense, as
:class:`nas.core.task.OutputHead` data, which every space builds), loss (squared error),
metric (``rmse``), report, serving outputs and card lines. The task (``TASK``) reads
Kaggle's keypoint layout (or the built-in keypoint faces) and turns the two mouth corners
into the mouth's width as a share of the image side. Experiments name both at once:
``[data] task = "tests.nas.kinds.scalar"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.core.task import OutputHead, Task
from nas.data.augment import Augmentation
from nas.data.datasets import BUILTIN_KEYPOINT_FACES, load_keypoints
from nas.kinds.base import OutputKind, ReportTable
from nas.tasks.base import FaceTask, TaskSplits

if TYPE_CHECKING:
    from nas.core.config import DataConfig

NAME = __name__
"""A plugin kind's name is its module's dotted name: how a worker process finds it."""

NAMES = ("mouth_width",)


def scalar_task(input_shape: tuple[int, int, int], count: int) -> Task:
    """The model contract of ``count`` values in [0, 1] per image."""
    return Task(
        kind=NAME,
        input_shape=input_shape,
        head=OutputHead(name="values", shape=(count,), activation="sigmoid"),
    )


class Scalars(OutputKind):
    """Values in [0, 1], one per output name, scored by their root mean squared error."""

    name = NAME
    default_split = "validation"
    augmentation = Augmentation(flip=0.5, shift=0.05, zoom=0.0)  # a zoom would change widths
    metrics = frozenset({"rmse"})

    def loss(self, task: Task, label_smoothing: float = 0.0) -> Any:
        return "mean_squared_error"

    def score(self, task: Task, targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        return {"rmse": _rmse(targets, predictions)}

    def named_outputs(self, outputs: Any, names: Any) -> dict[str, Any]:
        return {"values": outputs, "value_names": names}

    def output_problem(self, task: Task, output: np.ndarray) -> str | None:
        if output.shape != (2, *task.head.shape):
            return f"shape {output.shape}, not (2, {task.head.shape[0]})"
        if not np.all(np.isfinite(output)) or output.min() < 0 or output.max() > 1:
            return "values outside [0, 1]"
        return None

    def serving_text(self) -> str:
        return "`values` (batch, N) in [0, 1] and `value_names`"

    def output_line(self, task: Task, names: Sequence[str]) -> str:
        return f"Output: values in [0, 1], shape (batch, {task.head.shape[0]}): {', '.join(names)}."

    def describe(self, labels: Sequence[str], shape: str) -> str:
        return f"a regression of {', '.join(labels)} ({shape} images"

    def report(self, targets: np.ndarray, predictions: np.ndarray, labels: Sequence[str]) -> dict:
        return {
            "rmse": _rmse(targets, predictions),
            "per_output": {
                name: _rmse(targets[:, i], predictions[:, i]) for i, name in enumerate(labels)
            },
        }

    def report_table(self, report: dict) -> ReportTable:
        rows = [(name, f"{value:.4f}") for name, value in report["per_output"].items()]
        return f"RMSE {report['rmse']:.4f}", ("output", "RMSE"), rows

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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(4, 4))
        axes.scatter(targets[:, 0], predictions[:, 0], s=4)
        axes.set(xlabel="true", ylabel="predicted", title=title)
        path = folder / "values.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        return path


def _rmse(targets: np.ndarray, predictions: np.ndarray) -> float:
    difference = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    return float(np.sqrt(np.mean(difference**2)))


KIND = Scalars()


class MouthWidthTask(FaceTask):
    """How wide the mouth is, as a share of the image side, from the two mouth corners of
    a keypoint file (rows without both corners are left out)."""

    name = "mouth_width"
    output_kind = NAME
    builtin_data = BUILTIN_KEYPOINT_FACES
    default_objectives = ("rmse", "params")

    def load(self, config: DataConfig, *, seed: int) -> TaskSplits:
        data = load_keypoints(
            config.path, validation_fraction=config.validation_fraction, seed=seed
        )
        left = data.keypoint_names.index("mouth_left_corner")
        right = data.keypoint_names.index("mouth_right_corner")

        def widths(points: np.ndarray, side: int) -> np.ndarray:
            return (np.abs(points[:, left, 0] - points[:, right, 0]) / side)[:, None]

        side = data.train.images.shape[2]
        train, validation = (
            widths(data.train.keypoints, side),
            widths(data.validation.keypoints, side),
        )
        keep_train, keep_validation = np.isfinite(train[:, 0]), np.isfinite(validation[:, 0])
        return TaskSplits(
            task=scalar_task(data.train.images.shape[1:], len(NAMES)),
            train_images=data.train.images[keep_train],
            train_targets=train[keep_train].astype(np.float32),
            validation_images=data.validation.images[keep_validation],
            validation_targets=validation[keep_validation].astype(np.float32),
            output_names=NAMES,
        )


TASK = MouthWidthTask()
