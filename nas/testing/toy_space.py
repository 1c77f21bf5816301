"""A real-vector search space for testing strategies without training (ZDT problems)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nas.core.errors import GenomeError
from nas.core.space import TrainingRecipe


class VectorSpace:
    """Genomes are tuples of floats in [0, 1]; SBX-like blend crossover, Gaussian mutation."""

    name = "toy-vector"

    def __init__(self, dims: int = 10) -> None:
        self.dims = dims

    def sample(self, rng: np.random.Generator) -> tuple[float, ...]:
        return tuple(float(v) for v in rng.random(self.dims))

    def mutate(self, genome: tuple[float, ...], rng: np.random.Generator) -> tuple[float, ...]:
        x = np.array(genome)
        mask = rng.random(self.dims) < 1.0 / self.dims
        mask[rng.integers(self.dims)] = True
        x[mask] = np.clip(x[mask] + rng.normal(0, 0.1, mask.sum()), 0.0, 1.0)
        return tuple(float(v) for v in x)

    def suggest(self, trial) -> tuple[float, ...]:
        return tuple(trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(self.dims))

    def crossover(self, a: tuple[float, ...], b: tuple[float, ...], rng: np.random.Generator):
        w = rng.random(self.dims)
        x, y = np.array(a), np.array(b)
        return tuple(float(v) for v in w * x + (1 - w) * y), tuple(
            float(v) for v in (1 - w) * x + w * y
        )

    def validate(self, genome: Any) -> None:
        if len(genome) != self.dims or not all(0.0 <= v <= 1.0 for v in genome):
            raise GenomeError("vector out of [0, 1] or of the wrong length")

    def to_json(self, genome: tuple[float, ...]) -> dict[str, Any]:
        return {"x": list(genome)}

    def from_json(self, data: Mapping[str, Any]) -> tuple[float, ...]:
        return tuple(float(v) for v in data["x"])

    def build(self, genome, task):  # pragma: no cover - never trained
        raise NotImplementedError

    def recipe(self, genome) -> TrainingRecipe:  # pragma: no cover - never trained
        raise NotImplementedError

    def describe(self, genome) -> str:
        return " ".join(f"{v:.2f}" for v in genome[:3])


def zdt1(x: tuple[float, ...]) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb, Thiele 2000): both objectives minimised, front f2 = 1 - sqrt(f1)."""
    v = np.asarray(x)
    g = 1.0 + 9.0 * v[1:].sum() / (len(v) - 1)
    return float(v[0]), float(g * (1.0 - np.sqrt(v[0] / g)))


SPACE = VectorSpace(dims=4)
"""The toy space by name (``space = "nas.testing.toy_space"``), for searches that train nothing."""
