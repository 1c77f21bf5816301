"""Pre-screening offspring on the free objectives: keep the children that fill the front's gaps.

Training is the whole cost of a search, yet some objectives cost nothing: a genome's
parameters and FLOPs follow from the genome alone (the space's ``cost``). With
``[search] prescreen = K``, NSGA-II makes ``K x population`` children by its usual
tournament, crossover and mutation, and this module keeps the ``population`` of them to
train, chosen on those free objectives only: those that land where the current front has
no members.

The rule. Every free objective is measured on the hypervolume's own scale (1 at the
metric's ideal, 0 at the experiment's reference point, log scale for parameters and FLOPs:
:func:`nas.core.objectives.normalise`), so "a gap" means the same thing as in the hypervolume the
search is judged by. On each free axis, the *occupied* values are the non-dominated
members of the current population (on all objectives) plus the two ends of the box, 0 and
1 (so a child beyond the front's extremes is valued by the stretch it opens up to the end
of the box, not without bound as NSGA-II's crowding values the extremes). A candidate's score on an axis is its distance to the nearest occupied value, i.e. how
much of the empty stretch around it it would fill (half the gap when it lies in the
middle, nothing when an existing member already has its size); its score is the sum over
the free axes, as NSGA-II's crowding distance sums its per-objective distances (Deb et
al. 2002). Candidates are then taken greedily: the best score first, whose values then
count as occupied, and again, so two candidates in one gap split it rather than both being
taken for it (farthest-point insertion, Gonzalez 1985). A candidate past the reference on
a free axis (it would earn no hypervolume, e.g. larger than ``max_params``, which fails
anyway) is taken only after every candidate inside the box. Exact ties are broken by one
uniform draw per candidate from the experiment's generator.

Where it comes from. Making more offspring than can be evaluated and evaluating only
those a cheap criterion favours is the pre-selection of surrogate-assisted evolutionary
algorithms; here the criterion is not a learnt model but objectives known exactly, so it
predicts nothing about accuracy and cannot mislead the search about it: a child's
accuracy is still only known by training it, and the population's selection
(non-dominated sorting and crowding on every objective) is unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = ["select"]


def select(
    candidates: np.ndarray, front: np.ndarray, count: int, rng: np.random.Generator
) -> list[int]:
    """Indices of the ``count`` candidates to keep, best first, by the module's rule.

    ``candidates`` is ``(n, d)`` and ``front`` ``(m, d)``: the free objectives of the
    children and of the front's members, on the hypervolume's scale (1 ideal, 0 reference;
    NaN when unknown, which counts as past the reference). Draws ``n`` numbers from
    ``rng``, whatever the values, so the generator advances the same way every time.
    """
    candidates = np.asarray(candidates, dtype=float)
    n, axes = candidates.shape
    tiebreak = rng.random(n)
    inside = np.all((candidates >= 0.0) & (candidates <= 1.0), axis=1)
    front = np.asarray(front, dtype=float).reshape(-1, axes)
    occupied = []
    for j in range(axes):
        values = front[:, j]
        values = values[(values >= 0.0) & (values <= 1.0)]
        occupied.append(np.unique(np.concatenate([[0.0, 1.0], values])))
    free = np.ones(n, dtype=bool)
    chosen: list[int] = []
    for _ in range(min(count, n)):
        score = np.zeros(n)
        for j in range(axes):
            score += _distance_to_nearest(candidates[:, j], occupied[j])
        # the best inside the box first, then the best score, then the random draw
        order = np.lexsort((tiebreak, np.where(inside, score, -np.inf), inside))
        best = int(next(i for i in order[::-1] if free[i]))
        chosen.append(best)
        free[best] = False
        if inside[best]:
            for j in range(axes):
                occupied[j] = np.unique(np.append(occupied[j], candidates[best, j]))
    return chosen


def _distance_to_nearest(values: np.ndarray, occupied: np.ndarray) -> np.ndarray:
    """Distance of each value in [0, 1] to the nearest of the sorted ``occupied`` values
    (which hold 0 and 1); values outside [0, 1] get a meaningless number."""
    clipped = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    upper = np.searchsorted(occupied, clipped, side="left").clip(0, len(occupied) - 1)
    lower = (upper - 1).clip(0, len(occupied) - 1)
    return np.minimum(np.abs(clipped - occupied[lower]), np.abs(occupied[upper] - clipped))
