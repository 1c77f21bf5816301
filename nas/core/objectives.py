"""The metrics a search can optimise, with their natural direction and worst value.

Directions belong to the metric, not to the experiment: nobody maximises parameters.
An experiment names the metrics to trade off, e.g. ``objectives = ["accuracy", "params"]``.
A failed candidate gets the worst value of every objective (never NaN, which would
break dominance), so it can only survive selection behind every working one.

``params`` and ``flops`` are *free*: a space with a ``cost`` method knows them from the
genome alone, before any training (:func:`free_objectives`). The *deployed* metrics
(:data:`DEPLOYED_METRICS`: ``accuracy_int8``, ``rmse_int8``, ``latency_litert_ms``) are
measured on the candidate converted to a full-integer int8 LiteRT file, the artifact a
phone or a board runs, which costs a conversion per candidate; they are measured only when
an objective names one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import moocore
import numpy as np

if TYPE_CHECKING:
    from nas.core.space import SearchSpace
    from nas.core.task import Task

__all__ = [
    "CHANCE_MARGIN",
    "COST_METRICS",
    "DEPLOYED_METRICS",
    "FREE_METRICS",
    "INT8_METRICS",
    "METRICS",
    "Metric",
    "at_chance",
    "free_objectives",
    "genome_flops",
    "hypervolume",
    "normalise",
    "objective_values",
    "worst_values",
]


@dataclass(frozen=True)
class Metric:
    """A measurable property of a trained candidate."""

    name: str
    direction: Literal["maximize", "minimize"]
    worst: float
    description: str
    reference: float
    """Default hypervolume reference: the value that earns no share of the hypervolume."""
    ideal: float
    """The value that earns the whole share (the hypervolume's other corner)."""
    log_scale: bool = False
    """Normalised on a log scale (costs that span orders of magnitude)."""

    @property
    def weight(self) -> float:
        """DEAP fitness weight: +1 to maximise, -1 to minimise."""
        return 1.0 if self.direction == "maximize" else -1.0


METRICS: Mapping[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "maximize", 0.0, "validation accuracy", 0.0, 1.0),
        Metric("macro_f1", "maximize", 0.0, "validation macro-averaged F1", 0.0, 1.0),
        Metric(
            "accuracy_curve",
            "maximize",
            0.0,
            "validation accuracy where the brief training's learning curve is heading "
            "([budget] curve_images)",
            0.0,
            1.0,
        ),
        Metric(
            "rmse",
            "minimize",
            1e6,
            "validation root mean squared error (keypoints: pixels, over the points present)",
            24.0,
            0.0,
        ),
        Metric("params", "minimize", 1e12, "number of parameters", 5e6, 1e3, log_scale=True),
        Metric(
            "flops",
            "minimize",
            1e15,
            "floating-point operations per image",
            1e10,
            1e5,
            log_scale=True,
        ),
        Metric(
            "latency_ms", "minimize", 1e6, "median single-image inference time (ms)", 100.0, 0.0
        ),
        Metric(
            "accuracy_int8",
            "maximize",
            0.0,
            "validation accuracy of the full-integer int8 LiteRT model",
            0.0,
            1.0,
        ),
        Metric(
            "rmse_int8",
            "minimize",
            1e6,
            "validation RMSE of the full-integer int8 LiteRT model (keypoints: pixels)",
            24.0,
            0.0,
        ),
        Metric(
            "latency_litert_ms",
            "minimize",
            1e6,
            "median single-image time of the int8 LiteRT model in the LiteRT interpreter, "
            "one thread (ms)",
            10.0,
            0.0,
        ),
    )
}


COST_METRICS: frozenset[str] = frozenset({"params", "flops", "latency_ms", "latency_litert_ms"})
"""The metrics of a model's cost, which apply to every task; each output kind names its
quality metrics (:attr:`nas.kinds.base.OutputKind.metrics`)."""

INT8_METRICS: Mapping[str, str] = {"accuracy_int8": "accuracy", "rmse_int8": "rmse"}
"""A quality metric of the int8 LiteRT model -> the same metric of the float model: it
applies to the tasks whose output kind scores the latter."""

DEPLOYED_METRICS: frozenset[str] = frozenset({*INT8_METRICS, "latency_litert_ms"})
"""The metrics measured on the candidate's int8 LiteRT conversion."""

_CHANCE_OF: Mapping[str, str] = {"accuracy_curve": "accuracy", **INT8_METRICS}
"""Metrics with the chance level of another: a prediction of accuracy, the int8 model's."""


def objective_values(
    objectives: Sequence[str], metrics: Mapping[str, float] | None
) -> tuple[float, ...]:
    """The objective tuple of a candidate; the worst tuple when ``metrics`` is None (failed)."""
    if metrics is None:
        return worst_values(objectives)
    return tuple(float(metrics[name]) for name in objectives)


def worst_values(objectives: Sequence[str]) -> tuple[float, ...]:
    """The tuple given to a failed candidate."""
    return tuple(METRICS[name].worst for name in objectives)


CHANCE_MARGIN = 0.01
"""A trained candidate whose first objective is within this of what a useless model scores
(``RunInfo.chance``: the majority class's share for accuracy) is *at chance*: it learnt
nothing. It is never a front member, adds nothing to the hypervolume, and plots mark it."""


