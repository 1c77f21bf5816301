"""What every search strategy must do, checked on the toy vector space without training.

A new strategy registered in :data:`nas.strategies.STRATEGIES` is covered by
``tests/nas/strategies/test_conformance.py`` automatically; an outside strategy
calls each of :data:`CHECKS` with its registered name from its own tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.core.space import genome_hash
from nas.strategies import StrategySettings, make_strategy
from nas.testing.toy_space import VectorSpace, zdt1


def settings(seed: int = 0, *, population: int = 8, generations: int = 3, initial=()):
    return StrategySettings(
        space=VectorSpace(dims=4),
        weights=(-1.0, -1.0),
        population=population,
        generations=generations,
        seed=seed,
        initial=tuple(initial),
    )


def history(name: str, seed: int, batches: int | None = None, **kwargs) -> list[list[str]]:
    """The genome hashes of every batch a strategy asks for, told ZDT1 values."""
    strategy = make_strategy(name, settings(seed, **kwargs))
    space = strategy.space if hasattr(strategy, "space") else VectorSpace(dims=4)
    asked = []
    while not strategy.done and (batches is None or len(asked) < batches):
        genomes = strategy.ask()
        asked.append([genome_hash(space, g) for g in genomes])
        strategy.tell([zdt1(g) for g in genomes])
    return asked


def check_batches_have_the_population_and_valid_genomes(name: str) -> None:
    strategy = make_strategy(name, settings())
    space = VectorSpace(dims=4)
    for _ in range(4):
        genomes = strategy.ask()
        assert len(genomes) == 8
        for genome in genomes:
            space.validate(genome)
        assert strategy.ask() == genomes, "asking again before tell repeats the batch"
        strategy.tell([zdt1(g) for g in genomes])
    assert strategy.done and strategy.generation == 4


def check_tell_checks_its_input(name: str) -> None:
    strategy = make_strategy(name, settings())
    with pytest.raises(RuntimeError):
        strategy.tell([(0.0, 0.0)] * 8)
    strategy.ask()
    with pytest.raises(ValueError):
        strategy.tell([(0.0, 0.0)] * 3)


def check_same_seed_same_genomes_other_seed_other_genomes(name: str) -> None:
    assert history(name, 3) == history(name, 3)
    assert history(name, 3) != history(name, 4)


def check_state_round_trip_continues_identically(name: str) -> None:
    """A strategy restored from JSON state (after an ask or after a tell) asks what the
    original asks, batch after batch."""
    for cut_after_ask in (False, True):
        original = make_strategy(name, settings(5))
        for _ in range(2):
            genomes = original.ask()
            original.tell([zdt1(g) for g in genomes])
        if cut_after_ask:
            original.ask()
        state = json.loads(json.dumps(original.state()))
        restored = make_strategy(name, settings(5))
        restored.restore(state)
        assert restored.generation == original.generation
        while not original.done:
            expected = original.ask()
            assert restored.ask() == expected
            values = [zdt1(g) for g in expected]
            original.tell(values)
            restored.tell(values)
        assert restored.done


def check_seeds_enter_the_first_batch_unchanged(name: str) -> None:
    seed_genome = (0.0, 0.5, 0.5, 0.5)
    strategy = make_strategy(name, settings(initial=[seed_genome]))
    assert seed_genome in strategy.ask()


def check_lineage_is_parents_and_survives_restore(name: str) -> None:
    """Every asked genome has a tuple of parent genomes (maybe empty), and a strategy
    restored from the state after an ask names the same parents."""
    strategy = make_strategy(name, settings(2))
    space = VectorSpace(dims=4)
    strategy.tell([zdt1(g) for g in strategy.ask()])
    genomes = strategy.ask()
    restored = make_strategy(name, settings(2))
    restored.restore(json.loads(json.dumps(strategy.state())))
    for genome in genomes:
        parents = strategy.lineage(genome)
        assert isinstance(parents, tuple)
        for parent in parents:
            space.validate(parent)
        assert [genome_hash(space, p) for p in restored.lineage(genome)] == [
            genome_hash(space, p) for p in parents
        ]


def check_one_fidelity_without_low_fidelity_images(name: str) -> None:
    """Without ``low_fidelity_images`` every batch is at the whole budget (None)."""
    strategy = make_strategy(name, settings())
    for _ in range(2):
        genomes = strategy.ask()
        assert strategy.fidelity() is None
        strategy.tell([zdt1(g) for g in genomes])


def check_proposals_are_the_asked_genomes_with_their_parents(name: str) -> None:
    """``propose`` is the open batch as the driver runs it: the genomes ``ask`` gives, in
    its order, each with its ``lineage`` and ``parameters``, at the batch's fidelity; and
    it keeps the batch open (asking again repeats it)."""
    strategy = make_strategy(name, settings(4))
    space = VectorSpace(dims=4)
    for _ in range(2):
        proposals = strategy.propose()
        genomes = strategy.ask()
        assert [genome_hash(space, p.genome) for p in proposals] == [
            genome_hash(space, g) for g in genomes
        ]
        for proposal in proposals:
            assert proposal.parents == strategy.lineage(proposal.genome)
            assert proposal.parameters == strategy.parameters(proposal.genome)
            assert (proposal.images, proposal.rung, proposal.continues) == (None, None, None)
        strategy.tell([zdt1(g) for g in genomes])
    assert strategy.note() is None or isinstance(strategy.note(), str)


def check_asks_mostly_new_genomes(name: str) -> None:
    hashes = [key for batch in history(name, 1) for key in batch]
    assert len(set(hashes)) >= 0.9 * len(hashes)


def zdt1_hypervolume(name: str, seed: int, *, population: int, generations: int) -> float:
    """Hypervolume (reference 1.1, 1.1) of every point a strategy evaluated on ZDT1."""
    import moocore

    strategy = make_strategy(name, settings(seed, population=population, generations=generations))
    points = []
    while not strategy.done:
        values = [zdt1(g) for g in strategy.ask()]
        points += values
        strategy.tell(values)
    return float(moocore.hypervolume(np.array(points), ref=[1.1, 1.1]))


CHECKS = [
    check_batches_have_the_population_and_valid_genomes,
    check_tell_checks_its_input,
    check_same_seed_same_genomes_other_seed_other_genomes,
    check_state_round_trip_continues_identically,
    check_seeds_enter_the_first_batch_unchanged,
    check_asks_mostly_new_genomes,
    check_lineage_is_parents_and_survives_restore,
    check_one_fidelity_without_low_fidelity_images,
    check_proposals_are_the_asked_genomes_with_their_parents,
]
