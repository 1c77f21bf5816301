"""Train one candidate briefly and score it. Runs inside a worker; imports TensorFlow.

Every failure becomes an :class:`~nas.trial.EvalResult` with a reason instead of an
exception, so one bad candidate never stops a search.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from nas.config import Budget
from nas.errors import EvaluationFailure, GenomeError
from nas.learning_curve import extrapolate
from nas.model_stats import count_flops
from nas.recipes import Recipe, brief_recipe
from nas.scoring import accuracy, keypoint_rmse, macro_f1
from nas.space import SearchSpace, TrainingRecipe, load_space
from nas.task import Task
from nas.trial import EvalData, EvalRequest, EvalResult, Inherited, MultiEvalData

__all__ = [
    "configure_process",
    "evaluate",
    "inference_function",
    "init_keypoint_head",
    "make_optimizer",
    "masked_keypoint_loss",
    "predict",
    "resolved_precision",
    "score_predictions",
    "set_precision",
    "task_loss",
]

_threads_configured: int | None = None


def configure_process(threads: int, *, deterministic: bool) -> None:
    """Size TensorFlow's thread pools to this worker's CPU share; turn on op determinism.

    TensorFlow fixes its pools at the first op, so the first call in a process decides;
    determinism, once on, stays on for the process.
    """
    global _threads_configured
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if _threads_configured is not None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1 if threads <= 2 else 2)
    except RuntimeError:
        pass  # already initialised by an earlier op in this process
    _threads_configured = threads


def resolved_precision(precision: str) -> str:
    """``"auto"`` made concrete for this machine: ``"bf16"`` when the CPU computes bfloat16
    natively (AVX512_BF16 or AMX; Linux's ``/proc/cpuinfo`` flags), ``"float32"`` otherwise."""
    if precision != "auto":
        return precision
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "float32"
    return "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def set_precision(precision: str) -> None:
    """Make the models built next compute in ``precision`` (``"float32"``, ``"bf16"`` or
    ``"auto"``, see :func:`resolved_precision`).

    Mixed bfloat16 keeps float32 weights and computes in bfloat16; the decoders keep
    their output layers in float32, so losses and scores are computed in full precision.
    """
    policy = "mixed_bfloat16" if resolved_precision(precision) == "bf16" else "float32"
    keras.mixed_precision.set_global_policy(policy)


def init_keypoint_head(
    model: keras.Model, targets: np.ndarray, side: int, *, layer: str = "keypoints_raw"
) -> bool:
    """Start a keypoint regressor at the mean face of ``targets`` instead of the image centre.

    The output layer ``layer`` (``keypoints_raw``) maps to pixels through ``(side - 1) / 2 * (1 + y)``;
    its bias is set to the training split's mean keypoints in that scale and its kernel
    shrunk tenfold, so an untrained net predicts the mean face (which alone scores about
    3.2 px RMSE on Kaggle's faces) and training learns the deviations from it. Returns
    False (and changes nothing) when the model has no such layer (e.g. a heatmap head).
    """
    try:
        output = model.get_layer(layer)
    except ValueError:
        return False
    mean = np.nanmean(targets.reshape(len(targets), -1).astype(np.float64), axis=0)
    if not np.all(np.isfinite(mean)):
        return False
    half = (side - 1) / 2.0
    kernel, _ = output.get_weights()
    output.set_weights([kernel * 0.1, ((mean - half) / half).astype(np.float32)])
    return True


def make_optimizer(recipe: TrainingRecipe) -> keras.optimizers.Optimizer:
    """The Keras optimizer a genome's training recipe asks for."""
    decay = recipe.weight_decay or None
    if recipe.optimizer == "adam":
        return keras.optimizers.Adam(recipe.learning_rate, weight_decay=decay)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(recipe.learning_rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.SGD(
        recipe.learning_rate, momentum=0.9, nesterov=True, weight_decay=decay
    )


def compile_for_training(model: keras.Model, optimizer: keras.optimizers.Optimizer, loss) -> None:
    """``model.compile``, then build the optimizer's slot variables at once.

    Keras' TensorFlow backend otherwise creates them inside the first traced train
    step, and TensorFlow traces a function that creates variables twice: on this
    machine that cost a 112-variable candidate 12.2 s before its first step instead of
    6.9 s (a 38-variable one 4.3 s instead of 2.7 s), paid by every evaluation.
    """
    model.compile(optimizer=optimizer, loss=loss)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)


def evaluate(request: EvalRequest, data: EvalData | MultiEvalData) -> EvalResult:
    """Decode, train on ``data``'s train split within the budget, score on its validation
    split; with several tasks' data, one model with a head per task
    (:mod:`nas.multitask`)."""
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
            from nas.multitask import train_and_score_multitask

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
            peak_rss_mb=_peak_rss_mb(),
        )
    except EvaluationFailure as failure:
        reason, detail = failure.reason, failure.detail
    except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
        reason, detail = "oom", _one_line(exc)
    except Exception as exc:  # a candidate must never stop the search
        reason, detail = "error", f"{type(exc).__name__}: {_one_line(exc)}"
    finally:
        keras.backend.clear_session()  # which also runs the garbage collector
    return EvalResult(
        **common,
        failure=reason,
        detail=detail,
        seconds=time.perf_counter() - start,
        peak_rss_mb=_peak_rss_mb(),
    )


