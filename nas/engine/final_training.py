"""The process behind ``nas train``: train one architecture epoch by epoch. Imports TensorFlow.

``python -m nas.engine.final_training FOLDER`` trains the plan in ``FOLDER/training/plan.json``
(written by :func:`nas.engine.final.train_final`, which also restarts this process when it
crashes). Every epoch ends with a checkpoint: the weights and the optimizer's state
(``epoch-N.weights.h5``, ``epoch-N.optimizer.npz``), the best weights so far, then
``state.json``, each replaced atomically, so the process may die at any instant and
resume from its last completed epoch. Exit codes: 0 done, 2 bad input (one line on
stderr), 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from nas.core.errors import ConfigError, GenomeError, NasError
from nas.core.faults import failpoint
from nas.core.files import replace_synced, write_through
from nas.core.objectives import METRICS
from nas.core.recipes import Recipe, final_recipe
from nas.core.signal_quality import signal_quality
from nas.core.space import SearchSpace, load_space
from nas.data.augment import augment
from nas.engine.final import (
    FAILURE_FILE,
    PLAN_FILE,
    TRAINING_DIR,
    FinalPlan,
    TrainingState,
    epochs_that_fit,
    load_state,
    save_state,
)
from nas.engine.migration import stored_experiment
from nas.engine.task_data import TaskData, load_task_data
from nas.export.files import genome_document, serving_lines, write_export_files
from nas.kinds import output_kind
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore
from nas.training.core import (
    compile_for_training,
    configure_process,
    full_batches,
    inference_function,
    make_optimizer,
    predict,
    set_precision,
)

__all__ = ["main", "run_training", "train_architecture"]


def main(argv: Sequence[str] | None = None) -> int:
    """Train the plan in ``argv[0]``; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args[0])
    failpoint("final:start")
    try:
        plan = FinalPlan.from_json(json.loads((folder / TRAINING_DIR / PLAN_FILE).read_text()))
        threads = int(args[1]) if len(args) > 1 else 0  # the supervisor's fallback
        run_training(dataclasses.replace(plan, threads=threads) if threads else plan, folder)
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: said in one line, the traceback kept, never retried
        log = folder / TRAINING_DIR / FAILURE_FILE
        try:
            log.write_text(traceback.format_exc())
            where = f" (traceback in {log})"
        except OSError:
            where = ""
        print(
            f"nas: error: the final training failed: {type(exc).__name__}: {exc}{where}",
            file=sys.stderr,
        )
        return 1
    return 0


def run_training(plan: FinalPlan, folder: Path) -> TrainingState:
    """Train (or continue training) ``plan`` into ``folder``, then write its export there."""
    store = RunStore.open(plan.run_dir)
    record = _trial(store, plan)
    experiment = stored_experiment(store.info.experiment, source=str(store.run_dir))
    state = load_state(folder) or TrainingState()
    space = load_space(store.info.space)
    try:
        genome = space.from_json(record.genome)
    except GenomeError as exc:
        raise ConfigError(f"trial {record.number}: its stored genome is unusable ({exc})") from None
    if state.finished:
        if not (folder / "MODEL_CARD.md").exists():
            _export(plan, folder, store, record, space, genome, state)
        return state

    data = load_task_data(experiment, full=True)
    train_architecture(
        plan,
        folder,
        space,
        genome,
        data,
        metric=_epoch_metric(store.info.objectives[0]),
        start_weights=store.run_dir / str(record.weights) if plan.start == "search" else None,
        deterministic=experiment.budget.deterministic,
        state=state,
    )
    _export(plan, folder, store, record, space, genome, state)
    return state


def _epoch_metric(objective: str) -> str:
    """The validation metric that picks the best epoch: the run's first objective, or the
    accuracy that a prediction of it (``accuracy_curve``) stands for."""
    return "accuracy" if objective == "accuracy_curve" else objective


