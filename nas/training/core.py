"""The training core: what every training of a model here shares, the candidate's
brief one (:mod:`nas.training.evaluate`), the multi-task one (:mod:`nas.training.multitask`) and the final
one (:mod:`nas.engine.final_training`). TensorFlow's process settings (threads, determinism,
precision), the optimizer from a recipe, the task's loss and head, batches, scoring,
inference, latency, sizes. Imports TensorFlow.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np
import tensorflow as tf

from nas.core.config import Budget
from nas.core.errors import EvaluationFailure, GenomeError
from nas.core.space import SearchSpace, TrainingRecipe, load_space
from nas.core.task import Task
from nas.core.trial import EvalData, EvalRequest

__all__ = [
    "EAGER_MAX_STEPS",
    "checked_size",
    "compile_for_training",
    "configure_process",
    "counted_size",
    "decoded_genome",
    "full_batches",
    "inference_function",
    "latency_ms",
    "make_optimizer",
    "peak_rss_mb",
    "predict",
    "resolved_precision",
    "set_precision",
    "training_batches",
    "training_steps",
    "weights_bytes",
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


EAGER_MAX_STEPS = 4
"""A training of at most this many steps runs eagerly (``run_eagerly``): tracing the
train step costs a candidate 2-8 CPU-seconds on this project's 2-core machine, more than
running a few steps eagerly adds (0.2-1 s a step, by the model). Measured on 48x48 faces,
one thread, tiny ``cnn`` candidates (docs/development.md): at 1-3 steps eager took 2.8 s
(median of 5 candidates) against 6.8-7.1 s traced; at 6 steps the two were even, at 12
traced was ahead. Only smoke-sized budgets (tests, ``train_images`` of a few batches)
train this way; a brief training of hundreds of steps is always traced."""


def training_steps(budget: Budget, batch_size: int, train_count: int) -> int:
    """The optimizer steps of a brief training: ``train_images`` images whatever the batch
    size, in full batches, or ``epochs`` passes over ``train_count`` images."""
    if budget.train_images:
        return -(-budget.train_images // batch_size)
    return budget.epochs * -(-train_count // batch_size)


def compile_for_training(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, loss, *, steps: int | None = None
) -> None:
    """``model.compile``, then build the optimizer's slot variables at once.

    Keras' TensorFlow backend otherwise creates them inside the first traced train
    step, and TensorFlow traces a function that creates variables twice: on this
    machine that cost a 112-variable candidate 12.2 s before its first step instead of
    6.9 s (a 38-variable one 4.3 s instead of 2.7 s), paid by every evaluation.
    A training of at most :data:`EAGER_MAX_STEPS` ``steps`` runs eagerly, untraced.
    """
    eager = steps is not None and steps <= EAGER_MAX_STEPS
    model.compile(optimizer=optimizer, loss=loss, run_eagerly=eager)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)


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
    count the genome's parameters and FLOPs (``cost``) and they are past
    ``budget.max_params`` or ``budget.max_flops``: a genome from anyone must not make the
    worker allocate a model that exhausts it, nor train one costlier than planned."""
    cost = getattr(space, "cost", None)
    if not callable(cost):
        return
    try:
        counted = cost(genome, task)
        params, flops = int(counted.params), int(counted.flops)
    except (GenomeError, ValueError, TypeError):
        return  # the build says why, as a build_error
    if params > budget.max_params:
        raise EvaluationFailure(
            "oversized",
            f"{params:,} parameters > max_params {budget.max_params:,} (counted before building)",
        )
    checked_flops(flops, budget, counted_before=True)