def _averaged(mean: dict[str, float], more: dict[str, float], count: int) -> dict[str, float]:
    """``mean`` of ``count`` trainings with one more training's ``more`` folded in: the
    quality metrics are averaged; the costs (the same net) and curve points kept."""
    out = dict(mean)
    for name in ("accuracy", "macro_f1", "rmse", "accuracy_curve"):
        if name in mean and name in more:
            out[name] = (mean[name] * count + more[name]) / (count + 1)
    return out


def decoded_genome(request: EvalRequest) -> tuple[SearchSpace, Any]:
    """The request's space and decoded genome (an undecodable one fails the evaluation
    as ``invalid``), with the training seed and precision set for the model built next."""
    space = load_space(request.space)
    try:
        genome = space.from_json(request.genome)
    except GenomeError as exc:
        raise EvaluationFailure("invalid", str(exc)) from None
    keras.utils.set_random_seed(request.seed)
    set_precision(request.budget.precision)
    return space, genome


def counted_size(space: SearchSpace, genome: Any, task: Task, budget: Budget) -> None:
    """Fail the evaluation as ``oversized`` before anything is built when the space can
    count the genome's parameters (``cost``) and they are past ``budget.max_params``: a
    genome from anyone must not make the worker allocate a model that exhausts it."""
    cost = getattr(space, "cost", None)
    if not callable(cost):
        return
    try:
        params = int(cost(genome, task).params)
    except (GenomeError, ValueError, TypeError):
        return  # the build says why, as a build_error
    if params > budget.max_params:
        raise EvaluationFailure(
            "oversized",
            f"{params:,} parameters > max_params {budget.max_params:,} (counted before building)",
        )


