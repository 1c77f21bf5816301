"""NSGA-II as an ask/tell strategy over any search space (``strategy = "nsga2"``).

Deb et al. (2002), "A fast and elitist multiobjective genetic algorithm: NSGA-II":
parents are drawn by binary tournaments on (rank, crowding distance), children are made
by the space's own crossover and mutation, and survivors are the best ``N`` of parents
plus children by non-dominated sorting, then crowding distance.

DEAP supplies the sorting and crowding (:func:`deap.tools.selNSGA2`). The tournament is
written here because DEAP's ``selTournamentDCD`` draws from Python's global ``random``;
ours draws from the experiment's :class:`numpy.random.Generator`, so a seed fixes the run.
DEAP's ``creator`` is not used: individuals never leave the driver process, and workers
only ever see genome JSON.

With ``prescreen`` above 1, each generation's children are pre-screened on the objectives
known before training (parameters, FLOPs): see :mod:`nas.strategies.prescreen`; with
``prescreen_by = "surrogate"``, on the trained objectives predicted by a model learnt from
the run's own trials as well: see :mod:`nas.strategies.surrogate`. With
``low_fidelity_images`` above 0, each generation is evaluated in two rungs and only the
promoted children compete for survival: see :mod:`nas.strategies.multifidelity`. With
``select_by = "score+flops"``, selection reads the first objective ranked together with
the FLOPs (:meth:`Nsga2._selection_view`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from deap import base, tools

from nas.core.ranking import kendall_tau, rank_average
from nas.core.space import SearchSpace, genome_hash
from nas.strategies import multifidelity
from nas.strategies import prescreen as screening
from nas.strategies import surrogate as surrogates
from nas.strategies.base import (
    NOVELTY_TRIES,
    PRESCREEN_RULES,
    BaseStrategy,
    Fidelity,
    FreeObjectives,
    GenomeFlops,
    Promotable,
    StrategyEntry,
    StrategySettings,
    check_told,
    novel_genomes,
)
from nas.strategies.nsga2_settings import (
    MAX_PRESCREEN,
    SELECT_RULES,
    Nsga2Settings,
    check_experiment,
)

__all__ = [
    "MAX_PRESCREEN",
    "STRATEGY",
    "Member",
    "Nsga2",
    "Nsga2Settings",
    "check_experiment",
    "from_settings",
]


@dataclass(frozen=True)
class Member:
    """A genome of the current population with its objective values."""

    genome: Any
    values: tuple[float, ...]


class _Individual:
    """What DEAP's selection functions expect: an object with a ``fitness``."""

    __slots__ = ("fitness", "genome")

    def __init__(self, genome: Any, fitness: base.Fitness) -> None:
        self.genome = genome
        self.fitness = fitness


