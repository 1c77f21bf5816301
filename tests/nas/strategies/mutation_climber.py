"""A strategy added by the tests without touching ``nas/``: mutate the front, batch after batch.

It shows what a newcomer writes for a new strategy: this one module, named in an
experiment by its dotted name (``[search] strategy = "tests.nas.strategies.mutation_climber"``),
and its test (``test_mutation_climber.py``), which runs the shipped conformance suite on it.

The first batch is the baselines and samples of the space; every later batch is one
mutation of a parent drawn from the non-dominated genomes told so far, so each genome
has one parent, which a search with ``inherit_weights`` starts it from.

Its one knob shows how a strategy reads its own ``[search]`` keys: ``fresh_fraction``
(:class:`ClimberSettings`) is declared here, checked and typed by ``nas`` when an
experiment is loaded, recorded in ``run.json``, and given to the strategy as
``settings.options``; nothing in ``nas/`` names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.core.space import genome_hash
from nas.strategies import StrategyEntry
from nas.strategies.base import (
    NOVELTY_TRIES,
    BaseStrategy,
    StrategySettings,
    check_told,
    novel_genomes,
)


@dataclass(frozen=True, kw_only=True)
class ClimberSettings:
    """The climber's own key of ``[search]``: ``fresh_fraction``, the share of each batch
    after the first drawn fresh from the space (without a parent) instead of mutated."""

    fresh_fraction: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fresh_fraction <= 1.0:
            raise ValueError(
                f"fresh_fraction must be in [0, 1] (0: mutants only), got {self.fresh_fraction}"
            )


class MutationClimber(BaseStrategy):
    """Batches of ``population`` mutants of the current front, ``generations + 1`` batches;
    a ``fresh_fraction`` of each later batch is samples of the space instead."""

    def __init__(self, settings: StrategySettings) -> None:
        own = settings.options if settings.options is not None else ClimberSettings()
        self.fresh = round(own.fresh_fraction * settings.population)
        self.space = settings.space
        self.weights = np.asarray(settings.weights, dtype=float)
        self.population = settings.population
        self.generations = settings.generations
        self.rng = np.random.default_rng(settings.seed)
        self.generation = 0
        self._initial = list(settings.initial)
        self._asked: list[Any] | None = None
        self._seen: set[str] = set()
        self._told: list[tuple[Any, tuple[float, ...]]] = []
        self._parents: dict[str, Any] = {}

    @property
    def done(self) -> bool:
        return self.generation > self.generations

    def ask(self) -> list[Any]:
        if self._asked is None:
            if self.generation == 0:
                self._asked = novel_genomes(
                    self.space, self.rng, self._seen, self.population, self._initial
                )
            else:
                mutants = [self._mutant(self._front()) for _ in range(self.population - self.fresh)]
                fresh = novel_genomes(self.space, self.rng, self._seen, self.fresh)
                self._asked = mutants + fresh
        return list(self._asked)

    def tell(self, values: Sequence[Sequence[float]]) -> None:
        check_told(self._asked, values)
        self._told += [(g, tuple(map(float, v))) for g, v in zip(self._asked, values, strict=True)]
        self._asked = None
        self.generation += 1

    def lineage(self, genome: Any) -> tuple[Any, ...]:
        parent = self._parents.get(genome_hash(self.space, genome))
        return () if parent is None else (parent,)

    def state(self) -> dict[str, Any]:
        to_json = self.space.to_json
        return {
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "asked": None if self._asked is None else [to_json(g) for g in self._asked],
            "seen": sorted(self._seen),
            "told": [[to_json(g), list(v)] for g, v in self._told],
            "parents": {key: to_json(g) for key, g in self._parents.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        from_json = self.space.from_json
        self.generation = int(state["generation"])
        self.rng.bit_generator.state = state["rng"]
        asked = state["asked"]
        self._asked = None if asked is None else [from_json(g) for g in asked]
        self._seen = set(state["seen"])
        self._told = [(from_json(g), tuple(v)) for g, v in state["told"]]
        self._parents = {key: from_json(g) for key, g in state["parents"].items()}

    def _front(self) -> list[Any]:
        """The told genomes no other told genome dominates (objectives times weights, maximised)."""
        scores = np.array([v for _, v in self._told]) * self.weights
        return [
            genome
            for (genome, _), score in zip(self._told, scores, strict=True)
            if not np.any(np.all(scores >= score, axis=1) & np.any(scores > score, axis=1))
        ]

    def _mutant(self, front: list[Any]) -> Any:
        for _ in range(NOVELTY_TRIES):
            parent = front[int(self.rng.integers(len(front)))]
            child = self.space.mutate(parent, self.rng)
            key = genome_hash(self.space, child)
            if key not in self._seen:
                break
        self._seen.add(key)
        self._parents[key] = parent
        return child


STRATEGY = StrategyEntry(
    MutationClimber, "mutations of the front told so far", settings=ClimberSettings
)
