"""A run opened: every input checked before anything is written, the run folder and
its store created (or reopened), the evaluator started; and the requests and records
of its evaluations (:class:`OpenRun`)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.config import Experiment
from nas.core.errors import ConfigError, GenomeError
from nas.core.faults import failpoint
from nas.core.objectives import DEPLOYED_METRICS, objective_values
from nas.core.space import SearchSpace, describe_candidate, genome_hash, load_space
from nas.core.trial import (
    EvalData,
    EvalRequest,
    EvalResult,
    ParentWeights,
    derive_seed,
)
from nas.engine.experiment import seed_genomes
from nas.engine.parallel import Evaluator, RayEvaluator, check_address, default_threads
from nas.engine.task_data import TaskData, load_task_data
from nas.storage.checkpoint import (
    hold_run_lock,
    remove_temporaries,
)
from nas.storage.records import RunInfo, TaskOutputs, TrialFidelity, TrialRecord
from nas.storage.store import RUN_FILE, RunStore, new_study_name
from nas.strategies import TrialParameters

__all__ = ["OpenRun", "PlannedEvaluation", "open_run"]


@dataclass
class OpenRun:
    """Everything a search or a baseline run needs once its inputs have been checked."""

    experiment: Experiment
    space: SearchSpace
    store: RunStore
    evaluator: Evaluator
    threads: int

    def request(
        self,
        genome: Any,
        key: str,
        pretrained: tuple[str, str] | None = None,
        parents: tuple[ParentWeights, ...] = (),
        *,
        images: int | None = None,
        rung: int = 0,
    ) -> EvalRequest:
        """The evaluation of ``genome``; ``images`` replaces the budget's ``train_images``
        (a multi-fidelity rung), ``rung`` above 0 gives the training a seed of its own."""
        budget = self.experiment.budget
        if images is not None:
            budget = dataclasses.replace(budget, train_images=images)
        return EvalRequest(
            space=self.experiment.space,
            genome=self.space.to_json(genome),
            genome_hash=key,
            seed=derive_seed(self.experiment.seed, key, rung),
            budget=budget,
            threads=self.threads,
            pretrained=pretrained,
            parents=parents,
            deployed=bool(DEPLOYED_METRICS & set(self.experiment.objectives)),
        )

    def continuation(
        self, genome: Any, key: str, earlier: TrialRecord | None, *, rung: int | None
    ) -> PlannedEvaluation:
        """``genome`` continues from its own weights of an ``earlier`` training (sent as its
        only parent: it inherits all of them) for the budget's ``train_images`` less the
        images it has seen, at least one batch, as trial ``rung`` (multi-fidelity's
        promotion). Without readable earlier weights it trains the whole budget from
        scratch instead."""
        total = self.experiment.budget.train_images
        rung_seed = rung or 0
        own = self.weights(earlier) if earlier is not None else None
        if own is None:
            request = self.request(genome, key, images=total, rung=rung_seed)
            return PlannedEvaluation(request, rung=rung)
        seen = earlier.images_seen if earlier is not None else 0
        request = self.request(
            genome, key, parents=(own,), images=max(1, total - seen), rung=rung_seed
        )
        return PlannedEvaluation(request, rung=rung, prior_images=seen)

    def weights(self, record: TrialRecord) -> ParentWeights | None:
        """``record``'s genome with its stored weights; None without them (failed, or the
        file gone)."""
        if record.weights is None:
            return None
        try:
            weights = (self.store.run_dir / record.weights).read_bytes()
        except OSError:
            return None
        return ParentWeights(record.genome, weights)

    def parents(
        self, lineage: Sequence[Any], records: dict[str, TrialRecord]
    ) -> tuple[ParentWeights, ...]:
        """The parents in ``lineage`` with their stored weights, for weight inheritance;
        a parent without them (failed, or its file gone) contributes nothing."""
        found = []
        for genome in lineage:
            record = records.get(genome_hash(self.space, genome))
            parent = self.weights(record) if record is not None else None
            if parent is not None:
                found.append(parent)
        return tuple(found)

    def record(
        self,
        genome: Any,
        result: EvalResult,
        generation: int,
        label: str | None,
        *,
        parameters: TrialParameters | None = None,
        search_seconds: float = 0.0,
        fidelity: TrialFidelity | None = None,
        parents: Sequence[Any] = (),
    ) -> TrialRecord:
        """Store ``result`` for ``genome``; ``parents`` are genomes (its lineage)."""
        own = genome_hash(self.space, genome)
        parent_hashes = [genome_hash(self.space, p) for p in parents]
        return self.store.record(
            result,
            genome=self.space.to_json(genome),
            description=describe_candidate(self.space, genome, self.experiment.budget.recipe),
            generation=generation,
            values=objective_values(self.experiment.objectives, result.metrics),
            baseline=label,
            parameters=parameters,
            search_seconds=search_seconds,
            fidelity=fidelity,
            parents=[h for h in parent_hashes if h != own],  # a promotion's lineage is itself
        )


@dataclass(frozen=True)
class PlannedEvaluation:
    """A request of a batch, with its multi-fidelity rung (None: off) and the images its
    model saw in earlier rungs."""

    request: EvalRequest
    rung: int | None = None
    prior_images: int = 0

    def fidelity(self, result: EvalResult) -> TrialFidelity | None:
        """What the trial records about its fidelity, once ``result`` is in."""
        if self.rung is None:
            return None
        images = self.request.budget.train_images
        return TrialFidelity(self.rung, images, self.prior_images + result.images_seen)


@contextmanager
def open_run(
    experiment: Experiment,
    *,
    out_dir: Path,
    storage: str | None,
    address: str | None,
    workers: int | None,
    make_evaluator: Callable[[EvalData], Evaluator] | None,
    threads: int | None = None,
    threads_share: int | None = None,
    resume: bool = False,
) -> Iterator[OpenRun]:
    """Check every input, then create (or, with ``resume``, reopen) the run and the evaluator.

    Each evaluation's threads: ``threads``, else the experiment's ``threads_per_worker``,
    else the CPUs (this machine's, or the cluster's) shared by ``threads_share``
    evaluations (default: ``workers``; a baseline trained alone passes the search's).

    Bad input raises before anything is written; a run whose evaluator cannot start is
    removed again, so a failed start leaves nothing behind. The evaluator is closed on exit.
    """
    space = load_space(experiment.space)
    _check_out_dir(out_dir)
    existing = (out_dir / RUN_FILE).exists()
    if existing and not resume:
        raise ConfigError(f"{out_dir} already holds a run; pass --out NEW_DIR or remove it")
    if make_evaluator is None:
        check_address(address)
    data = load_task_data(experiment)
    workers = workers or experiment.search.workers
    threads = threads or experiment.search.threads_per_worker
    if not threads and (address is None or make_evaluator is not None):
        # this machine's cores; on a cluster, the evaluator asks its nodes
        threads = default_threads(threads_share or workers)
    _check_seed_sizes(experiment, space, data)
    if existing:
        store = RunStore.open(out_dir, storage=storage)
        lock = hold_run_lock(out_dir)
        remove_temporaries(out_dir)
    else:
        info = RunInfo(
            storage=storage or RunStore.default_storage(out_dir),
            study_name=new_study_name(experiment.name),
            space=experiment.space,
            objectives=experiment.objectives,
            task=data.parts[0].eval_data.task if data.parts else data.eval_data.task,  # type: ignore[union-attr]
            output_names=data.output_names,
            tasks=tuple(
                TaskOutputs(name, part.eval_data.task, part.output_names)  # type: ignore[union-attr]
                for name, part in zip(data.task_names, data.parts, strict=True)
            ),
            experiment=experiment.to_dict(),
            reference=experiment.hypervolume_reference(),
            chance=data.chance,
        )
        store = RunStore.create(out_dir, info)
        lock = hold_run_lock(out_dir)
    try:
        evaluator = _make_evaluator(
            experiment, data, workers, threads, address, make_evaluator, threads_share
        )
    except BaseException:
        os.close(lock)
        if not existing:
            store.discard()
        raise
    failpoint("run:opened")
    for note in getattr(evaluator, "notes", ()):
        print(f"note: {note}", file=sys.stderr)
    threads = getattr(evaluator, "threads", threads)
    try:
        yield OpenRun(experiment, space, store, evaluator, threads)
    finally:
        evaluator.close()
        os.close(lock)


def _check_out_dir(out_dir: Path) -> None:
    """Refuse a run directory that is, or lies under, a file, before anything is loaded."""
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(
                    f"--out {out_dir}: {folder} is a file, not a folder; choose another --out"
                )
            return


def _make_evaluator(
    experiment: Experiment,
    data: TaskData,
    workers: int,
    threads: int | None,
    address: str | None,
    make_evaluator: Callable[[EvalData], Evaluator] | None,
    threads_share: int | None = None,
) -> Evaluator:
    if make_evaluator is not None:
        return make_evaluator(data.eval_data)
    return RayEvaluator(
        data.eval_data,
        workers=workers,
        threads=threads,
        timeout_seconds=experiment.budget.timeout_seconds,
        address=address,
        retries=experiment.search.retries,
        recycle_after=experiment.search.recycle_after,
        gpus=experiment.search.gpus_per_worker,
        threads_share=threads_share,
        modules=[
            name
            for name in (experiment.space, *(c.task for c in experiment.task_configs))
            if "." in name
        ],
    )


def _check_seed_sizes(experiment: Experiment, space: SearchSpace, data: TaskData) -> None:
    """Refuse, before anything is built or written, a seed (a genome file from anyone)
    whose size, counted from the genome by the space's ``cost``, is past ``[budget]
    max_params``: a file must not make a worker build a model that exhausts its memory."""
    cost = getattr(space, "cost_multitask" if experiment.multitask else "cost", None)
    if not callable(cost):
        return
    task: Any = (
        tuple(part.eval_data.task for part in data.parts)  # type: ignore[union-attr]
        if experiment.multitask
        else data.eval_data.task  # type: ignore[union-attr]
    )
    limit = experiment.budget.max_params
    for spec, genome in seed_genomes(experiment, space):
        try:
            params = cost(genome, task).params
        except (GenomeError, ValueError, TypeError) as exc:
            raise ConfigError(f"seed {spec}: cannot be built for this task ({exc})") from None
        if params > limit:
            raise ConfigError(
                f"seed {spec}: {params:,} parameters, past [budget] max_params {limit:,}; "
                "raise max_params (or nas baseline --max-params) if you trust it"
            )
