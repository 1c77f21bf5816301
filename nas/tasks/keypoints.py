"""The ``keypoints`` task: 15 facial keypoints of Kaggle's Facial Keypoints layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.data.datasets import BUILTIN_KEYPOINT_FACES, load_keypoints
from nas.kinds.keypoints import mirror_permutation
from nas.tasks.base import FaceTask, TaskSplits

if TYPE_CHECKING:
    from nas.core.config import DataConfig

__all__ = ["TASK", "KeypointTask"]


class KeypointTask(FaceTask):
    """Find 15 keypoints (pixel x, y; NaN where a row lacks one) on 96x96 grey faces
    (Kaggle's ``training.csv``, or ``builtin:keypoint-faces``); a seeded validation split
    that keeps near-identical frames on one side; mirrored faces swap left and right."""

    name = "keypoints"
    output_kind = "keypoints"
    builtin_data = BUILTIN_KEYPOINT_FACES
    default_objectives = ("rmse", "params")

    def load(self, config: DataConfig, *, seed: int) -> TaskSplits:
        """The seeded split of the file's rows."""
        data = load_keypoints(
            config.path,
            validation_fraction=config.validation_fraction,
            seed=seed,
            deduplicate=config.deduplicate,
        )
        return TaskSplits(
            task=data.task(),
            train_images=data.train.images,
            train_targets=data.train.keypoints,
            validation_images=data.validation.images,
            validation_targets=data.validation.keypoints,
            output_names=tuple(data.keypoint_names),
            flip_permutation=mirror_permutation(data.keypoint_names),
        )


TASK = KeypointTask()