class Nsga2(BaseStrategy):
    """NSGA-II over ``space``: :meth:`ask` for genomes, :meth:`tell` their objective values.

    ``weights`` holds +1.0 for each objective to maximise and -1.0 for each to minimise.
    ``initial`` genomes (baselines) enter generation 0 unchanged; random samples fill the
    rest. Children are kept novel: a child already seen in this run is mutated again, up
    to a few times, so the front is not crowded by copies.

    With ``prescreen`` K above 1, each generation makes K x ``population_size`` children
    the same way and keeps the ``population_size`` that best fill the gaps of the front
    along ``free_objectives`` (see :mod:`nas.strategies.prescreen`); the others are
    forgotten (they may come up again later). With ``prescreen_by = "surrogate"``, once
    :data:`~nas.strategies.surrogate.MIN_TRIALS` genomes have been told, the children
    kept are instead the best ``population_size`` by non-dominated sorting and crowding
    on the trained objectives a surrogate predicts (ranks, learnt from every genome told
    so far) and the exact free objectives (:mod:`nas.strategies.surrogate`);
    :meth:`note` says how well its predictions have ranked the children trained since.

    With ``low_fidelity_images`` N above 0 (multi-fidelity), a generation takes two asks
    and two tells: first every child at N images (:meth:`fidelity` rung 0), then the
    ``ceil(promote_fraction x batch)`` best of them that ``promotable`` allows, each
    continuing from its own weights (rung 1; :meth:`lineage` is the genome itself). Only
    the rung-1 values enter survivor selection, so the population may hold fewer than
    ``population_size`` members; the tournaments then draw more rounds from it. A
    generation that promotes nobody leaves the population as it was, and an empty
    population (nothing promoted yet) is refilled with fresh samples of the space.

    >>> strategy = Nsga2(space, weights=(1.0, -1.0), population_size=8, rng=rng)  # doctest: +SKIP
    >>> while strategy.generation <= 3:  # doctest: +SKIP
    ...     genomes = strategy.ask()
    ...     strategy.tell([evaluate(g) for g in genomes])
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        weights: Sequence[float],
        population_size: int,
        rng: np.random.Generator,
        crossover_prob: float = 0.5,
        mutation_prob: float = 0.8,
        initial: Sequence[Any] = (),
        generations: int = 10_000,
        prescreen: int = 1,
        prescreen_by: str = "size",
        free_objectives: FreeObjectives | None = None,
        low_fidelity_images: int = 0,
        promote_fraction: float = 0.5,
        promotable: Promotable | None = None,
        select_by: str = "score",
        flops: GenomeFlops | None = None,
    ) -> None:
        if population_size < 4 or population_size % 4:
            raise ValueError(f"population_size must be a multiple of 4, got {population_size}")
        if len(initial) > population_size:
            raise ValueError(
                f"{len(initial)} seed genomes do not fit a population of {population_size}"
            )
        if prescreen < 1:
            raise ValueError(f"prescreen must be >= 1 (1 = off), got {prescreen}")
        if prescreen_by not in PRESCREEN_RULES:
            raise ValueError(f"prescreen_by must be one of {PRESCREEN_RULES}, got {prescreen_by!r}")
        if prescreen > 1 and prescreen_by == "size" and free_objectives is None:
            raise ValueError("prescreen > 1 needs free_objectives to screen the children on")
        if low_fidelity_images < 0:
            raise ValueError(
                f"low_fidelity_images must be >= 0 (0 = off), got {low_fidelity_images}"
            )
        if not 0.0 < promote_fraction <= 1.0:
            raise ValueError(f"promote_fraction must be in (0, 1], got {promote_fraction}")
        if select_by not in SELECT_RULES:
            raise ValueError(f"select_by must be one of {SELECT_RULES}, got {select_by!r}")
        if select_by == "score+flops" and flops is None:
            raise ValueError("select_by = 'score+flops' needs the genomes' FLOPs (flops)")
        self.space = space
        self.population_size = population_size
        self.crossover_prob = crossover_prob
        self.mutation_prob = mutation_prob
        self.rng = rng
        self.generation = 0
        self.generations = generations
        self.prescreen = prescreen
        self.prescreen_by = prescreen_by
        self.free_objectives = free_objectives
        self.low_fidelity_images = low_fidelity_images
        self.promote_fraction = promote_fraction
        self.promotable = promotable
        self.select_by = select_by
        self.flops = flops
        self._weights = tuple(weights)
        self._fitness_class = type("Fitness", (base.Fitness,), {"weights": tuple(weights)})
        # what selection reads with select_by = "score+flops": the combined rank, maximised
        self._view_class = type("Fitness", (base.Fitness,), {"weights": (1.0, *weights[1:])})
        self._initial = list(initial)
        self._population: list[_Individual] = []
        self._asked: list[Any] | None = None
        self._seen: set[str] = set()
        self._lineage: dict[str, tuple[Any, ...]] = {}  # child hash -> parents, open batch
        self._promoted: list[Any] | None = None  # multi-fidelity: rung 1's batch, once known
        # the surrogate's memory: every genome told (hash -> JSON, values), the predictions
        # made for the open batch's children (hash -> predicted rank of the first trained
        # objective) and (predicted, told) pairs of the children trained since
        self._told: dict[str, tuple[dict[str, Any], tuple[float, ...]]] = {}
        self._predicted: dict[str, float] = {}
        self._screened: list[tuple[float, float]] = []

    @property
    def done(self) -> bool:
        """True once generation ``generations`` (after the initial one) has been told."""
        return self.generation > self.generations

    def lineage(self, genome: Any) -> tuple[Any, ...]:
        """The parents a child of the open batch was made from: both parents of a
        crossover child (the one its first stages come from first), the one parent of a
        mutated or copied one; empty in generation 0. In a promotion batch (rung 1) a
        promoted genome's lineage is itself: it continues from its own weights."""
        key = genome_hash(self.space, genome)
        if self._promoted is not None:
            promoted = any(genome_hash(self.space, g) == key for g in self._promoted)
            return (genome,) if promoted else ()
        return self._lineage.get(key, ())

    def fidelity(self) -> Fidelity | None:
        """Rung 0 (``low_fidelity_images`` images) or rung 1 (promoted genomes, on to the
        full budget) for the current batch; None without multi-fidelity."""
        if not self.low_fidelity_images:
            return None
        if self._promoted is not None:
            return Fidelity(rung=1, continues=0)
        return Fidelity(rung=0, images=self.low_fidelity_images)

    @property
    def population(self) -> list[Member]:
        """The survivors after the last :meth:`tell`."""
        return [Member(i.genome, tuple(i.fitness.values)) for i in self._population]

    def ask(self) -> list[Any]:
        """The genomes of the current generation, to be evaluated and passed to :meth:`tell`."""
        if self._asked is None and self._promoted is not None:  # multi-fidelity, rung 1
            self._asked = list(self._promoted)
        if self._asked is None:
            self._lineage = {}
            # the population is empty only when multi-fidelity has promoted nobody yet
            fresh = self.generation == 0 or not self._population
            self._asked = self._initial_genomes() if fresh else self._offspring()
            asked = {genome_hash(self.space, g) for g in self._asked}
            self._lineage = {k: v for k, v in self._lineage.items() if k in asked}
        return list(self._asked)

    def tell(self, values: Sequence[Sequence[float]]) -> None:
        """Objective values for the genomes of the last :meth:`ask`, in the same order."""
        check_told(self._asked, values)
        if self.low_fidelity_images and self._promoted is None:  # rung 0 told: promote
            assert self._asked is not None
            self._promoted = self._promote(self._asked, values)
            self._asked = None
            self._lineage = {}
            if self._promoted:
                return  # the generation goes on with rung 1
            children = []  # nobody promoted: the generation ends here
        else:
            children = [self._individual(g, v) for g, v in zip(self._asked, values, strict=True)]
            if self.prescreen_by == "surrogate":
                self._remember_told(self._asked, values)
        self._population = self._survivors(self._population + children)
        self._asked = None
        self._promoted = None
        self._lineage = {}
        self.generation += 1

    def _survivors(self, pool: list[_Individual]) -> list[_Individual]:
        """The best ``population_size`` of ``pool`` by non-dominated sorting and crowding
        (DEAP's ``selNSGA2``) as :meth:`_selection_view` shows them, each keeping its own
        values and the crowding distance it was selected with."""
        view = self._selection_view(pool)
        chosen = tools.selNSGA2(view, self.population_size)
        if view is pool:
            return chosen
        position = {id(twin): index for index, twin in enumerate(view)}
        survivors = []
        for twin in chosen:
            individual = pool[position[id(twin)]]
            individual.fitness.crowding_dist = twin.fitness.crowding_dist
            survivors.append(individual)
        return survivors

    def _selection_view(self, individuals: list[_Individual]) -> list[_Individual]:
        """``individuals`` as selection compares them: themselves, or with ``select_by =
        "score+flops"`` twins whose first objective is the mean of each one's rank by that
        objective and its rank by FLOPs among ``individuals`` (more compute ranking
        higher), 0 for a failed candidate or one at chance (``promotable`` refuses it);
        the other objectives as they are, and the crowding distance the individual holds."""
        if self.select_by == "score" or not individuals:
            return individuals
        assert self.flops is not None
        counted = [self.flops(i.genome) for i in individuals]
        combined = rank_average(
            [self._weights[0] * i.fitness.values[0] for i in individuals],
            [-1.0 if f is None else f for f in counted],
        )
        twins = []
        for individual, value, flops in zip(individuals, combined, counted, strict=True):
            values = individual.fitness.values
            useful = flops is not None and (self.promotable is None or self.promotable(values))
            fitness = self._view_class()
            fitness.values = (float(value) if useful else 0.0, *values[1:])
            if hasattr(individual.fitness, "crowding_dist"):
                fitness.crowding_dist = individual.fitness.crowding_dist
            twins.append(_Individual(individual.genome, fitness))
        return twins

    def _promote(self, batch: Sequence[Any], values: Sequence[Sequence[float]]) -> list[Any]:
        """The genomes of ``batch`` (told at rung 0) that go on to rung 1, each once."""
        first: dict[str, int] = {}
        for index, genome in enumerate(batch):
            first.setdefault(genome_hash(self.space, genome), index)
        unique = sorted(first.values())
        chosen = multifidelity.promote(
            [values[i] for i in unique],
            self._weights,
            self.promote_fraction,
            self.promotable,
        )
        return [batch[unique[i]] for i in chosen]

    def state(self) -> dict[str, Any]:
        """Everything :meth:`ask` and :meth:`tell` depend on, as plain JSON-ready data.

        A strategy restored from it with :meth:`restore` asks for the same genomes and,
        told the same values, keeps the same population as this one would.
        """
        to_json = self.space.to_json
        return {
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "population": [
                {
                    "genome": to_json(i.genome),
                    "values": list(i.fitness.values),
                    "crowding": getattr(i.fitness, "crowding_dist", None),
                }
                for i in self._population
            ],
            "asked": None if self._asked is None else [to_json(g) for g in self._asked],
            "seen": sorted(self._seen),
            "lineage": {k: [to_json(p) for p in v] for k, v in sorted(self._lineage.items())},
            "promoted": None if self._promoted is None else [to_json(g) for g in self._promoted],
            "told": [[key, data, list(values)] for key, (data, values) in self._told.items()],
            "predicted": dict(sorted(self._predicted.items())),
            "screened": [list(pair) for pair in self._screened],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` of a strategy over the same space and settings."""
        from_json = self.space.from_json
        self.generation = int(state["generation"])
        self.rng.bit_generator.state = state["rng"]
        self._population = []
        for member in state["population"]:
            individual = self._individual(from_json(member["genome"]), member["values"])
            if member["crowding"] is not None:
                individual.fitness.crowding_dist = float(member["crowding"])
            self._population.append(individual)
        asked = state["asked"]
        self._asked = None if asked is None else [from_json(g) for g in asked]
        self._seen = set(state["seen"])
        lineage = state.get("lineage", {})  # absent from checkpoints written before it
        self._lineage = {k: tuple(from_json(p) for p in v) for k, v in lineage.items()}
        promoted = state.get("promoted")  # absent from checkpoints written before it
        self._promoted = None if promoted is None else [from_json(g) for g in promoted]
        # the surrogate's memory; absent from checkpoints written before it
        self._told = {
            str(key): (dict(data), tuple(float(v) for v in values))
            for key, data, values in state.get("told", [])
        }
        self._predicted = {str(k): float(v) for k, v in state.get("predicted", {}).items()}
        self._screened = [(float(p), float(t)) for p, t in state.get("screened", [])]

    def _individual(self, genome: Any, values: Sequence[float]) -> _Individual:
        fitness = self._fitness_class()
        fitness.values = tuple(float(v) for v in values)
        return _Individual(genome, fitness)

    def _remember(self, genome: Any) -> bool:
        key = genome_hash(self.space, genome)
        new = key not in self._seen
        self._seen.add(key)
        return new

    def _initial_genomes(self) -> list[Any]:
        return novel_genomes(self.space, self.rng, self._seen, self.population_size, self._initial)

    def _offspring(self) -> list[Any]:
        learning = self.prescreen_by == "surrogate" and len(self._told) < surrogates.MIN_TRIALS
        if self.prescreen == 1 or (learning and self.free_objectives is None):
            return self._variation()  # nothing to screen on yet
        seen = set(self._seen)
        candidates = [child for _ in range(self.prescreen) for child in self._variation()]
        if self.prescreen_by == "surrogate" and len(self._told) >= surrogates.MIN_TRIALS:
            chosen = self._predicted_best(candidates)
        else:
            front = tools.sortNondominated(
                self._population, len(self._population), first_front_only=True
            )[0]
            chosen = screening.select(
                self._free_values(candidates),
                self._free_values([member.genome for member in front]),
                self.population_size,
                self.rng,
            )
        children = [candidates[i] for i in chosen]
        # only the children kept count as seen: the others were never proposed
        self._seen = seen | {genome_hash(self.space, child) for child in children}
        return children

    def _remember_told(self, genomes: Sequence[Any], values: Sequence[Sequence[float]]) -> None:
        """Keep what the surrogate learns from, and score its predictions for the batch."""
        for genome, told in zip(genomes, values, strict=True):
            self._told[genome_hash(self.space, genome)] = (
                self.space.to_json(genome),
                tuple(float(v) for v in told),
            )
        trained = self._trained_axes()
        if trained and self._predicted:
            j = trained[0]
            for genome, told in zip(genomes, values, strict=True):
                predicted = self._predicted.pop(genome_hash(self.space, genome), None)
                if predicted is not None:
                    self._screened.append((predicted, self._weights[j] * told[j]))
        self._predicted = {}

    def _trained_axes(self) -> list[int]:
        """The objectives known only by training (every one without free objectives)."""
        if self.free_objectives is None or not self._told:
            return list(range(len(self._weights)))
        genome = self.space.from_json(next(iter(self._told.values()))[0])
        return [j for j, value in enumerate(self.free_objectives(genome)) if value is None]

    def _surrogate_rows(self, genomes: Sequence[Any]) -> list[dict[str, float]]:
        """Each genome's features: its JSON flattened, and its free objectives."""
        rows = []
        for genome in genomes:
            row = surrogates.genome_features(self.space.to_json(genome))
            if self.free_objectives is not None:
                for j, value in enumerate(self.free_objectives(genome)):
                    if value is not None:
                        row[f"free{j}"] = float(value) if np.isfinite(value) else -1.0
            rows.append(row)
        return rows

    def _predicted_best(self, candidates: Sequence[Any]) -> list[int]:
        """Indices of the ``population_size`` candidates NSGA-II's survivor selection would
        keep on the surrogate's predicted trained objectives and the exact free ones."""
        told_genomes = [self.space.from_json(data) for data, _ in self._told.values()]
        told_values = np.array([values for _, values in self._told.values()], dtype=float)
        known = self._surrogate_rows(told_genomes)
        rows = self._surrogate_rows(candidates)
        free = (
            self._free_values(candidates)
            if self.free_objectives is not None
            else np.zeros((len(candidates), 0))
        )
        trained = self._trained_axes()
        predicted = np.zeros((len(candidates), len(trained)))
        for column, j in enumerate(trained):
            model = surrogates.Surrogate.fit(
                known, surrogates.rank_targets(told_values[:, j], self._weights[j])
            )
            predicted[:, column] = model.predict(rows)
        vectors = np.concatenate([predicted, np.nan_to_num(free, nan=-1.0)], axis=1)
        fitness_class = type("Fitness", (base.Fitness,), {"weights": (1.0,) * vectors.shape[1]})
        individuals = []
        for index, vector in enumerate(vectors):
            fitness = fitness_class()
            fitness.values = tuple(float(v) for v in vector)
            individuals.append(_Individual(index, fitness))
        chosen = [int(i.genome) for i in tools.selNSGA2(individuals, self.population_size)]
        if trained:
            for index in chosen:
                key = genome_hash(self.space, candidates[index])
                self._predicted[key] = float(predicted[index, 0])
        return chosen

    def note(self) -> str | None:
        """How well the surrogate has ranked the children it kept, once they were
        trained (Kendall's tau of predicted against told, over every such child so far);
        None while it has screened none."""
        if self.prescreen_by != "surrogate":
            return None
        if len(self._screened) < 2:
            left = max(surrogates.MIN_TRIALS - len(self._told), 0)
            return (
                f"surrogate: screening by size until {left} more genomes are told" if left else None
            )
        predicted, told = zip(*self._screened, strict=True)
        tau = kendall_tau(predicted, told)
        return f"surrogate: tau {tau:.2f} between predicted and trained, over {len(told)} children it kept"

    @property
    def surrogate_pairs(self) -> list[tuple[float, float]]:
        """(predicted rank, told value oriented so higher is better) of every child the
        surrogate kept and that was trained since."""
        return list(self._screened)

    def _free_values(self, genomes: Sequence[Any]) -> np.ndarray:
        """The free objectives of ``genomes``, one row each (NaN where unknown)."""
        assert self.free_objectives is not None
        rows = [self.free_objectives(genome) for genome in genomes]
        axes = [j for j, value in enumerate(rows[0]) if value is not None] if rows else []
        return np.array(
            [[np.nan if row[j] is None else row[j] for j in axes] for row in rows], dtype=float
        ).reshape(len(rows), len(axes))

    def _variation(self) -> list[Any]:
        """``population_size`` children by tournament, crossover and mutation, each novel."""
        parents = self._tournament(self._selection_view(self._population))
        children = []
        for first, second in zip(parents[::2], parents[1::2], strict=True):
            a, b = first.genome, second.genome
            lineages: tuple[tuple[Any, ...], ...] = ((a,), (b,))
            if self.rng.random() < self.crossover_prob:
                a, b = self.space.crossover(a, b, self.rng)
                lineages = ((first.genome, second.genome), (second.genome, first.genome))
            for child, lineage in zip((a, b), lineages, strict=True):
                if self.rng.random() < self.mutation_prob:
                    child = self.space.mutate(child, self.rng)
                child = self._novel(child)
                self._remember_lineage(child, lineage)
                children.append(child)
        return children

    def _remember_lineage(self, child: Any, parents: Sequence[Any]) -> None:
        """Note the distinct ``parents`` of ``child``, in order, for :meth:`lineage`."""
        unique: dict[str, Any] = {}
        for parent in parents:
            unique.setdefault(genome_hash(self.space, parent), parent)
        self._lineage[genome_hash(self.space, child)] = tuple(unique.values())

    def _novel(self, genome: Any) -> Any:
        for _ in range(NOVELTY_TRIES):
            if self._remember(genome):
                return genome
            genome = self.space.mutate(genome, self.rng)
        return genome

    def _tournament(self, individuals: list[_Individual]) -> list[_Individual]:
        """``population_size`` parents by binary tournaments on dominance, then crowding
        distance (DEAP's DCD scheme): each round pairs a fresh permutation of
        ``individuals``, two rounds for a full population, more for a smaller one (with
        multi-fidelity), where an odd one out sits a round out."""
        count = self.population_size
        if len(individuals) == 1:
            return [individuals[0]] * count
        chosen: list[_Individual] = []
        while len(chosen) < count:
            order = self.rng.permutation(len(individuals))
            for i in range(0, len(order) - 1, 2):
                if len(chosen) == count:
                    break
                chosen.append(self._duel(individuals[order[i]], individuals[order[i + 1]]))
        return chosen

    def _duel(self, a: _Individual, b: _Individual) -> _Individual:
        if a.fitness.dominates(b.fitness):
            return a
        if b.fitness.dominates(a.fitness):
            return b
        if a.fitness.crowding_dist != b.fitness.crowding_dist:
            return a if a.fitness.crowding_dist > b.fitness.crowding_dist else b
        return a if self.rng.random() < 0.5 else b


def from_settings(settings: StrategySettings) -> Nsga2:
    """NSGA-II built from the experiment's :class:`~nas.strategies.base.StrategySettings`
    and its own :class:`Nsga2Settings` (their defaults when ``settings.options`` is None)."""
    own = settings.options if settings.options is not None else Nsga2Settings()
    return Nsga2(
        settings.space,
        weights=settings.weights,
        population_size=settings.population,
        rng=np.random.default_rng(settings.seed),
        crossover_prob=own.crossover_prob,
        mutation_prob=own.mutation_prob,
        initial=settings.initial,
        generations=settings.generations,
        prescreen=own.prescreen,
        prescreen_by=own.prescreen_by,
        free_objectives=settings.free_objectives,
        low_fidelity_images=own.low_fidelity_images,
        promote_fraction=own.promote_fraction,
        promotable=settings.promotable,
        select_by=own.select_by,
        flops=settings.flops,
    )


STRATEGY = StrategyEntry(
    from_settings,
    "NSGA-II with the space's crossover and mutation",
    settings=Nsga2Settings,
    check=check_experiment,
)
"""``strategy = "nsga2"`` (the default)."""
