"""Multi-fidelity inside NSGA-II: successive halving with two rungs per generation.

As in MO-ASHA (Schmucker et al. 2021, "Multi-objective asynchronous successive
halving"), cheap low-fidelity evaluations weed out
the weak candidates and only the promising ones get the whole budget; here the halving
is synchronous, one generation at a time (``[search] low_fidelity_images`` N,
``[search] promote_fraction`` f):

* **rung 0**: every genome of the generation trains N images;
* **promotion**: the best ``ceil(f x batch)`` of the batch by non-dominated rank, then
  crowding distance on their rung-0 values (DEAP's ``selNSGA2``, as NSGA-II's survivor
  selection) go on, except those :func:`promotable_rule` refuses: a failed candidate, and
  one whose first objective is still within :data:`CHANCE_MARGIN` of chance;
* **rung 1**: each promoted genome continues from its own rung-0 weights for the rest
  of the budget, so it has seen the budget's ``train_images`` in all, as without
  multi-fidelity, and is scored again.

Only equal fidelities compete: a net scored after fewer images looks worse than it is,
so NSGA-II's survivors are chosen on rung-1 values only, and a child that was not
promoted leaves the search (its trial stays in the store, marked low-fidelity, off the
front). No TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from deap import base, tools

from nas.core.objectives import at_chance, worst_values
from nas.strategies.base import Promotable

__all__ = ["promotable_rule", "promote", "promoted_count"]


def promotable_rule(objectives: Sequence[str], chance: Mapping[str, float]) -> Promotable:
    """Whether a candidate with these rung-0 values may be promoted.

    Refused: a failed candidate (every objective at its worst value,
    :func:`nas.core.objectives.worst_values`), and one whose first objective is at chance
    (:func:`nas.core.objectives.at_chance`, the same rule that keeps such a candidate off the
    front): it has learnt nothing yet that more images would be sure to build on. A
    metric without a chance figure (e.g. RMSE) skips the second rule.
    """
    worst = worst_values(objectives)
    first = objectives[0]

    def promotable(values: Sequence[float]) -> bool:
        values = tuple(float(v) for v in values)
        return values != worst and not at_chance(first, values[0], chance)

    return promotable


def promoted_count(fraction: float, batch: int) -> int:
    """``ceil(fraction x batch)``, the most candidates a batch promotes (0.3 x 10 is 3,
    not the 4 that floating point's 3.0000000000000004 would round up to)."""
    return math.ceil(round(fraction * batch, 9))


class _Candidate:
    """What DEAP's selection functions expect: an object with a ``fitness``."""

    __slots__ = ("fitness", "index")

    def __init__(self, index: int, fitness: base.Fitness) -> None:
        self.index = index
        self.fitness = fitness


def promote(
    values: Sequence[Sequence[float]],
    weights: Sequence[float],
    fraction: float,
    promotable: Promotable | None = None,
) -> list[int]:
    """The indices (ascending) of the candidates to promote out of a batch with ``values``.

    ``ceil(fraction x len(values))`` of them at most, chosen by :func:`deap.tools.selNSGA2`
    (non-dominated rank, then crowding distance) among those ``promotable`` allows (all
    when None). ``weights``: +1.0 per objective to maximise, -1.0 per one to minimise.
    Deterministic: no random choice.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"promote_fraction must be in (0, 1], got {fraction}")
    fitness_class = type("Fitness", (base.Fitness,), {"weights": tuple(weights)})
    candidates = []
    for index, row in enumerate(values):
        if promotable is not None and not promotable(row):
            continue
        fitness = fitness_class()
        fitness.values = tuple(float(v) for v in row)
        candidates.append(_Candidate(index, fitness))
    count = min(promoted_count(fraction, len(values)), len(candidates))
    if count == 0:
        return []
    return sorted(c.index for c in tools.selNSGA2(candidates, count))
