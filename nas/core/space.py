"""The protocol between the engine and a search space, and the genome identity helpers.

The engine (evolution, evaluation, storage, export) knows no particular architecture:
it only calls the methods below. A search space is a module under ``search_spaces/``
(or any importable module) exposing an object named ``SPACE`` that follows
:class:`SearchSpace`. Genomes are frozen, plain data; their identity is the hash of
their canonical JSON, so two genomes that describe the same architecture and training
recipe have the same hash and are never trained twice in a run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

from nas.core.errors import ConfigError
from nas.core.plugins import import_plugin

if TYPE_CHECKING:
    import keras

    from nas.core.task import Task

__all__ = [
    "TRAINING_GENES",
    "Decisions",
    "ModelCost",
    "RandomDecisions",
    "SearchSpace",
    "TrainingRecipe",
    "TrialDecisions",
    "WeightSource",
    "architecture_hash",
    "canonical_json",
    "describe_candidate",
    "genome_hash",
    "load_space",
]

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class TrainingRecipe:
    """The training settings a genome carries (co-evolved with the architecture)."""

    learning_rate: float
    batch_size: int
    optimizer: Literal["adam", "adamw", "sgd"]
    weight_decay: float


class ModelCost(NamedTuple):
    """What a decoded model costs, known from its genome alone (no TensorFlow).

    ``params`` is the built model's ``count_params()`` and ``flops`` its
    :func:`nas.training.model_stats.count_flops`, exactly.
    """

    params: int
    flops: int


@dataclass(frozen=True)
class WeightSource:
    """Where the layers of one part of a child's model find their counterparts in a parent's.

    A child layer named ``child_prefix + rest`` corresponds to the parent's layer
    ``parent_prefix + rest``; ``parent_prefix`` is None when the part is new to the child
    (nothing in this parent corresponds to it). ``identical`` is True when the part's own
    genes are equal in both genomes, so its layers are the same layers (their shapes may
    still differ when a neighbouring part changed the channels coming in). The longest
    ``child_prefix`` that starts a layer's name applies; a layer no prefix starts
    corresponds to the parent's layer of the same name.
    """

    child_prefix: str
    parent_prefix: str | None
    identical: bool


@runtime_checkable
class SearchSpace(Protocol):
    """What a search space provides. Every method is pure given its ``rng``.

    A space may also declare ``head_forms``, the forms of task output its models produce
    (:class:`nas.core.task.OutputHead`; e.g. ``("points",)``); an experiment pairing it
    with a task of another form is refused when it is loaded. Without it, a space is
    taken to build any. ``multitask_head_forms`` says the same of the heads of its
    ``build_multitask`` models, where it differs. A space builds a task's head from
    ``task.head`` (plain data), never from the kind's name, so a kind added later needs
    no change to it.

    A space may also provide ``suggest(trial) -> genome``, the define-by-run mapping that
    lets Optuna's samplers drive it (``strategy = "optuna-tpe"``): every decision of
    :meth:`sample` asked of an ``optuna.Trial`` by a fixed name. Writing ``sample`` once
    against :class:`Decisions` gives both (see ``search_spaces/cnn/space.py``).

    A space may also provide ``weight_sources(child, parent) -> tuple[WeightSource, ...]``
    (pure, no TensorFlow), which says which layers of a parent's model correspond to each
    part of a child's (see :class:`WeightSource`); weight inheritance
    (:mod:`nas.training.inheritance`) then follows parts that moved (an inserted or removed stage)
    and takes each part of a crossover child from the parent that gave it. Without it,
    layers correspond by name.

    A space may also provide ``describe_architecture(genome) -> str``: :meth:`describe`
    without the training genes, which a search with one recipe for every candidate records
    instead (:func:`describe_candidate`).

    A space may also provide ``cost(genome, task) -> ModelCost``: the parameters and
    FLOPs of ``build(genome, task)``, exactly, computed without building it or importing
    TensorFlow (raising what ``build`` would raise). The driver then knows those
    objectives before training, and NSGA-II can pre-screen its offspring on them
    (``[search] prescreen``).
    """

    name: str

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw a random valid genome."""
        ...

    def mutate(self, genome: Any, rng: np.random.Generator) -> Any:
        """Return a valid genome that differs from ``genome`` in at least one gene."""
        ...

    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> tuple[Any, Any]:
        """Recombine two parents into two valid children."""
        ...

    def validate(self, genome: Any) -> None:
        """Raise :class:`nas.core.errors.GenomeError` if ``genome`` is not a valid architecture."""
        ...

    def to_json(self, genome: Any) -> dict[str, Any]:
        """Plain JSON-ready data; ``from_json(to_json(g)) == g``."""
        ...

    def from_json(self, data: Mapping[str, Any]) -> Any:
        """Parse and validate; raise :class:`nas.core.errors.GenomeError` naming the bad field."""
        ...

    def build(self, genome: Any, task: Task) -> keras.Model:
        """Decode to an uncompiled Keras model for ``task`` (imports TensorFlow)."""
        ...

    def recipe(self, genome: Any) -> TrainingRecipe:
        """The training settings encoded in ``genome``."""
        ...

    def describe(self, genome: Any) -> str:
        """A short human-readable summary, e.g. ``"stem16 | basic 2x32 s2 | ..."``."""
        ...


