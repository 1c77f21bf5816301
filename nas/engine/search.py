"""The search driver: load, then ask → evaluate → record → tell, one generation at a time.

The loop knows no algorithm and no architecture: the strategy decides, the evaluator
works, the store remembers. A genome already evaluated in this run is never trained
again: its stored result is reused.

A search survives being killed at any instant. The store commits each evaluation as it
completes, and the strategy's state is checkpointed atomically after every ask and every
tell (:mod:`nas.storage.checkpoint`). Resuming restores the strategy from the checkpoint, takes
every recorded evaluation from the store, and runs again only the evaluations that had
not completed; with a deterministic budget it ends with the same genomes and the same
front as a search that was never interrupted.

With multi-fidelity (``[search] low_fidelity_images``, NSGA-II only) the strategy asks
for each generation twice (:meth:`nas.strategies.base.Strategy.fidelity`): rung 0 trains
every genome ``low_fidelity_images`` images; rung 1 continues each promoted genome from
its own rung-0 weights (read from the store, whatever ``inherit_weights`` says) for the
rest of the budget. Evaluations are keyed by (genome hash, rung), so a genome's two
trainings are two trials and a resumed search retrains neither.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from baselines import BASELINES, PRETRAINED, load_seed
from nas.core.config import DataConfig, Experiment
from nas.core.errors import ConfigError, GenomeError, StorageError
from nas.core.faults import failpoint
from nas.core.objectives import METRICS, free_objectives, objective_values
from nas.core.space import SearchSpace, genome_hash, load_space
from nas.core.stopping import Progress, SearchClock, stop_rule
from nas.core.trial import (
    EvalData,
    EvalRequest,
    EvalResult,
    MultiEvalData,
    ParentWeights,
    derive_seed,
)
from nas.engine.experiment import changed
from nas.engine.migration import stored_experiment
from nas.engine.parallel import Evaluator, RayEvaluator, check_address, default_threads
from nas.storage.checkpoint import (
    hold_run_lock,
    load_checkpoint,
    remove_temporaries,
    save_checkpoint,
)
from nas.storage.front import Front, compute_front
from nas.storage.records import RunInfo, TaskOutputs, TrialFidelity, TrialRecord
from nas.storage.store import RUN_FILE, RunStore, new_study_name
from nas.storage.urls import portable_storage, redact
from nas.strategies import Strategy, StrategySettings, TrialParameters, make_strategy
from nas.strategies.base import Fidelity
from nas.strategies.multifidelity import promotable_rule
from nas.tasks import load_task

__all__ = [
    "SearchListener",
    "SearchSummary",
    "TaskData",
    "load_task_data",
    "resume_search",
    "run_baseline",
    "run_search",
]


class SearchListener(Protocol):
    """Receives progress events (the CLI draws them; tests may record them)."""

    def resumed(self, generation: int, restored: int) -> None: ...

    def generation_started(self, generation: int, generations: int, to_train: int) -> None: ...

    def evaluated(self, record: TrialRecord) -> None: ...


@dataclass(frozen=True)
class SearchSummary:
    """What a finished search reports."""

    run_dir: Path
    evaluations: int
    failures: int
    reused: int
    restored: int  # evaluations found in the store when the search (re)started
    wall_seconds: float
    front: Front
    stopped: str | None = None  # generations, max_evaluations or max_minutes
    search_seconds: float = 0.0  # the search's clock, over every session of the run


@dataclass(frozen=True)
class TaskData:
    """A loaded dataset, reduced to what the engine needs. For a multi-task experiment,
    ``eval_data`` holds every task's data, ``parts`` each task's own :class:`TaskData`
    and ``task_names`` their names; ``output_names`` are then the first task's."""

    eval_data: EvalData | MultiEvalData
    output_names: tuple[str, ...]
    chance: dict[str, float]
    """What a useless model scores on the validation subset (majority class)."""
    parts: tuple[TaskData, ...] = ()
    task_names: tuple[str, ...] = ()


def load_task_data(experiment: Experiment, *, full: bool = False) -> TaskData:
    """Load the experiment's dataset and take the fixed subsets every candidate sees.

    The caps of the budget take a seeded random subset, the same for every candidate,
    so candidates are compared on equal data. ``full`` ignores the caps (the final
    training uses every training and validation image).
    """
    if experiment.multitask:
        parts = tuple(_load_one(experiment, config, full) for config in experiment.tasks)
        names = tuple(load_task(config.task).name for config in experiment.tasks)
        multi = MultiEvalData(tuple(part.eval_data for part in parts), names)  # type: ignore[misc]
        chance = {k: v for part in parts for k, v in part.chance.items()}
        return TaskData(multi, parts[0].output_names, chance, parts, names)
    return _load_one(experiment, experiment.data, full)