def train_architecture(
    plan: FinalPlan,
    folder: Path,
    space: SearchSpace,
    genome: object,
    data: TaskData,
    *,
    metric: str,
    start_weights: Path | None = None,
    deterministic: bool = True,
    state: TrainingState | None = None,
) -> TrainingState:
    """Train ``genome`` on ``data`` by ``plan``, epoch by epoch, checkpointing into
    ``folder``/training; continue from its last epoch when it holds one.

    The one epoch loop of facenas' long trainings: ``nas train``, ``[final]`` and the
    fidelity benchmark's truths (:mod:`nas.engine.fidelity`). ``start_weights`` (a
    ``.weights.h5``) starts from trained weights instead of from scratch; ``metric`` is the
    validation metric that picks the best epoch. Returns the state after the last epoch.
    """
    state = state or load_state(folder) or TrainingState()
    if state.finished:
        return state
    task = data.eval_data.task
    threads = plan.threads or os.cpu_count() or 1
    configure_process(threads, deterministic=deterministic)
    keras.backend.clear_session()
    keras.utils.set_random_seed(plan.seed)
    set_precision(plan.precision)
    model = space.build(genome, task)
    recipe = final_recipe(plan.recipe, space.recipe(genome))
    training = folder / TRAINING_DIR
    if state.epochs_done:
        model.load_weights(training / f"epoch-{state.epochs_done}.weights.h5")
    elif start_weights is not None:
        model.load_weights(start_weights)
    else:
        output_kind(task.kind).prepare_head(model, data.eval_data.train_targets, task)
    optimizer = make_optimizer(recipe.training)
    compile_for_training(
        model, optimizer, output_kind(task.kind).loss(task, recipe.label_smoothing)
    )
    if state.epochs_done:
        _load_optimizer(optimizer, model, training / f"epoch-{state.epochs_done}.optimizer.npz")
    _Trainer(plan, folder, metric, data, model, recipe).run(state)
    return state


