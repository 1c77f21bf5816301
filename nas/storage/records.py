"""What the store keeps about a run and its trials, as plain data: the run's
:class:`RunInfo` (``run.json``), a trial's :class:`TrialRecord` read back from its Optuna
trial, its multi-fidelity :class:`TrialFidelity`, and a genome's lineage (:func:`ancestors`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core.errors import StorageError
from nas.core.task import OutputHead, Task

__all__ = [
    "STORED_ELSEWHERE",
    "RunInfo",
    "TaskOutputs",
    "TrialFidelity",
    "TrialRecord",
    "ancestors",
    "record_from_trial",
    "trial_attributes",
]


@dataclass(frozen=True)
class TaskOutputs:
    """One task of a multi-task run: its name, model contract and output names."""

    name: str
    task: Task
    output_names: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **_task_json(self.task), "output_names": list(self.output_names)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskOutputs:
        return cls(data["name"], _task_from_json(data), tuple(data["output_names"]))


def _task_json(task: Task) -> dict[str, Any]:
    head = task.head
    return {
        "kind": task.kind,
        "input_shape": list(task.input_shape),
        "num_classes": task.num_classes,
        "num_keypoints": task.num_keypoints,
        "head": {
            "name": head.name,
            "shape": list(head.shape),
            "activation": head.activation,
            "scale": head.scale,
            "offset": head.offset,
            "form": head.form,
        },
    }


def _task_from_json(task: dict[str, Any]) -> Task:
    head = task.get("head")  # runs written before heads were data derive the built-in ones
    return Task(
        kind=task["kind"],
        input_shape=tuple(task["input_shape"]),
        num_classes=task["num_classes"],
        num_keypoints=task.get("num_keypoints", 0),
        head=None if head is None else OutputHead(**{**head, "shape": tuple(head["shape"])}),
    )


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """What ``run.json`` says about a run."""

    storage: str
    """As ``run.json`` keeps it: no password, a SQLite file of the run relative to it
    (:func:`portable_storage`)."""
    study_name: str
    space: str
    objectives: tuple[str, ...]
    task: Task
    output_names: tuple[str, ...]
    experiment: dict[str, Any]
    reference: dict[str, float] = field(default_factory=dict)
    """The fixed hypervolume reference point (:meth:`nas.core.config.Experiment.hypervolume_reference`);
    empty: each metric's default."""
    chance: dict[str, float] = field(default_factory=dict)
    """What a useless model scores, e.g. the majority class's share of the validation split."""
    tasks: tuple[TaskOutputs, ...] = ()
    """A multi-task run's tasks, in order (``task`` and ``output_names`` are the first's);
    empty for one task."""
    connect: str = field(default="", compare=False, repr=False)
    """The URL this process opens the storage with (a password given on the command line
    stays here, never in ``run.json``); empty: ``storage``."""

    @property
    def name(self) -> str:
        """The experiment's name (exports and titles use it; the study's name is unique
        to the run, see :func:`new_study_name`)."""
        return str(self.experiment.get("name") or self.study_name)

    def to_json(self) -> dict[str, Any]:
        data = {
            "storage": self.storage,
            "study_name": self.study_name,
            "space": self.space,
            "objectives": list(self.objectives),
            "task": _task_json(self.task),
            "output_names": list(self.output_names),
            "experiment": self.experiment,
            "reference": self.reference,
            "chance": self.chance,
        }
        if self.tasks:
            data["tasks"] = [task.to_json() for task in self.tasks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunInfo:
        task = data["task"]
        objectives = tuple(data["objectives"])
        reference = data.get("reference", {})
        return cls(
            storage=data["storage"],
            study_name=data["study_name"],
            space=data["space"],
            objectives=objectives,
            task=_task_from_json(task),
            output_names=tuple(data.get("output_names", data.get("class_names", ()))),
            experiment=data["experiment"],
            reference={k: float(v) for k, v in reference.items() if k in objectives},
            chance=dict(data.get("chance", {})),
            tasks=tuple(TaskOutputs.from_json(t) for t in data.get("tasks", ())),
        )


@dataclass(frozen=True)
class TrialFidelity:
    """The fidelity of a trial of a multi-fidelity run (``[search] low_fidelity_images``).

    ``rung`` 0: the candidate's low-fidelity training; 1: a promoted candidate's training
    continued from its rung-0 weights to the full budget. ``images``: the images budgeted
    for this rung's training; ``total_images_seen``: the images the model has seen over
    its rungs, this one's included (the budget's ``train_images`` once promoted).
    """

    rung: int
    images: int
    total_images_seen: int

    @property
    def low(self) -> bool:
        """True below the full budget (rung 0): such values never compete with full ones."""
        return self.rung == 0

    def to_json(self) -> dict[str, int]:
        """Plain data for the trial's user attributes."""
        return {
            "rung": self.rung,
            "images": self.images,
            "total_images_seen": self.total_images_seen,
        }


@dataclass(frozen=True, kw_only=True)
class TrialRecord:
    """One evaluation as stored: the one record type of a trial. Its fields but
    :data:`STORED_ELSEWHERE` are the Optuna trial's user attributes, written by
    :func:`trial_attributes` and read back by :func:`record_from_trial`, so a new field
    is one line here (with a default, which older trials read as)."""

    number: int
    genome_hash: str
    genome: dict[str, Any]
    ok: bool
    values: tuple[float, ...] | None
    description: str = ""
    generation: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    detail: str = ""
    seconds: float = 0.0
    worker: str = ""
    """``host:pid`` of the worker process that trained it."""
    weights: str | None = None
    """Its weights file, ``models/<hash>.weights.h5`` (None: failed, or none kept)."""
    baseline: str | None = None
    worker_peak_rss_mb: float = 0.0
    driver_peak_rss_mb: float = 0.0
    stopped_early: bool = False
    """Training was cut by the ``train_seconds`` guard, not ended by the image budget."""
    train_steps: int = 0
    images_seen: int = 0
    search_seconds: float = 0.0
    """The search's clock when the evaluation was recorded (over resumes)."""
    inherited: dict[str, float] | None = None
    """What the model inherited from its parents (:meth:`nas.core.trial.Inherited.to_json`:
    layers copied ``whole``, ``partial`` or left ``fresh``, and the ``fraction`` of weight
    values copied); None when it trained from scratch."""
    fidelity: TrialFidelity | None = None
    """The trial's rung in a multi-fidelity run; None without multi-fidelity (every trial
    trained the whole budget)."""
    node: str = ""
    """The Ray node the evaluation ran on (its id; "" for a serial run or an old trial)."""
    threads: int = 0
    """TensorFlow's threads in that worker: the CPUs Ray gave the evaluation (0: unknown)."""
    device: str = ""
    """What the evaluation trained on: "GPU" or "CPU" ("" for a serial run or an old trial)."""
    device_note: str = ""
    """Why it did not train on the GPU Ray reserved for it (TensorFlow saw none); "" else."""
    restarts: int = 0
    """How many workers died under this evaluation before the attempt that answered (Ray
    ran it again each time, up to ``[search] retries``); a death on the last attempt is
    the failure ``worker_died``."""
    parents: tuple[str, ...] = ()
    """The genome hashes of the parents the strategy made this genome from (NSGA-II's
    crossover and mutation); empty for a genome drawn without parents, a seeded baseline,
    and a multi-fidelity promotion (its rung-0 trial names them)."""

    @property
    def low_fidelity(self) -> bool:
        """True for a multi-fidelity trial below the full budget (rung 0): it is not on the
        front, and its values never compete with full-fidelity ones."""
        return self.fidelity is not None and self.fidelity.low

    @property
    def rung(self) -> int | None:
        """The multi-fidelity rung (None without multi-fidelity): ``known_values``' key."""
        return None if self.fidelity is None else self.fidelity.rung


def ancestors(trials: Sequence[TrialRecord], genome_hash: str) -> list[TrialRecord]:
    """Every recorded ancestor of ``genome_hash``: its parents, theirs, and so on, nearest
    first, one trial per genome (the first recorded). A run recorded before trials named
    their parents has none."""
    first: dict[str, TrialRecord] = {}
    parents: dict[str, set[str]] = {}
    for trial in trials:
        first.setdefault(trial.genome_hash, trial)
        parents.setdefault(trial.genome_hash, set()).update(trial.parents)
    found: list[TrialRecord] = []
    seen = {genome_hash}
    frontier = [genome_hash]
    while frontier:
        following = []
        for key in frontier:
            for parent in sorted(parents.get(key, ())):
                if parent not in seen and parent in first:
                    seen.add(parent)
                    found.append(first[parent])
                    following.append(parent)
        frontier = following
    return found


def _weights_path(number: int, value: Any) -> str | None:
    """A trial's weights file as the storage names it, refused unless it is one file
    directly in the run's ``models/`` (a shared database is not trusted to point
    elsewhere: ``../``, an absolute path, another folder)."""
    if value is None:
        return None
    path = Path(str(value))
    if (
        not isinstance(value, str)
        or path.is_absolute()
        or len(path.parts) != 2
        or path.parts[0] != "models"
        or not path.name.endswith(".weights.h5")
        or path.name.startswith(".")
    ):
        raise StorageError(
            f"trial {number}: the storage names its weights {str(value)[:120]!r}, which is "
            "not a file in the run's models/ folder; this run did not write that row: open "
            "the run with its own storage"
        )
    return str(path)


STORED_ELSEWHERE = ("number", "ok", "values")
"""What the Optuna trial itself holds: its number, its state (completed or failed) and
its objective values."""


def trial_attributes(record: TrialRecord) -> dict[str, Any]:
    """The Optuna user attributes that store ``record`` (plain JSON data): every field
    but :data:`STORED_ELSEWHERE`; ``fidelity`` and ``parents`` only when set, so a run
    without multi-fidelity or lineage stores what it did before they existed."""
    attrs = {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(TrialRecord)
        if f.name not in STORED_ELSEWHERE
    }
    fidelity, parents = attrs.pop("fidelity"), attrs.pop("parents")
    if fidelity is not None:
        attrs["fidelity"] = fidelity.to_json()
    if parents:
        attrs["parents"] = list(parents)
    return attrs


def record_from_trial(number: int, trial: Any) -> TrialRecord:
    """The record of Optuna trial ``trial`` (numbered ``number`` in the run), from its
    user attributes (:func:`trial_attributes`); a field a trial lacks (recorded before
    it existed) takes its default, and attributes no field names are ignored. A weights
    path outside the run's ``models/`` is a :class:`StorageError`."""
    attrs = trial.user_attrs
    names = {f.name for f in dataclasses.fields(TrialRecord)} - set(STORED_ELSEWHERE)
    given = {name: attrs[name] for name in names if name in attrs}
    given |= {  # the two every trial has, and the attributes read with a type of their own
        "genome_hash": attrs["genome_hash"],
        "genome": attrs["genome"],
        "weights": _weights_path(number, attrs.get("weights")),
        "fidelity": _fidelity(attrs.get("fidelity")),
        "parents": tuple(attrs.get("parents", ())),
        "device": str(attrs.get("device", "")),
        "restarts": int(attrs.get("restarts", 0)),
        "stopped_early": bool(attrs.get("stopped_early", False)),
        "device_note": str(attrs.get("device_note", "")),
    }
    return TrialRecord(
        number=number,
        ok=attrs.get("failure") is None,
        values=tuple(trial.values) if trial.values is not None else None,
        **given,
    )


def _fidelity(data: dict[str, Any] | None) -> TrialFidelity | None:
    if not data:  # a run without multi-fidelity, or one recorded before it existed
        return None
    return TrialFidelity(
        rung=int(data["rung"]),
        images=int(data.get("images", 0)),
        total_images_seen=int(data.get("total_images_seen", 0)),
    )