def _load_one(experiment: Experiment, config: DataConfig, full: bool) -> TaskData:
    task = load_task(config.task)
    loaded = task.load(config, seed=experiment.seed)
    splits = (loaded.train_images, loaded.train_targets)
    validation = (loaded.validation_images, loaded.validation_targets)

    rng = np.random.default_rng([experiment.seed, 1])

    def cap(images: np.ndarray, targets: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        if limit and limit < len(targets) and not full:
            keep = np.sort(rng.choice(len(targets), size=limit, replace=False))
            images, targets = images[keep], targets[keep]
        return np.ascontiguousarray(images), np.ascontiguousarray(targets)

    train = cap(*splits, experiment.budget.max_train_images)
    validation = cap(*validation, experiment.budget.max_validation_images)
    eval_data = EvalData(
        task=loaded.task,
        train_images=train[0],
        train_targets=train[1],
        validation_images=validation[0],
        validation_targets=validation[1],
        flip_permutation=loaded.flip_permutation,
    )
    capped = dataclasses.replace(
        loaded,
        train_images=train[0],
        train_targets=train[1],
        validation_images=validation[0],
        validation_targets=validation[1],
    )
    return TaskData(eval_data, loaded.output_names, task.chance(capped))


@dataclass
class _Run:
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
        )

    def promotion(self, genome: Any, key: str, low: TrialRecord | None) -> _Planned:
        """Rung 1 of multi-fidelity: ``genome`` continues from its own rung-0 weights
        (``low``'s, sent as its only parent: it inherits all of them) for the budget's
        ``train_images`` less the images it has seen, at least one batch. Without
        readable rung-0 weights it trains the whole budget from scratch instead."""
        total = self.experiment.budget.train_images
        own = self.weights(low) if low is not None else None
        if own is None:
            return _Planned(self.request(genome, key, images=total, rung=1), rung=1)
        seen = low.images_seen if low is not None else 0
        request = self.request(genome, key, parents=(own,), images=max(1, total - seen), rung=1)
        return _Planned(request, rung=1, prior_images=seen)

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
            description=self.space.describe(genome),
            generation=generation,
            values=objective_values(self.experiment.objectives, result.metrics),
            baseline=label,
            parameters=parameters,
            search_seconds=search_seconds,
            fidelity=fidelity,
            parents=[h for h in parent_hashes if h != own],  # a promotion's lineage is itself
        )


@dataclass(frozen=True)
class _Planned:
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
def _open_run(
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
) -> Iterator[_Run]:
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
        yield _Run(experiment, space, store, evaluator, threads)
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


def run_search(
    experiment: Experiment,
    *,
    out_dir: Path,
    data_path: str | None = None,
    storage: str | None = None,
    address: str | None = None,
    workers: int | None = None,
    make_evaluator: Callable[[EvalData], Evaluator] | None = None,
    listener: SearchListener | None = None,
) -> SearchSummary:
    """Run the experiment and return its summary; every evaluation lands in the store.

    When ``out_dir`` already holds a run of the same experiment, the search resumes it
    (see :func:`resume_search`); a run of another experiment is refused with one line.
    ``make_evaluator`` replaces the Ray evaluator (tests pass a serial one).
    """
    started = time.perf_counter()
    experiment = _settled(experiment, data_path=data_path, workers=workers)
    resume = (out_dir / RUN_FILE).exists()
    if resume:
        _check_same_storage(out_dir, storage)  # before opening it: the URL may not connect
        stored = RunStore.open(out_dir, storage=storage)
        _check_same_experiment(stored, experiment)
    return _search(
        experiment,
        out_dir=out_dir,
        started=started,
        resume=resume,
        storage=storage,
        address=address,
        make_evaluator=make_evaluator,
        listener=listener,
    )


def resume_search(
    run_dir: Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    make_evaluator: Callable[[EvalData], Evaluator] | None = None,
    listener: SearchListener | None = None,
) -> SearchSummary:
    """Continue the search in ``run_dir`` from its last checkpoint, with the run's own settings.

    No recorded evaluation is trained again; the evaluations that were running when the
    search stopped are. A finished run only reports its front. ``workers`` may change the
    parallelism (with other threads per worker, results may differ in the last bits).
    """
    started = time.perf_counter()
    store = RunStore.open(run_dir)
    experiment = stored_experiment(store.info.experiment, source=str(run_dir / RUN_FILE))
    experiment = _settled(experiment, data_path=None, workers=workers)
    return _search(
        experiment,
        out_dir=run_dir,
        started=started,
        resume=True,
        storage=None,
        address=address,
        make_evaluator=make_evaluator,
        listener=listener,
    )


