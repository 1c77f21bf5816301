"""The protocol between the search driver and a search strategy, and what strategies share.

A strategy proposes genomes in batches (:meth:`Strategy.ask`), learns from their
objective values (:meth:`Strategy.tell`), and can be frozen to plain JSON data and thawed
again (:meth:`Strategy.state`, :meth:`Strategy.restore`), so a killed search continues
where it stopped. The driver (:mod:`nas.engine.evolve`) runs :meth:`Strategy.propose`'s
proposals, each carrying its genome's parents, trial parameters and fidelity, and knows
nothing else about it, as in Optuna's ask/tell interface and pymoo's ``Algorithm``. A new
strategy subclasses :class:`BaseStrategy`, which has defaults for all but the five
members every strategy must write.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nas.core.config import Experiment
from nas.core.space import SearchSpace, genome_hash

__all__ = [
    "PRESCREEN_RULES",
    "BaseStrategy",
    "Fidelity",
    "FreeObjectives",
    "GenomeFlops",
    "Promotable",
    "Proposal",
    "Strategy",
    "StrategyEntry",
    "StrategySettings",
    "TrialParameters",
    "check_told",
    "novel_genomes",
]

NOVELTY_TRIES = 25
"""Draws per genome before a batch accepts a genome already seen in the run."""


FreeObjectives = Callable[[Any], tuple[float | None, ...]]
"""A genome's objectives known before training, one entry per objective: None for those
that need training, the others on the hypervolume's scale (:func:`nas.core.objectives.normalise`:
1 at the metric's ideal, 0 at the reference point, below 0 past it)."""


PRESCREEN_RULES: tuple[str, ...] = ("size", "surrogate")
"""What NSGA-II's pre-screening keeps children by (``[search] prescreen_by``): the free
objectives' gaps (:mod:`nas.strategies.prescreen`), or a surrogate
(:mod:`nas.strategies.surrogate`)."""

GenomeFlops = Callable[[Any], float | None]
"""A genome's FLOPs per image, counted before training (None: it would not build)."""

Promotable = Callable[[Sequence[float]], bool]
"""Whether a genome with these low-fidelity objective values may be promoted to the full
budget (multi-fidelity); the driver builds it (:func:`nas.strategies.multifidelity.promotable_rule`)."""


@dataclass(frozen=True)
class Fidelity:
    """The fidelity of a strategy's open batch, with multi-fidelity on
    (``[search] low_fidelity_images``; successive halving with two rungs).

    ``rung`` 0: every genome of the batch trains ``images`` images (from scratch, or from
    its parents' weights). ``rung`` 1: each genome of the batch, promoted from rung 0,
    continues from its own rung-0 weights (its :meth:`Strategy.lineage` is itself) for the
    rest of the budget, so that it has seen the budget's ``train_images`` in all
    (``images`` None).
    """

    rung: int
    images: int | None = None
    continues: int | None = None
    """The rung whose own weights each genome of the batch continues from, for the rest
    of the budget (None: it starts from scratch or from its parents')."""


@dataclass(frozen=True)
class Proposal:
    """One training a strategy asks for, with everything the driver needs to run it
    (Syne Tune's ``TrialSuggestion`` is the model): the genome; ``parents``, the genomes it
    was made from, in order of preference for weight inheritance; its Optuna trial
    ``parameters`` when it was proposed as such; and its fidelity: ``images`` to train
    (None: the budget's ``train_images``), ``rung`` (a key of its own, so one genome's
    trainings at two fidelities are two trials; None without multi-fidelity) and
    ``continues``, the rung of its own earlier training whose weights it continues from
    for the rest of the budget. The driver knows no algorithm's rungs: it runs proposals.
    """

    genome: Any
    parents: tuple[Any, ...] = ()
    parameters: TrialParameters | None = None
    images: int | None = None
    rung: int | None = None
    continues: int | None = None


