"""Train one candidate briefly and score it. Runs inside a worker; imports TensorFlow.

Every failure becomes an :class:`~nas.trial.EvalResult` with a reason instead of an
exception, so one bad candidate never stops a search.
"""

from __future__ import annotations

import gc
import os
import socket
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from nas.errors import EvaluationFailure, GenomeError
from nas.model_stats import count_flops
from nas.scoring import accuracy, macro_f1
from nas.space import TrainingRecipe, load_space
from nas.trial import EvalData, EvalRequest, EvalResult

__all__ = ["configure_threads", "evaluate", "make_optimizer"]

_threads_configured: int | None = None


def configure_threads(threads: int) -> None:
    """Size TensorFlow's thread pools to this worker's CPU share (once per process).

    TensorFlow fixes its pools at the first op; later calls in the same process are no-ops.
    """
    global _threads_configured
    if _threads_configured is not None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1 if threads <= 2 else 2)
    except RuntimeError:
        pass  # already initialised by an earlier op in this process
    _threads_configured = threads


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


def evaluate(request: EvalRequest, data: EvalData) -> EvalResult:
    """Decode, train on ``data``'s train split within the budget, score on its validation split."""
    configure_threads(request.threads)
    start = time.perf_counter()
    common = {"genome_hash": request.genome_hash, "pid": os.getpid(), "host": socket.gethostname()}
    try:
        metrics, weights, stopped_early = _train_and_score(request, data)
        return EvalResult(
            **common,
            metrics=metrics,
            weights=weights,
            stopped_early=stopped_early,
            seconds=time.perf_counter() - start,
        )
    except EvaluationFailure as failure:
        reason, detail = failure.reason, failure.detail
    except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
        reason, detail = "oom", _one_line(exc)
    except Exception as exc:  # a candidate must never stop the search
        reason, detail = "error", f"{type(exc).__name__}: {_one_line(exc)}"
    finally:
        keras.backend.clear_session()
        gc.collect()
    return EvalResult(**common, failure=reason, detail=detail, seconds=time.perf_counter() - start)


def _train_and_score(request: EvalRequest, data: EvalData) -> tuple[dict[str, float], bytes, bool]:
    space = load_space(request.space)
    try:
        genome = space.from_json(request.genome)
    except GenomeError as exc:
        raise EvaluationFailure("invalid", str(exc)) from None
    keras.utils.set_random_seed(request.seed)
    try:
        model = space.build(genome, data.task)
    except (ValueError, TypeError) as exc:
        raise EvaluationFailure("build_error", _one_line(exc)) from None
    params = int(model.count_params())
    budget = request.budget
    if params > budget.max_params:
        raise EvaluationFailure(
            "oversized", f"{params:,} parameters > max_params {budget.max_params:,}"
        )
    flops = count_flops(model)

    recipe = space.recipe(genome)
    model.compile(optimizer=make_optimizer(recipe), loss="sparse_categorical_crossentropy")
    guard = _TrainingGuard(budget.train_seconds)
    model.fit(
        data.train_images.astype(np.float32),
        data.train_labels,
        batch_size=recipe.batch_size,
        epochs=budget.epochs,
        shuffle=True,
        verbose=0,
        callbacks=[guard],
    )
    if guard.diverged:
        raise EvaluationFailure("nan_loss", guard.diverged)

    probabilities = model.predict(
        data.validation_images.astype(np.float32), batch_size=256, verbose=0
    )
    if not np.all(np.isfinite(probabilities)):
        raise EvaluationFailure("nan_loss", "the trained model predicts NaN")
    predicted = probabilities.argmax(axis=1)
    labels = data.validation_labels
    metrics = {
        "accuracy": accuracy(labels, predicted),
        "macro_f1": macro_f1(labels, predicted, data.task.num_classes),
        "params": float(params),
        "flops": float(flops),
        "latency_ms": _latency_ms(model, data.validation_images[:1].astype(np.float32)),
    }
    return metrics, _weights_bytes(model), guard.stopped_early


class _TrainingGuard(keras.callbacks.Callback):
    """Stops training at the time cap, and on a non-finite loss (recorded as divergence)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.diverged = ""
        self.stopped_early = False
        self._epoch = 0
        self._deadline = 0.0

    def on_train_begin(self, logs=None) -> None:
        self._deadline = time.perf_counter() + self.seconds

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged = (
                f"loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}"
            )
            self.model.stop_training = True
        elif time.perf_counter() > self._deadline:
            self.stopped_early = True
            self.model.stop_training = True


def _latency_ms(model: keras.Model, image: np.ndarray, repeats: int = 20) -> float:
    infer = tf.function(lambda x: model(x, training=False))
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
