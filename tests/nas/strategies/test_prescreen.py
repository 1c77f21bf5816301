"""Pre-screening NSGA-II's children on the free objectives (``[search] prescreen``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.core.space import genome_hash
from nas.strategies import StrategySettings, make_strategy
from nas.strategies.nsga2 import Nsga2, Nsga2Settings
from nas.strategies.prescreen import select
from nas.testing.toy_space import VectorSpace, zdt1

GAP = (0.3, 0.7)  # the sizes the constructed front lacks


def size(genome) -> float:
    """The toy's free objective: ZDT1's f1 = x[0], minimised (a stand-in for parameters)."""
    return float(genome[0])


def free(genome) -> tuple[float | None, ...]:
    """ZDT1's (f1, f2) with f1 free, on the hypervolume's scale (1 ideal = 0, 0 reference = 1)."""
    return (1.0 - size(genome), None)


def _strategy(seed: int, prescreen: int = 4, population: int = 8, initial=()) -> Nsga2:
    return Nsga2(
        VectorSpace(dims=4),
        weights=(-1.0, -1.0),
        population_size=population,
        rng=np.random.default_rng(seed),
        crossover_prob=0.9,
        mutation_prob=1.0,
        initial=initial,
        prescreen=prescreen,
        free_objectives=free if prescreen > 1 else None,
    )


def _history(strategy: Nsga2, batches: int) -> list[list[str]]:
    asked = []
    for _ in range(batches):
        genomes = strategy.ask()
        asked.append([genome_hash(strategy.space, g) for g in genomes])
        strategy.tell([zdt1(g) for g in genomes])
    return asked


# --- the rule ------------------------------------------------------------------------------


def test_select_takes_the_middle_of_the_largest_gap_first_then_splits_gaps():
    front = np.array([[0.1], [0.15], [0.85], [0.9]])  # small and large nets, none mid-size
    candidates = np.array([[0.12], [0.5], [0.88], [0.3], [0.95], [0.87]])
    chosen = select(candidates, front, 3, np.random.default_rng(0))
    # 0.5 halves the gap 0.15..0.85; then 0.3 (0.15 from 0.15 and from 0.5) beats 0.95
    # (0.05 from the box's end); then 0.95, before the candidates next to existing sizes
    assert chosen == [1, 3, 4]


def test_select_sums_the_free_axes_and_counts_members_on_each():
    front = np.array([[0.2, 0.2], [0.8, 0.8]])
    candidates = np.array([[0.5, 0.2], [0.5, 0.5], [0.2, 0.5]])
    assert select(candidates, front, 1, np.random.default_rng(0)) == [1]


def test_select_puts_candidates_past_the_reference_last():
    front = np.array([[0.5]])
    candidates = np.array([[-0.2], [0.49], [np.nan], [0.51]])  # oversized, unknown
    chosen = select(candidates, front, 4, np.random.default_rng(0))
    assert set(chosen[:2]) == {1, 3} and set(chosen[2:]) == {0, 2}


def test_select_breaks_ties_with_the_generator():
    front = np.array([[0.5]])
    candidates = np.array([[0.25], [0.75], [0.25], [0.75]])  # all four equally good
    orders = {tuple(select(candidates, front, 4, np.random.default_rng(s))) for s in range(20)}
    assert len(orders) > 1
    assert select(candidates, front, 4, np.random.default_rng(3)) == select(
        candidates, front, 4, np.random.default_rng(3)
    )
    # a second pick in the same gap is worth less than a first pick in the other gap
    first, second = select(candidates, front, 2, np.random.default_rng(0))
    assert candidates[first, 0] != candidates[second, 0]


# --- NSGA-II with pre-screening ---------------------------------------------------------


def test_the_batch_has_the_population_and_differs_from_no_screening():
    screened = _history(_strategy(5, prescreen=4), 3)
    plain = _history(_strategy(5, prescreen=1), 3)
    assert [len(batch) for batch in screened] == [8, 8, 8]
    assert screened[0] == plain[0]  # generation 0 is sampled, never screened
    assert screened[1] != plain[1]


def test_prescreen_1_is_plain_nsga2():
    plain = Nsga2(
        VectorSpace(dims=4),
        weights=(-1.0, -1.0),
        population_size=8,
        rng=np.random.default_rng(5),
        crossover_prob=0.9,
        mutation_prob=1.0,
    )
    assert _history(_strategy(5, prescreen=1), 4) == _history(plain, 4)


def test_children_fill_the_gap_of_the_front(monkeypatch: pytest.MonkeyPatch):
    # a front of small and large "nets" only: sizes 0..0.2 and 0.8..1, none mid-size
    sizes = (0.0, 0.05, 0.1, 0.2, 0.8, 0.9, 0.95, 1.0)
    rng = np.random.default_rng(0)
    initial = [(s, *(float(v) for v in rng.random(3))) for s in sizes]
    screened: list[np.ndarray] = []

    def spy(candidates, front, count, rng):
        screened.append(1.0 - candidates[:, 0])  # back to sizes
        return select(candidates, front, count, rng)

    monkeypatch.setattr("nas.strategies.nsga2.screening.select", spy)

    def in_gap(values) -> float:
        return float(np.mean([GAP[0] <= v <= GAP[1] for v in values]))

    shares = {}
    for prescreen in (1, 4):
        strategy = _strategy(1, prescreen=prescreen, initial=initial)
        first = strategy.ask()
        # values on the trade-off line (size, 1 - size): every member is on the front
        strategy.tell([(size(g), 1.0 - size(g)) for g in first])
        children = [size(g) for g in strategy.ask()]
        shares[prescreen] = in_gap(children)
    (made,) = screened
    assert len(made) == 32 and all(np.isclose(made, c).any() for c in children)
    assert in_gap(made) < 1.0  # there were candidates outside the gap to pass over
    # the first child kept is the candidate farthest from every size on the front
    distance = [min(abs(c - s) for s in sizes) for c in made]
    assert min(abs(children[0] - s) for s in sizes) == pytest.approx(max(distance))
    assert shares[4] > in_gap(made) and shares[4] > shares[1]


def test_same_seed_same_batches_other_seed_other_batches():
    assert _history(_strategy(3), 4) == _history(_strategy(3), 4)
    assert _history(_strategy(3), 4) != _history(_strategy(4), 4)


def test_children_stay_novel_and_only_the_kept_ones_count_as_seen():
    strategy = _strategy(2)
    asked: set[str] = set()
    for batch in _history(strategy, 5):
        assert not asked & set(batch) and len(set(batch)) == len(batch)
        asked |= set(batch)
    assert set(strategy.state()["seen"]) == asked


@pytest.mark.parametrize("pending", [False, True])
def test_state_and_restore_continue_to_the_same_batches(pending: bool):
    original = _strategy(7)
    _history(original, 2)
    if pending:
        original.ask()  # the checkpoint holds the screened batch being evaluated
    state = json.loads(json.dumps(original.state()))
    restored = _strategy(7)
    restored.restore(state)
    assert _history(restored, 3) == _history(original, 3)


def test_prescreen_needs_free_objectives():
    with pytest.raises(ValueError, match="free_objectives"):
        Nsga2(
            VectorSpace(),
            weights=(-1.0, -1.0),
            population_size=8,
            rng=np.random.default_rng(0),
            prescreen=2,
        )
    with pytest.raises(ValueError, match="prescreen must be >= 1"):
        _strategy(0, prescreen=0)


def test_settings_carry_prescreen_to_nsga2():
    settings = StrategySettings(
        space=VectorSpace(dims=4),
        weights=(-1.0, -1.0),
        population=8,
        generations=2,
        seed=5,
        options=Nsga2Settings(crossover_prob=0.9, mutation_prob=1.0, prescreen=4),
        free_objectives=free,
    )
    strategy = make_strategy("nsga2", settings)
    assert strategy.prescreen == 4 and strategy.free_objectives is free
    assert _history(strategy, 3) == _history(_strategy(5), 3)
    # the others ignore it
    for name in ("random", "optuna-tpe"):
        assert len(make_strategy(name, settings).ask()) == 8


def test_the_lineage_is_kept_for_the_children_kept_only():
    strategy = _strategy(6)
    _history(strategy, 1)
    children = strategy.ask()
    assert all(strategy.lineage(child) for child in children)
    kept = {genome_hash(strategy.space, child) for child in children}
    assert set(strategy.state()["lineage"]) == kept