def checked_size(model: keras.Model, budget: Budget) -> int:
    """The model's parameter count; past ``budget.max_params`` the evaluation fails as
    ``oversized``."""
    params = int(model.count_params())
    if params > budget.max_params:
        raise EvaluationFailure(
            "oversized", f"{params:,} parameters > max_params {budget.max_params:,}"
        )
    return params


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _train_and_score(
    request: EvalRequest, data: EvalData
) -> tuple[dict[str, float], bytes, _TrainingGuard, Inherited | None]:
    space, genome = decoded_genome(request)
    counted_size(space, genome, data.task, request.budget)
    try:
        model = space.build(genome, data.task)
    except (ValueError, TypeError) as exc:
        raise EvaluationFailure("build_error", _one_line(exc)) from None
    if request.pretrained is not None:
        from baselines import load_pretrained

        name, path = request.pretrained
        try:
            load_pretrained(name, model, path)
        except (OSError, ValueError) as exc:
            raise EvaluationFailure(
                "build_error", f"pre-trained weights {path}: {_one_line(exc)}"
            ) from None
    params = checked_size(model, request.budget)
    budget = request.budget
    flops = count_flops(model)
    if data.task.kind == "keypoints" and request.pretrained is None:
        init_keypoint_head(model, data.train_targets, data.task.input_shape[1])
    inherited = None
    if request.parents:  # weight inheritance: start from the parents' trained weights
        from nas.inheritance import inherit_weights

        report = inherit_weights(model, genome, request.parents, space=space, task=data.task)
        inherited = report.summary()

    recipe = brief_recipe(budget.recipe, space.recipe(genome))
    compile_for_training(
        model, make_optimizer(recipe.training), task_loss(data.task, recipe.label_smoothing)
    )
    batch = recipe.batch_size
    if budget.train_images:  # a count of images, whatever the batch size: full batches
        steps = -(-budget.train_images // batch)
    else:
        steps = budget.epochs * -(-len(data.train_targets) // batch)
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
    if budget.train_images:
        batches = _training_batches(data, batch, request.seed, repeat=True)
        model.fit(
            batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=callbacks
        )
        guard.images_seen = guard.steps * batch
    else:
        model.fit(
            _training_batches(data, batch, request.seed),
            epochs=budget.epochs,
            shuffle=False,  # the dataset is already shuffled, with the candidate's seed
            verbose=0,
            callbacks=callbacks,
        )
        guard.images_seen = min(guard.steps * batch, budget.epochs * len(data.train_targets))
    if guard.diverged:
        raise EvaluationFailure("nan_loss", guard.diverged)

    infer = inference_function(model, data.task.input_shape)
    predictions = predict(infer, data.validation_images)
    if not np.all(np.isfinite(predictions)):
        raise EvaluationFailure("nan_loss", "the trained model predicts NaN")
    metrics = score_predictions(data.task, data.validation_targets, predictions) | {
        **(curve.scores if curve is not None else {}),
        **_curve_objective(budget, curve, data.task, predictions, data.validation_targets),
        "params": float(params),
        "flops": float(flops),
        "latency_ms": _latency_ms(infer, data.validation_images[:1].astype(np.float32)),
    }
    return metrics, _weights_bytes(model), guard, inherited


def masked_keypoint_loss(scale: float):
    """Mean squared error over the coordinates present, in units of ``scale`` pixels.

    Targets hold NaN where a point is missing: those coordinates add nothing to the loss
    or to its gradient, and the mean is over the coordinates present in the batch.
    """

    def loss(targets: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
        present = tf.math.is_finite(targets)
        error = tf.where(present, (predicted - tf.where(present, targets, 0.0)) / scale, 0.0)
        count = tf.reduce_sum(tf.cast(present, error.dtype))
        return tf.reduce_sum(tf.square(error)) / tf.maximum(count, 1.0)

    return loss


def task_loss(task: Task, label_smoothing: float = 0.0):
    """The training loss of ``task``: cross-entropy (with ``label_smoothing``, that share
    of a uniform target mixed into the one-hot one), or the masked keypoint loss."""
    if task.kind == "keypoints":
        return masked_keypoint_loss(float(max(task.input_shape[:2])))
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)

    def loss(targets: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(tf.reshape(targets, [-1]), tf.int32)
        return smoothed(tf.one_hot(labels, task.num_classes, dtype=predicted.dtype), predicted)

    return loss


def score_predictions(task: Task, targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """The task's quality metrics of ``predictions`` against ``targets``."""
    if task.kind == "keypoints":
        return {"rmse": keypoint_rmse(targets, predictions)}
    predicted = predictions.argmax(axis=1)
    return {
        "accuracy": accuracy(targets, predicted),
        "macro_f1": macro_f1(targets, predicted, task.num_classes),
    }


def _training_batches(
    data: EvalData, batch_size: int, seed: int, *, repeat: bool = False
) -> tf.data.Dataset:
    """Shuffled batches, with random horizontal flips when the data allows them.

    With ``repeat``, an endless stream of full batches over reshuffled passes.
    """
    images = data.train_images.astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, data.train_targets))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size)
    if data.flip_permutation is not None:
        permutation = tf.constant(data.flip_permutation, dtype=tf.int32)
        width = float(data.task.input_shape[1])
        generator = tf.random.Generator.from_seed(seed)

        def flip(batch_images: tf.Tensor, keypoints: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            chosen = generator.uniform([tf.shape(batch_images)[0]]) < 0.5
            mirrored = tf.gather(keypoints, permutation, axis=1)
            mirrored = tf.stack([width - 1.0 - mirrored[..., 0], mirrored[..., 1]], axis=-1)
            return (
                tf.where(
                    chosen[:, None, None, None], tf.reverse(batch_images, axis=[2]), batch_images
                ),
                tf.where(chosen[:, None, None], mirrored, keypoints),
            )

        dataset = dataset.map(flip)
    return dataset.prefetch(1)


def _curve_objective(
    budget: Budget,
    curve: _ScoreAt | None,
    task: Task,
    predictions: np.ndarray,
    targets: np.ndarray,
) -> dict[str, float]:
    """``accuracy_curve`` (``[budget] curve_images``): the learning curve through the scores
    at a quarter, a half and all of the images, read at ``curve_images``."""
    if not budget.curve_images or curve is None or task.kind != "classification":
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
            scored = score_predictions(self.data.task, self.data.validation_targets, predictions)
            name, value = next(iter(scored.items()))
            self.scores[f"{name}@{self.at[self._steps]}"] = value
        if self.clock:  # the process's CPU clock once scored: a caller subtracts its start
            self.scores[f"process_time@{self.at[self._steps]}"] = time.process_time()


class _TrainingGuard(keras.callbacks.Callback):
    """Counts optimizer steps and sets the recipe's learning rate before each; stops
    training at the time guard, and on a non-finite loss (recorded as divergence)."""

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

    def on_train_begin(self, logs=None) -> None:
        self._deadline = time.perf_counter() + self.seconds

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self.recipe is not None:
            rate = self.recipe.rate_at(self.steps, self.total_steps)
            self.model.optimizer.learning_rate.assign(rate)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.steps += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged = (
                f"loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}"
            )
            self.model.stop_training = True
        elif time.perf_counter() > self._deadline:
            self.stopped_early = True
            self.model.stop_training = True


def inference_function(model: keras.Model, input_shape: tuple[int, ...]):
    """One traced inference function for every batch size (scoring and latency alike).

    ``model.predict`` traces again for a last, smaller batch, and a fresh ``tf.function``
    per latency measurement traces once more: seconds per candidate on this CPU.
    """
    signature = [tf.TensorSpec((None, *input_shape), tf.float32)]
    return tf.function(
        lambda x: model(x, training=False), input_signature=signature, autograph=False
    )


def predict(infer, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``infer`` (see :func:`inference_function`) over ``images`` in batches, as float32."""
    chunks = [
        np.asarray(infer(images[start : start + batch_size].astype(np.float32)), np.float32)
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks)


def _latency_ms(infer, image: np.ndarray, repeats: int = 20) -> float:
    infer(image)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        infer(image).numpy()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def _weights_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.weights.h5"
        model.save_weights(path)
        return path.read_bytes()


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
