"""The run's log: every evaluation is a trial in an Optuna storage.

A run directory holds ``run.json`` (the frozen experiment, the task, and where the trials
are), ``study.db`` (the default SQLite storage), ``models/`` (trained weights, one file
per genome, plus ``<hash>.rung0.weights.h5`` for the low-fidelity training of a
multi-fidelity run) and, once written, ``pareto.png``. The storage is the source of truth: the
front, the export and the dashboard (``optuna-dashboard sqlite:///RUN/study.db``) all
read it. Trials carry the genome JSON, generation, metrics and failure reason as user
attributes; completed trials carry the objective values in their natural units
(read back as :class:`nas.storage.records.TrialRecord`).
"""

from __future__ import annotations

import contextlib
import json
import resource
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from nas.core.errors import StorageError
from nas.core.files import write_atomically
from nas.core.objectives import METRICS, objective_values
from nas.core.trial import EvalResult
from nas.storage.records import (
    RunInfo,
    TrialFidelity,
    TrialRecord,
    record_from_trial,
    trial_attributes,
)
from nas.storage.urls import connect_url, portable_storage, redact, url_password
from nas.strategies.base import TrialParameters

__all__ = ["RUN_FILE", "RunStore", "new_study_name"]

RUN_FILE = "run.json"


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
        attrs = trial_attributes(
            TrialRecord(
                number=self._next_number,
                genome_hash=result.genome_hash,
                genome=genome,
                ok=result.ok,
                values=tuple(values) if result.ok and values is not None else None,
                description=description,
                generation=generation,
                metrics=result.metrics or {},
                failure=result.failure,
                detail=result.detail,
                seconds=round(result.seconds, 3),
                stopped_early=result.stopped_early,
                worker=f"{result.host}:{result.pid}",
                node=result.node,
                threads=result.threads,
                device=result.device,
                device_note=result.device_note,
                restarts=result.restarts,
                weights=weights,
                baseline=baseline,
                worker_peak_rss_mb=round(result.peak_rss_mb, 1),
                driver_peak_rss_mb=round(driver_peak_kib / 1024, 1),
                train_steps=result.train_steps,
                images_seen=result.images_seen,
                search_seconds=round(search_seconds, 3),
                inherited=None if result.inherited is None else result.inherited.to_json(),
                fidelity=fidelity,
                parents=tuple(parents),
            )
        )
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
        return record_from_trial(number, trial)

    def trials(self) -> list[TrialRecord]:
        """Every recorded evaluation, in order."""
        return [record_from_trial(t.number, t) for t in self._study.get_trials(deepcopy=False)]

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
        secret = url_password(url)
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
