"""The task interface (TensorFlow-free): what a task must say about its data and outputs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nas.core.task import Task
from nas.kinds import output_kind

if TYPE_CHECKING:
    from nas.core.config import DataConfig

__all__ = ["FaceTask", "TaskSplits"]


@dataclass(frozen=True)
class TaskSplits:
    """A task's data, split: ``uint8`` images ``(N, H, W, C)`` and their targets (class
    ids ``(N,)``, or pixel coordinates ``(N, K, 2)`` with NaN where missing).

    ``task`` is the contract with the models (input shape, output kind and size);
    ``output_names`` names the outputs in order (class or keypoint names);
    ``flip_permutation``, when given, turns on horizontal flips of keypoint targets in
    training (keypoint ``i`` of a mirrored face is keypoint ``flip_permutation[i]``)."""

    task: Task
    train_images: np.ndarray
    train_targets: np.ndarray
    validation_images: np.ndarray
    validation_targets: np.ndarray
    output_names: tuple[str, ...]
    flip_permutation: tuple[int, ...] | None = None


class FaceTask(ABC):
    """One thing learnt from one kind of file. Subclasses set the class attributes and
    implement :meth:`load`; instances are stateless and shared (a module's ``TASK``)."""

    name: str
    """What experiments call it (``[data] task``)."""
    output_kind: str
    """``classification`` (probabilities ``(batch, C)``), ``keypoints`` (pixel coordinates
    ``(batch, K, 2)``) or a plugin kind's module name (:func:`nas.kinds.output_kind`): the
    models' loss and metrics follow from it, their head from the :class:`Task` it loads."""
    builtin_data: str
    """The dataset used when ``[data] path`` is empty (no download)."""
    default_objectives: tuple[str, ...]
    """What ``nas baseline --task`` trades off when no experiment says."""

    @abstractmethod
    def load(self, config: DataConfig, *, seed: int) -> TaskSplits:
        """Read and check ``config.path``, and split it; raise :class:`nas.core.errors.DataError`
        with one line naming the file, row or field and the fix."""

    def chance(self, splits: TaskSplits) -> dict[str, float]:
        """What a useless model scores on the validation split, per metric (here: the
        majority class's share, for classification)."""
        labels = splits.validation_targets
        if not output_kind(self.output_kind).has_accuracy or not len(labels):
            return {}
        counts = np.bincount(np.asarray(labels, dtype=np.int64))
        return {"accuracy": float(counts.max() / counts.sum())}

    def __repr__(self) -> str:
        return f"<task {self.name!r}: {self.output_kind}>"
