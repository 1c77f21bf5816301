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

The loop itself is :mod:`nas.engine.evolve`; it runs the strategy's proposals
(:class:`nas.strategies.base.Proposal`), each carrying its own fidelity. With
multi-fidelity (``[search] low_fidelity_images``, NSGA-II only) NSGA-II proposes each
generation twice: rung 0 trains every genome ``low_fidelity_images`` images; rung 1
continues each promoted genome from its own rung-0 weights (read from the store,
whatever ``inherit_weights`` says) for the rest of the budget. Evaluations are keyed by
(genome hash, rung), so a genome's two trainings are two trials and a resumed search
retrains neither.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines import BASELINES, PRETRAINED, load_seed
from nas.core.config import Experiment
from nas.core.errors import ConfigError
from nas.core.objectives import METRICS, free_objectives, genome_flops
from nas.core.space import genome_hash, load_space
from nas.core.trial import (
    EvalData,
)
from nas.engine.evolve import SearchListener, evolve
from nas.engine.experiment import changed
from nas.engine.final_cost import breeding_rule
from nas.engine.migration import stored_experiment
from nas.engine.parallel import Evaluator
from nas.engine.run import open_run
from nas.storage.checkpoint import (
    load_checkpoint,
    save_checkpoint,
)
from nas.storage.front import Front, compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RUN_FILE, RunStore
from nas.storage.urls import portable_storage, redact
from nas.strategies import StrategySettings, make_strategy, strategy_options
from nas.strategies.multifidelity import promotable_rule

__all__ = [
    "SearchListener",
    "SearchSummary",
    "resume_search",
    "run_baseline",
    "run_search",
]


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
        initial=tuple(seed.genome for seed in seeds),
        options=strategy_options(search.strategy, search.options),
    )
    labels = {genome_hash(space, seed.genome): seed.label for seed in seeds}
    options = {
        "storage": storage,
        "address": address,
        "workers": experiment.search.workers,
        "make_evaluator": make_evaluator,
        "resume": resume,
    }
    with open_run(experiment, out_dir=out_dir, **options) as run:
        # the free objectives (parameters, FLOPs) need the task, known once the data is
        info = run.store.info
        free = free_objectives(
            space,
            experiment.objectives,
            info.task,
            info.reference,
            tasks=tuple(t.task for t in info.tasks),
            limits={"params": experiment.budget.max_params, "flops": experiment.budget.max_flops},
        )
        promotable = promotable_rule(experiment.objectives, info.chance)
        flops = genome_flops(space, info.task, tasks=tuple(t.task for t in info.tasks))
        strategy = make_strategy(
            search.strategy,
            dataclasses.replace(settings, free_objectives=free, promotable=promotable, flops=flops),
        )
        outcome = evolve(run, strategy, listener, labels, breeding_rule(experiment))
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
    # a built-in baseline is trained whatever its FLOPs; a genome file within the budget's
    max_flops = 0 if name in BASELINES else experiment.budget.max_flops
    experiment = changed(
        experiment,
        search=dataclasses.replace(experiment.search, workers=1, seeds=(name,)),
        budget=dataclasses.replace(experiment.budget, max_params=max_params, max_flops=max_flops),
    )
    options = {
        "storage": storage,
        "address": address,
        "workers": 1,
        "threads_share": search_workers,
        "make_evaluator": make_evaluator,
    }
    with open_run(experiment, out_dir=out_dir, **options) as run:
        key = genome_hash(run.space, seed.genome)
        pretrained = (name, str(weights.resolve())) if weights is not None else None
        (result,) = run.evaluator.map([run.request(seed.genome, key, pretrained)])
        record = run.record(seed.genome, result, 0, seed.label)
        save_checkpoint(out_dir, {"baseline": name}, finished=True)
        return record
