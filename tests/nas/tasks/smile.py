"""A third task, added by the tests without touching the engine: is the face smiling?

Two classes from a FER2013-layout file: ``smiling`` (FER's happy faces) and ``not
smiling`` (the other four of the five emotions). Experiments name it
``[data] task = "tests.nas.tasks.smile"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nas.core.task import Task
from nas.data.datasets import BUILTIN_FACES, load_emotions
from nas.tasks import FaceTask, TaskSplits

if TYPE_CHECKING:
    from nas.core.config import DataConfig

NAMES = ("not smiling", "smiling")


class SmileTask(FaceTask):
    """Smiling or not, on 48x48 grey faces."""

    name = "smile"
    output_kind = "classification"
    builtin_data = BUILTIN_FACES
    default_objectives = ("accuracy", "params")

    def load(self, config: DataConfig, *, seed: int) -> TaskSplits:
        data = load_emotions(
            config.path,
            classes=5,
            validation_fraction=config.validation_fraction,
            seed=seed,
            deduplicate=config.deduplicate,
        )
        happy = data.class_names.index("happy")
        return TaskSplits(
            task=Task(kind="classification", input_shape=(48, 48, 1), num_classes=len(NAMES)),
            train_images=data.train.images,
            train_targets=(data.train.labels == happy).astype(np.int64),
            validation_images=data.validation.images,
            validation_targets=(data.validation.labels == happy).astype(np.int64),
            output_names=NAMES,
        )


TASK = SmileTask()
