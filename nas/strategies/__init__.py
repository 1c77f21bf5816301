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

Each strategy reads its own ``[search]`` keys: its entry's ``settings`` dataclass declares
them (NSGA-II's: :class:`nas.strategies.nsga2.Nsga2Settings`), :func:`strategy_options`
builds it from the experiment, and the strategy finds it in ``StrategySettings.options``.
A new knob is one field in the strategy's own module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from nas.core.config_table import parse_section
from nas.core.errors import ConfigError
from nas.core.plugins import import_plugin
from nas.strategies import nsga2
from nas.strategies.base import (
    PRESCREEN_RULES,
    Strategy,
    StrategyEntry,
    StrategySettings,
    TrialParameters,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "PRESCREEN_RULES",
    "STRATEGIES",
    "Strategy",
    "StrategyEntry",
    "StrategySettings",
    "TrialParameters",
    "make_strategy",
    "setting_names",
    "strategy_entry",
    "strategy_options",
]


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
    "nsga2": nsga2.STRATEGY,
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


def setting_names(entry: StrategyEntry) -> tuple[str, ...]:
    """The ``[search]`` keys a strategy declares as its own (its ``settings``' fields)."""
    return tuple(f.name for f in dataclasses.fields(entry.settings)) if entry.settings else ()


def strategy_options(name: str, options: Mapping[str, Any], where: str = "[search]") -> Any:
    """The settings object of strategy ``name`` (its entry's ``settings`` dataclass) from
    the keys of ``options`` it declares, its defaults for the others; keys it does not
    declare are left out (another strategy's). None for a strategy without settings.

    A bad value is one :class:`ConfigError` starting with ``where``."""
    entry = strategy_entry(name)
    if entry.settings is None:
        return None
    own = {key: options[key] for key in setting_names(entry) if key in options}
    return parse_section(entry.settings, own, where)
