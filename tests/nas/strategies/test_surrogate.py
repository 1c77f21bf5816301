"""The surrogate that pre-screens NSGA-II's children (``[search] prescreen_by = "surrogate"``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.core.ranking import kendall_tau
from nas.strategies import surrogate
from nas.strategies.nsga2 import Nsga2
from nas.strategies.surrogate import Surrogate, genome_features, rank_targets
from nas.testing.toy_space import VectorSpace, zdt1


def test_genome_features_flatten_numbers_flags_choices_and_lists():
    genome = {
        "stem": {"width": 16, "pool": True},
        "stages": [{"block": "basic", "depth": 2}, {"block": "mbconv", "depth": 4}],
        "head": {"pooling": "avg", "dense": [64, 32]},
    }
    assert genome_features(genome) == {
        "stem.width": 16.0,
        "stem.pool": 1.0,
        "stages#": 2.0,
        "stages[].block=basic": 0.5,
        "stages[].depth": 3.0,
        "stages[].block=mbconv": 0.5,
        "head.pooling=avg": 1.0,
        "head.dense#": 2.0,
        "head.dense[]": 48.0,
    }
    assert genome_features({"dense": []}) == {"dense#": 0.0}


def test_ridge_recovers_a_linear_rule_on_unseen_genomes():
    rng = np.random.default_rng(0)
    rows = [{"a": float(a), "b": float(b), "noise": float(c)} for a, b, c in rng.random((60, 3))]
    target = [2 * r["a"] - r["b"] + rng.normal(0, 0.05) for r in rows]
    model = Surrogate.fit(rows[:40], target[:40])
    predicted = model.predict(rows[40:])
    assert kendall_tau(predicted, target[40:]) > 0.8
    assert abs(model.coefficients[model.names.index("noise")]) < 0.1


def test_leave_one_out_penalises_noise_more_than_a_clean_rule():
    rng = np.random.default_rng(1)
    rows = [{f"x{j}": float(v) for j, v in enumerate(r)} for r in rng.random((20, 8))]
    noisy = Surrogate.fit(rows, rng.random(20))
    clean = Surrogate.fit(rows, [r["x0"] for r in rows])
    assert clean.penalty == min(surrogate.PENALTIES) < noisy.penalty


def test_a_constant_feature_and_an_unseen_feature_change_nothing():
    rows = [{"w": float(w), "same": 1.0} for w in range(6)]
    model = Surrogate.fit(rows, [0, 1, 2, 3, 4, 5])
    with_unknown = model.predict([{"w": 2.0, "same": 1.0, "new": 99.0}])
    assert with_unknown[0] == pytest.approx(model.predict([{"w": 2.0, "same": 1.0}])[0])


def test_rank_targets_put_failures_last_and_follow_the_direction():
    assert list(rank_targets([0.5, np.nan, 0.7, 0.6], 1.0)) == pytest.approx([1 / 3, 0, 1, 2 / 3])
    assert list(rank_targets([3.0, 1.0, 2.0], -1.0)) == pytest.approx([0, 1, 0.5])


def test_fit_needs_two_rows():
    with pytest.raises(ValueError, match="two or more rows"):
        Surrogate.fit([{"a": 1.0}], [1.0])


# --- inside NSGA-II --------------------------------------------------------------------------


def free(genome) -> tuple[float | None, ...]:
    """ZDT1's f1 is free (a stand-in for size); f2 needs "training"."""
    return (1.0 - float(genome[0]), None)


def _strategy(seed: int, prescreen_by: str) -> Nsga2:
    return Nsga2(
        VectorSpace(dims=6),
        weights=(-1.0, -1.0),
        population_size=8,
        rng=np.random.default_rng(seed),
        crossover_prob=0.9,
        mutation_prob=1.0,
        prescreen=4,
        prescreen_by=prescreen_by,
        free_objectives=free,
    )


def _run(strategy: Nsga2, generations: int) -> list[tuple[float, float]]:
    told = []
    for _ in range(generations):
        genomes = strategy.ask()
        values = [zdt1(g) for g in genomes]
        strategy.tell(values)
        told += values
    return told


def test_the_surrogate_waits_for_enough_trials_then_ranks_the_children_it_keeps():
    strategy = _strategy(0, "surrogate")
    _run(strategy, 1)
    assert "until 4 more genomes are told" in strategy.note()
    _run(strategy, 6)
    pairs = strategy.surrogate_pairs
    assert len(pairs) == 8 * 5  # generations 2..6 were screened by it
    predicted, told = zip(*pairs, strict=True)
    # f2 of ZDT1 grows with the genes the ridge sees: its ranking of the kept children holds
    assert kendall_tau(predicted, told) > 0.3
    assert strategy.note().startswith("surrogate: tau ")


def test_surrogate_screening_finds_better_children_than_size_alone_on_zdt1():
    """The trained objective f2 of the children kept, generations 3..8, over 4 seeds."""

    def mean_f2(prescreen_by: str) -> float:
        scores = []
        for seed in range(4):
            told = _run(_strategy(seed, prescreen_by), 9)
            scores += [f2 for _, f2 in told[24:]]
        return float(np.mean(scores))

    assert mean_f2("surrogate") < mean_f2("size")


def test_a_surrogate_strategy_restored_from_its_state_asks_for_the_same_genomes():
    uninterrupted, interrupted = _strategy(3, "surrogate"), _strategy(3, "surrogate")
    for _ in range(5):
        expected = uninterrupted.ask()
        copy = _strategy(3, "surrogate")
        copy.restore(json.loads(json.dumps(interrupted.state())))
        interrupted = copy
        assert interrupted.ask() == expected
        uninterrupted.tell([zdt1(g) for g in expected])
        interrupted.tell([zdt1(g) for g in expected])
    assert uninterrupted.state() == interrupted.state()


def test_size_prescreening_keeps_no_surrogate_memory():
    strategy = _strategy(0, "size")
    _run(strategy, 3)
    assert strategy.state()["told"] == [] and strategy.note() is None


def test_without_free_objectives_the_surrogate_waits_unscreened_then_screens():
    strategy = Nsga2(
        VectorSpace(dims=6),
        weights=(-1.0, -1.0),
        population_size=8,
        rng=np.random.default_rng(2),
        prescreen=4,
        prescreen_by="surrogate",
    )
    _run(strategy, 4)
    assert len(strategy.surrogate_pairs) == 8 * 2  # generations 2 and 3
