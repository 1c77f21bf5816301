"""The Pareto front of a run's stored trials: its members, the trials kept off it (low
fidelity, at chance) and its hypervolume (whose maths is :mod:`nas.core.objectives`'). The
plot is :mod:`nas.analysis.plots`'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import moocore
import numpy as np

from nas.core.objectives import METRICS, at_chance, hypervolume
from nas.storage.records import TrialRecord

__all__ = ["Front", "compute_front"]


@dataclass(frozen=True)
class Front:
    """The non-dominated completed trials, best first by the first objective.

    ``evaluated``: the completed full-fidelity trials, one per genome (the front and the
    hypervolume come from them). ``low_fidelity``: with multi-fidelity, the completed
    low-fidelity (rung-0) trials of genomes that were never promoted: evaluated, but not
    comparable with full-fidelity values, so never on the front. ``at_chance``: completed
    trials whose first objective is within :data:`nas.core.objectives.CHANCE_MARGIN` of chance
    (they learnt nothing): never on the front nor in the hypervolume, nor in ``evaluated``.
    """

    objectives: tuple[str, ...]
    members: list[TrialRecord]
    evaluated: list[TrialRecord]
    hypervolume: float
    reference: dict[str, float]
    low_fidelity: list[TrialRecord] = field(default_factory=list)
    at_chance: list[TrialRecord] = field(default_factory=list)


def _to_minimise(points: np.ndarray, objectives: Sequence[str]) -> np.ndarray:
    signs = np.array([-METRICS[name].weight for name in objectives])
    return points * signs


def compute_front(
    records: Sequence[TrialRecord],
    objectives: Sequence[str],
    reference: Mapping[str, float] | None = None,
    chance: Mapping[str, float] | None = None,
) -> Front:
    """The Pareto front of the completed trials (one per genome) and its hypervolume.

    ``reference`` is the run's fixed reference point (``RunInfo.reference``); without it,
    each metric's default reference is used. Only full-fidelity trials count: a
    low-fidelity trial (multi-fidelity's rung 0) is never on the front nor in the
    hypervolume; those of genomes never promoted are listed in ``Front.low_fidelity``.
    ``chance`` (``RunInfo.chance``) sets trials at chance apart (``Front.at_chance``),
    unless every completed trial is at chance: then no candidate learnt anything, and the
    front is theirs (so a run that learnt nothing can still be inspected and exported).
    """
    objectives = tuple(objectives)
    reference = dict(reference or {name: METRICS[name].reference for name in objectives})
    unique: dict[str, TrialRecord] = {}
    low: dict[str, TrialRecord] = {}
    for record in records:
        if record.ok and record.values is not None:
            (low if record.low_fidelity else unique).setdefault(record.genome_hash, record)
    useless = [r for r in unique.values() if at_chance(objectives[0], r.values[0], chance or {})]
    if len(useless) == len(unique):  # nothing learnt: the front of them all, nothing apart
        useless = []
    evaluated = [r for r in unique.values() if r not in useless]
    low_fidelity = [r for key, r in low.items() if key not in unique]
    if not evaluated:
        return Front(objectives, [], [], 0.0, reference, low_fidelity, useless)
    points = np.array([r.values for r in evaluated], dtype=float)
    mask = moocore.is_nondominated(_to_minimise(points, objectives))
    members = [r for r, keep in zip(evaluated, mask, strict=True) if keep]
    first = METRICS[objectives[0]]
    members.sort(key=lambda r: -first.weight * r.values[0])
    return Front(
        objectives,
        members,
        evaluated,
        hypervolume(points, objectives, reference),
        reference,
        low_fidelity,
        useless,
    )
