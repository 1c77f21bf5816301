"""The search loop: ask, evaluate, record, tell, checkpoint, one batch at a time, until
the stop rule says why to stop; and the requests of a batch (warm starts, rungs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nas.core.errors import StorageError
from nas.core.faults import failpoint
from nas.core.objectives import objective_values, worst_values
from nas.core.space import genome_hash
from nas.core.stopping import Progress, SearchClock, stop_rule
from nas.engine.run import OpenRun, PlannedEvaluation
from nas.storage.checkpoint import (
    load_checkpoint,
    save_checkpoint,
)
from nas.storage.records import TrialRecord
from nas.strategies import Strategy
from nas.strategies.base import Proposal

__all__ = ["Outcome", "SearchListener", "evolve"]


class SearchListener(Protocol):
    """Receives progress events (the CLI draws them; tests may record them)."""

    def resumed(self, generation: int, restored: int) -> None: ...

    def generation_started(self, generation: int, generations: int, to_train: int) -> None: ...

    def evaluated(self, record: TrialRecord) -> None: ...


@dataclass
class Outcome:
    """What one session of the loop did, and why it stopped."""

    evaluations: int = 0
    failures: int = 0
    reused: int = 0
    restored: int = 0
    stopped: str | None = None
    seconds: float = 0.0


def _pass_note(strategy: Strategy, listener: SearchListener | None) -> None:
    """Hand the listener a strategy's line about itself (NSGA-II's surrogate), if any."""
    _note(listener, strategy.note())


def _note(listener: SearchListener | None, text: str) -> None:
    noted = getattr(listener, "noted", None)
    if text and callable(noted):
        noted(text)


def evolve(
    run: OpenRun,
    strategy: Strategy,
    listener: SearchListener | None,
    labels: dict[str, str],
    too_costly: Callable[[TrialRecord], float | None] | None = None,
) -> Outcome:
    """Ask, evaluate, record, tell, checkpoint, until the stop rule says why to stop.

    ``too_costly`` (:func:`nas.engine.final_cost.breeding_rule`) gives a trained
    candidate's final epoch seconds when the final training cannot afford it: the strategy
    is then told it failed (the store keeps its measured values)."""
    run_dir = run.store.run_dir
    checkpoint = load_checkpoint(run_dir)
    if checkpoint is not None:
        try:
            strategy.restore(checkpoint.strategy)
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{run_dir}/checkpoint.json does not fit this run ({exc})") from None
    clock = SearchClock(checkpoint.seconds if checkpoint is not None else 0.0)
    search = run.experiment.search
    minutes = run.experiment.search_minutes  # max_minutes, or the share of total_minutes
    rule = stop_rule(max_evaluations=search.max_evaluations, max_minutes=minutes)
    deadline = {}
    if minutes:  # the evaluator cancels what runs when the clock runs out
        deadline["deadline"] = time.monotonic() + 60.0 * minutes - clock.seconds()
    known = run.store.known_values()
    outcome = Outcome(restored=len(known))
    worst = worst_values(run.experiment.objectives)
    if too_costly is not None:  # a resumed search breeds as the uninterrupted one did
        for trial in run.store.trials():
            if too_costly(trial) is not None:
                known[(trial.genome_hash, trial.rung)] = worst
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
        proposals = strategy.propose()
        save()
        failpoint("generation:asked")
        pending: dict[str, Proposal] = {}
        for proposal in proposals:
            key = genome_hash(run.space, proposal.genome)
            if (key, proposal.rung) in known or key in pending:
                outcome.reused += 1
            else:
                pending[key] = proposal
        planned = _plan(run, pending)
        requests = [plan.request for plan in planned.values()]
        left = rule.evaluations_left(progress())
        if left is not None:
            requests = requests[:left]
        if listener:
            # "generations = 1000" beside a count or a clock only means "until that one"
            bounded = search.max_evaluations or minutes
            shown = 0 if bounded and search.generations >= 1000 else search.generations
            listener.generation_started(generation, shown, len(requests))
        results = run.evaluator.map(requests, **deadline)
        try:
            for result in results:
                proposal = pending[result.genome_hash]
                record = run.record(
                    proposal.genome,
                    result,
                    generation,
                    labels.get(result.genome_hash),
                    parameters=proposal.parameters,
                    search_seconds=clock.seconds(),
                    fidelity=planned[result.genome_hash].fidelity(result),
                    parents=proposal.parents,
                )
                values = objective_values(run.experiment.objectives, result.metrics)
                seconds = too_costly(record) if too_costly is not None else None
                if seconds is not None:
                    values = worst
                known[(result.genome_hash, proposal.rung)] = values
                outcome.evaluations += 1
                outcome.failures += not result.ok
                if listener:
                    listener.evaluated(record)
                if seconds is not None:
                    _note(
                        listener,
                        f"trial {record.number}: a final epoch estimated at {seconds:.0f} s, "
                        f"too long for {run.experiment.final.min_epochs} in "
                        f"{run.experiment.final.known_seconds / 60:.1f} minutes: not bred from",
                    )
                failpoint("evaluation:recorded")
        finally:
            results.close()  # cancels what still runs when the budget cut the batch short
        if any((key, p.rung) not in known for key, p in pending.items()):  # a budget ran out
            stopped = rule.reason(progress()) or "max_minutes"
            break
        strategy.tell([known[(genome_hash(run.space, p.genome), p.rung)] for p in proposals])
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


def _plan(run: OpenRun, pending: dict[str, Proposal]) -> dict[str, PlannedEvaluation]:
    """The requests for the proposals of a batch still to train, by genome hash.

    A proposal that ``continues`` a rung goes on from its own weights of that rung
    (:meth:`OpenRun.continuation`); otherwise a genome inherits from its parents' stored
    weights when ``[search] inherit_weights`` is on, the best-trained of each parent
    (a promoted parent's full-fidelity weights, not its rung-0 ones).
    """
    inherit = run.experiment.search.inherit_weights
    continuing = any(p.continues is not None for p in pending.values())
    trials = run.store.trials() if inherit or continuing else []
    # per genome, the trial with weights and the highest rung wins (later ones on a tie)
    ranked = sorted(trials, key=lambda t: (t.weights is not None, -1 if t.rung is None else t.rung))
    records = {t.genome_hash: t for t in ranked}
    by_rung = {(t.genome_hash, t.rung): t for t in trials}
    planned = {}
    for key, proposal in pending.items():
        if proposal.continues is not None:
            own = by_rung.get((key, proposal.continues))
            planned[key] = run.continuation(proposal.genome, key, own, rung=proposal.rung)
        else:
            parents = run.parents(proposal.parents, records) if inherit else ()
            request = run.request(proposal.genome, key, parents=parents, images=proposal.images)
            planned[key] = PlannedEvaluation(request, rung=proposal.rung)
    return planned
