"""Optuna's samplers as strategies (``"optuna-tpe"``, ``"optuna-nsga2"``) over the same genomes.

The space's define-by-run mapping (``space.suggest(trial)``) turns each decision of a
genome into a trial parameter, so Optuna's samplers search exactly the space our own
strategies search, and every trial of the run's study carries its parameters and
distributions as Optuna records them.

The sampler works on a private in-memory study. Its history (parameters, distributions,
system attributes and values of every trial told) is the strategy's state; each batch is
asked of a study rebuilt from that history by a sampler seeded from the strategy's
generator, so a resumed search asks for exactly the genomes an uninterrupted one would.
A failed candidate is told with the worst values, as our NSGA-II does. Baselines are
evaluated in the first batch in addition to a full population of sampled trials; the
sampler learns only from its own trials (a baseline has no parameters).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.core.errors import ConfigError
from nas.core.space import SearchSpace, genome_hash
from nas.strategies.base import BaseStrategy, StrategySettings, TrialParameters, check_told

__all__ = ["OptunaStrategy", "nsga2_from_settings", "tpe_from_settings"]

SamplerFactory = Callable[[int], Any]
"""Makes an Optuna sampler from a seed."""


class OptunaStrategy(BaseStrategy):
    """Batches of ``population_size`` trials asked of an Optuna sampler, mapped to genomes."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        weights: Sequence[float],
        population_size: int,
        generations: int,
        rng: np.random.Generator,
        make_sampler: SamplerFactory,
        initial: Sequence[Any] = (),
    ) -> None:
        if not callable(getattr(space, "suggest", None)):
            raise ConfigError(
                f"space {space.name!r} has no suggest(trial) mapping, so Optuna's samplers "
                "cannot drive it; use strategy 'nsga2' or 'random'"
            )
        self.space = space
        self.directions = ["maximize" if w > 0 else "minimize" for w in weights]
        self.population_size = population_size
        self.generations = generations
        self.rng = rng
        self.generation = 0
        self._make_sampler = make_sampler
        self._initial = list(initial)
        self._history: list[dict[str, Any]] = []
        self._asked: list[dict[str, Any]] | None = None

    @property
    def done(self) -> bool:
        """True once ``generations + 1`` batches have been told."""
        return self.generation > self.generations

    def ask(self) -> list[Any]:
        """The current batch: the sampler's trials as genomes (first batch: baselines too)."""
        if self._asked is None:
            self._asked = self._ask_batch()
        return [self.space.from_json(entry["genome"]) for entry in self._asked]

    def tell(self, values: Sequence[Sequence[float]]) -> None:
        """Add the batch's trials, with their values, to the sampler's history."""
        check_told(self._asked, values)
        for entry, value in zip(self._asked, values, strict=True):
            if entry["params"] is not None:
                self._history.append(entry | {"values": [float(v) for v in value]})
        self._asked = None
        self.generation += 1

    def state(self) -> dict[str, Any]:
        """The batch counter, the generator's state, the history and the open batch."""
        return {
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "history": self._history,
            "asked": self._asked,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`."""
        self.generation = int(state["generation"])
        self.rng.bit_generator.state = state["rng"]
        self._history = list(state["history"])
        self._asked = state["asked"]

    def parameters(self, genome: Any) -> TrialParameters | None:
        """The parameters and distributions of the trial that proposed ``genome``."""
        key = genome_hash(self.space, genome)
        for entry in reversed((self._asked or []) + self._history):
            if entry["params"] is not None and entry["hash"] == key:
                return TrialParameters(entry["params"], entry["distributions"])
        return None

    def _ask_batch(self) -> list[dict[str, Any]]:
        import optuna

        study = self._study(optuna)
        batch = []
        if self.generation == 0:
            for genome in self._initial:
                self.space.validate(genome)
                batch.append(self._entry(genome, None, None, None))
        for _ in range(self.population_size):
            trial = study.ask()
            genome = self.space.suggest(trial)
            frozen = _frozen(study, trial.number)
            distributions = {
                name: optuna.distributions.distribution_to_json(d)
                for name, d in trial.distributions.items()
            }
            batch.append(self._entry(genome, trial.params, distributions, frozen.system_attrs))
        return batch

    def _entry(
        self,
        genome: Any,
        params: dict[str, Any] | None,
        distributions: dict[str, str] | None,
        system_attrs: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "genome": self.space.to_json(genome),
            "hash": genome_hash(self.space, genome),
            "params": params,
            "distributions": distributions,
            "system_attrs": system_attrs,
        }

    def _study(self, optuna: Any) -> Any:
        """An in-memory study holding the history, with a freshly seeded sampler."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = self._make_sampler(int(self.rng.integers(2**31 - 1)))
        study = optuna.create_study(directions=self.directions, sampler=sampler)
        for entry in self._history:
            study.add_trial(
                optuna.trial.create_trial(
                    params=entry["params"],
                    distributions={
                        name: optuna.distributions.json_to_distribution(text)
                        for name, text in entry["distributions"].items()
                    },
                    values=entry["values"],
                    system_attrs=entry["system_attrs"],
                )
            )
        return study


def _quietly(make: Callable[[], Any]) -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return make()


def tpe_from_settings(settings: StrategySettings) -> OptunaStrategy:
    """Optuna's multi-objective TPE: multivariate over the dynamic space (``group``),
    the first batch random, the running batch counted in by the constant liar."""

    def make_sampler(seed: int) -> Any:
        import optuna

        return _quietly(
            lambda: optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=True,
                constant_liar=True,
                n_startup_trials=settings.population,
            )
        )

    return _from_settings(settings, make_sampler)


def nsga2_from_settings(settings: StrategySettings) -> OptunaStrategy:
    """Optuna's ``NSGAIISampler`` with the experiment's population and Optuna's own
    variation operators and rates (uniform crossover, probability 0.9), as a user gets them."""

    def make_sampler(seed: int) -> Any:
        import optuna

        return optuna.samplers.NSGAIISampler(
            seed=seed,
            population_size=settings.population,
        )

    return _from_settings(settings, make_sampler)


def _from_settings(settings: StrategySettings, make_sampler: SamplerFactory) -> OptunaStrategy:
    return OptunaStrategy(
        settings.space,
        weights=settings.weights,
        population_size=settings.population,
        generations=settings.generations,
        rng=np.random.default_rng(settings.seed),
        make_sampler=make_sampler,
        initial=settings.initial,
    )


def _frozen(study: Any, number: int) -> Any:
    """The running trial ``number`` as Optuna's public API shows it (its system attributes:
    what the sampler decided), newest first."""
    import optuna

    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return next(t for t in reversed(running) if t.number == number)