@dataclass(frozen=True, kw_only=True)
class StrategySettings:
    """What every strategy is built from: the space, the objectives' directions, the batch.

    ``weights`` holds +1.0 for each objective to maximise and -1.0 for each to minimise.
    A batch (a "generation") holds ``population`` genomes; a strategy is done after
    ``generations + 1`` batches. ``initial`` genomes (baselines) enter the first batch
    unchanged. ``seed`` makes every random choice of the strategy.

    ``options`` is the strategy's own settings: an instance of its
    :attr:`StrategyEntry.settings`, read from the ``[search]`` keys it declares
    (:func:`nas.strategies.strategy_options`), or None for its defaults (NSGA-II's are
    :class:`nas.strategies.nsga2.Nsga2Settings`). A new knob is a field of that class, in
    the strategy's own module.

    The driver adds what it alone can compute, for any strategy that wants it:
    ``free_objectives``, a genome's objectives known before training (from the space's
    ``cost`` and the task; NSGA-II's pre-screening ranks children on them), and
    ``promotable``, whether low-fidelity values are worth promoting (not near chance),
    and ``flops``, a genome's FLOPs per image (NSGA-II's ``select_by = "score+flops"``).
    """

    space: SearchSpace
    weights: tuple[float, ...]
    population: int
    generations: int
    seed: int
    initial: tuple[Any, ...] = field(default=())
    options: Any = None
    free_objectives: FreeObjectives | None = None
    promotable: Promotable | None = None
    flops: GenomeFlops | None = None


@dataclass(frozen=True)
class StrategyEntry:
    """A strategy as an experiment names it: how to build it, what it needs of a search
    space, and its own ``[search]`` keys.

    ``settings`` is a frozen, keyword-only dataclass whose fields are the strategy's own
    ``[search]`` keys with their defaults; its constructor raises ``ValueError`` with a
    sentence for a bad value. ``check`` (optional) checks those settings against the rest
    of the experiment (its budget, objectives, space; ``ValueError`` with one sentence).
    A strategy with neither takes no keys of its own.
    """

    build: Callable[[StrategySettings], Strategy]
    summary: str
    space_needs: tuple[str, ...] = ()
    settings: type | None = None
    check: Callable[[Any, Experiment], None] | None = None


@dataclass(frozen=True)
class TrialParameters:
    """A genome as an Optuna trial's parameters, for strategies that think in them.

    ``distributions`` maps each parameter to its distribution as
    ``optuna.distributions.distribution_to_json`` writes it, so the run's study records
    the trial's parameters and distributions as Optuna expects (the dashboard plots them).
    """

    params: dict[str, Any]
    distributions: dict[str, str]


@runtime_checkable
class Strategy(Protocol):
    """A search strategy in ask/tell form.

    >>> strategy = make_strategy("random", settings)  # doctest: +SKIP
    >>> while not strategy.done:  # doctest: +SKIP
    ...     genomes = strategy.ask()
    ...     strategy.tell([evaluate(g) for g in genomes])
    """

    generation: int
    """Batches told so far (the generation of the next :meth:`ask`)."""

    @property
    def done(self) -> bool:
        """True once every batch the settings allow has been told."""
        ...

    def ask(self) -> list[Any]:
        """The genomes of the current batch; asking again before :meth:`tell` repeats them."""
        ...

    def tell(self, values: Sequence[Sequence[float]]) -> None:
        """Objective values of the last :meth:`ask`'s genomes, in the same order."""
        ...

    def state(self) -> dict[str, Any]:
        """Everything :meth:`ask` and :meth:`tell` depend on, as plain JSON-ready data."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` of a strategy built with the same settings."""
        ...

    def parameters(self, genome: Any) -> TrialParameters | None:
        """The trial parameters behind ``genome`` when the strategy proposed it as such."""
        ...

    def lineage(self, genome: Any) -> tuple[Any, ...]:
        """The parent genomes ``genome`` of the open batch was made from, in order of
        preference for weight inheritance (``[search] inherit_weights``); empty for a
        genome drawn without parents (and for every genome of a strategy without them).
        Part of :meth:`state`, so a resumed search sends the same parents."""
        ...

    def fidelity(self) -> Fidelity | None:
        """The fidelity of the current batch (:class:`Fidelity`), or None when the strategy
        evaluates every genome once at the experiment's whole budget. Part of :meth:`state`."""
        ...

    def propose(self) -> list[Proposal]:
        """The current batch as the driver runs it: :meth:`ask`'s genomes, each with its
        lineage, parameters and the batch's fidelity."""
        ...

    def note(self) -> str | None:
        """A line about the strategy itself after a :meth:`tell` (NSGA-II's surrogate),
        or None."""
        ...


