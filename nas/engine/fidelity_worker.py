"""The fidelity benchmark's worker process: one measurement at a time. Imports TensorFlow.

:func:`initialise` runs once per process (one TensorFlow thread, the experiment's data
loaded once); :func:`measure` trains one truth (:func:`nas.engine.final_training.train_architecture`,
resumable from its last epoch) or one signal (:func:`nas.training.evaluate.evaluate`, exactly as a
search candidate trains) and returns the row to record. A failing measurement returns
its reason instead of raising, like a failing candidate.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from nas.core.errors import NasError
from nas.core.machine import machine_kind
from nas.core.space import load_space
from nas.core.trial import EvalRequest
from nas.engine.experiment import experiment_from_dict
from nas.engine.final import FinalPlan, prepare_folder
from nas.engine.final_training import train_architecture
from nas.engine.task_data import TaskData, load_task_data
from nas.training.core import configure_process
from nas.training.evaluate import evaluate

__all__ = ["initialise", "measure"]

THREADS = 1
"""TensorFlow threads per measurement: the same for every row, so results do not depend on
how many cores the machine has (a genome scored 0.4795 on one thread and 0.3958 on two)."""

_state: dict[str, Any] = {}

SIGNAL_SCORES: tuple[str, ...] = ("log_likelihood", "train_loss", "train_loss_late")
"""The other scores of a signal's training kept with its row (at its last image count),
which the report ranks by beside its accuracy."""


def initialise(experiment_table: dict[str, Any]) -> None:
    """Configure this process (one thread, op determinism) and remember the experiment."""
    _end_with_parent()
    experiment = experiment_from_dict(experiment_table, source="nas fidelity")
    configure_process(THREADS, deterministic=True)
    _state["experiment"] = experiment
    _state["data"] = {}


def _end_with_parent() -> None:
    """Have Linux end this process when the benchmark's process ends, however it ends
    (``kill``, SIGKILL, a closed terminal): an orphaned measurement would train on,
    taking a core, with no one to record its row. Its checkpoint stays for the resume."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def _data(full: bool) -> TaskData:
    cache: dict[bool, TaskData] = _state["data"]
    if full not in cache:
        cache[full] = load_task_data(_state["experiment"], full=full)
    return cache[full]


def measure(job: dict[str, Any], work: str) -> dict[str, Any]:
    """Run ``job`` (see :func:`nas.engine.fidelity._job_json`); checkpoints go to ``work``."""
    started, cpu = time.perf_counter(), time.process_time()
    try:
        if job["kind"] == "truth":
            row = _truth(job, Path(work))
        elif job["budget"].get("proxy"):
            row = _proxy(job)
        else:
            row = _signal(job)
    except NasError as exc:
        row = {"failure": "error", "detail": str(exc)}
    except Exception as exc:  # a failing measurement is recorded; the benchmark goes on
        row = {"failure": "error", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    row |= {
        "member": job["member"],
        "genome_hash": job["genome_hash"],
        "seed": job["seed"],
        "cpu_seconds": row.get("cpu_seconds", time.process_time() - cpu),
        "seconds": row.get("seconds", time.perf_counter() - started),
        "threads": THREADS,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
        "machine": machine_kind(),
    }
    return row


def _truth(job: dict[str, Any], work: Path) -> dict[str, Any]:
    experiment = _state["experiment"]
    space = load_space(experiment.space)
    genome = space.from_json(job["genome"])
    plan = FinalPlan(
        run_dir="",
        trial=-1,
        genome_hash=job["genome_hash"],
        epochs=job["epochs"],
        minutes=0.0,
        patience=0,
        augment=True,
        start="scratch",
        precision="float32",
        seed=job["seed"],
        name="truth",
        threads=THREADS,
        recipe="standard",
    )
    prepare_folder(plan, work)
    cpu = time.process_time()
    state = train_architecture(
        plan, work, space, genome, _data(full=True), metric="accuracy", deterministic=True
    )
    last = state.history[-1] if state.history else {}
    if "accuracy" not in last:
        return {"failure": "diverged", "detail": f"history {state.history}"}
    data = _data(full=True).eval_data
    return {
        "accuracy": last["accuracy"],
        "macro_f1": last.get("macro_f1"),
        "best_accuracy": state.best.get("accuracy"),
        "best_epoch": state.best_epoch,
        "epochs": state.epochs_done,
        "history": [round(h.get("accuracy", float("nan")), 5) for h in state.history],
        "images": state.images,
        "train_faces": len(data.train_targets),
        "validation_faces": len(data.validation_targets),
        "seconds": state.seconds,
        "cpu_seconds_last_session": time.process_time() - cpu,
        "recipe": "standard",
    }


def _signal(job: dict[str, Any]) -> dict[str, Any]:
    experiment = _state["experiment"]
    images = sorted(job["images"])
    curve = sorted(set(job.get("curve", ())) - set(images))
    budget = dataclasses.replace(
        experiment.budget,
        **job["budget"],
        train_images=images[-1],
        precision="float32",  # as the truths: the signal must not depend on the CPU's bf16
        max_params=10**9,
        train_seconds=10**6,
        timeout_seconds=2 * 10**6,
    )
    request = EvalRequest(
        space=experiment.space,
        genome=job["genome"],
        genome_hash=job["genome_hash"],
        seed=job["seed"],
        budget=budget,
        threads=THREADS,
        score_at=tuple(sorted(images[:-1] + curve)),
    )
    data = _data(full=False).eval_data  # loaded once per process: not the signal's cost
    cpu = time.process_time()
    result = evaluate(request, data)
    cpu_seconds = time.process_time() - cpu
    if not result.ok:
        return {"failure": result.failure, "detail": result.detail, "cpu_seconds": cpu_seconds}
    metrics = result.metrics or {}
    scores = [metrics[f"accuracy@{n}"] for n in images[:-1]] + [metrics["accuracy"]]
    return {
        "signal": job["signal"],
        "images": images,
        "accuracy": scores,
        "curve": {str(n): metrics[f"accuracy@{n}"] for n in curve if f"accuracy@{n}" in metrics},
        "macro_f1": metrics.get("macro_f1"),
        "scores": {name: metrics[name] for name in SIGNAL_SCORES if name in metrics},
        "params": metrics.get("params"),
        "seconds": result.seconds,
        "cpu_seconds": cpu_seconds,
        "cpu_at": [metrics[f"process_time@{n}"] - cpu for n in images[:-1]] + [cpu_seconds],
    }


def _proxy(job: dict[str, Any]) -> dict[str, Any]:
    """A zero-cost proxy of the untrained net (``[budget] proxy``: ``zico``), on a seeded
    draw of training images."""
    import keras
    import numpy as np

    from nas.training.core import set_precision
    from nas.training.proxies import zico

    experiment = _state["experiment"]
    space = load_space(experiment.space)
    data = _data(full=False).eval_data
    cpu = time.process_time()
    keras.backend.clear_session()
    keras.utils.set_random_seed(job["seed"])
    set_precision("float32")
    model = space.build(space.from_json(job["genome"]), data.task)
    (images,) = job["images"]
    pick = np.random.default_rng(job["seed"]).choice(len(data.train_targets), images, replace=False)
    loss = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    score = zico(
        model, data.train_images[pick], data.train_targets[pick], loss, batch_size=images // 2
    )
    keras.backend.clear_session()
    return {
        "signal": job["signal"],
        "images": [images],
        "accuracy": [score],  # the signal's score (here ZiCo's, not an accuracy)
        "cpu_seconds": time.process_time() - cpu,
    }
