"""Search strategies behind one protocol (:class:`~nas.strategies.base.Strategy`).

An experiment picks one by name (``[search] strategy = "..."``); the driver, the config
and the command line only ever see this registry:

- ``nsga2``: NSGA-II with the space's own crossover and mutation (the default);
- ``random``: the space's own sampler, the baseline any search must beat;
- ``optuna-nsga2``, ``optuna-tpe``: Optuna's samplers driving the same genomes through the
  space's ``suggest(trial)`` mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nas.core.errors import ConfigError
from nas.strategies.base import PRESCREEN_RULES, Strategy, StrategySettings, TrialParameters

__all__ = [
    "DEFAULT_STRATEGY",
    "PRESCREEN_RULES",
    "STRATEGIES",
    "Strategy",
    "StrategyEntry",
    "StrategySettings",
    "TrialParameters",
    "make_strategy",
]


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy: how to build it and what it needs of a search space."""

    build: Callable[[StrategySettings], Strategy]
    summary: str
    space_needs: tuple[str, ...] = ()


def _nsga2(settings: StrategySettings) -> Strategy:
    from nas.strategies import nsga2

    return nsga2.from_settings(settings)


def _random(settings: StrategySettings) -> Strategy:
    from nas.strategies import random_search

    return random_search.from_settings(settings)


def _optuna_nsga2(settings: StrategySettings) -> Strategy:
    from nas.strategies import optuna_samplers

    return optuna_samplers.nsga2_from_settings(settings)


def _optuna_tpe(settings: StrategySettings) -> Strategy:
    from nas.strategies import optuna_samplers

    return optuna_samplers.tpe_from_settings(settings)


STRATEGIES: dict[str, StrategyEntry] = {
    "nsga2": StrategyEntry(_nsga2, "NSGA-II with the space's crossover and mutation"),
    "random": StrategyEntry(_random, "the space's own sampler"),
    "optuna-nsga2": StrategyEntry(_optuna_nsga2, "Optuna's NSGAIISampler", ("suggest",)),
    "optuna-tpe": StrategyEntry(_optuna_tpe, "Optuna's multi-objective TPE", ("suggest",)),
}

DEFAULT_STRATEGY = "nsga2"


def make_strategy(name: str, settings: StrategySettings) -> Strategy:
    """Build the strategy registered as ``name``; a bad name raises :class:`ConfigError`."""
    entry = STRATEGIES.get(name)
    if entry is None:
        raise ConfigError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    return entry.build(settings)
