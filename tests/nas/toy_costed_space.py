"""The toy vector space with a ``cost``: ZDT1's f2 as "parameters", known before training.

It matches ``tests.nas.engine.test_search_budgets.ToyEvaluator``, which reports
``params = 1000 + 1e5 * f2``; searches on it can pre-screen (``[search] prescreen``).
"""

from __future__ import annotations

from typing import Any

from nas.core.space import ModelCost
from nas.testing.toy_space import VectorSpace, zdt1


class CostedVectorSpace(VectorSpace):
    """:class:`VectorSpace` whose genomes know their "parameters" and "FLOPs"."""

    name = "toy-vector-costed"

    def cost(self, genome: tuple[float, ...], task: Any) -> ModelCost:
        params = round(1000 + 1e5 * zdt1(genome)[1])
        return ModelCost(params=params, flops=2 * params)


SPACE = CostedVectorSpace(dims=4)
"""The space by name (``space = "tests.nas.toy_costed_space"``)."""
