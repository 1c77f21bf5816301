"""Train a run's chosen architecture to the end: ``nas train`` and the ``[final]`` section.

A search trains each candidate briefly; the winner deserves more. The final training
takes one trial of a run, continues from the weights the search gave it (or starts
from scratch) on the whole training split, with augmentation and a cosine learning
rate, keeps the epoch best on the validation split, and writes the same export as
``nas export`` (``model.keras``, the SavedModel, ``genome.json``, ``MODEL_CARD.md``).

This module is TensorFlow-free: it plans the training and supervises the process that
does it (:mod:`nas.engine.final_training`). That process checkpoints after every epoch; when
it dies of a signal (a segfault or an abort inside TensorFlow, the OOM killer), it is
started again and resumes from its last epoch, so a crash costs at most one epoch.
Started again on the same folder, the training continues where it stopped.

The folder holds, besides the export::

    training/plan.json      what to train, and how (fixed when the training begins)
    training/state.json     epochs done, the best so far, the history, the crashes
    training/epoch-N.*      the weights and optimizer state after epoch N (the last only)
    training/best.weights.h5
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.core.files import write_atomically
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore

__all__ = [
    "FAILURE_FILE",
    "FINAL_DIR",
    "FinalOutcome",
    "FinalPlan",
    "TrainingState",
    "epochs_that_fit",
    "load_state",
    "minutes_left",
    "plan_final",
    "prepare_folder",
    "save_state",
    "train_final",
]

FINAL_DIR = "final"
"""Where ``nas search`` puts the final training of a run with a ``[final]`` section."""
TRAINING_DIR = "training"
PLAN_FILE = "plan.json"
STATE_FILE = "state.json"
FAILURE_FILE = "failure.txt"
"""The traceback of a training process that failed with an exception (not a death)."""
DEFAULT_EPOCHS = 20


@dataclass(frozen=True, kw_only=True)
class FinalPlan:
    """What to train and how; fixed when a training begins, checked when it resumes.

    ``epochs`` is the length of the learning-rate schedule (0: as many as ``minutes``
    allows at the first epoch's speed); ``minutes`` stops the training at that wall
    time, once its first epoch is done (0: never).
    """

    run_dir: str
    trial: int
    genome_hash: str
    epochs: int
    minutes: float
    patience: int
    augment: bool
    start: str
    precision: str
    seed: int
    name: str
    threads: int = 0
    """TensorFlow's intra-op threads (0: every core)."""
    tensorboard: str = ""
    """A folder for TensorBoard logs of every epoch (empty: none)."""
    recipe: str = "genome"
    """:data:`nas.core.recipes.FINAL_RECIPES`: ``"genome"`` (plans written before it existed)
    or ``"standard"``."""

    def __post_init__(self) -> None:
        if not (self.epochs or self.minutes):
            raise ValueError("a final training needs epochs or minutes")

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``plan.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinalPlan:
        """The plan ``to_json`` wrote."""
        return cls(**data)


@dataclass(kw_only=True)
class TrainingState:
    """Progress of a final training, rewritten after every epoch."""

    epochs_done: int = 0
    planned_epochs: int = 0
    best_epoch: int = 0
    best: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0
    crashes: list[dict[str, int]] = field(default_factory=list)
    finished: bool = False
    stopped: str = ""
    """Why the training ended: ``epochs``, ``patience`` or ``minutes``."""

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``state.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingState:
        """The state ``to_json`` wrote."""
        return cls(**data)


@dataclass(frozen=True)
class FinalOutcome:
    """A finished final training: where its export is and how it went."""

    folder: Path
    state: TrainingState
    restarts: int


def epochs_that_fit(epoch_seconds: list[float], seconds: float) -> int:
    """The length of a training with ``seconds`` in all (``[final] minutes`` without
    ``epochs``), after the epochs that took ``epoch_seconds``: those and as many more as fit
    at the median speed of the last five, leaving out the first epoch (it also traces the
    model) once there are others. Made again after every epoch, so the cosine schedule
    ends with the time even when epochs slow down (the 35-minute run's grew from 20 s to
    25 s: planned once after epoch 2, the schedule was cut at 55 of 58 epochs)."""
    recent = epoch_seconds[1:][-5:] or epoch_seconds
    left = seconds - sum(epoch_seconds)
    return len(epoch_seconds) + max(0, int(left // statistics.median(recent)))


def minutes_left(total_minutes: float, spent_seconds: float, folder: Path) -> float:
    """The final training's wall time under ``[final] total_minutes``: what is left of the
    whole run after ``spent_seconds`` (the search and the race), at least a second (the
    training stops at its plan's minutes, but never before its first epoch ends). A
    training already begun in ``folder`` keeps the time its plan was given, so that
    resuming it continues the same plan."""
    plan_path = folder / TRAINING_DIR / PLAN_FILE
    if plan_path.exists():
        try:
            return float(json.loads(plan_path.read_text())["minutes"])
        except (ValueError, TypeError, KeyError):
            pass  # prepare_folder names the unreadable plan
    return max(total_minutes * 60.0 - spent_seconds, 1.0) / 60.0


def plan_final(
    store: RunStore,
    record: TrialRecord,
    *,
    epochs: int | None = None,
    minutes: float | None = None,
    patience: int | None = None,
    augment: bool | None = None,
    start: str | None = None,
    name: str | None = None,
    precision: str | None = None,
    threads: int = 0,
    tensorboard: Path | None = None,
) -> FinalPlan:
    """The plan for training ``record`` further; unset choices come from the run's ``[final]``.

    With neither epochs nor minutes given anywhere, it trains :data:`DEFAULT_EPOCHS` epochs.
    """
    from nas.engine.migration import stored_experiment

    experiment = stored_experiment(store.info.experiment, source=str(store.run_dir))
    final = experiment.final
    if epochs is None and minutes is None:
        epochs, minutes = final.epochs, final.minutes
        if not (epochs or minutes):
            epochs = DEFAULT_EPOCHS
    start = start or final.start
    if start == "search" and not (record.weights and (store.run_dir / record.weights).exists()):
        raise ConfigError(
            f"trial {record.number} of {store.run_dir} has no stored weights to continue "
            "from; train it from scratch (--scratch) or pick another trial"
        )
    return FinalPlan(
        run_dir=str(store.run_dir.resolve()),
        trial=record.number,
        genome_hash=record.genome_hash,
        epochs=epochs or 0,
        minutes=minutes or 0.0,
        patience=final.patience if patience is None else patience,
        augment=final.augment if augment is None else augment,
        start=start,
        precision=precision or experiment.budget.precision,
        seed=experiment.seed,
        name=name or store.info.name,
        threads=threads,
        tensorboard=str(tensorboard.resolve()) if tensorboard else "",
        recipe=final.recipe,
    )


def load_state(folder: Path) -> TrainingState | None:
    """The state of the final training in ``folder``, or None before its first epoch."""
    path = folder / TRAINING_DIR / STATE_FILE
    if not path.exists():
        return None
    try:
        return TrainingState.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path}: unreadable ({exc}); remove {folder} to train again from the start"
        ) from None


def save_state(folder: Path, state: TrainingState) -> None:
    """Replace ``state.json`` atomically."""
    content = json.dumps(state.to_json(), indent=1).encode()
    write_atomically(folder / TRAINING_DIR / STATE_FILE, content)


def train_final(plan: FinalPlan, folder: Path, *, restarts: int = 3) -> FinalOutcome:
    """Run (or continue) the final training ``plan`` into ``folder``; return when it is done.

    The training runs in a child process; one that dies of a signal other than Ctrl-C or
    SIGTERM is started again, up to ``restarts`` times, and resumes from its last epoch.
    One that fails otherwise (an exception: it printed its one-line reason and left the
    traceback in ``training/failure.txt``) is not: the same failure would come again.
    A folder that holds another plan, or anything but a final training, is refused.
    """
    prepare_folder(plan, folder)
    done = 0
    threads = 0  # the plan's
    while True:
        before = (load_state(folder) or TrainingState()).epochs_done
        returncode = _run_child(folder, threads)
        if returncode == 0:
            state = load_state(folder)
            if state is None or not state.finished:
                raise ConfigError(
                    f"the training process for {folder} ended without finishing; run the "
                    "same command again to continue"
                )
            return FinalOutcome(folder, state, done)
        if returncode == 2:  # the child printed the one-line reason
            raise SystemExit(2)
        if returncode in (-signal.SIGINT, 130):
            raise KeyboardInterrupt
        if returncode == -signal.SIGTERM:
            raise TrainingStopped(signal.SIGTERM)
        if returncode > 0:  # an exception, not a death: its reason is printed above
            raise ConfigError(
                f"the final training in {folder} failed (exit code {returncode}, its reason "
                "above); it is restarted only when its process dies of a signal"
            )
        state = load_state(folder) or TrainingState()
        state.crashes.append(
            {"after_epoch": state.epochs_done, "returncode": returncode, "threads": threads}
        )
        save_state(folder, state)
        fallback = state.epochs_done == before and threads != 1
        threads = 1 if fallback or threads == 1 else 0
        if done >= restarts:
            raise ConfigError(
                f"the final training in {folder} crashed {done + 1} times (last exit code "
                f"{returncode}); run the same command again to continue from epoch "
                f"{state.epochs_done}"
            )
        done += 1
        print(
            f"nas: the training process died ({_death(returncode)}) after epoch "
            f"{state.epochs_done}; restarting from there ({done}/{restarts})"
            + (", on one thread (it died before finishing an epoch)" if fallback else ""),
            file=sys.stderr,
            flush=True,
        )


def prepare_folder(plan: FinalPlan, folder: Path) -> None:
    """Create ``folder`` with the plan, or check that it holds the same plan."""
    plan_path = folder / TRAINING_DIR / PLAN_FILE
    if plan_path.exists():
        try:
            held = FinalPlan.from_json(json.loads(plan_path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{plan_path}: unreadable ({exc}); remove {folder} or choose another --out"
            ) from None
        if held != plan:
            changed = next(k for k, v in plan.to_json().items() if held.to_json()[k] != v)
            raise ConfigError(
                f"{folder} holds another final training ({changed}: "
                f"{held.to_json()[changed]!r} there, {plan.to_json()[changed]!r} now); "
                "run it as it was, or choose another --out"
            )
        return
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(
            f"--out {folder}: already exists and holds no final training; choose another --out"
        )
    write_atomically(plan_path, json.dumps(plan.to_json(), indent=1).encode())


class TrainingStopped(KeyboardInterrupt):
    """The final training was stopped by ``signum`` (SIGTERM: ``kill``, a scheduler): a
    clean stop, resumable like Ctrl-C's, whose exit code is 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _child_command(folder: Path, threads: int) -> list[str]:
    command = [sys.executable, "-m", "nas.engine.final_training", str(folder)]
    return [*command, str(threads)] if threads else command


def _run_child(folder: Path, threads: int = 0) -> int:
    """Run the training process to its end; Ctrl-C reaches it too (same process group).

    A SIGTERM sent to this process alone (``kill PID``, a scheduler) is passed on to the
    training process, which ends with its finished epochs kept; before, this process
    died and left the training running on its own.

    ``threads`` (0: the plan's) overrides TensorFlow's threads: after a crash before any
    epoch ended, the training goes on with one thread, where TensorFlow 2.21's oneDNN
    kernels have not crashed here (see docs/reliability.md, "TensorFlow's own crashes").
    """
    child = subprocess.Popen(_child_command(folder, threads))
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    try:
        return child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _death(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"