class Decisions(Protocol):
    """The choices a genome is drawn from, each by a name that is stable across draws.

    A space that draws its genomes through this interface gets both a random sampler
    (:class:`RandomDecisions`) and the define-by-run mapping Optuna's samplers need
    (:class:`TrialDecisions`) from one function. A name must always be asked with the same
    options (Optuna checks that a parameter keeps its distribution), so a choice whose
    options depend on an earlier one carries that dependency in its name.
    """

    def choice(self, name: str, options: Sequence[_T]) -> _T:
        """One of ``options``."""
        ...

    def integer(self, name: str, low: int, high: int) -> int:
        """An integer in ``low..high``, both included."""
        ...

    def flag(self, name: str, probability: float) -> bool:
        """True with ``probability`` (a hint: Optuna's samplers learn their own)."""
        ...


class RandomDecisions:
    """:class:`Decisions` drawn from ``rng``: uniform choices, one generator draw each."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def choice(self, name: str, options: Sequence[_T]) -> _T:
        return options[int(self.rng.integers(len(options)))]

    def integer(self, name: str, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def flag(self, name: str, probability: float) -> bool:
        return bool(self.rng.random() < probability)


class TrialDecisions:
    """:class:`Decisions` asked of an ``optuna.Trial`` (or ``FixedTrial``), one parameter each.

    Choices become categorical parameters, integers integer parameters and flags
    categorical ``[False, True]``, so the trial records its parameters and distributions
    as Optuna expects and its samplers (TPE, NSGA-II, ...) can learn from them.
    """

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def choice(self, name: str, options: Sequence[_T]) -> _T:
        return self.trial.suggest_categorical(name, list(options))

    def integer(self, name: str, low: int, high: int) -> int:
        return int(self.trial.suggest_int(name, low, high))

    def flag(self, name: str, probability: float) -> bool:
        return bool(self.trial.suggest_categorical(name, [False, True]))


def canonical_json(space: SearchSpace, genome: Any) -> str:
    """Deterministic JSON text of a genome: sorted keys, no whitespace."""
    return json.dumps(space.to_json(genome), sort_keys=True, separators=(",", ":"))


def genome_hash(space: SearchSpace, genome: Any) -> str:
    """A stable 16-hex-digit identity of a genome within its space."""
    return _identity(space, space.to_json(genome))


def _identity(space: SearchSpace, data: Any) -> str:
    text = f"{space.name}:{json.dumps(data, sort_keys=True, separators=(',', ':'))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


TRAINING_GENES = "training"
"""The top-level field of a genome's JSON that holds its training genes (optimizer, rate,
batch): the built-in spaces' convention, which :func:`architecture_hash` relies on."""


def architecture_hash(space: SearchSpace, genome: Any) -> str:
    """A stable identity of the net a genome builds: :func:`genome_hash` of its JSON without
    the training genes (:data:`TRAINING_GENES`). Two genomes that differ only in genes a
    recipe ignores (``recipe = "standard"``) build and train the same net. A space whose
    JSON has no such field gets its :func:`genome_hash`."""
    data = space.to_json(genome)
    if not isinstance(data, dict) or TRAINING_GENES not in data:
        return genome_hash(space, genome)
    return _identity(space, {key: value for key, value in data.items() if key != TRAINING_GENES})


def describe_candidate(space: SearchSpace, genome: Any, recipe: str) -> str:
    """A candidate's one line as its trial records it. Under ``[budget] recipe =
    "standard"`` every candidate trains with one recipe and the genome's training genes are
    not used, so a space that provides ``describe_architecture`` is described without
    them, followed by ``standard recipe``; otherwise :meth:`SearchSpace.describe`."""
    architecture = getattr(space, "describe_architecture", None)
    if recipe == "standard" and callable(architecture):
        return f"{architecture(genome)} | standard recipe"
    return space.describe(genome)


def load_space(name: str) -> SearchSpace:
    """Find a search space by name.

    ``"cnn"`` loads ``search_spaces.cnn.SPACE``; ``"my_pkg.my_space"`` loads
    ``my_pkg.my_space.SPACE``, so a new space needs no change in ``nas/``.
    """
    module_name = name if "." in name else f"search_spaces.{name}"
    try:
        module = import_plugin(module_name)
    except ConfigError as exc:
        raise ConfigError(
            f"unknown search space {name!r}: {exc} "
            "(built in: 'cnn', 'resunet'; or give an importable module that defines SPACE)"
        ) from None
    space = getattr(module, "SPACE", None)
    if not isinstance(space, SearchSpace):
        raise ConfigError(
            f"module {module_name!r} has no SPACE object following nas.core.space.SearchSpace"
        )
    return space
