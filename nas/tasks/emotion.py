"""The ``emotion`` task: facial expressions of FER2013-layout files, five or seven classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.data.datasets import BUILTIN_FACES, load_emotions
from nas.tasks.base import FaceTask, TaskSplits

if TYPE_CHECKING:
    from nas.core.config import DataConfig

__all__ = ["TASK", "EmotionTask"]


class EmotionTask(FaceTask):
    """Classify 48x48 grey faces (Kaggle's ``fer2013.csv``, or ``builtin:faces``) into
    ``[data] classes`` emotions; ``Usage`` gives the split when the file has it."""

    name = "emotion"
    output_kind = "classification"
    builtin_data = BUILTIN_FACES
    default_objectives = ("accuracy", "params")

    def load(self, config: DataConfig, *, seed: int) -> TaskSplits:
        """The file's Training and PublicTest rows (or a seeded stratified split)."""
        data = load_emotions(
            config.path,
            classes=config.classes,
            validation_fraction=config.validation_fraction,
            seed=seed,
            deduplicate=config.deduplicate,
        )
        return TaskSplits(
            task=data.task(),
            train_images=data.train.images,
            train_targets=data.train.labels,
            validation_images=data.validation.images,
            validation_targets=data.validation.labels,
            output_names=tuple(data.class_names),
        )


TASK = EmotionTask()