class _Trainer:
    """The epoch loop: augment, fit one epoch, score, checkpoint, decide whether to go on."""

    def __init__(
        self,
        plan: FinalPlan,
        folder: Path,
        metric: str,
        data: TaskData,
        model: keras.Model,
        recipe: Recipe,
    ) -> None:
        self.plan = plan
        self.training = folder / TRAINING_DIR
        self.folder = folder
        self.data = data.eval_data
        self.model = model
        self.recipe = recipe
        self.batch_size = recipe.batch_size
        self.metric = metric
        self.steps_per_epoch = math.ceil(len(self.data.train_targets) / recipe.batch_size)
        self.kind = output_kind(self.data.task.kind)
        self.augmentation = self.kind.augmentation
        self.board = tf.summary.create_file_writer(plan.tensorboard) if plan.tensorboard else None

    def run(self, state: TrainingState) -> None:
        """Train epochs until the plan's length, its patience or its minutes end it."""
        plan = self.plan
        state.planned_epochs = state.planned_epochs or plan.epochs
        verbose = 1 if sys.stdout.isatty() else 0
        while not state.finished:
            epoch = state.epochs_done
            started = time.perf_counter()
            images, targets = self._epoch_data(epoch)
            guard = _EpochControl(self, state, epoch, started)
            # a plain dataset of the epoch's arrays: no parallel map (Keras' array adapter
            # runs one, whose op TensorFlow 2.21 reports with an unknown attribute)
            weights = self.data.sample_weights(targets)  # [budget] class_weight
            columns = (images, targets) if weights is None else (images, targets, weights)
            batches = tf.data.Dataset.from_tensor_slices(columns)
            history = self.model.fit(
                batches.batch(self.batch_size).prefetch(1),
                epochs=1,
                shuffle=False,
                verbose=verbose,
                callbacks=[guard],
            )
            loss = float(history.history["loss"][-1]) if history.history.get("loss") else math.nan
            metrics = self._score()
            seconds = time.perf_counter() - started
            state.seconds += seconds
            state.images += guard.steps * self.batch_size
            state.epochs_done = epoch + 1
            improved = self._better(metrics, state.best)
            if improved:
                state.best, state.best_epoch = metrics, epoch + 1
                self._save_weights(self.training / "best.weights.h5")
            state.history.append({"epoch": epoch + 1, "loss": loss, **metrics, "seconds": seconds})
            self._log(epoch + 1, loss, metrics, seconds, guard.steps)
            if not plan.epochs:
                state.planned_epochs = epochs_that_fit(
                    [h["seconds"] for h in state.history], plan.minutes * 60
                )
            state.stopped = self._stop_reason(state, loss, guard.out_of_time)
            state.finished = bool(state.stopped)
            self._checkpoint(state)
            _echo(state, metrics, loss, seconds, self.metric, improved)
            failpoint("final:epoch")

    def _log(
        self, epoch: int, loss: float, metrics: dict[str, float], seconds: float, steps: int
    ) -> None:
        """The epoch's figures for TensorBoard (``--tensorboard``), step = epoch."""
        if self.board is None:
            return
        scalars = {
            "train/loss": loss,
            **{f"validation/{name}": value for name, value in metrics.items()},
            "train/learning_rate": float(self.model.optimizer.learning_rate),
            "train/images_per_second": steps * self.batch_size / seconds,
        }
        # tf.summary.write with TensorBoard's scalar metadata, which is what
        # tf.summary.scalar writes, without needing the tensorboard package installed
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        with self.board.as_default(step=epoch):
            for tag, value in scalars.items():
                tf.summary.write(tag, tf.constant(value, tf.float32), metadata=metadata)
        self.board.flush()

    def _epoch_data(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's training images (augmented when the plan says so), shuffled, in
        full batches (:func:`nas.training.core.full_batches`)."""
        rng = np.random.default_rng([self.plan.seed, epoch])
        data = self.data
        keypoints = data.train_targets if self.kind.spatial_targets else None
        if self.plan.augment:
            images, moved = augment(
                data.train_images,
                rng,
                self.augmentation,
                keypoints=keypoints,
                flip_permutation=data.flip_permutation,
            )
            targets = moved if moved is not None else data.train_targets
        else:
            images, targets = data.train_images.astype(np.float32), data.train_targets
        order = full_batches(rng.permutation(len(targets)), self.batch_size)
        return images[order], targets[order]

    def learning_rate_at(self, step: int, planned_epochs: int) -> float:
        """The recipe's rate at ``step`` of a schedule over ``planned_epochs`` epochs."""
        if not planned_epochs:
            return self.recipe.learning_rate
        return self.recipe.rate_at(step, planned_epochs * self.steps_per_epoch)

    def _score(self) -> dict[str, float]:
        infer = inference_function(self.model, self.data.task.input_shape)
        predictions = predict(infer, self.data.validation_images)
        if not np.all(np.isfinite(predictions)):
            return {}
        return self.kind.score(self.data.task, self.data.validation_targets, predictions)

    def _better(self, metrics: dict[str, float], best: dict[str, float]) -> bool:
        if self.metric not in metrics:
            return False
        if self.metric not in best:
            return True
        return METRICS[self.metric].weight * (metrics[self.metric] - best[self.metric]) > 0

    def _stop_reason(self, state: TrainingState, loss: float, out_of_time: bool) -> str:
        plan = self.plan
        if not math.isfinite(loss) or self.metric not in state.history[-1]:
            return "diverged"  # the best epoch so far is kept
        if out_of_time or (plan.minutes and state.seconds >= plan.minutes * 60):
            return "minutes"
        if plan.patience and state.epochs_done - state.best_epoch >= plan.patience:
            return "patience"
        if state.epochs_done >= state.planned_epochs:
            return "epochs"
        return ""

    def _save_weights(self, path: Path) -> None:
        write_through(path, self.model.save_weights, suffix=".weights.h5")

    def _checkpoint(self, state: TrainingState) -> None:
        """This epoch's weights and optimizer state, then the state that points to them."""
        epoch = state.epochs_done
        self._save_weights(self.training / f"epoch-{epoch}.weights.h5")
        variables = {f"v{i}": np.asarray(v) for i, v in enumerate(self.model.optimizer.variables)}
        write_through(
            self.training / f"epoch-{epoch}.optimizer.npz",
            lambda path: np.savez(path, **variables),
            suffix=".npz",
        )
        save_state(self.folder, state)
        for old in self.training.glob("epoch-*"):
            if not old.name.startswith(f"epoch-{epoch}."):
                old.unlink(missing_ok=True)


class _EpochControl(keras.callbacks.Callback):
    """Sets the learning rate before every step; stops at the plan's minutes, after the
    first epoch."""

    def __init__(self, trainer: _Trainer, state: TrainingState, epoch: int, started: float):
        super().__init__()
        self.trainer = trainer
        self.state = state
        self.first_step = epoch * trainer.steps_per_epoch
        self.started = started
        self.steps = 0
        self.out_of_time = False

    def on_train_batch_begin(self, batch, logs=None) -> None:
        rate = self.trainer.learning_rate_at(self.first_step + batch, self.state.planned_epochs)
        self.model.optimizer.learning_rate.assign(rate)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.steps += 1
        minutes = self.trainer.plan.minutes
        elapsed = self.state.seconds + time.perf_counter() - self.started
        # the first epoch always ends: a model needs one pass over the data
        if minutes and self.first_step and elapsed >= minutes * 60:
            self.out_of_time = True
            self.model.stop_training = True


def _load_optimizer(optimizer: keras.optimizers.Optimizer, model: keras.Model, path: Path) -> None:
    with np.load(path) as saved:
        values = [saved[f"v{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ConfigError(f"{path}: holds another optimizer's state; remove it to restart")
    for variable, value in zip(optimizer.variables, values, strict=True):
        variable.assign(value)


def _trial(store: RunStore, plan: FinalPlan) -> TrialRecord:
    matches = [r for r in store.trials() if r.number == plan.trial]
    if not matches or matches[0].genome_hash != plan.genome_hash:
        raise ConfigError(
            f"{plan.run_dir} no longer holds trial {plan.trial} ({plan.genome_hash}) that this "
            "final training began with; train again into another --out"
        )
    return matches[0]


def _echo(
    state: TrainingState,
    metrics: dict[str, float],
    loss: float,
    seconds: float,
    metric: str,
    improved: bool,
) -> None:
    value = metrics.get(metric, math.nan)
    best = state.best.get(metric, math.nan)
    print(
        f"epoch {state.epochs_done}/{state.planned_epochs}  loss {loss:.4f}  "
        f"{metric} {value:.4f}{' *' if improved else '  '}  best {best:.4f} (epoch "
        f"{state.best_epoch})  {seconds:.0f} s"
        + (f"  -> stop: {state.stopped}" if state.stopped else ""),
        flush=True,
    )


def _export(
    plan: FinalPlan,
    folder: Path,
    store: RunStore,
    record: TrialRecord,
    space: SearchSpace,
    genome: object,
    state: TrainingState,
) -> None:
    """Write the best epoch's model as ``nas export`` does, in float32, into ``folder``."""
    best = folder / TRAINING_DIR / "best.weights.h5"
    if not best.exists():
        raise ConfigError(
            f"the final training in {folder} diverged in its first epoch ({state.history}); "
            "train from scratch (--scratch) or another trial into another --out"
        )
    set_precision("float32")
    keras.backend.clear_session()
    model = space.build(genome, store.info.task)
    model.load_weights(best)
    staging = folder / f".export-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        genome_doc = genome_document(store.info, record)
        card = _model_card(plan, store, record, state, model)
        write_export_files(model, staging, name=plan.name, genome_doc=genome_doc, card=card)
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == "MODEL_CARD.md"):
            target = folder / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            replace_synced(entry, target)  # the card last: its presence marks a whole export
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _recipe_words(plan: FinalPlan, record: TrialRecord) -> str:
    if plan.recipe == "standard":
        r = final_recipe("standard", None)  # type: ignore[arg-type]
        return (
            f"the standard recipe ({r.optimizer}, rate {r.learning_rate:g}, batch {r.batch_size}, "
            f"weight decay {r.weight_decay:g}, {r.warmup_fraction:.0%} warm-up, label smoothing "
            f"{r.label_smoothing:g})"
        )
    return "the genome's own optimizer, rate and batch"


def _model_card(
    plan: FinalPlan, store: RunStore, record: TrialRecord, state: TrainingState, model: keras.Model
) -> str:
    info = store.info
    searched = {k: v for k, v in record.metrics.items() if k in state.best}
    rows = [
        f"| {name} | {searched.get(name, math.nan):.4f} | {value:.4f} |"
        for name, value in state.best.items()
    ]
    crashes = (
        f" The training process crashed {len(state.crashes)} time(s) and resumed from its last "
        "epoch each time."
        if state.crashes
        else ""
    )
    lines = [
        f"# {plan.name}",
        "",
        f"Trial {record.number} (`{record.genome_hash}`) of the facenas run `{plan.run_dir}`, "
        "then trained further on the whole training split.",
        "",
        f"Architecture ({info.space} space): `{record.description}`"
        + (
            " (the genome's training genes, its last part, were not used: both its search "
            "and its final training took the standard recipe)"
            if plan.recipe == "standard"
            and info.experiment.get("budget", {}).get("recipe") == "standard"
            else ""
        ),
        "",
        f"Parameters: {model.count_params():,}. FLOPs per image: "
        f"{int(record.metrics.get('flops', 0)):,}.",
        "",
        "## Metrics (the run's validation split)",
        "",
        "| metric | after the search | after the final training |",
        "|---|---|---|",
        *rows,
        "",
        "## Final training",
        "",
        f"From {'the weights of the search' if plan.start == 'search' else 'scratch'}, on every "
        f"training image ({state.images:,} images in {state.epochs_done} epochs, "
        f"{state.seconds / 60:.1f} minutes), "
        f"{'with flips, shifts and zooms, ' if plan.augment else ''}"
        f"{plan.precision} precision, {_recipe_words(plan, record)}, cosine learning-rate "
        f"decay over {state.planned_epochs} epochs; kept the best epoch on the validation split (epoch {state.best_epoch}); "
        f"stopped by {state.stopped}.{crashes} The validation split chose the epoch, so its "
        "figure is slightly optimistic: check on data kept aside.",
        "",
        *([quality, ""] if (quality := signal_quality(info.experiment)) else []),
        *serving_lines(info, plan.name),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