def at_chance(metric: str, value: float, chance: Mapping[str, float]) -> bool:
    """Whether ``value`` of ``metric`` is within :data:`CHANCE_MARGIN` of ``chance[metric]``
    or worse; False for a metric without a chance level (e.g. RMSE, parameters). The
    prediction ``accuracy_curve`` and the int8 model's ``accuracy_int8`` have accuracy's
    chance level."""
    level = chance.get(metric, chance.get(_CHANCE_OF.get(metric, "")))
    if level is None:
        return False
    # 1e-9: a score exactly CHANCE_MARGIN above chance is within it
    return METRICS[metric].weight * (float(value) - level) <= CHANCE_MARGIN + 1e-9


FREE_METRICS: tuple[str, ...] = ("params", "flops")
"""The metrics a space's ``cost(genome, task)`` gives before training (``ModelCost`` fields)."""


def free_objectives(
    space: SearchSpace,
    objectives: Sequence[str],
    task: Task,
    reference: Mapping[str, float],
    *,
    tasks: Sequence[Task] = (),
    limits: Mapping[str, float] | None = None,
) -> Callable[[Any], tuple[float | None, ...]] | None:
    """The objectives of a genome known before training, as strategies take them.

    The function returned maps a genome to one entry per objective: None for those that
    need training, and for the free ones (:data:`FREE_METRICS`, from ``space.cost``) the
    value on the hypervolume's scale (:func:`normalise` with ``reference``: 1
    at the ideal, 0 at the reference, below 0 past it). A genome that would not build
    gets the worst values, as its evaluation would. None when no objective is free or the
    space has no ``cost``. With ``tasks`` (a multi-task experiment) the costs are those of
    the multi-task model, from ``space.cost_multitask``. A genome whose cost is past one of
    ``limits`` (``{"params": max_params, "flops": max_flops}``; a limit of 0 is none) gets
    the worst values too: its evaluation fails as ``oversized``. No TensorFlow.
    """
    from nas.core.errors import GenomeError

    counter = _cost_counter(space, task, tasks)
    free = [name for name in objectives if name in FREE_METRICS]
    if not free or counter is None:
        return None
    bounds = {name: limit for name, limit in (limits or {}).items() if name in FREE_METRICS}

    def values(genome: Any) -> tuple[float | None, ...]:
        try:
            counted = counter(genome)._asdict()
            raw = [float(counted[name]) for name in free]
            if any(limit and float(counted[name]) > limit for name, limit in bounds.items()):
                raw = list(worst_values(free))
        except (ValueError, GenomeError):
            raw = list(worst_values(free))
        scaled = dict(zip(free, normalise([raw], free, reference)[0].tolist(), strict=True))
        return tuple(scaled.get(name) for name in objectives)

    return values


def genome_flops(
    space: SearchSpace, task: Task, *, tasks: Sequence[Task] = ()
) -> Callable[[Any], float | None] | None:
    """A genome's FLOPs per image from the space's ``cost`` (``cost_multitask`` with
    ``tasks``), None for a genome that would not build; None when the space counts no cost.
    No TensorFlow."""
    from nas.core.errors import GenomeError

    counter = _cost_counter(space, task, tasks)
    if counter is None:
        return None

    def flops(genome: Any) -> float | None:
        try:
            return float(counter(genome).flops)
        except (ValueError, GenomeError):
            return None

    return flops


def _cost_counter(
    space: SearchSpace, task: Task, tasks: Sequence[Task]
) -> Callable[[Any], Any] | None:
    """A genome's ``ModelCost`` from the space's ``cost`` for ``task`` (``cost_multitask``
    for ``tasks``, when given); None when the space counts no cost."""
    cost = getattr(space, "cost_multitask" if tasks else "cost", None)
    if not callable(cost):
        return None
    subject: Any = tuple(tasks) if tasks else task
    return lambda genome: cost(genome, subject)


def normalise(
    points: np.ndarray, objectives: Sequence[str], reference: Mapping[str, float]
) -> np.ndarray:
    """Map each objective to [0, 1]: 0 at its reference (worst), 1 at its ideal (best).

    Linear between reference and ideal, or on a log scale for costs that span orders of
    magnitude (parameters, FLOPs). Values past the ideal count as the ideal; values past
    the reference come out negative.
    """
    points = np.asarray(points, dtype=float).reshape(len(points), len(objectives))
    scaled = np.empty_like(points)
    for j, name in enumerate(objectives):
        metric = METRICS[name]
        ref, ideal, column = float(reference[name]), metric.ideal, points[:, j]
        if metric.log_scale:
            ref, ideal = np.log10(ref), np.log10(ideal)
            column = np.log10(np.maximum(column, 1e-300))
        scaled[:, j] = np.minimum((column - ref) / (ideal - ref), 1.0)
    return scaled


def hypervolume(
    points: np.ndarray, objectives: Sequence[str], reference: Mapping[str, float]
) -> float:
    """Normalised hypervolume in [0, 1] of ``points`` (natural units, one row per candidate).

    Each objective is scaled by :func:`normalise` between the fixed ``reference`` point
    (worst) and the metric's ideal (best); the result is the fraction of that unit box the
    points dominate. The reference belongs to the experiment, not to the points, so two
    runs of one experiment compare, and a huge seeded baseline does not shrink the share
    of the small nets.
    """
    scaled = normalise(points, objectives, reference)
    inside = np.all(scaled > 0, axis=1)
    if not inside.any():
        return 0.0
    return float(moocore.hypervolume(-scaled[inside], ref=np.zeros(len(objectives))))
