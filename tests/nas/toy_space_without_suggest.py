"""The toy vector space without a define-by-run mapping (Optuna's samplers cannot drive it)."""

from __future__ import annotations

from nas.testing.toy_space import VectorSpace


class VectorSpaceWithoutSuggest(VectorSpace):
    name = "toy-vector-without-suggest"
    suggest = None  # type: ignore[assignment]


SPACE = VectorSpaceWithoutSuggest()
