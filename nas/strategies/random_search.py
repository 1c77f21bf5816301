"""Random search (``strategy = "random"``): the space's own sampler, batch after batch.

The baseline every search strategy must beat at equal evaluations (Li & Talwalkar 2019,
"Random search and reproducibility for NAS"). Each batch holds ``population`` genomes
new to the run; baselines enter the first batch unchanged. Nothing is learnt from the
values told.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.core.space import SearchSpace
from nas.strategies.base import (
    BaseStrategy,
    StrategySettings,
    check_told,
    novel_genomes,
)

__all__ = ["RandomSearch", "from_settings"]


class RandomSearch(BaseStrategy):
    """Batches of ``population_size`` fresh samples of ``space``, for ``generations + 1`` batches."""

    def __init__(
        self,
        space: SearchSpace,
        *,
        population_size: int,
        generations: int,
        rng: np.random.Generator,
        initial: Sequence[Any] = (),
    ) -> None:
        self.space = space
        self.population_size = population_size
        self.generations = generations
        self.rng = rng
        self.generation = 0
        self._initial = list(initial)
        self._asked: list[Any] | None = None
        self._seen: set[str] = set()

    @property
    def done(self) -> bool:
        """True once ``generations + 1`` batches have been told."""
        return self.generation > self.generations

    def ask(self) -> list[Any]:
        """The current batch: new samples (and, in the first batch, the baselines)."""
        if self._asked is None:
            initial = self._initial if self.generation == 0 else ()
            self._asked = novel_genomes(
                self.space, self.rng, self._seen, self.population_size, initial
            )
        return list(self._asked)

    def tell(self, values: Sequence[Sequence[float]]) -> None:
        """Close the batch (the values teach random search nothing)."""
        check_told(self._asked, values)
        self._asked = None
        self.generation += 1

    def state(self) -> dict[str, Any]:
        """The batch counter, the generator's state, the hashes seen and the open batch."""
        to_json = self.space.to_json
        return {
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "asked": None if self._asked is None else [to_json(g) for g in self._asked],
            "seen": sorted(self._seen),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`."""
        self.generation = int(state["generation"])
        self.rng.bit_generator.state = state["rng"]
        asked = state["asked"]
        self._asked = None if asked is None else [self.space.from_json(g) for g in asked]
        self._seen = set(state["seen"])


def from_settings(settings: StrategySettings) -> RandomSearch:
    """Random search built from the experiment's settings."""
    return RandomSearch(
        settings.space,
        population_size=settings.population,
        generations=settings.generations,
        rng=np.random.default_rng(settings.seed),
        initial=settings.initial,
    )
