"""NSGA-II remembers which parents made each child it asks for (weight inheritance)."""

from __future__ import annotations

import json

import numpy as np

from nas.core.space import genome_hash
from nas.strategies.nsga2 import Nsga2
from nas.testing.toy_space import VectorSpace, zdt1


def _nsga2(crossover_prob: float = 0.5) -> Nsga2:
    return Nsga2(
        VectorSpace(dims=4),
        weights=(-1.0, -1.0),
        population_size=8,
        rng=np.random.default_rng(2),
        crossover_prob=crossover_prob,
        mutation_prob=1.0,
    )


def test_generation_0_has_no_parents_and_every_child_has_one_or_two():
    strategy = _nsga2()
    first = strategy.ask()
    assert all(strategy.lineage(g) == () for g in first)
    strategy.tell([zdt1(g) for g in first])
    population = {genome_hash(strategy.space, m.genome) for m in strategy.population}
    sizes = []
    for child in strategy.ask():
        parents = strategy.lineage(child)
        sizes.append(len(parents))
        assert {genome_hash(strategy.space, p) for p in parents} <= population
        assert len({genome_hash(strategy.space, p) for p in parents}) == len(parents)
    assert set(sizes) == {1, 2}, "crossover children have two parents, mutants one"


def test_crossover_children_name_both_parents_in_opposite_orders():
    strategy = _nsga2(crossover_prob=1.0)
    strategy.tell([zdt1(g) for g in strategy.ask()])
    children = strategy.ask()
    for first, second in zip(children[::2], children[1::2], strict=True):
        a, b = strategy.lineage(first), strategy.lineage(second)
        if len(a) == 2:  # the same individual may win both tournaments
            assert a == b[::-1]


def test_lineage_survives_state_and_restore_and_ends_with_the_batch():
    original = _nsga2()
    original.tell([zdt1(g) for g in original.ask()])
    children = original.ask()
    state = json.loads(json.dumps(original.state()))
    restored = _nsga2()
    restored.restore(state)
    assert restored.ask() == children
    for child in children:
        assert restored.lineage(child) == original.lineage(child) != ()
    restored.tell([zdt1(g) for g in children])
    assert all(restored.lineage(c) == () for c in children)
    state_without = {k: v for k, v in state.items() if k != "lineage"}
    older = _nsga2()
    older.restore(state_without)  # a checkpoint written before lineage existed
    assert older.ask() == children
    assert all(older.lineage(c) == () for c in children)