def _search(
    experiment: Experiment,
    *,
    out_dir: Path,
    started: float,
    resume: bool,
    storage: str | None,
    address: str | None,
    make_evaluator: Callable[[EvalData], Evaluator] | None,
    listener: SearchListener | None,
) -> SearchSummary:
    checkpoint = load_checkpoint(out_dir) if resume else None
    if checkpoint is not None and checkpoint.finished:  # nothing to do: report the front
        store = RunStore.open(out_dir)
        trials = store.trials()
        front = compute_front(
            trials, experiment.objectives, store.info.reference, store.info.chance
        )
        wall = time.perf_counter() - started
        return SearchSummary(
            out_dir, 0, 0, 0, len(trials), wall, front, checkpoint.stopped, checkpoint.seconds
        )
    space = load_space(experiment.space)
    seeds = [load_seed(spec, space) for spec in experiment.search.seeds]
    search = experiment.search
    settings = StrategySettings(
        space=space,
        weights=tuple(METRICS[name].weight for name in experiment.objectives),
        population=search.population,
        generations=search.generations,
        seed=experiment.seed,
        crossover_prob=search.crossover_prob,
        mutation_prob=search.mutation_prob,
        initial=tuple(seed.genome for seed in seeds),
        prescreen=search.prescreen,
        prescreen_by=search.prescreen_by,
        low_fidelity_images=search.low_fidelity_images,
        promote_fraction=search.promote_fraction,
    )
    labels = {genome_hash(space, seed.genome): seed.label for seed in seeds}
    options = {
        "storage": storage,
        "address": address,
        "workers": experiment.search.workers,
        "make_evaluator": make_evaluator,
        "resume": resume,
    }
    with _open_run(experiment, out_dir=out_dir, **options) as run:
        # the free objectives (parameters, FLOPs) need the task, known once the data is
        info = run.store.info
        free = free_objectives(
            space,
            experiment.objectives,
            info.task,
            info.reference,
            tasks=tuple(t.task for t in info.tasks),
        )
        promotable = promotable_rule(experiment.objectives, info.chance)
        strategy = make_strategy(
            search.strategy,
            dataclasses.replace(settings, free_objectives=free, promotable=promotable),
        )
        outcome = _evolve(run, strategy, listener, labels)
    front = compute_front(
        run.store.trials(),
        experiment.objectives,
        run.store.info.reference,
        run.store.info.chance,
    )
    return SearchSummary(
        out_dir,
        outcome.evaluations,
        outcome.failures,
        outcome.reused,
        outcome.restored,
        time.perf_counter() - started,
        front,
        outcome.stopped,
        outcome.seconds,
    )


def _settled(experiment: Experiment, *, data_path: str | None, workers: int | None) -> Experiment:
    """The experiment as the run records it: data paths absolute, command-line overrides in."""

    def absolute(path: str) -> str:
        return path if path.startswith("builtin:") else str(Path(path).expanduser().resolve())

    if experiment.multitask:
        if data_path is not None:
            raise ConfigError(
                f"--data {data_path}: a multi-task experiment reads one file per task; set "
                "each [[tasks]] path in the experiment file instead"
            )
        tasks = tuple(dataclasses.replace(c, path=absolute(c.path)) for c in experiment.tasks)
        experiment = changed(experiment, tasks=tasks)
    else:
        path = absolute(data_path if data_path is not None else experiment.data.path)
        experiment = changed(experiment, data=dataclasses.replace(experiment.data, path=path))
    if workers is not None:
        experiment = changed(
            experiment, search=dataclasses.replace(experiment.search, workers=workers)
        )
    return experiment


_MAY_CHANGE_ON_RESUME = {("search", "workers")}


def _resume_hint(run_dir: Path) -> str:
    return f"resume it as it was with 'nas search --resume {run_dir}', or pass --out NEW_DIR"


def _check_same_storage(run_dir: Path, storage: str | None) -> None:
    """Refuse a storage other than the run's own (said without its password)."""
    kept = RunStore.read_info(run_dir).storage
    if storage is not None and portable_storage(storage, run_dir) != kept:
        raise ConfigError(
            f"{run_dir} keeps its trials in {kept}, not {redact(storage)}; {_resume_hint(run_dir)}"
        )