def checked_flops(flops: int, budget: Budget, *, counted_before: bool = False) -> None:
    """Fail the evaluation as ``oversized`` when ``flops`` per image are past
    ``budget.max_flops`` (when it is set)."""
    if budget.max_flops and flops > budget.max_flops:
        when = " (counted before building)" if counted_before else ""
        raise EvaluationFailure(
            "oversized", f"{flops:,} FLOPs per image > max_flops {budget.max_flops:,}{when}"
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


def full_batches(order: np.ndarray, batch_size: int) -> np.ndarray:
    """``order`` (an epoch's shuffled image indices) made a whole number of batches long
    by repeating its first indices, so that no batch is shorter than ``batch_size``.

    TensorFlow 2.21's oneDNN kernel for the weight gradient of a strided 1x1 convolution
    (``jit_1x1:avx512_core backward_weights``) writes past its scratch memory when the
    batch is odd and it runs on two or more threads: the heap is corrupted and the
    process dies (``free(): invalid next size``, SIGSEGV). A training set of 2,943
    keypoint faces in batches of 64 ends every epoch with a batch of 63, which killed
    the ResUNet final training in its first epoch (docs/reliability.md); the genomes'
    batch sizes are even, so full batches never meet it.
    """
    short = -len(order) % batch_size
    if not short:
        return order
    return np.concatenate([order, np.resize(order, short)])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def training_batches(
    data: EvalData, batch_size: int, seed: int, *, repeat: bool = False
) -> tf.data.Dataset:
    """Shuffled batches, with random horizontal flips when the data allows them, and each
    image's class weight as Keras' sample weight when the data has class weights.

    With ``repeat``, an endless stream of full batches over reshuffled passes (see
    :func:`full_batches` for why full batches matter).
    """
    images = data.train_images.astype(np.float32)
    weights = data.sample_weights(data.train_targets)
    if weights is not None and data.flip_permutation is not None:
        raise ValueError("class weights apply to classes, and flipped keypoints have none")
    columns = (
        (images, data.train_targets) if weights is None else (images, data.train_targets, weights)
    )
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size)
    if data.flip_permutation is not None:
        permutation = tf.constant(data.flip_permutation, dtype=tf.int32)
        width = float(data.task.input_shape[1])
        # Stateless: each batch's coin flips come from (seed, batch number), with no
        # variable. A stateful tf.random.Generator here is read by the endless stream's
        # prefetch thread, which can outlive the training that made it and the
        # generator's variable: the suspected cause of the heap corruption (double free,
        # SIGSEGV) of keypoint workers that train several candidates in one process
        # (issue 22; tests/benchmarks/resunet_crashes.py --per-process).
        flip_seed = tf.constant(seed % 2**31, tf.int64)

        def flip(
            batch_number: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]
        ) -> tuple[tf.Tensor, tf.Tensor]:
            batch_images, keypoints = batch
            chosen = (
                tf.random.stateless_uniform(
                    [tf.shape(batch_images)[0]], seed=tf.stack([flip_seed, batch_number])
                )
                < 0.5
            )
            mirrored = tf.gather(keypoints, permutation, axis=1)
            mirrored = tf.stack([width - 1.0 - mirrored[..., 0], mirrored[..., 1]], axis=-1)
            return (
                tf.where(
                    chosen[:, None, None, None], tf.reverse(batch_images, axis=[2]), batch_images
                ),
                tf.where(chosen[:, None, None], mirrored, keypoints),
            )

        dataset = dataset.enumerate().map(flip)
    return dataset.prefetch(1)


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


def latency_ms(infer, image: np.ndarray, repeats: int = 20) -> float:
    """Median milliseconds of ``infer`` (see :func:`inference_function`) on ``image``."""
    return median_ms(lambda: infer(image).numpy(), runs=repeats)


def median_ms(call: Callable[[], object], *, runs: int = 20, warmup: int = 1) -> float:
    """Median milliseconds of ``call()`` over ``runs`` calls, after ``warmup`` untimed ones
    (the latency of every runtime: TensorFlow, LiteRT, onnxruntime)."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


def weights_bytes(model: keras.Model) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.weights.h5"
        model.save_weights(path)
        return path.read_bytes()
