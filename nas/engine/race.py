"""The race before the final training (``[final] race``): the winner is chosen for its future.

A search's brief score picks among candidates that are close, and the brief score is
noisy (the fidelity benchmark measures how much: ``nas fidelity``). So before the final
training, the best ``race`` candidates train on, each from its own search weights,
successive-halving style: round 1 gives each of them ``race_images`` more images
(default: the budget's ``train_images``), the better half goes on to round 2 with twice
as many, and so on until one is left. That one goes to the final training (which starts
from its search weights, as without a race).

Which candidates are best (``[final] choose_by``): ``"score"``, the front's members by the
first objective, in every round by their race score; ``"score+flops"``, every trained
candidate not at chance by the mean of its rank by the first objective and its rank by
FLOPs (more compute ranking higher), in every round by the same mean among those still
racing (their race scores and FLOPs; a tie goes to the better race score). On the
fidelity panel a brief training of 6,000 images ranks nets by their 10-epoch accuracy
with Kendall's tau 0.49, the FLOPs alone 0.41, and the two ranks averaged 0.66, picking
the best net or one 0.015 below it where the score alone picks one 0.04-0.075 below
(docs/fidelity.md). With ``choose_by = "score+flops"`` and no race, the best by that
mean is the winner. With the standard brief recipe, which ignores the genome's training
genes, candidates that build the same net enter once (the better placed): issue 20's
equal-time run raced one net twice, as trials 12 and 25.

The race runs on the run's own evaluator (Ray workers, like the search) with the search's
recipe; its evaluations are not trials (they would not compare with the front's), but
``RUN/race.json`` records every round, and a finished race is not run again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from nas.core.config import Experiment
from nas.core.errors import ConfigError, GenomeError
from nas.core.files import write_atomically
from nas.core.objectives import METRICS
from nas.core.ranking import rank_average
from nas.core.space import SearchSpace, architecture_hash, load_space
from nas.core.trial import EvalData, EvalResult, ParentWeights, derive_seed
from nas.storage.front import Front, compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore

__all__ = [
    "RACE_FILE",
    "distinct_nets",
    "race_candidates",
    "race_images",
    "raced",
    "round_results",
    "run_race",
]

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


def race_candidates(front: Front, choose_by: str = "score") -> list[TrialRecord]:
    """The candidates that may race, best first (see the module's docstring), each with
    stored weights to continue from."""
    metric = METRICS[front.objectives[0]]
    if choose_by == "score":
        return [r for r in front.members if r.weights]
    pool = [
        r for r in front.evaluated if r.weights and r.values and r.metrics.get("flops") is not None
    ]
    combined = rank_average(
        [metric.weight * r.values[0] for r in pool],  # type: ignore[index]
        [float(r.metrics["flops"]) for r in pool],
    )
    order = sorted(
        range(len(pool)),
        key=lambda i: (-combined[i], -metric.weight * pool[i].values[0]),  # type: ignore[index]
    )
    return [pool[i] for i in order]


def distinct_nets(
    candidates: list[TrialRecord], space: SearchSpace, *, training_ignored: bool
) -> list[TrialRecord]:
    """``candidates`` (best first), one per genome: a genome's multi-fidelity rungs are
    trials of their own, and a round's results are matched to entrants by genome hash.
    With ``training_ignored`` (the standard recipe), one per net
    (:func:`~nas.core.space.architecture_hash`): genomes that differ only in training genes
    would race one net twice. The better-placed one stays."""

    def key(record: TrialRecord) -> str:
        if not training_ignored:
            return record.genome_hash
        try:
            return architecture_hash(space, space.from_json(record.genome))
        except GenomeError:
            return record.genome_hash

    first: dict[str, TrialRecord] = {}
    for record in candidates:
        first.setdefault(key(record), record)
    return list(first.values())


def round_results(
    alive: list[TrialRecord], results: Iterable[EvalResult], metric: str
) -> tuple[dict[int, float], dict[int, ParentWeights]]:
    """A round's score (NaN: failed or lost) and trained weights per entrant's trial number.

    The evaluator yields results as they complete, not in the requests' order: each is
    matched to its entrant by genome hash. (Zipped in order, as before issue 20's ninth
    session, two workers gave an entrant another's score and, in the next round, another
    net's weights.)"""
    by_hash = {result.genome_hash: result for result in results}
    scores: dict[int, float] = {}
    weights: dict[int, ParentWeights] = {}
    for record in alive:
        result = by_hash.get(record.genome_hash)
        value = (result.metrics or {}).get(metric) if result is not None and result.ok else None
        scores[record.number] = math.nan if value is None else float(value)
        if result is not None and result.ok and result.weights:
            weights[record.number] = ParentWeights(record.genome, result.weights)
    return scores, weights


def _round_order(
    alive: list[TrialRecord], scores: dict[int, float], weight: float, choose_by: str
) -> list[TrialRecord]:
    """``alive`` (in the entrants' order) ranked by a round's ``scores``: failed ones last;
    by the score, or with ``"score+flops"`` by its mean rank with the FLOPs, a tie going to
    the better score of the round, then to the entrant placed first. (Two finalists tie
    whenever one scores better and the other computes more: going by the entrants' order,
    seed 2's race of issue 20's tenth session crowned the one its last round scored 0.028
    lower.)"""
    failed = [r for r in alive if math.isnan(scores[r.number])]
    scored = [r for r in alive if not math.isnan(scores[r.number])]
    if choose_by == "score" or len(scored) < 2:
        scored.sort(key=lambda r: -weight * scores[r.number])
        return scored + failed
    combined = rank_average(
        [weight * scores[r.number] for r in scored],
        [float(r.metrics.get("flops", 0.0)) for r in scored],
    )
    order = sorted(  # stable: the entrants' order last
        range(len(scored)), key=lambda i: (-combined[i], -weight * scores[scored[i].number])
    )
    return [scored[i] for i in order] + failed


def run_race(
    experiment: Experiment,
    run_dir: Path,
    *,
    address: str | None = None,
    make_evaluator: Callable[[EvalData], Any] | None = None,
    echo: Callable[[str], None] = print,
    deadline: float | None = None,
    final_seconds: float | None = None,
) -> TrialRecord:
    """Race the best ``[final] race`` candidates (by ``[final] choose_by``); return the
    winner's trial.

    Past ``deadline`` (a ``time.monotonic()`` reading: ``[final] search_share`` of
    ``total_minutes``), no round starts and a round under way is cut: its results are
    dropped and the winner is the best of the last finished round (of the entrants'
    order when none finished). With ``final_seconds`` (the time the final training will
    get), only candidates with time for ``[final] min_epochs`` enter
    (:func:`~nas.engine.final_cost.affordable`). A race already finished
    (``RUN/race.json``) returns its winner without training."""
    store = RunStore.open(run_dir)
    done = _finished(run_dir, store)
    if done is not None:
        return done
    front = compute_front(
        store.trials(), store.info.objectives, store.info.reference, store.info.chance
    )
    size = max(1, experiment.final.race)
    choose_by = experiment.final.choose_by
    candidates = distinct_nets(
        race_candidates(front, choose_by),
        load_space(experiment.space),
        training_ignored=experiment.budget.recipe == "standard",
    )
    if not candidates:
        raise ConfigError(f"{run_dir}: no trained candidate has stored weights to race with")
    costs: dict[str, Any] = {}
    if final_seconds is not None and experiment.final.min_epochs:
        candidates, costs = _affordable(experiment, candidates, final_seconds)
        echo(
            f"{len(costs['fit'])} of {len(costs['epoch_seconds'])} candidates have time for "
            f"{experiment.final.min_epochs} final epochs in {final_seconds / 60:.1f} minutes"
            + ("" if costs["fit"] else f"; none does: the cheapest, trial {candidates[0].number}")
        )
    entrants = candidates[:size]
    metric = METRICS[store.info.objectives[0]]
    alive, rounds, cut = entrants, [], False
    if len(entrants) > 1 and deadline is not None and time.monotonic() >= deadline:
        cut = True
        echo("no race: the search spent its share of the time")
    elif len(entrants) > 1:
        alive, rounds, cut = _rounds(
            experiment,
            run_dir,
            entrants,
            metric.name,
            address=address,
            make_evaluator=make_evaluator,
            echo=echo,
            deadline=deadline,
        )
    winner = alive[0]
    document = {
        "choose_by": choose_by,
        "entrants": [r.number for r in entrants],
        "search_scores": {str(r.number): r.metrics.get(metric.name) for r in entrants},
        "rounds": rounds,
        "stopped_by_time": cut,
        **({"affordable": costs} if costs else {}),
        "winner": winner.number,
        "winner_hash": winner.genome_hash,
    }
    write_atomically(run_dir / RACE_FILE, (json.dumps(document, indent=1) + "\n").encode())
    return winner


def _rounds(
    experiment: Experiment,
    run_dir: Path,
    entrants: list[TrialRecord],
    metric_name: str,
    *,
    address: str | None,
    make_evaluator: Callable[[EvalData], Any] | None,
    echo: Callable[[str], None],
    deadline: float | None,
) -> tuple[list[TrialRecord], list[dict[str, Any]], bool]:
    """Successive halving on the run's evaluator, ranked by ``metric_name`` (the first
    objective): who is left (the winner first), each round's record, and whether the
    deadline cut the race short."""
    from nas.engine.run import open_run

    metric = METRICS[metric_name]
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
        cut = False
        while len(alive) > 1:
            if deadline is not None and time.monotonic() >= deadline:
                cut = True
                echo(f"race stopped before round {number + 1}: its share of the time is spent")
                break
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
            limit = {} if deadline is None else {"deadline": deadline}
            scores, trained = round_results(
                alive, run.evaluator.map(requests, **limit), metric.name
            )
            lost = any(math.isnan(value) for value in scores.values())
            if lost and deadline is not None and time.monotonic() >= deadline:
                cut = True  # results that never came are the clock's, not the nets' fault
                echo(f"race round {number} cut: its share of the time is spent")
                rounds.append({"round": number, "images": images, "cut": True})
                break
            weights.update(trained)
            ranked = _round_order(alive, scores, metric.weight, experiment.final.choose_by)
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
    return alive, rounds, cut


def _affordable(
    experiment: Experiment, candidates: list[TrialRecord], final_seconds: float
) -> tuple[list[TrialRecord], dict[str, Any]]:
    """The candidates with time for ``[final] min_epochs`` in ``final_seconds``, and what
    ``race.json`` records of the estimate."""
    from nas.engine.final_cost import affordable, epoch_cost

    estimate = epoch_cost(experiment)
    costs = {r.number: estimate(r) for r in candidates}
    min_epochs = experiment.final.min_epochs
    kept, fit = affordable(candidates, costs, final_seconds=final_seconds, min_epochs=min_epochs)
    record = {
        "final_seconds": round(final_seconds, 1),
        "min_epochs": min_epochs,
        "epoch_seconds": {str(number): round(cost, 1) for number, cost in costs.items()},
        "fit": [r.number for r in kept] if fit else [],
    }
    return kept, record


def raced(run_dir: Path) -> bool:
    """Whether the run's finished race (``RUN/race.json``) trained any round: False when
    it only chose (one entrant, or no time left for a round)."""
    return bool(_race_document(run_dir / RACE_FILE)["rounds"])


def _race_document(path: Path) -> dict[str, Any]:
    """``race.json``, checked (a file of the run's folder: untrusted)."""
    try:
        document = json.loads(path.read_text())
        checked = {
            "winner": int(document["winner"]),
            "winner_hash": str(document["winner_hash"]),
            "rounds": document["rounds"],
        }
        if not isinstance(checked["rounds"], list):
            raise TypeError("rounds is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); remove it to race again") from None
    return checked


def _finished(run_dir: Path, store: RunStore) -> TrialRecord | None:
    path = run_dir / RACE_FILE
    if not path.exists():
        return None
    document = _race_document(path)
    number, key = document["winner"], document["winner_hash"]
    for record in store.trials():
        if record.number == number and record.genome_hash == key:
            return record
    raise ConfigError(f"{path}: its winner (trial {number}) is not in {run_dir}; remove it")
