"""The race before the final training (``[final] race``): the winner is chosen for its future.

A search's brief score picks among candidates that are close, and the brief score is
noisy (the fidelity benchmark measures how much: ``nas fidelity``). So before the final
training, the best ``race`` members of the front by the first objective train on, each
from its own search weights, successive-halving style: round 1 gives each of them
``race_images`` more images (default: the budget's ``train_images``), the better half
goes on to round 2 with twice as many, and so on until one is left. That one goes to the
final training (which starts from its search weights, as without a race).

The race runs on the run's own evaluator (Ray workers, like the search) with the search's
recipe; its evaluations are not trials (they would not compare with the front's), but
``RUN/race.json`` records every round, and a finished race is not run again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from nas.core.config import Experiment
from nas.core.errors import ConfigError
from nas.core.files import write_atomically
from nas.core.objectives import METRICS
from nas.core.trial import EvalData, ParentWeights, derive_seed
from nas.storage.front import compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore

__all__ = ["RACE_FILE", "race_images", "run_race"]

RACE_FILE = "race.json"
_RACE_RUNG = 100
"""Race rounds train with seeds of their own: ``derive_seed`` rungs from this one up."""


def race_images(experiment: Experiment, training_images: int) -> int:
    """Images of the race's first round: ``[final] race_images``, else the budget's
    ``train_images``, else its epochs over the candidates' training subset."""
    return (
        experiment.final.race_images
        or experiment.budget.train_images
        or experiment.budget.epochs * training_images
    )


def run_race(
    experiment: Experiment,
    run_dir: Path,
    *,
    address: str | None = None,
    make_evaluator: Callable[[EvalData], Any] | None = None,
    echo: Callable[[str], None] = print,
) -> TrialRecord:
    """Race the front's best ``[final] race`` members; return the winner's trial.

    A race already finished (``RUN/race.json``) returns its winner without training."""
    from nas.engine.run import open_run

    store = RunStore.open(run_dir)
    done = _finished(run_dir, store)
    if done is not None:
        return done
    front = compute_front(
        store.trials(), store.info.objectives, store.info.reference, store.info.chance
    )
    size = experiment.final.race
    entrants = [r for r in front.members if r.weights][:size]
    if not entrants:
        raise ConfigError(f"{run_dir}: no front member has stored weights to race with")
    metric = METRICS[store.info.objectives[0]]
    rounds: list[dict[str, Any]] = []
    with open_run(
        experiment,
        out_dir=run_dir,
        storage=None,
        address=address,
        workers=None,
        make_evaluator=make_evaluator,
        resume=True,
    ) as run:
        subset = 0
        if not (experiment.final.race_images or experiment.budget.train_images):
            from nas.engine.task_data import load_task_data

            subset = len(load_task_data(experiment).eval_data.train_targets)  # type: ignore[union-attr]
        images = race_images(experiment, subset)
        weights: dict[int, ParentWeights | None] = {r.number: run.weights(r) for r in entrants}
        alive = entrants
        number = 0
        while len(alive) > 1:
            number += 1
            requests = []
            for record in alive:
                key = record.genome_hash
                request = run.request(
                    run.space.from_json(record.genome),
                    key,
                    parents=(weights[record.number],) if weights[record.number] else (),
                    images=images,
                )
                requests.append(
                    replace(request, seed=derive_seed(experiment.seed, key, _RACE_RUNG + number))
                )
            results = run.evaluator.map(requests)
            scores: dict[int, float] = {}
            for record, result in zip(alive, results, strict=True):
                value = (result.metrics or {}).get(metric.name) if result.ok else None
                scores[record.number] = math.nan if value is None else float(value)
                if result.ok and result.weights:
                    weights[record.number] = ParentWeights(record.genome, result.weights)
            ranked = sorted(
                alive,
                key=lambda r: (
                    math.isnan(scores[r.number]),
                    -metric.weight * (0.0 if math.isnan(scores[r.number]) else scores[r.number]),
                ),
            )
            rounds.append(
                {
                    "round": number,
                    "images": images,
                    "scores": {str(r.number): scores[r.number] for r in alive},
                }
            )
            echo(
                f"race round {number} ({images:,} more images each): "
                + ", ".join(f"trial {r.number} {scores[r.number]:.4f}" for r in ranked)
            )
            alive = ranked[: math.ceil(len(alive) / 2)] if len(alive) > 2 else ranked[:1]
            images *= 2
    winner = alive[0]
    document = {
        "entrants": [r.number for r in entrants],
        "search_scores": {str(r.number): r.metrics.get(metric.name) for r in entrants},
        "rounds": rounds,
        "winner": winner.number,
        "winner_hash": winner.genome_hash,
    }
    write_atomically(run_dir / RACE_FILE, (json.dumps(document, indent=1) + "\n").encode())
    return winner


def _finished(run_dir: Path, store: RunStore) -> TrialRecord | None:
    path = run_dir / RACE_FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
        number, key = int(document["winner"]), str(document["winner_hash"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); remove it to race again") from None
    for record in store.trials():
        if record.number == number and record.genome_hash == key:
            return record
    raise ConfigError(f"{path}: its winner (trial {number}) is not in {run_dir}; remove it")
