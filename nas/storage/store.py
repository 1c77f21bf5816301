"""The run's log: every evaluation is a trial in an Optuna storage.

A run directory holds ``run.json`` (the frozen experiment, the task, and where the trials
are), ``study.db`` (the default SQLite storage), ``models/`` (trained weights, one file
per genome, plus ``<hash>.rung0.weights.h5`` for the low-fidelity training of a
multi-fidelity run) and, once written, ``pareto.png``. The storage is the source of truth: the
front, the export and the dashboard (``optuna-dashboard sqlite:///RUN/study.db``) all
read it. Trials carry the genome JSON, generation, metrics and failure reason as user
attributes; completed trials carry the objective values in their natural units.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import shutil
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nas.core.errors import StorageError
from nas.core.files import write_atomically
from nas.core.objectives import METRICS, objective_values
from nas.core.task import Task
from nas.core.trial import EvalResult
from nas.strategies.base import TrialParameters

__all__ = [
    "RunInfo",
    "RunStore",
    "TaskOutputs",
    "TrialFidelity",
    "TrialRecord",
    "ancestors",
    "connect_url",
    "portable_storage",
    "redact",
    "use_password",
]

RUN_FILE = "run.json"


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
    return {
        "kind": task.kind,
        "input_shape": list(task.input_shape),
        "num_classes": task.num_classes,
        "num_keypoints": task.num_keypoints,
    }


def _task_from_json(task: dict[str, Any]) -> Task:
    return Task(
        kind=task["kind"],
        input_shape=tuple(task["input_shape"]),
        num_classes=task["num_classes"],
        num_keypoints=task.get("num_keypoints", 0),
    )


def redact(url: str) -> str:
    """``url`` without its password (``postgresql://nas:secret@db/nas`` becomes
    ``postgresql://nas@db/nas``): what ``run.json`` keeps and what is ever printed. The
    database driver finds the password at run time in ``PGPASSWORD`` or ``~/.pgpass``
    (libpq's own rules), or in a URL given again with ``--storage``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not a URL urllib can split: drop anything between "://" and "@"
        scheme, sep, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        return f"{scheme}{sep}{userinfo.partition(':')[0]}{at}{host}" if at else url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]  # as written (percent-encoded), without the password
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def use_password(url: str | None) -> None:
    """Hand the password of a storage URL given on the command line to libpq
    (``PGPASSWORD``) for this process and the processes it starts (the final training),
    so the password-free URL of ``run.json`` opens the database; a URL without one
    changes nothing."""
    secret = _password(url) if url else None
    if secret:
        os.environ["PGPASSWORD"] = secret


def _password(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def portable_storage(url: str, run_dir: Path) -> str:
    """The storage as ``run.json`` keeps it: no password (:func:`redact`), and a SQLite
    file inside the run folder as a path relative to it (``sqlite:///study.db``), so the
    folder can be moved or copied; any other SQLite file as an absolute path."""
    url = redact(url)
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path = Path(url[len(prefix) :]).expanduser().resolve()
    try:
        return prefix + str(path.relative_to(run_dir.resolve()))
    except ValueError:
        return prefix + str(path)


def connect_url(stored: str, run_dir: Path) -> str:
    """The URL to open a stored storage with: a relative SQLite path (see
    :func:`portable_storage`) is the run folder's own file, wherever the folder is now."""
    prefix = "sqlite:///"
    if not stored.startswith(prefix):
        return stored
    path = Path(stored[len(prefix) :])
    if not path.is_absolute():
        return prefix + str((run_dir / path).resolve())
    if not path.exists() and (run_dir / path.name).exists():  # a run from before, moved
        return prefix + str((run_dir / path.name).resolve())
    return stored


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
    """One evaluation as stored."""

    number: int
    genome_hash: str
    genome: dict[str, Any]
    description: str
    generation: int
    ok: bool
    values: tuple[float, ...] | None
    metrics: dict[str, float]
    failure: str | None
    detail: str
    seconds: float
    worker: str
    weights: str | None
    baseline: str | None
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


class RunStore:
    """Reads and appends the trials of one run."""

    def __init__(
        self, run_dir: Path, info: RunInfo, study: Any, *, created_dir: bool = False
    ) -> None:
        self.run_dir = run_dir
        self.info = info
        self._study = study
        self._created_dir = created_dir
        self._next_number = len(study.get_trials(deepcopy=False))

    @classmethod
    def create(cls, run_dir: Path, info: RunInfo) -> RunStore:
        """Open (creating if needed) the study of ``info`` and write ``run.json``."""
        fresh = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        url = info.connect or info.storage
        stored = portable_storage(url, run_dir)
        info = replace(info, storage=stored, connect=url)
        try:
            study = _open_study(info, create=True)
        except StorageError:
            if fresh:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        (run_dir / "models").mkdir(exist_ok=True)
        write_atomically(run_dir / RUN_FILE, json.dumps(info.to_json(), indent=2).encode())
        return cls(run_dir, info, study, created_dir=fresh)

    def discard(self) -> None:
        """Undo :meth:`create` for a run that never recorded a trial (its start failed)."""
        import optuna

        if self._study.get_trials(deepcopy=False):
            return
        default = self._connect == self.default_storage(self.run_dir)
        if self._created_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            if default:
                return
        else:
            (self.run_dir / RUN_FILE).unlink(missing_ok=True)
            (self.run_dir / ".lock").unlink(missing_ok=True)
            shutil.rmtree(self.run_dir / "models", ignore_errors=True)
            if default:
                (self.run_dir / "study.db").unlink(missing_ok=True)
                return
        # Best effort: an empty study left in a shared database is harmless.
        with contextlib.suppress(Exception):
            optuna.delete_study(study_name=self.info.study_name, storage=self._connect)

    @property
    def _connect(self) -> str:
        return self.info.connect or self.info.storage

    @staticmethod
    def read_info(run_dir: str | Path) -> RunInfo:
        """What ``run_dir/run.json`` says, without opening the storage."""
        run_dir = Path(run_dir)
        path = run_dir / RUN_FILE
        try:
            info = RunInfo.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise StorageError(
                f"{run_dir}: not a run directory (no {RUN_FILE}); pass the --out of a search"
            ) from None
        except KeyError as exc:
            raise StorageError(
                f"{path}: damaged run file (missing key {exc}); run the search again into a new --out"
            ) from None
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise StorageError(
                f"{path}: damaged run file ({exc}); run the search again into a new --out"
            ) from None
        return info

    @classmethod
    def open(cls, run_dir: str | Path, *, storage: str | None = None) -> RunStore:
        """Open an existing run directory, wherever it has moved. ``storage`` (the URL a
        user gives again, with its password) opens a run kept elsewhere; it must name
        the run's own storage."""
        run_dir = Path(run_dir)
        info = cls.read_info(run_dir)
        url = connect_url(info.storage, run_dir)
        if storage is not None and portable_storage(storage, run_dir) == info.storage:
            url = storage
        info = replace(info, connect=url)
        return cls(run_dir, info, _open_study(info, create=False))

    @staticmethod
    def default_storage(run_dir: Path) -> str:
        """The SQLite URL used when the experiment names no storage."""
        return f"sqlite:///{(run_dir / 'study.db').resolve()}"

    def record(
        self,
        result: EvalResult,
        *,
        genome: dict[str, Any],
        description: str,
        generation: int,
        values: Sequence[float] | None,
        baseline: str | None = None,
        parameters: TrialParameters | None = None,
        search_seconds: float = 0.0,
        fidelity: TrialFidelity | None = None,
        parents: Sequence[str] = (),
    ) -> TrialRecord:
        """Append one evaluation; completed ones keep their weights under ``models/``.

        ``parents``: the genome hashes the strategy made the genome from (its lineage).

        ``parameters``, when the strategy proposed the genome as an Optuna trial, become
        the trial's parameters and distributions. ``fidelity``: the trial's rung in a
        multi-fidelity run; a rung-0 training keeps its weights in a file of its own
        (``<hash>.rung0.weights.h5``), so the promoted training's weights never replace
        the ones it continued from (a kill between writing them and recording the trial
        must leave the rung-0 weights for the resumed promotion to start from again).
        """
        import optuna

        weights = None
        if result.ok and result.weights is not None:
            low = fidelity is not None and fidelity.low
            weights = f"models/{result.genome_hash}{'.rung0' if low else ''}.weights.h5"
            write_atomically(self.run_dir / weights, result.weights)
        driver_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        attrs = {
            "genome_hash": result.genome_hash,
            "genome": genome,
            "description": description,
            "generation": generation,
            "metrics": result.metrics or {},
            "failure": result.failure,
            "detail": result.detail,
            "seconds": round(result.seconds, 3),
            "stopped_early": result.stopped_early,
            "worker": f"{result.host}:{result.pid}",
            "node": result.node,
            "threads": result.threads,
            "device": result.device,
            "device_note": result.device_note,
            "restarts": result.restarts,
            "weights": weights,
            "baseline": baseline,
            "worker_peak_rss_mb": round(result.peak_rss_mb, 1),
            "driver_peak_rss_mb": round(driver_peak_kib / 1024, 1),
            "train_steps": result.train_steps,
            "images_seen": result.images_seen,
            "search_seconds": round(search_seconds, 3),
            "inherited": None if result.inherited is None else result.inherited.to_json(),
        }
        if fidelity is not None:  # without multi-fidelity, the attributes are as before it
            attrs["fidelity"] = fidelity.to_json()
        if parents:
            attrs["parents"] = list(parents)
        state = optuna.trial.TrialState.COMPLETE if result.ok else optuna.trial.TrialState.FAIL
        params, distributions = None, None
        if parameters is not None:
            params = parameters.params
            distributions = {
                name: optuna.distributions.json_to_distribution(text)
                for name, text in parameters.distributions.items()
            }
        trial = optuna.trial.create_trial(
            state=state,
            values=list(values) if result.ok else None,
            params=params,
            distributions=distributions,
            user_attrs=attrs,
        )
        try:
            self._study.add_trial(trial)
        except Exception as exc:  # Optuna and SQLAlchemy raise many types for a lost database
            reason = " ".join(str(exc).split())[:160]
            raise StorageError(
                f"storage {self.info.storage!r}: cannot record trial {self._next_number} "
                f"({reason}); the search stops here, with every earlier trial kept: once "
                f"the database is reachable, nas search --resume {self.run_dir}"
            ) from None
        number = self._next_number
        self._next_number += 1
        return _record(number, trial)

    def trials(self) -> list[TrialRecord]:
        """Every recorded evaluation, in order."""
        return [_record(t.number, t) for t in self._study.get_trials(deepcopy=False)]

    def known_values(self) -> dict[tuple[str, int | None], tuple[float, ...]]:
        """(genome hash, rung) -> objective values of every recorded evaluation (worst when
        failed); the rung is None without multi-fidelity (:attr:`TrialRecord.rung`), so a
        genome's low- and full-fidelity evaluations are told apart.

        Values come from the stored metrics, so a resumed search sees exactly the numbers
        an uninterrupted one had in memory.
        """
        objectives = self.info.objectives
        return {
            (t.genome_hash, t.rung): objective_values(objectives, t.metrics if t.ok else None)
            for t in self.trials()
        }


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


def _record(number: int, trial: Any) -> TrialRecord:
    attrs = trial.user_attrs
    return TrialRecord(
        number=number,
        genome_hash=attrs["genome_hash"],
        genome=attrs["genome"],
        description=attrs.get("description", ""),
        generation=attrs.get("generation", 0),
        ok=attrs.get("failure") is None,
        values=tuple(trial.values) if trial.values is not None else None,
        metrics=attrs.get("metrics", {}),
        failure=attrs.get("failure"),
        detail=attrs.get("detail", ""),
        seconds=attrs.get("seconds", 0.0),
        worker=attrs.get("worker", ""),
        node=attrs.get("node", ""),
        threads=attrs.get("threads", 0),
        device=str(attrs.get("device", "")),
        device_note=str(attrs.get("device_note", "")),
        restarts=int(attrs.get("restarts", 0)),
        weights=_weights_path(number, attrs.get("weights")),
        baseline=attrs.get("baseline"),
        worker_peak_rss_mb=attrs.get("worker_peak_rss_mb", 0.0),
        driver_peak_rss_mb=attrs.get("driver_peak_rss_mb", 0.0),
        stopped_early=bool(attrs.get("stopped_early", False)),
        train_steps=attrs.get("train_steps", 0),
        images_seen=attrs.get("images_seen", 0),
        search_seconds=attrs.get("search_seconds", 0.0),
        inherited=attrs.get("inherited"),
        fidelity=_fidelity(attrs.get("fidelity")),
        parents=tuple(attrs.get("parents", ())),
    )


def _fidelity(data: dict[str, Any] | None) -> TrialFidelity | None:
    if not data:  # a run without multi-fidelity, or one recorded before it existed
        return None
    return TrialFidelity(
        rung=int(data["rung"]),
        images=int(data.get("images", 0)),
        total_images_seen=int(data.get("total_images_seen", 0)),
    )


def new_study_name(experiment_name: str) -> str:
    """A study name no other run has: the experiment's name, the start time (UTC) and six
    random hex digits, e.g. ``emotion-20261201-054512-3fa9c1``. Two runs of one
    experiment in one storage are two studies, so neither takes the other's trials."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{experiment_name}-{stamp}-{secrets.token_hex(3)}"


def _open_study(info: RunInfo, *, create: bool) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [METRICS[name].direction for name in info.objectives]
    url = info.connect or info.storage
    try:
        if create:
            return optuna.create_study(
                storage=url,
                study_name=info.study_name,
                directions=directions,
                load_if_exists=True,
            )
        return optuna.load_study(storage=url, study_name=info.study_name)
    except KeyError:
        raise StorageError(f"{info.storage}: no study named {info.study_name!r}") from None
    except Exception as exc:  # Optuna and SQLAlchemy raise many types for a bad URL
        reason = " ".join(str(exc).split())[:200]
        secret = _password(url)
        if secret:
            reason = reason.replace(secret, "***")
        hint = (
            "; no password is ever stored: give it in PGPASSWORD or ~/.pgpass, or pass the "
            "URL with it again as --storage"
            if "://" in info.storage and "sqlite" not in info.storage
            else ""
        )
        raise StorageError(
            f"storage {redact(info.storage)!r} cannot be opened: {reason}; check the URL "
            "(e.g. sqlite:///runs/study.db) and that its database and driver are reachable" + hint
        ) from None
