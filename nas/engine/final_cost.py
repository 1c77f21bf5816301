"""What a candidate's final training will cost, and which candidates the time allows.

The choice rules (``[final] choose_by``) predict a net's accuracy after 10 epochs of the
final training: that is the truth the fidelity panel measured them on (docs/fidelity.md).
A final training bounded by time (``[final] minutes`` or ``total_minutes``) trains a
costly net for fewer epochs: issue 20's seed-1 run chose a 136-MFLOP net by score and
FLOPs and had time for one epoch of it (0.6428), where `vgg` alone got nine (0.7200).
So, with a time bound, a candidate is chosen only if ``[final] min_epochs`` of its epochs
are estimated to fit the time the final training will get; when none fits, the cheapest.

A final epoch's seconds are estimated from the candidate's own brief training, measured
on this machine during the search: its seconds per image, times the training faces,
times the search worker's threads over the final training's (all of this machine's
cores), times :data:`FINAL_EPOCH_FACTOR` for what the final epoch adds (flips, shifts and
zooms; one validation over the whole split).

That per-image time includes the brief training's model building, FLOP count and
validation, which weigh most for the smallest nets: there the estimate was 1.2-2.7 times
a measured final epoch (issue 20's tenth and eleventh sessions). Each trial also records
``fit_seconds``, its training steps alone, so that a later estimate can be fitted on
those once final epochs have been measured against them.

With ``[final] breed_affordable``, the same estimate keeps the search itself to nets the
final training can afford: :func:`breeding_rule` tells the strategy a candidate without
time for ``min_epochs`` final epochs as failed, so that NSGA-II breeds from affordable
nets (issue 20's twelfth session; its trial keeps its measured scores).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from nas.storage.records import TrialRecord

if TYPE_CHECKING:
    from nas.core.config import Experiment

__all__ = [
    "FINAL_EPOCH_FACTOR",
    "affordable",
    "breeding_rule",
    "epoch_cost",
    "epoch_seconds",
]

FINAL_EPOCH_FACTOR = 1.5
"""A final epoch's seconds over the brief training's per image, at equal threads. Measured
on a 2-core AVX2 machine (two search workers of one thread, the final on two): trial 23
of issue 20's seed-1 run, 103 s for 6,000 images, first final epoch 282 s (factor 1.67);
trial 7, 113 s, final epochs 230 s (1.24)."""


def epoch_seconds(
    record: TrialRecord, *, train_faces: int, search_threads: int, final_threads: int = 0
) -> float:
    """A final epoch's estimated seconds over ``train_faces`` for ``record``'s net, from
    its brief training's seconds per image with ``search_threads`` threads, trained with
    ``final_threads`` (0: every core). Infinite when the record has no timing."""
    if record.seconds <= 0 or record.images_seen <= 0:
        return float("inf")
    final = final_threads or os.cpu_count() or 1
    per_image = record.seconds / record.images_seen
    return FINAL_EPOCH_FACTOR * per_image * train_faces * max(1, search_threads) / final


def affordable(
    candidates: list[TrialRecord],
    costs: dict[int, float],
    *,
    final_seconds: float,
    min_epochs: int,
) -> tuple[list[TrialRecord], bool]:
    """``candidates`` (best first) whose ``min_epochs`` final epochs, at ``costs`` seconds
    each (:func:`epoch_seconds` by trial number), fit ``final_seconds``, in their order, and
    True; when none fits, the cheapest alone, and False."""
    if not candidates or min_epochs <= 0:
        return list(candidates), True
    fits = [r for r in candidates if min_epochs * costs[r.number] <= final_seconds]
    if fits:
        return fits, True
    return [min(candidates, key=lambda r: costs[r.number])], False


def epoch_cost(experiment: Experiment) -> Callable[[TrialRecord], float]:
    """:func:`epoch_seconds` for ``experiment``'s trials: over its whole training split
    (the final training's), from the brief training's threads per search worker."""
    from nas.engine.parallel import default_threads
    from nas.engine.task_data import load_task_data

    data = load_task_data(experiment, full=True).eval_data
    faces = len(data.train_targets)  # type: ignore[union-attr]
    search = experiment.search
    threads = search.threads_per_worker or default_threads(search.workers)

    def cost(record: TrialRecord) -> float:
        return epoch_seconds(record, train_faces=faces, search_threads=threads)

    return cost


def breeding_rule(experiment: Experiment) -> Callable[[TrialRecord], float | None] | None:
    """With ``[final] breed_affordable``: a rule that gives a trained candidate's estimated
    final epoch seconds when ``[final] min_epochs`` of them do not fit the time the final
    training is sure to get (:attr:`~nas.core.config.FinalConfig.known_seconds`), None when
    they do (or when it failed: it is failed already). None without the key."""
    final = experiment.final
    if not final.breed_affordable:
        return None
    cost = epoch_cost(experiment)
    budget = final.known_seconds

    def too_costly(record: TrialRecord) -> float | None:
        if not record.ok:
            return None
        seconds = cost(record)
        return seconds if final.min_epochs * seconds > budget else None

    return too_costly