class BaseStrategy(ABC):
    """What a strategy inherits (Optuna's ``BaseSampler`` is the model): it writes
    :meth:`ask`, :meth:`tell`, :meth:`state`, :meth:`restore` and :attr:`done`; the rest
    has defaults for a strategy that draws genomes without parents or trial parameters
    and trains each once at the whole budget."""

    generation: int = 0

    @property
    @abstractmethod
    def done(self) -> bool:
        """True once every batch the settings allow has been told."""

    @abstractmethod
    def ask(self) -> list[Any]:
        """The genomes of the current batch; asking again before :meth:`tell` repeats them."""

    @abstractmethod
    def tell(self, values: Sequence[Sequence[float]]) -> None:
        """Objective values of the last :meth:`ask`'s genomes, in the same order."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything :meth:`ask` and :meth:`tell` depend on, as plain JSON-ready data."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` of a strategy built with the same settings."""

    def parameters(self, genome: Any) -> TrialParameters | None:
        """None: the strategy proposes genomes, not trial parameters."""
        return None

    def lineage(self, genome: Any) -> tuple[Any, ...]:
        """Empty: the strategy draws genomes without parents."""
        return ()

    def fidelity(self) -> Fidelity | None:
        """None: every genome trains once at the whole budget."""
        return None

    def note(self) -> str | None:
        """None: nothing to say after a batch."""
        return None

    def propose(self) -> list[Proposal]:
        """:meth:`ask`'s genomes as proposals, with :meth:`lineage`, :meth:`parameters`
        and the batch's :meth:`fidelity`."""
        fidelity = self.fidelity()
        return [
            Proposal(
                genome,
                parents=self.lineage(genome),
                parameters=self.parameters(genome),
                images=None if fidelity is None else fidelity.images,
                rung=None if fidelity is None else fidelity.rung,
                continues=None if fidelity is None else fidelity.continues,
            )
            for genome in self.ask()
        ]


def novel_genomes(
    space: SearchSpace,
    rng: np.random.Generator,
    seen: set[str],
    count: int,
    initial: Sequence[Any] = (),
) -> list[Any]:
    """``initial`` (validated) then samples of ``space``, ``count`` in all, each new to ``seen``.

    ``seen`` is updated. After :data:`NOVELTY_TRIES` draws per genome a repeated sample is
    accepted (a tiny space may not have ``count`` new genomes left).
    """
    genomes = []
    for genome in initial:
        space.validate(genome)
        key = genome_hash(space, genome)
        if key not in seen:
            seen.add(key)
            genomes.append(genome)
    tries = 0
    while len(genomes) < count:
        genome = space.sample(rng)
        tries += 1
        key = genome_hash(space, genome)
        if key not in seen or tries > NOVELTY_TRIES * count:
            seen.add(key)
            genomes.append(genome)
    return genomes


def check_told(asked: Sequence[Any] | None, values: Sequence[Sequence[float]]) -> None:
    """Refuse a :meth:`Strategy.tell` without a pending ask, or with the wrong number of values."""
    if asked is None:
        raise RuntimeError("tell() without a pending ask()")
    if len(values) != len(asked):
        raise ValueError(f"expected {len(asked)} value tuples, got {len(values)}")
