"""The ``emotion`` task: facial expressions of FER2013-layout files (five or seven
classes) or of image folders (any classes, sizes and colours)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.core.errors import DataError
from nas.data.datasets import BUILTIN_FACES, SIDE, load_emotions, load_image_classes
from nas.data.image_folders import is_image_folder
from nas.tasks.base import FaceTask, TaskSplits

if TYPE_CHECKING:
    from nas.core.config import DataConfig

__all__ = ["TASK", "EmotionTask"]


class EmotionTask(FaceTask):
    """Classify faces into ``[data] classes``: 48x48 grey ones of Kaggle's ``fer2013.csv``
    (or ``builtin:faces``), whose ``Usage`` gives the split when the file has it, or the
    images of an image folder or zip (:func:`nas.data.datasets.load_image_classes`)."""

    name = "emotion"
    output_kind = "classification"
    builtin_data = BUILTIN_FACES
    default_objectives = ("accuracy", "params")

    def load(self, config: DataConfig, *, seed: int) -> TaskSplits:
        """The file's Training and PublicTest rows (or a seeded stratified split)."""
        if is_image_folder(config.path):
            side = config.image_size or SIDE
            data = load_image_classes(
                config.path,
                classes=config.classes,
                image_size=(side, side),
                channels=config.channels,
                validation_fraction=config.validation_fraction,
                validation_split=config.validation_split,
                seed=seed,
                deduplicate=config.deduplicate,
                skip_unreadable=config.skip_unreadable,
            )
        else:
            data = load_emotions(
                config.path,
                classes=_csv_classes(config),
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


def _csv_classes(config: DataConfig) -> int:
    """FER2013's five (0, 5) or seven classes; any other choice is one line."""
    if config.classes in (0, 5, 7):  # a tuple of class names is never equal to these
        for key, value, default in (
            ("image_size", config.image_size, 0),
            ("channels", config.channels, 1),
            ("validation_split", config.validation_split, ""),
        ):
            if value != default and not (key == "image_size" and value == SIDE):
                raise DataError(
                    f"{config.path}: [data] {key} = {value!r} applies to image folders; a "
                    "FER2013 CSV holds 48x48 grey faces split by its Usage column; remove it"
                )
        return int(config.classes) or 5
    raise DataError(
        f"{config.path}: [data] classes = {config.classes!r}, but a FER2013 CSV gives 5 or 7 "
        "classes; set classes = 5 or 7, or use an image folder for other classes"
    )


TASK = EmotionTask()
