"""Multi-fidelity NSGA-II (nas/strategies/multifidelity.py): two rungs per generation,
promotion by rank and crowding, the chance rule, and only full-fidelity values surviving.
No training: the toy vector space, told ZDT1 values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nas.core.objectives import CHANCE_MARGIN, worst_values
from nas.core.space import genome_hash
from nas.strategies import StrategySettings, make_strategy
from nas.strategies.base import Fidelity
from nas.strategies.multifidelity import (
    promotable_rule,
    promote,
    promoted_count,
)
from nas.strategies.nsga2 import Nsga2, Nsga2Settings
from nas.testing.toy_space import VectorSpace, zdt1

SPACE = VectorSpace(dims=4)


def _nsga2(seed: int = 2, *, images: int = 100, fraction: float = 0.5, promotable=None) -> Nsga2:
    return Nsga2(
        SPACE,
        weights=(-1.0, -1.0),
        population_size=8,
        rng=np.random.default_rng(seed),
        crossover_prob=0.9,
        mutation_prob=1.0,
        generations=3,
        low_fidelity_images=images,
        promote_fraction=fraction,
        promotable=promotable,
    )


def _low(genome) -> tuple[float, float]:
    """Rung-0 values: ZDT1 made worse, as after fewer images."""
    f1, f2 = zdt1(genome)
    return f1 + 0.5, f2 + 0.5


def _keys(genomes) -> list[str]:
    return [genome_hash(SPACE, g) for g in genomes]


def _generation(strategy: Nsga2) -> tuple[list, list]:
    """One multi-fidelity generation: rung 0 told ``_low``, rung 1 told ZDT1."""
    batch = strategy.ask()
    strategy.tell([_low(g) for g in batch])
    promoted = strategy.ask() if strategy.fidelity() == Fidelity(rung=1, continues=0) else []
    if promoted:
        strategy.tell([zdt1(g) for g in promoted])
    return batch, promoted


# --- promotion -------------------------------------------------------------------------


def test_promote_takes_the_best_fraction_by_rank_then_crowding():
    values = [(0.0, 1.0), (1.0, 0.0), (0.5, 0.5), (0.9, 0.9), (0.6, 0.6), (0.2, 0.9)]
    chosen = promote(values, (-1.0, -1.0), 0.5)
    assert len(chosen) == math.ceil(0.5 * len(values)) == 3
    # first front: 0, 1, 2, 5; the extremes 0 and 1 have infinite crowding, then 2 (1.7)
    # beats 5 (1.0); the dominated 3 and 4 wait behind the whole first front
    assert chosen == [0, 1, 2]
    assert promote(values, (-1.0, -1.0), 1.0) == list(range(len(values)))
    assert promote(values, (-1.0, -1.0), 0.01) in ([0], [1])
    assert chosen == promote(values, (-1.0, -1.0), 0.5), "deterministic"


def test_promote_skips_what_the_rule_refuses_and_may_promote_nobody():
    values = [(0.0, 1.0), (1.0, 0.0), (0.5, 0.5), (0.9, 0.9)]
    chosen = promote(values, (-1.0, -1.0), 1.0, lambda v: v[0] < 0.95)
    assert chosen == [0, 2, 3]
    assert promote(values, (-1.0, -1.0), 1.0, lambda v: False) == []
    with pytest.raises(ValueError):
        promote(values, (-1.0, -1.0), 0.0)


def test_the_rule_refuses_failures_and_near_chance_accuracy():
    rule = promotable_rule(("accuracy", "params"), {"accuracy": 0.36})
    assert not rule(worst_values(("accuracy", "params")))
    assert not rule((0.36, 1e4))  # chance itself
    assert not rule((0.36 + CHANCE_MARGIN, 1e4))  # within the margin
    assert not rule((0.37, 1e4))  # exactly the margin above, whatever floating point says
    assert not rule((0.10, 1e4))  # below chance
    assert rule((0.36 + CHANCE_MARGIN + 0.001, 1e4))
    assert CHANCE_MARGIN == 0.01  # the front's rule too (nas.core.objectives.at_chance)


def test_the_rule_skips_chance_for_a_metric_without_one():
    rule = promotable_rule(("rmse", "params"), {"accuracy": 0.36})
    assert rule((5.0, 1e4)) and rule((1e5, 1e4))
    assert not rule(worst_values(("rmse", "params")))
    first_without_chance = promotable_rule(("macro_f1", "params"), {"accuracy": 0.36})
    assert first_without_chance((0.0001, 1e4))


# --- the strategy ----------------------------------------------------------------------


def test_a_generation_asks_rung_0_then_the_promoted_continuing_from_themselves():
    strategy = _nsga2()
    batch = strategy.ask()
    assert len(batch) == 8 and strategy.fidelity() == Fidelity(rung=0, images=100)
    assert strategy.generation == 0
    strategy.tell([_low(g) for g in batch])
    assert strategy.generation == 0 and strategy.fidelity() == Fidelity(
        rung=1, images=None, continues=0
    )
    promoted = strategy.ask()
    assert strategy.ask() == promoted, "asking again before tell repeats the batch"
    assert len(promoted) == 4 and set(_keys(promoted)) <= set(_keys(batch))
    expected = promote([_low(g) for g in batch], (-1.0, -1.0), 0.5)
    assert _keys(promoted) == _keys([batch[i] for i in expected])
    for genome in promoted:
        assert strategy.lineage(genome) == (genome,)
    # what the driver runs: each promoted genome continues its own rung-0 training as rung 1
    proposals = strategy.propose()
    assert [p.genome for p in proposals] == promoted
    assert {(p.rung, p.continues, p.images) for p in proposals} == {(1, 0, None)}
    strategy.tell([zdt1(g) for g in promoted])
    assert strategy.generation == 1 and strategy.fidelity() == Fidelity(rung=0, images=100)


def test_only_full_fidelity_values_reach_survivor_selection():
    strategy = _nsga2()
    promoted_ever: set[str] = set()
    for _ in range(4):
        batch, promoted = _generation(strategy)
        assert len(promoted) == 4
        promoted_ever |= set(_keys(promoted))
        # every survivor is a promoted genome with its rung-1 (ZDT1) values, never _low's
        for member in strategy.population:
            assert member.values == zdt1(member.genome)
            assert genome_hash(SPACE, member.genome) in promoted_ever
        assert set(_keys(batch)) - promoted_ever, "some children were dropped"
    assert strategy.done and len(strategy.population) == 8


def test_a_smaller_population_still_breeds_a_full_batch_with_parents():
    strategy = _nsga2()
    _generation(strategy)
    assert len(strategy.population) == 4  # only the promoted half of generation 0
    children = strategy.ask()
    assert len(children) == 8 and strategy.fidelity().rung == 0
    parents = {genome_hash(SPACE, m.genome) for m in strategy.population}
    for child in children:
        assert 1 <= len(strategy.lineage(child)) <= 2
        assert set(_keys(strategy.lineage(child))) <= parents


def test_near_chance_candidates_are_never_promoted():
    # accuracy-like first objective (maximised) against a cost (minimised); chance 0.5
    rule = promotable_rule(("accuracy", "params"), {"accuracy": 0.5})
    strategy = Nsga2(
        SPACE,
        weights=(1.0, -1.0),
        population_size=8,
        rng=np.random.default_rng(4),
        low_fidelity_images=100,
        promote_fraction=1.0,
        promotable=rule,
    )
    batch = strategy.ask()
    # the first genomes are near chance but the cheapest (non-dominated): still refused
    values = [(0.5 + 0.01 * (i % 2), 10.0 + i) if i < 4 else (0.6 + i / 100, 1e4) for i in range(8)]
    strategy.tell(values)
    promoted = strategy.ask()
    assert _keys(promoted) == _keys(batch[4:])


def test_a_generation_promoting_nobody_keeps_the_population_and_draws_afresh_if_empty():
    strategy = _nsga2(promotable=lambda values: False)
    batch = strategy.ask()
    strategy.tell([_low(g) for g in batch])
    assert strategy.generation == 1 and strategy.population == []
    assert strategy.fidelity() == Fidelity(rung=0, images=100)
    fresh = strategy.ask()
    assert len(fresh) == 8 and not set(_keys(fresh)) & set(_keys(batch))
    assert all(strategy.lineage(g) == () for g in fresh), "fresh samples have no parents"


def _history(seed: int) -> list[tuple[int, list[str]]]:
    strategy = _nsga2(seed)
    asked = []
    while not strategy.done:
        genomes = strategy.ask()
        asked.append((strategy.fidelity().rung, _keys(genomes)))
        values = [_low(g) for g in genomes] if asked[-1][0] == 0 else [zdt1(g) for g in genomes]
        strategy.tell(values)
    return asked


def test_same_seed_same_rungs_and_genomes_other_seed_other_genomes():
    first = _history(3)
    assert first == _history(3)
    assert first != _history(4)
    assert [rung for rung, _ in first] == [0, 1] * 4
    assert [len(keys) for _, keys in first] == [8, 4] * 4


@pytest.mark.parametrize("cut", ["after the rung-0 tell", "after the rung-1 ask"])
def test_state_and_restore_between_the_rungs_continue_identically(cut: str):
    original = _nsga2(5)
    _generation(original)
    batch = original.ask()
    original.tell([_low(g) for g in batch])
    if cut == "after the rung-1 ask":
        original.ask()
    restored = _nsga2(5)
    restored.restore(json.loads(json.dumps(original.state())))
    assert restored.generation == original.generation == 1
    assert restored.fidelity() == original.fidelity() == Fidelity(rung=1, continues=0)
    while not original.done:
        expected = original.ask()
        assert _keys(restored.ask()) == _keys(expected)
        assert restored.fidelity() == original.fidelity()
        for genome in expected:
            assert _keys(restored.lineage(genome)) == _keys(original.lineage(genome))
        rung = original.fidelity().rung
        values = [_low(g) for g in expected] if rung == 0 else [zdt1(g) for g in expected]
        original.tell(values)
        restored.tell(values)
    assert restored.done
    assert [m.values for m in restored.population] == [m.values for m in original.population]


def test_without_low_fidelity_images_there_is_one_rung_as_before():
    strategy = _nsga2(images=0)
    batch = strategy.ask()
    assert strategy.fidelity() is None
    strategy.tell([zdt1(g) for g in batch])
    assert strategy.generation == 1 and "promoted" in strategy.state()
    assert strategy.state()["promoted"] is None


def test_only_nsga2_has_rungs_other_strategies_ignore_the_settings():
    for name in ("random", "optuna-tpe"):
        settings = StrategySettings(
            space=SPACE,
            weights=(-1.0, -1.0),
            population=4,
            generations=1,
            seed=0,
            options=Nsga2Settings(low_fidelity_images=100),
        )
        strategy = make_strategy(name, settings)
        genomes = strategy.ask()
        assert strategy.fidelity() is None and len(genomes) == 4


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="promote_fraction"):
        _nsga2(fraction=0.0)
    with pytest.raises(ValueError, match="low_fidelity_images"):
        _nsga2(images=-1)


def test_the_promoted_count_rounds_up_without_floating_point_noise():
    assert promoted_count(0.3, 10) == 3
    assert promoted_count(0.5, 8) == 4 and promoted_count(0.5, 7) == 4
    assert promoted_count(0.01, 8) == 1 and promoted_count(1.0, 8) == 8
