"""The search driver: load, then ask → evaluate → record → tell, one generation at a time.

The loop knows no algorithm and no architecture: the strategy decides, the evaluator
works, the store remembers. A genome already evaluated in this run is never trained
again: its stored result is reused.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nas.config import Experiment
from nas.datasets import EmotionData, load_emotions
from nas.errors import ConfigError
from nas.evolution import Nsga2
from nas.objectives import METRICS, objective_values
from nas.parallel import Evaluator, RayEvaluator, default_threads
from nas.pareto import Front, compute_front
from nas.space import SearchSpace, genome_hash, load_space
from nas.store import RunInfo, RunStore, TrialRecord
from nas.trial import EvalData, EvalRequest, derive_seed

__all__ = ["SearchListener", "SearchSummary", "prepare_data", "run_search"]


class SearchListener(Protocol):
    """Receives progress events (the CLI draws them; tests may record them)."""

    def generation_started(self, generation: int, generations: int, to_train: int) -> None: ...

    def evaluated(self, record: TrialRecord) -> None: ...


@dataclass(frozen=True)
class SearchSummary:
    """What a finished search reports."""

    run_dir: Path
    evaluations: int
    failures: int
    reused: int
    wall_seconds: float
    front: Front


def prepare_data(data: EmotionData, experiment: Experiment) -> EvalData:
    """The fixed training and validation images every candidate of the run sees.

    The caps of the budget take a seeded random subset, the same for every candidate,
    so candidates are compared on equal data.
    """
    rng = np.random.default_rng([experiment.seed, 1])
    budget = experiment.budget

    def cap(images: np.ndarray, labels: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        if not limit or limit >= len(labels):
            return images, labels
        keep = np.sort(rng.choice(len(labels), size=limit, replace=False))
        return images[keep], labels[keep]

    train = cap(data.train.images, data.train.labels, budget.max_train_images)
    validation = cap(data.validation.images, data.validation.labels, budget.max_validation_images)
    return EvalData(
        task=data.task(),
        train_images=np.ascontiguousarray(train[0]),
        train_labels=np.ascontiguousarray(train[1]),
        validation_images=np.ascontiguousarray(validation[0]),
        validation_labels=np.ascontiguousarray(validation[1]),
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

    ``make_evaluator`` replaces the Ray evaluator (tests pass a serial one).
    """
    started = time.perf_counter()
    space = load_space(experiment.space)
    if data_path is not None:
        experiment = experiment.replace(data=dataclasses.replace(experiment.data, path=data_path))
    if (out_dir / "run.json").exists():
        raise ConfigError(f"{out_dir} already holds a run; pass --out NEW_DIR or remove it")
    data = load_emotions(
        experiment.data.path,
        classes=experiment.data.classes,
        validation_fraction=experiment.data.validation_fraction,
        seed=experiment.seed,
    )
    eval_data = prepare_data(data, experiment)
    workers = workers or experiment.search.workers
    threads = experiment.search.threads_per_worker or default_threads(workers)
    info = RunInfo(
        storage=storage or RunStore.default_storage(out_dir),
        study_name=experiment.name,
        space=experiment.space,
        objectives=experiment.objectives,
        task=eval_data.task,
        class_names=data.class_names,
        experiment=experiment.to_dict(),
    )
    evaluator = (
        make_evaluator(eval_data)
        if make_evaluator
        else RayEvaluator(
            eval_data,
            workers=workers,
            threads=threads,
            timeout_seconds=experiment.budget.timeout_seconds,
            address=address,
        )
    )
    strategy = Nsga2(
        space,
        weights=[METRICS[name].weight for name in experiment.objectives],
        population_size=experiment.search.population,
        rng=np.random.default_rng(experiment.seed),
        crossover_prob=experiment.search.crossover_prob,
        mutation_prob=experiment.search.mutation_prob,
    )
    try:
        store = RunStore.create(out_dir, info)
        counts = _evolve(experiment, space, strategy, evaluator, store, threads, listener)
    finally:
        evaluator.close()
    front = compute_front(store.trials(), experiment.objectives)
    return SearchSummary(out_dir, *counts, time.perf_counter() - started, front)


def _evolve(
    experiment: Experiment,
    space: SearchSpace,
    strategy: Nsga2,
    evaluator: Evaluator,
    store: RunStore,
    threads: int,
    listener: SearchListener | None,
) -> tuple[int, int, int]:
    known: dict[str, tuple[float, ...]] = {}
    evaluations = failures = reused = 0
    generations = experiment.search.generations
    while strategy.generation <= generations:
        generation = strategy.generation
        genomes = strategy.ask()
        pending: dict[str, Any] = {}
        for genome in genomes:
            key = genome_hash(space, genome)
            if key in known or key in pending:
                reused += 1
            else:
                pending[key] = genome
        if listener:
            listener.generation_started(generation, generations, len(pending))
        requests = [
            EvalRequest(
                space=experiment.space,
                genome=space.to_json(genome),
                genome_hash=key,
                seed=derive_seed(experiment.seed, key),
                budget=experiment.budget,
                threads=threads,
            )
            for key, genome in pending.items()
        ]
        for result in evaluator.map(requests):
            genome = pending[result.genome_hash]
            values = objective_values(experiment.objectives, result.metrics)
            record = store.record(
                result,
                genome=space.to_json(genome),
                description=space.describe(genome),
                generation=generation,
                values=values,
            )
            known[result.genome_hash] = values
            evaluations += 1
            failures += not result.ok
            if listener:
                listener.evaluated(record)
        strategy.tell([known[genome_hash(space, g)] for g in genomes])
    return evaluations, failures, reused
