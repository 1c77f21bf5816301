"""Train one candidate briefly and score it. Runs inside a worker; imports TensorFlow.

Every failure becomes an :class:`~nas.core.trial.EvalResult` with a reason instead of an
exception, so one bad candidate never stops a search.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np
import tensorflow as tf

from nas.core.config import Budget
from nas.core.errors import EvaluationFailure, one_line
from nas.core.learning_curve import extrapolate
from nas.core.objectives import INT8_METRICS
from nas.core.recipes import Recipe, brief_recipe
from nas.core.scoring import accuracy
from nas.core.task import Task
from nas.core.trial import EvalData, EvalRequest, EvalResult, Inherited, MultiEvalData
from nas.kinds import output_kind
from nas.training.core import (
    checked_flops,
    checked_size,
    compile_for_training,
    configure_process,
    counted_size,
    decoded_genome,
    inference_function,
    latency_ms,
    make_optimizer,
    peak_rss_mb,
    predict,
    training_batches,
    training_steps,
    weights_bytes,
)
from nas.training.model_stats import count_flops

__all__ = ["evaluate"]


def evaluate(request: EvalRequest, data: EvalData | MultiEvalData) -> EvalResult:
    """Decode, train on ``data``'s train split within the budget, score on its validation
    split; with several tasks' data, one model with a head per task
    (:mod:`nas.training.multitask`)."""
    configure_process(request.threads, deterministic=request.budget.deterministic)
    start = time.perf_counter()
    common = {
        "genome_hash": request.genome_hash,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "threads": request.threads,
    }
    try:
        if isinstance(data, MultiEvalData):
            from nas.training.multitask import train_and_score_multitask

            metrics, weights, guard = train_and_score_multitask(request, data)
            inherited = None
        else:
            metrics, weights, guard, inherited = _train_and_score(request, data)
            for repeat in range(1, request.budget.repeats):
                keras.backend.clear_session()
                again = dataclasses.replace(request, seed=request.seed + 7919 * repeat)
                more, _, _, _ = _train_and_score(again, data)
                metrics = _averaged(metrics, more, repeat)
        return EvalResult(
            **common,
            metrics=metrics,
            weights=weights,
            inherited=inherited,
            stopped_early=guard.stopped_early,
            train_steps=guard.steps,
            images_seen=guard.images_seen,
            seconds=time.perf_counter() - start,
            peak_rss_mb=peak_rss_mb(),
        )
    except EvaluationFailure as failure:
        reason, detail = failure.reason, failure.detail
    except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
        reason, detail = "oom", one_line(exc)
    except Exception as exc:  # a candidate must never stop the search
        reason, detail = "error", f"{type(exc).__name__}: {one_line(exc)}"
    finally:
        keras.backend.clear_session()  # which also runs the garbage collector
    return EvalResult(
        **common,
        failure=reason,
        detail=detail,
        seconds=time.perf_counter() - start,
        peak_rss_mb=peak_rss_mb(),
    )


AVERAGED_METRICS: tuple[str, ...] = (
    "accuracy",
    "macro_f1",
    "rmse",
    "accuracy_int8",
    "rmse_int8",
    "accuracy_curve",
    "log_likelihood",
    "train_loss",
    "train_loss_late",
)
"""What ``[budget] repeats`` averages over its trainings (the rest is the same net's)."""


def _averaged(mean: dict[str, float], more: dict[str, float], count: int) -> dict[str, float]:
    """``mean`` of ``count`` trainings with one more training's ``more`` folded in: the
    quality metrics are averaged; the costs (the same net) and curve points kept."""
    out = dict(mean)
    for name in AVERAGED_METRICS:
        if name in mean and name in more:
            out[name] = (mean[name] * count + more[name]) / (count + 1)
    return out


def _train_and_score(
    request: EvalRequest, data: EvalData
) -> tuple[dict[str, float], bytes, _TrainingGuard, Inherited | None]:
    space, genome = decoded_genome(request)
    counted_size(space, genome, data.task, request.budget)
    try:
        model = space.build(genome, data.task)
    except (ValueError, TypeError) as exc:
        raise EvaluationFailure("build_error", one_line(exc)) from None
    if request.pretrained is not None:
        from baselines import load_pretrained

        name, path = request.pretrained
        try:
            load_pretrained(name, model, path)
        except (OSError, ValueError) as exc:
            raise EvaluationFailure(
                "build_error", f"pre-trained weights {path}: {one_line(exc)}"
            ) from None
    params = checked_size(model, request.budget)
    budget = request.budget
    flops = count_flops(model)
    checked_flops(flops, budget)
    kind = output_kind(data.task.kind)
    if request.pretrained is None:
        kind.prepare_head(model, data.train_targets, data.task)
    inherited = None
    if request.parents:  # weight inheritance: start from the parents' trained weights
        from nas.training.inheritance import inherit_weights

        report = inherit_weights(model, genome, request.parents, space=space, task=data.task)
        inherited = report.summary()

    recipe = brief_recipe(budget.recipe, space.recipe(genome))
    batch = recipe.batch_size
    steps = training_steps(budget, batch, len(data.train_targets))
    compile_for_training(
        model,
        make_optimizer(recipe.training),
        kind.loss(data.task, recipe.label_smoothing),
        steps=steps,
    )
    guard = _TrainingGuard(budget.train_seconds, batch, recipe=recipe, total_steps=steps)
    callbacks: list[keras.callbacks.Callback] = [guard]
    points = set(request.score_at)
    if budget.curve_images and budget.train_images:
        points |= {budget.train_images // 4, budget.train_images // 2}
    curve = (
        _ScoreAt(data, tuple(sorted(points)), batch, clock=bool(request.score_at))
        if points
        else None
    )
    if curve is not None:
        callbacks.append(curve)
    fit_started = time.perf_counter()
    if budget.train_images:
        batches = training_batches(data, batch, request.seed, repeat=True)
        model.fit(
            batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=callbacks
        )
        guard.images_seen = guard.steps * batch
    else:
        model.fit(
            training_batches(data, batch, request.seed),
            epochs=budget.epochs,
            shuffle=False,  # the dataset is already shuffled, with the candidate's seed
            verbose=0,
            callbacks=callbacks,
        )
        guard.images_seen = min(guard.steps * batch, budget.epochs * len(data.train_targets))
    fit_seconds = time.perf_counter() - fit_started
    if guard.diverged:
        raise EvaluationFailure("nan_loss", guard.diverged)

    infer = inference_function(model, data.task.input_shape)
    predictions = predict(infer, data.validation_images)
    if not np.all(np.isfinite(predictions)):
        raise EvaluationFailure("nan_loss", "the trained model predicts NaN")
    metrics = kind.score(data.task, data.validation_targets, predictions) | {
        **kind.signal_scores(data.task, data.validation_targets, predictions),
        **guard.loss_scores(),
        **(curve.scores if curve is not None else {}),
        **_curve_objective(budget, curve, data.task, predictions, data.validation_targets),
        "params": float(params),
        "flops": float(flops),
        "latency_ms": latency_ms(infer, data.validation_images[:1].astype(np.float32)),
        "fit_seconds": fit_seconds,
    }
    if request.deployed:
        metrics |= _deployed_metrics(model, data, request.seed)
    return metrics, weights_bytes(model), guard, inherited


def _deployed_metrics(model: keras.Model, data: EvalData, seed: int) -> dict[str, float]:
    """The trained ``model`` as a device runs it: converted to a full-integer int8 LiteRT
    file (calibrated on training faces drawn with ``seed``), scored on the validation
    split (``accuracy_int8`` or ``rmse_int8``) and timed on one image, one thread
    (``latency_litert_ms``); with the file's size, whether LiteRT's XNNPACK kernels ran it
    (else its built-in ones) and what it all cost in seconds."""
    from nas.training.litert import LiteRTError, LiteRTModel, representative_faces, to_litert

    start = time.perf_counter()
    faces = representative_faces(data.train_images, np.random.default_rng(seed))
    try:
        content = to_litert(model, int8=True, representative=faces)
        deployed = LiteRTModel(content, threads=1)
    except LiteRTError as exc:
        raise EvaluationFailure("unquantisable", str(exc)) from None
    predictions = deployed.predict(data.validation_images)
    if not np.all(np.isfinite(predictions)):
        raise EvaluationFailure("unquantisable", "the int8 LiteRT model predicts NaN")
    scored = output_kind(data.task.kind).score(data.task, data.validation_targets, predictions)
    return {
        **{twin: scored[base] for twin, base in INT8_METRICS.items() if base in scored},
        "latency_litert_ms": deployed.latency_ms(data.validation_images[:1]),
        "litert_int8_bytes": float(len(content)),
        "litert_xnnpack": float(deployed.kernels == "XNNPACK"),
        "litert_seconds": time.perf_counter() - start,
    }


def _curve_objective(
    budget: Budget,
    curve: _ScoreAt | None,
    task: Task,
    predictions: np.ndarray,
    targets: np.ndarray,
) -> dict[str, float]:
    """``accuracy_curve`` (``[budget] curve_images``): the learning curve through the scores
    at a quarter, a half and all of the images, read at ``curve_images``."""
    if not budget.curve_images or curve is None or not output_kind(task.kind).has_accuracy:
        return {}
    n = budget.train_images
    last = accuracy(targets, predictions.argmax(axis=1))
    scores = {m: curve.scores.get(f"accuracy@{m}") for m in (n // 4, n // 2)}
    if any(v is None for v in scores.values()):
        return {"accuracy_curve": last}
    points = [(n // 4, scores[n // 4]), (n // 2, scores[n // 2]), (n, last)]
    return {"accuracy_curve": extrapolate(points, budget.curve_images)}  # type: ignore[arg-type]


class _ScoreAt(keras.callbacks.Callback):
    """Scores the validation split after the steps that reach each of ``images`` (a
    learning curve within one training): ``scores["accuracy@N"]`` (the task's first
    metric) for every N, and with ``clock`` the process's CPU clock there
    (``process_time@N``, for the fidelity benchmark's costs). Inference does not change
    the training, so the scores are those separate trainings of N images would end with,
    for a recipe with a constant rate."""

    def __init__(
        self, data: EvalData, images: tuple[int, ...], batch_size: int, *, clock: bool = False
    ) -> None:
        super().__init__()
        self.data = data
        self.clock = clock
        self.at = {-(-n // batch_size): n for n in images}
        self.scores: dict[str, float] = {}
        self._steps = 0
        self._infer = None

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._steps += 1
        if self._steps not in self.at:
            return
        if self._infer is None:
            self._infer = inference_function(self.model, self.data.task.input_shape)
        predictions = predict(self._infer, self.data.validation_images)
        if np.all(np.isfinite(predictions)):
            task = self.data.task
            scored = output_kind(task.kind).score(task, self.data.validation_targets, predictions)
            name, value = next(iter(scored.items()))
            self.scores[f"{name}@{self.at[self._steps]}"] = value
        if self.clock:  # the process's CPU clock once scored: a caller subtracts its start
            self.scores[f"process_time@{self.at[self._steps]}"] = time.process_time()


class _TrainingGuard(keras.callbacks.Callback):
    """Counts optimizer steps and sets the recipe's learning rate before each; stops
    training at the time guard, and on a non-finite loss (recorded as divergence); keeps
    every step's training loss (:meth:`loss_scores`)."""

    def __init__(
        self, seconds: float, batch_size: int, *, recipe: Recipe | None = None, total_steps: int = 0
    ) -> None:
        super().__init__()
        self.seconds = seconds
        self.batch_size = batch_size
        self.recipe = recipe if recipe is not None and recipe.scheduled else None
        self.total_steps = total_steps
        self.steps = 0
        self.images_seen = 0
        self.diverged = ""
        self.stopped_early = False
        self._epoch = 0
        self._deadline = 0.0
        self.step_losses: list[float] = []
        self._running = (0, 0.0)  # (steps, mean loss) this epoch, as Keras reports it

    def on_train_begin(self, logs=None) -> None:
        self._deadline = time.perf_counter() + self.seconds

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch
        self._running = (0, 0.0)

    def loss_scores(self) -> dict[str, float]:
        """The training loss averaged over every step (``train_loss``: the sum of training
        losses, Ru et al.'s TSE, NeurIPS 2021, per step) and over the second half of the
        steps (``train_loss_late``); nothing when no step was taken."""
        losses = [loss for loss in self.step_losses if np.isfinite(loss)]
        if not losses:
            return {}
        return {
            "train_loss": float(np.mean(losses)),
            "train_loss_late": float(np.mean(losses[len(losses) // 2 :])),
        }

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self.recipe is not None:
            rate = self.recipe.rate_at(self.steps, self.total_steps)
            self.model.optimizer.learning_rate.assign(rate)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.steps += 1
        loss = (logs or {}).get("loss")
        if loss is not None:
            # Keras reports the epoch's running mean: this step's loss is the difference
            count, mean = self._running
            self._running = (count + 1, float(loss))
            self.step_losses.append((count + 1) * float(loss) - count * mean)
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged = (
                f"loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}"
            )
            self.model.stop_training = True
        elif time.perf_counter() > self._deadline:
            self.stopped_early = True
            self.model.stop_training = True
