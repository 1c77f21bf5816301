"""Search strategies behind one protocol (:class:`~nas.strategies.base.Strategy`).

An experiment picks one by name (``[search] strategy = "..."``); the driver, the config
and the command line only ever see this registry:

- ``nsga2``: NSGA-II with the space's own crossover and mutation (the default);
- ``random``: the space's own sampler, the baseline any search must beat;
- ``optuna-nsga2``, ``optuna-tpe``: Optuna's samplers driving the same genomes through the
  space's ``suggest(trial)`` mapping;
- any importable module's dotted name (``strategy = "my_pkg.my_strategy"``) whose
  ``STRATEGY`` is a :class:`StrategyEntry`: a new strategy is one module, as a new space
  is, and :mod:`nas.testing.strategy_conformance` checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nas.core.errors import ConfigError
from nas.core.plugins import import_plugin
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
    "strategy_entry",
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


def strategy_entry(name: str) -> StrategyEntry:
    """The strategy registered as ``name``, or the ``STRATEGY`` of the module a dotted
    ``name`` imports; a bad name raises :class:`ConfigError` with one line."""
    entry = STRATEGIES.get(name)
    if entry is not None:
        return entry
    known = f"known: {', '.join(STRATEGIES)}; or an importable module that defines STRATEGY"
    if "." not in name:
        raise ConfigError(f"unknown strategy {name!r} ({known})")
    try:
        module = import_plugin(name)
    except ConfigError as exc:
        raise ConfigError(f"unknown strategy {name!r}: {exc} ({known})") from None
    entry = getattr(module, "STRATEGY", None)
    if not isinstance(entry, StrategyEntry):
        raise ConfigError(
            f"module {name!r} has no STRATEGY that is a nas.strategies.StrategyEntry "
            "(build, summary): define one to use it as a strategy"
        )
    return entry


def make_strategy(name: str, settings: StrategySettings) -> Strategy:
    """Build the strategy ``name`` names (:func:`strategy_entry`); a bad name raises
    :class:`ConfigError`."""
    return strategy_entry(name).build(settings)
