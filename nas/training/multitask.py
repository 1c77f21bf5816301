"""Multi-task evaluation: one genome, a shared backbone, one head per task, trained on
every task's data. Runs in a Ray worker; imports TensorFlow.

Each task keeps its own images at its own size (48x48 FER faces, 96x96 keypoint faces):
the backbone is fully convolutional, so the same layers run on both, and each head
pools what the backbone makes of its own images. ``[budget] task_schedule`` picks how
the tasks' batches meet: ``alternating`` (one batch of each task in turn, each through
its own loss and optimizer: the shared layers take a step from every task in turn),
``sequential`` (every batch of one task, then the next) or ``joint`` (a batch of every
task per step, one optimizer on the summed losses); every task sees its image budget.
The metrics of every task are reported side by side (accuracy from the emotion head,
RMSE from the keypoint head); parameters count the shared backbone once, FLOPs are
those of one image of each task.
"""

from __future__ import annotations

import time
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np

from nas.core.errors import EvaluationFailure, one_line
from nas.core.trial import EvalRequest, MultiEvalData
from nas.kinds import output_kind
from nas.training.core import (
    checked_size,
    compile_for_training,
    decoded_genome,
    inference_function,
    latency_ms,
    make_optimizer,
    predict,
    training_batches,
    training_steps,
    weights_bytes,
)

__all__ = ["MultiTaskGuard", "task_models", "train_and_score_multitask"]


class MultiTaskGuard:
    """What the alternating training did: optimizer steps and images over all tasks,
    whether the time guard cut it, and the first non-finite loss."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds
        self.steps = 0
        self.images_seen = 0
        self.stopped_early = False
        self.diverged = ""

    def step_done(self, images: int, loss: float, what: str, step: int) -> bool:
        """Count an optimizer step on ``images`` images; True when training must stop:
        ``what`` (the loss's name) is not finite, or the clock ran out."""
        self.steps += 1
        self.images_seen += images
        if not np.isfinite(loss):
            self.diverged = f"{what} became {loss} at step {step + 1}"
            return True
        if time.perf_counter() > self.deadline:
            self.stopped_early = True
            return True
        return False


def task_models(model: keras.Model) -> list[keras.Model]:
    """One single-input, single-output model per task, sharing ``model``'s layers."""
    return [
        keras.Model(inputs, outputs, name=f"{model.name}_{i}")
        for i, (inputs, outputs) in enumerate(zip(model.inputs, model.outputs, strict=True))
    ]


def train_and_score_multitask(
    request: EvalRequest, data: MultiEvalData
) -> tuple[dict[str, float], bytes, MultiTaskGuard]:
    """Build the genome's multi-task model, train it on every task's data in the
    budget's ``task_schedule``, and score each head on its task's validation split."""
    space, genome = decoded_genome(request)
    tasks = [part.task for part in data.parts]
    try:
        model = space.build_multitask(genome, tasks, data.names)
    except (ValueError, TypeError) as exc:
        raise EvaluationFailure("build_error", one_line(exc)) from None
    params = checked_size(model, request.budget)
    budget = request.budget
    heads = task_models(model)
    # count_flops reads each layer's input shape, which the shared backbone leaves
    # dynamic; the space counts the same FLOPs from the genome (equal, tested)
    flops = space.cost_multitask(genome, tasks).flops
    recipe = space.recipe(genome)
    for name, head, part in zip(data.names, heads, data.parts, strict=True):
        output_kind(part.task.kind).prepare_head(
            head, part.train_targets, part.task, layer_prefix=f"{name}_"
        )
    steps = [training_steps(budget, recipe.batch_size, len(p.train_targets)) for p in data.parts]
    if budget.task_schedule == "joint":
        losses = [output_kind(part.task.kind).loss(part.task) for part in data.parts]
        compile_for_training(model, make_optimizer(recipe), losses, steps=max(steps))
        guard = _train_jointly(model, data, request, recipe.batch_size)
    else:
        for head, part, head_steps in zip(heads, data.parts, steps, strict=True):
            compile_for_training(
                head,
                make_optimizer(recipe),
                output_kind(part.task.kind).loss(part.task),
                steps=head_steps,
            )
        guard = _train_in_turns(heads, data, request, recipe.batch_size)
    if guard.diverged:
        raise EvaluationFailure("nan_loss", guard.diverged)

    metrics: dict[str, float] = {}
    latency = 0.0
    for head, part in zip(heads, data.parts, strict=True):
        infer = inference_function(head, part.task.input_shape)
        predictions = predict(infer, part.validation_images)
        if not np.all(np.isfinite(predictions)):
            raise EvaluationFailure("nan_loss", "the trained model predicts NaN")
        metrics |= output_kind(part.task.kind).score(
            part.task, part.validation_targets, predictions
        )
        latency += latency_ms(infer, part.validation_images[:1].astype(np.float32))
    metrics |= {"params": float(params), "flops": float(flops), "latency_ms": latency}
    return metrics, weights_bytes(model), guard


def _plans(data: MultiEvalData, request: EvalRequest, batch_size: int) -> list[tuple[Any, int]]:
    """Per task: an endless iterator of its shuffled training batches, and how many of
    them its budget allows (``train_images`` images, or ``epochs`` passes)."""
    plans: list[tuple[Any, int]] = []
    for part in data.parts:
        steps = training_steps(request.budget, batch_size, len(part.train_targets))
        batches = training_batches(part, batch_size, request.seed, repeat=True)
        plans.append((iter(batches), steps))
    return plans


def _train_in_turns(
    heads: list[keras.Model], data: MultiEvalData, request: EvalRequest, batch_size: int
) -> MultiTaskGuard:
    """Each head on its own task's batches, until each has had its budget: one batch of
    each task in turn (``alternating``), or every batch of one task before the next
    (``sequential``)."""
    guard = MultiTaskGuard(request.budget.train_seconds)
    plans = _plans(data, request, batch_size)
    if request.budget.task_schedule == "sequential":
        order = [(i, step) for i, (_, steps) in enumerate(plans) for step in range(steps)]
    else:
        longest = max(steps for _, steps in plans)
        order = [
            (i, step)
            for step in range(longest)
            for i, (_, steps) in enumerate(plans)
            if step < steps
        ]
    for i, step in order:
        images, targets = next(plans[i][0])
        loss = float(np.asarray(heads[i].train_on_batch(images, targets)))
        if guard.step_done(int(images.shape[0]), loss, f"loss of task {data.names[i]}", step):
            break
    return guard


def _train_jointly(
    model: keras.Model, data: MultiEvalData, request: EvalRequest, batch_size: int
) -> MultiTaskGuard:
    """One batch of every task per step through the whole model, one optimizer on the
    sum of the task losses, for as many steps as the largest budget (a task with fewer
    steps goes round its batches again)."""
    guard = MultiTaskGuard(request.budget.train_seconds)
    plans = _plans(data, request, batch_size)
    for step in range(max(steps for _, steps in plans)):
        batches = [next(batches) for batches, _ in plans]
        images = [images for images, _ in batches]
        losses = model.train_on_batch(images, [targets for _, targets in batches])
        loss = float(np.asarray(losses if np.ndim(losses) == 0 else losses[0]))
        if guard.step_done(sum(int(x.shape[0]) for x in images), loss, "the summed loss", step):
            break
    return guard
