"""NSGA-II's own keys of ``[search]`` (:class:`Nsga2Settings`) and their checks against
the rest of an experiment (:func:`check_experiment`).

Only NSGA-II reads them (:func:`nas.strategies.nsga2.from_settings`); the config keeps
them as given (``SearchConfig.options``) and :mod:`nas.engine.experiment` builds this class
from them, so a new NSGA-II knob is a field here and its use in :mod:`nas.strategies.nsga2`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.config import Experiment
from nas.core.objectives import FREE_METRICS
from nas.core.space import load_space
from nas.strategies.base import PRESCREEN_RULES

__all__ = ["MAX_PRESCREEN", "SELECT_RULES", "Nsga2Settings", "check_experiment"]

MAX_PRESCREEN = 64
"""The most children ``[search] prescreen`` may generate per child trained."""

SELECT_RULES: tuple[str, ...] = ("score", "score+flops")
"""What NSGA-II's survival selection and tournaments read as the first objective
(``[search] select_by``)."""


@dataclass(frozen=True, kw_only=True)
class Nsga2Settings:
    """NSGA-II's own keys of ``[search]``, with their defaults; other strategies ignore them.

    ``crossover_prob`` and ``mutation_prob``: the chances that a pair of parents is
    crossed and that a child is mutated (by the space's own operators).

    ``prescreen`` K (1 = off) makes each generation K x ``population`` children and
    trains the ``population`` of them that best fill the gaps of the front along the
    objectives known before training (``params``, ``flops``; :mod:`nas.strategies.prescreen`);
    with ``prescreen_by = "surrogate"`` it keeps those NSGA-II would select on the trained
    objectives predicted by a ridge model of the run's own trials and the free ones
    (:mod:`nas.strategies.surrogate`).

    ``low_fidelity_images`` N (0 = off; needs ``[budget] train_images`` above N) turns on
    multi-fidelity (successive halving, :mod:`nas.strategies.multifidelity`): every child
    of a generation first trains N images; the best ``promote_fraction`` of them (not near
    chance) continue from those weights to ``train_images`` images in all, and only they
    compete for survival and for the front. Each rung counts as one evaluation for
    ``max_evaluations``.

    ``select_by = "score+flops"`` makes survival selection and the parents' tournaments
    read, in place of the first objective, each candidate's mean rank by it and by its
    FLOPs among the candidates compared (more compute ranking higher; failed ones and
    those at chance last): the rule ``[final] choose_by = "score+flops"`` chooses the
    winner by, so that the population breeds what the winner is chosen from. The values
    stored, the front and the hypervolume stay the objectives themselves.
    """

    crossover_prob: float = 0.5
    mutation_prob: float = 0.8
    prescreen: int = 1
    prescreen_by: str = "size"
    low_fidelity_images: int = 0
    promote_fraction: float = 0.5
    select_by: str = "score"

    def __post_init__(self) -> None:
        if self.select_by not in SELECT_RULES:
            raise ValueError(
                f"select_by must be {' or '.join(map(repr, SELECT_RULES))}, got {self.select_by!r}"
            )
        for name in ("crossover_prob", "mutation_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 1 <= self.prescreen <= MAX_PRESCREEN:
            raise ValueError(
                f"prescreen must be in 1..{MAX_PRESCREEN} (children generated per child "
                f"trained; 1 = off), got {self.prescreen}"
            )
        if self.prescreen_by not in PRESCREEN_RULES:
            raise ValueError(
                f"prescreen_by must be one of {', '.join(map(repr, PRESCREEN_RULES))}, "
                f"got {self.prescreen_by!r}"
            )
        if self.prescreen_by == "surrogate" and self.prescreen == 1:
            raise ValueError(
                "prescreen_by = 'surrogate' chooses among prescreen x population children, "
                "and prescreen is 1; set prescreen = 4 (for example)"
            )
        if self.low_fidelity_images < 0:
            raise ValueError(
                "low_fidelity_images must be >= 0 (images per candidate before promotion; "
                f"0 = off), got {self.low_fidelity_images}"
            )
        if not 0.0 < self.promote_fraction <= 1.0:
            raise ValueError(
                "promote_fraction must be in (0, 1] (the share of each generation trained "
                f"to the full budget), got {self.promote_fraction}"
            )


def check_experiment(settings: Nsga2Settings, experiment: Experiment) -> None:
    """Raise ``ValueError`` with one sentence when NSGA-II's settings do not fit the rest of
    ``experiment``: multi-fidelity needs an image budget above its rung 0 and one task;
    pre-screening by size needs an objective known before training and a space that
    counts a genome's cost. They are checked whatever the strategy, so an experiment that
    sets them stays valid under every strategy (``nas compare``)."""
    images = settings.low_fidelity_images
    if images:
        where = f"[search] low_fidelity_images = {images}"
        train_images = experiment.budget.train_images
        if train_images <= 0:
            raise ValueError(
                f"{where} needs an image budget per candidate to promote to: set [budget] "
                f"train_images above {images}, or low_fidelity_images = 0"
            )
        if images >= train_images:
            raise ValueError(
                f"{where} must be below [budget] train_images ({train_images}), which "
                "promoted candidates reach in all; lower it, or set low_fidelity_images = 0"
            )
        if experiment.multitask:
            raise ValueError(
                "[search] low_fidelity_images is not available for multi-task experiments yet"
            )
    counter = "cost_multitask" if experiment.multitask else "cost"
    counts_cost = callable(getattr(load_space(experiment.space), counter, None))
    if settings.select_by == "score+flops" and not counts_cost:
        raise ValueError(
            f"[search] select_by = 'score+flops' ranks candidates by their FLOPs, which "
            f"space {experiment.space!r} does not count ({counter}); set select_by = "
            "'score'"
        )
    if settings.prescreen == 1 or settings.prescreen_by == "surrogate":
        return  # the surrogate learns from the genomes themselves
    where = f"[search] prescreen = {settings.prescreen}"
    objectives = experiment.objectives
    if not any(name in FREE_METRICS for name in objectives):
        raise ValueError(
            f"{where} screens children on the objectives known before training "
            f"({' and '.join(FREE_METRICS)}), and objectives {list(objectives)} has neither; "
            "add 'params' or 'flops' to objectives, or set prescreen = 1"
        )
    if not counts_cost:
        raise ValueError(
            f"{where} needs the space to count a genome's cost before training ({counter}()), "
            f"which space {experiment.space!r} does not; set prescreen = 1"
        )