def _check_same_experiment(store: RunStore, experiment: Experiment) -> None:
    """Refuse to continue a run with settings other than those it started with."""
    ours = _flatten(json.loads(json.dumps(experiment.to_dict())))
    stored = stored_experiment(store.info.experiment, source=str(store.run_dir / RUN_FILE))
    # Through the dataclasses, so keys added since the run began compare at their defaults.
    theirs = _flatten(json.loads(json.dumps(stored.to_dict())))
    changed = sorted(
        key
        for key in ours.keys() | theirs.keys()
        if key not in _MAY_CHANGE_ON_RESUME and ours.get(key) != theirs.get(key)
    )
    hint = _resume_hint(store.run_dir)
    if changed:
        section, key = changed[0]
        where = f"[{section}] {key}" if section else key
        raise ConfigError(
            f"{store.run_dir} holds a run of another experiment ({where}: "
            f"{theirs.get(changed[0])!r} in the run, {ours.get(changed[0])!r} now); {hint}"
        )


def _flatten(table: dict[str, Any]) -> dict[tuple[str, str], Any]:
    flat: dict[tuple[str, str], Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update({(key, inner): v for inner, v in value.items()})
        else:
            flat[("", key)] = value
    return flat


def run_baseline(
    experiment: Experiment,
    name: str,
    *,
    out_dir: Path,
    weights: Path | None = None,
    storage: str | None = None,
    address: str | None = None,
    make_evaluator: Callable[[EvalData], Evaluator] | None = None,
    max_params: int | None = None,
) -> TrialRecord:
    """Train the baseline ``name`` alone with the experiment's data and budget.

    ``max_params`` bounds its size (counted from the genome before anything is built):
    by default none for the built-in baselines (ResNet50 has 23.6 M parameters) and the
    experiment's ``[budget] max_params`` for a genome file, which anyone may have written.

    The run directory holds one trial, so ``nas pareto`` and ``nas export`` work on it.
    ``weights`` is a local file of pre-trained weights (e.g. Keras' ImageNet "notop" .h5
    for ResNet50); nothing is ever downloaded.
    """
    seed = load_seed(name, load_space(experiment.space))
    # Train with a search candidate's CPU share, so the comparison is at equal budget.
    search_workers = experiment.search.workers
    if weights is not None and name not in PRETRAINED:
        raise ConfigError(
            f"--weights: no pre-trained weights can be loaded into {name!r} (only {', '.join(PRETRAINED)})"
        )
    if weights is not None and not weights.is_file():
        raise ConfigError(
            f"--weights {weights}: no such file; pass Keras' ImageNet notop .h5, "
            "or leave --weights out to train from scratch"
        )
    if max_params is None:
        max_params = 10**10 if name in BASELINES else experiment.budget.max_params
    experiment = changed(
        experiment,
        search=dataclasses.replace(experiment.search, workers=1, seeds=(name,)),
        budget=dataclasses.replace(experiment.budget, max_params=max_params),
    )
    options = {
        "storage": storage,
        "address": address,
        "workers": 1,
        "threads_share": search_workers,
        "make_evaluator": make_evaluator,
    }
    with _open_run(experiment, out_dir=out_dir, **options) as run:
        key = genome_hash(run.space, seed.genome)
        pretrained = (name, str(weights.resolve())) if weights is not None else None
        (result,) = run.evaluator.map([run.request(seed.genome, key, pretrained)])
        record = run.record(seed.genome, result, 0, seed.label)
        save_checkpoint(out_dir, {"baseline": name}, finished=True)
        return record


@dataclass
class _Outcome:
    evaluations: int = 0
    failures: int = 0
    reused: int = 0
    restored: int = 0
    stopped: str | None = None
    seconds: float = 0.0


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
    for spec in experiment.search.seeds:
        genome = load_seed(spec, space).genome
        try:
            params = cost(genome, task).params
        except (GenomeError, ValueError, TypeError) as exc:
            raise ConfigError(f"seed {spec}: cannot be built for this task ({exc})") from None
        if params > limit:
            raise ConfigError(
                f"seed {spec}: {params:,} parameters, past [budget] max_params {limit:,}; "
                "raise max_params (or nas baseline --max-params) if you trust it"
            )


def _pass_note(strategy: Strategy, listener: SearchListener | None) -> None:
    """Hand the listener a strategy's line about itself (NSGA-II's surrogate), if any."""
    note = getattr(strategy, "note", None)
    noted = getattr(listener, "noted", None)
    if callable(note) and callable(noted):
        text = note()
        if text:
            noted(text)


def _evolve(
    run: _Run, strategy: Strategy, listener: SearchListener | None, labels: dict[str, str]
) -> _Outcome:
    """Ask, evaluate, record, tell, checkpoint, until the stop rule says why to stop."""
    run_dir = run.store.run_dir
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is not None:
        try:
            strategy.restore(checkpoint.strategy)
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{run_dir}/checkpoint.json does not fit this run ({exc})") from None
    clock = SearchClock(checkpoint.seconds if checkpoint is not None else 0.0)
    search = run.experiment.search
    rule = stop_rule(max_evaluations=search.max_evaluations, max_minutes=search.max_minutes)
    deadline = {}
    if search.max_minutes:  # the evaluator cancels what runs when the clock runs out
        deadline["deadline"] = time.monotonic() + 60.0 * search.max_minutes - clock.seconds()
    known = run.store.known_values()
    outcome = _Outcome(restored=len(known))
    if outcome.restored and listener:
        listener.resumed(strategy.generation, outcome.restored)

    def progress() -> Progress:
        return Progress(len(known), clock.seconds(), strategy.done)

    def save(stopped: str | None = None) -> None:
        finished = stopped is not None
        save_checkpoint(
            run_dir, strategy.state(), finished=finished, seconds=clock.seconds(), stopped=stopped
        )

    stopped = rule.reason(progress())
    saved_final = False
    while stopped is None:
        generation = strategy.generation
        genomes = strategy.ask()
        save()
        failpoint("generation:asked")
        fidelity = strategy.fidelity()
        rung = None if fidelity is None else fidelity.rung
        pending: dict[str, Any] = {}
        for genome in genomes:
            key = genome_hash(run.space, genome)
            if (key, rung) in known or key in pending:
                outcome.reused += 1
            else:
                pending[key] = genome
        planned = _plan(run, strategy, pending, fidelity)
        requests = [plan.request for plan in planned.values()]
        left = rule.evaluations_left(progress())
        if left is not None:
            requests = requests[:left]
        if listener:
            # "generations = 1000" beside a count or a clock only means "until that one"
            bounded = search.max_evaluations or search.max_minutes
            shown = 0 if bounded and search.generations >= 1000 else search.generations
            listener.generation_started(generation, shown, len(requests))
        results = run.evaluator.map(requests, **deadline)
        try:
            for result in results:
                genome = pending[result.genome_hash]
                record = run.record(
                    genome,
                    result,
                    generation,
                    labels.get(result.genome_hash),
                    parameters=strategy.parameters(genome),
                    search_seconds=clock.seconds(),
                    fidelity=planned[result.genome_hash].fidelity(result),
                    parents=strategy.lineage(genome),
                )
                known[(result.genome_hash, rung)] = objective_values(
                    run.experiment.objectives, result.metrics
                )
                outcome.evaluations += 1
                outcome.failures += not result.ok
                if listener:
                    listener.evaluated(record)
                failpoint("evaluation:recorded")
        finally:
            results.close()  # cancels what still runs when the budget cut the batch short
        if any((key, rung) not in known for key in pending):  # a budget ran out mid-batch
            stopped = rule.reason(progress()) or "max_minutes"
            break
        strategy.tell([known[(genome_hash(run.space, g), rung)] for g in genomes])
        failpoint("generation:told")
        _pass_note(strategy, listener)
        stopped = rule.reason(progress())
        save(stopped)
        saved_final = stopped is not None
    if not saved_final:
        save(stopped)
    outcome.stopped = stopped
    outcome.seconds = clock.seconds()
    return outcome


def _plan(
    run: _Run, strategy: Strategy, pending: dict[str, Any], fidelity: Fidelity | None
) -> dict[str, _Planned]:
    """The requests for the genomes of a batch still to train, by genome hash.

    Rung 1 of multi-fidelity continues each genome from its own rung-0 weights
    (:meth:`_Run.promotion`); otherwise a genome inherits from its lineage's stored
    weights when ``[search] inherit_weights`` is on, the best-trained of each parent
    (a promoted parent's full-fidelity weights, not its rung-0 ones).
    """
    inherit = run.experiment.search.inherit_weights
    rung = None if fidelity is None else fidelity.rung
    trials = run.store.trials() if inherit or rung == 1 else []
    if rung == 1:
        low = {t.genome_hash: t for t in trials if t.rung == 0}
        return {key: run.promotion(genome, key, low.get(key)) for key, genome in pending.items()}
    # per genome, the trial with weights and the highest rung wins (later ones on a tie)
    ranked = sorted(trials, key=lambda t: (t.weights is not None, -1 if t.rung is None else t.rung))
    records = {t.genome_hash: t for t in ranked}
    images = None if fidelity is None else fidelity.images
    return {
        key: _Planned(
            run.request(
                genome, key, parents=run.parents(strategy.lineage(genome), records), images=images
            ),
            rung=rung,
        )
        for key, genome in pending.items()
    }
