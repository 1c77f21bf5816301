"""The data every candidate of a run sees: the experiment's dataset loaded by its task,
then the budget's seeded caps, the same subset for every candidate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from nas.core.config import DataConfig, Experiment
from nas.core.errors import ConfigError
from nas.core.trial import (
    EvalData,
    MultiEvalData,
)
from nas.kinds import output_kind
from nas.tasks import FaceTask, TaskSplits, load_task

__all__ = ["TaskData", "load_task_data"]


@dataclass(frozen=True)
class TaskData:
    """A loaded dataset, reduced to what the engine needs. For a multi-task experiment,
    ``eval_data`` holds every task's data, ``parts`` each task's own :class:`TaskData`
    and ``task_names`` their names; ``output_names`` are then the first task's."""

    eval_data: EvalData | MultiEvalData
    output_names: tuple[str, ...]
    chance: dict[str, float]
    """What a useless model scores on the validation subset (majority class)."""
    parts: tuple[TaskData, ...] = ()
    task_names: tuple[str, ...] = ()


def load_task_data(experiment: Experiment, *, full: bool = False) -> TaskData:
    """Load the experiment's dataset and take the fixed subsets every candidate sees.

    The caps of the budget take a seeded random subset, the same for every candidate,
    so candidates are compared on equal data. ``full`` ignores the caps (the final
    training uses every training and validation image).
    """
    if experiment.multitask:
        parts = tuple(_load_one(experiment, config, full) for config in experiment.tasks)
        names = tuple(load_task(config.task).name for config in experiment.tasks)
        multi = MultiEvalData(tuple(part.eval_data for part in parts), names)  # type: ignore[misc]
        chance = {k: v for part in parts for k, v in part.chance.items()}
        return TaskData(multi, parts[0].output_names, chance, parts, names)
    return _load_one(experiment, experiment.data, full)


def class_weights(
    setting: str | tuple[float, ...], targets: np.ndarray, loaded: TaskSplits, task: FaceTask
) -> tuple[float, ...] | None:
    """``[budget] class_weight`` as one weight per class, from the training targets."""
    if setting == "none":
        return None
    if not output_kind(loaded.task.kind).has_accuracy:
        raise ConfigError(
            f"[budget] class_weight applies to classification tasks, not {task.name}; remove it"
        )
    classes = len(loaded.output_names)
    if isinstance(setting, tuple):
        if len(setting) != classes:
            raise ConfigError(
                f"[budget] class_weight lists {len(setting)} weights for {classes} classes "
                f"({', '.join(loaded.output_names)}); give one per class, in that order"
            )
        return tuple(float(w) for w in setting)
    counts = np.bincount(np.asarray(targets, np.int64), minlength=classes).astype(np.float64)
    return tuple(float(w) for w in len(targets) / (classes * np.maximum(counts, 1.0)))


def _load_one(experiment: Experiment, config: DataConfig, full: bool) -> TaskData:
    task = load_task(config.task)
    loaded = task.load(config, seed=experiment.seed)
    splits = (loaded.train_images, loaded.train_targets)
    validation = (loaded.validation_images, loaded.validation_targets)

    rng = np.random.default_rng([experiment.seed, 1])

    def cap(images: np.ndarray, targets: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        if limit and limit < len(targets) and not full:
            keep = np.sort(rng.choice(len(targets), size=limit, replace=False))
            images, targets = images[keep], targets[keep]
        return np.ascontiguousarray(images), np.ascontiguousarray(targets)

    train = cap(*splits, experiment.budget.max_train_images)
    validation = cap(*validation, experiment.budget.max_validation_images)
    eval_data = EvalData(
        task=loaded.task,
        train_images=train[0],
        train_targets=train[1],
        validation_images=validation[0],
        validation_targets=validation[1],
        flip_permutation=loaded.flip_permutation,
        class_weights=class_weights(experiment.budget.class_weight, train[1], loaded, task),
    )
    capped = dataclasses.replace(
        loaded,
        train_images=train[0],
        train_targets=train[1],
        validation_images=validation[0],
        validation_targets=validation[1],
    )
    return TaskData(eval_data, loaded.output_names, task.chance(capped))
