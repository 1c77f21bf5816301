"""The CNN genome: its genes' grids and validation ranges, the frozen dataclasses,
their validation and JSON form, and the training genes the ResUNet space shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nas.core.space import (
    Decisions,
    RandomDecisions,
    TrainingRecipe,
)
from search_spaces._genes import (
    GenomeChecks,
    GenomeJson,
    as_float,
    other,
    pick,
    short,
    step,
)

if TYPE_CHECKING:
    pass


Block = Literal["plain", "basic", "bottleneck"]
Activation = Literal["relu", "swish", "gelu"]
Pooling = Literal["avg", "max"]
Optimizer = Literal["adam", "adamw", "sgd"]

BLOCKS: tuple[str, ...] = ("plain", "basic", "bottleneck")
ACTIVATIONS: tuple[str, ...] = ("relu", "swish", "gelu")
POOLINGS: tuple[str, ...] = ("avg", "max")
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")

BN_EPSILON = 1.001e-5  # keras.applications.ResNet50's value
# Keras' default BN momentum (0.99) leaves the moving statistics far from the batch
# statistics after the ~100-200 steps of a brief search budget, so every candidate
# scores near chance in inference mode (measured on the synthetic faces, 5 epochs of
# 2,000 images: 5 sampled nets all at 0.20-0.23 with 0.99, three at 0.78-0.83 with 0.9).
# Momentum has no parameters, so ResNet50's parameter count is unchanged.
BN_MOMENTUM = 0.9
SE_RATIO = 16
SE_MIN_UNITS = 4

# --- sampling grids (sample and mutate) -------------------------------------------------
STEM_WIDTHS = (8, 12, 16, 24, 32)
STEM_KERNELS = (3, 5, 7)
STAGE_WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128)
FIRST_STAGE_WIDTHS = 5  # the first sampled stage is 8..32 wide
STAGE_DEPTHS = (1, 2, 3)
STAGE_KERNELS = (3, 5)
EXPANSIONS = (1, 2, 4)
MAX_STAGES = 4
SE_PROBABILITY = 0.25
DENSE_WIDTHS = (32, 64, 128, 256)
MAX_DENSE = 2
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
ADAM_SAMPLED_LEARNING_RATES = (3e-4, 1e-3, 3e-3)
SGD_SAMPLED_LEARNING_RATES = (1e-2, 3e-2, 1e-1)
BATCH_SIZES = (16, 32, 64, 128, 256)
SAMPLED_BATCH_SIZES = (32, 64, 128)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
MAX_DOWNSAMPLING = 16  # sampled nets reduce 48x48 inputs to no less than 3x3

# --- validation ranges ------------------------------------------------------------------
VALID_STEM_WIDTH = (1, 1024)
VALID_STEM_KERNELS = (1, 3, 5, 7, 9, 11)
VALID_STRIDES = (1, 2)
VALID_STAGES = (1, 8)
VALID_DEPTH = (1, 64)
VALID_WIDTH = (1, 2048)
VALID_STAGE_KERNELS = (1, 3, 5, 7)
VALID_EXPANSION = (1, 8)
VALID_DENSE_LAYERS = (0, 4)
VALID_DENSE_WIDTH = (1, 8192)
VALID_DROPOUT = (0.0, 0.9)
VALID_LEARNING_RATE = (0.0, 1.0)  # exclusive of 0
VALID_BATCH_SIZE = (1, 8192)
VALID_WEIGHT_DECAY = (0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class Stem:
    """The first conv: ``width`` filters, ``kernel`` x ``kernel``, ``stride``; then BN,
    the first stage's activation and, if ``pool``, a 3x3 max-pool with stride 2."""

    width: int
    kernel: int = 3
    stride: int = 1
    pool: bool = False


@dataclass(frozen=True, kw_only=True)
class Stage:
    """``depth`` blocks of one kind at one resolution.

    ``block``: ``"plain"`` (conv-BN-act, no shortcut), ``"basic"`` (two kxk convs with a
    shortcut, ResNet-18 style) or ``"bottleneck"`` (1x1 -> kxk -> 1x1 x ``expansion``
    with a shortcut, ResNet-50 v1 style). ``width`` is the number of filters (the inner
    width of a bottleneck, whose output has ``width * expansion`` channels). ``stride``
    applies to the first block. ``expansion`` is canonically 1 for non-bottleneck stages.
    """

    block: Block
    depth: int
    width: int
    kernel: int = 3
    stride: int = 1
    expansion: int = 1
    se: bool = False
    activation: Activation = "relu"

    def __post_init__(self) -> None:
        if self.block != "bottleneck":
            object.__setattr__(self, "expansion", 1)

    @property
    def out_channels(self) -> int:
        """Channels of the stage's output."""
        return self.width * self.expansion


@dataclass(frozen=True, kw_only=True)
class Head:
    """Global ``pooling``, hidden Dense layers of widths ``dense``, then ``dropout``
    right before the softmax output layer."""

    pooling: Pooling = "avg"
    dense: tuple[int, ...] = ()
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.dense, list):
            object.__setattr__(self, "dense", tuple(self.dense))
        object.__setattr__(self, "dropout", as_float(self.dropout))


@dataclass(frozen=True, kw_only=True)
class Training:
    """The co-evolved training recipe. ``adamw`` with no weight decay is ``adam``."""

    learning_rate: float = 1e-3
    batch_size: int = 64
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "learning_rate", as_float(self.learning_rate))
        object.__setattr__(self, "weight_decay", as_float(self.weight_decay))
        if self.optimizer == "adamw" and self.weight_decay == 0:
            object.__setattr__(self, "optimizer", "adam")


@dataclass(frozen=True, kw_only=True)
class CnnGenome:
    """A whole candidate: stem, stages (at least one), head and training recipe."""

    stem: Stem
    stages: tuple[Stage, ...]
    head: Head = Head()
    training: Training = Training()

    def __post_init__(self) -> None:
        if isinstance(self.stages, list):
            object.__setattr__(self, "stages", tuple(self.stages))


def downsampling(genome: CnnGenome) -> int:
    """The factor by which the backbone reduces each spatial side (with 'same' padding)."""
    factor = genome.stem.stride * (2 if genome.stem.pool else 1)
    for stage in genome.stages:
        factor *= stage.stride
    return factor


# --- validation -------------------------------------------------------------------------

_checks = GenomeChecks("CNN")


def validate_genome(genome: Any) -> None:
    """Raise :class:`GenomeError` naming the first gene outside its validation range."""
    _checks.check_type("genome", genome, CnnGenome)
    stem = genome.stem
    _checks.check_type("stem", stem, Stem)
    _checks.check_int("stem.width", stem.width, *VALID_STEM_WIDTH)
    _checks.check_choice("stem.kernel", stem.kernel, VALID_STEM_KERNELS)
    _checks.check_choice("stem.stride", stem.stride, VALID_STRIDES)
    _checks.check_bool("stem.pool", stem.pool)

    _checks.check_tuple("stages", genome.stages, Stage)
    low, high = VALID_STAGES
    if not low <= len(genome.stages) <= high:
        raise _checks.fail("stages", f"has {len(genome.stages)} stages; allowed {low}..{high}")
    for i, stage in enumerate(genome.stages):
        path = f"stages[{i}]"
        _checks.check_type(path, stage, Stage)
        _checks.check_choice(f"{path}.block", stage.block, BLOCKS)
        _checks.check_int(f"{path}.depth", stage.depth, *VALID_DEPTH)
        _checks.check_int(f"{path}.width", stage.width, *VALID_WIDTH)
        _checks.check_choice(f"{path}.kernel", stage.kernel, VALID_STAGE_KERNELS)
        _checks.check_choice(f"{path}.stride", stage.stride, VALID_STRIDES)
        if stage.block == "bottleneck":
            _checks.check_int(f"{path}.expansion", stage.expansion, *VALID_EXPANSION)
        elif stage.expansion != 1:
            raise _checks.fail(f"{path}.expansion", "must be 1 for a non-bottleneck stage")
        _checks.check_bool(f"{path}.se", stage.se)
        _checks.check_choice(f"{path}.activation", stage.activation, ACTIVATIONS)

    head = genome.head
    _checks.check_type("head", head, Head)
    _checks.check_choice("head.pooling", head.pooling, POOLINGS)
    if not isinstance(head.dense, tuple):
        raise _checks.fail(
            "head.dense", f"must be a tuple of widths, got {type(head.dense).__name__}"
        )
    low, high = VALID_DENSE_LAYERS
    if not low <= len(head.dense) <= high:
        raise _checks.fail("head.dense", f"has {len(head.dense)} layers; allowed {low}..{high}")
    for i, width in enumerate(head.dense):
        _checks.check_int(f"head.dense[{i}]", width, *VALID_DENSE_WIDTH)
    _checks.check_float("head.dropout", head.dropout, *VALID_DROPOUT)

    check_training(_checks, genome.training)


# --- the training genes (shared with the ResUNet space) ---------------------------------


def check_training(checks: GenomeChecks, training: Any) -> None:
    """Raise ``checks``' :class:`GenomeError` naming the first ``training.*`` gene outside
    its validation range."""
    checks.check_type("training", training, Training)
    checks.check_float(
        "training.learning_rate", training.learning_rate, *VALID_LEARNING_RATE, open_low=True
    )
    checks.check_int("training.batch_size", training.batch_size, *VALID_BATCH_SIZE)
    checks.check_choice("training.optimizer", training.optimizer, OPTIMIZERS)
    checks.check_float("training.weight_decay", training.weight_decay, *VALID_WEIGHT_DECAY)


def sample_training(
    rng: np.random.Generator, batch_sizes: Sequence[int] = SAMPLED_BATCH_SIZES
) -> Training:
    """Draw a training recipe: an optimizer, a learning rate suited to it, a batch size
    from ``batch_sizes`` and a weight decay (non-zero for ``adamw``)."""
    return draw_training(RandomDecisions(rng), batch_sizes)


def draw_training(decide: Decisions, batch_sizes: Sequence[int] = SAMPLED_BATCH_SIZES) -> Training:
    """:func:`sample_training` through named decisions (see :class:`nas.core.space.Decisions`)."""
    optimizer = decide.choice("training.optimizer", OPTIMIZERS)
    rates = SGD_SAMPLED_LEARNING_RATES if optimizer == "sgd" else ADAM_SAMPLED_LEARNING_RATES
    decays = WEIGHT_DECAYS[1:] if optimizer == "adamw" else WEIGHT_DECAYS
    family = "sgd" if optimizer == "sgd" else "adam"
    return Training(
        learning_rate=decide.choice(f"training.learning_rate.{family}", rates),
        batch_size=decide.choice("training.batch_size", batch_sizes),
        optimizer=optimizer,  # type: ignore[arg-type]
        weight_decay=decide.choice(f"training.weight_decay.{optimizer}", decays),
    )


def mutate_training(
    training: Training, rng: np.random.Generator, batch_sizes: Sequence[int] = BATCH_SIZES
) -> Training:
    """Change one training gene: step the learning rate, the batch size (on the ascending
    grid ``batch_sizes``) or the weight decay, or switch the optimizer."""
    gene = pick(rng, ("learning_rate", "batch_size", "optimizer", "weight_decay"))
    if gene == "learning_rate":
        return replace(training, learning_rate=step(training.learning_rate, LEARNING_RATES, rng))
    if gene == "batch_size":
        return replace(training, batch_size=step(training.batch_size, batch_sizes, rng))
    if gene == "weight_decay":
        return replace(training, weight_decay=step(training.weight_decay, WEIGHT_DECAYS, rng))
    optimizer = other(training.optimizer, OPTIMIZERS, rng)
    decay = training.weight_decay
    if optimizer == "adamw" and decay == 0:
        decay = pick(rng, WEIGHT_DECAYS[1:])  # adamw without decay would just be adam
    return replace(training, optimizer=optimizer, weight_decay=decay)


def training_recipe(training: Training) -> TrainingRecipe:
    """The engine's :class:`~nas.core.space.TrainingRecipe` for ``training``."""
    return TrainingRecipe(
        learning_rate=training.learning_rate,
        batch_size=training.batch_size,
        optimizer=training.optimizer,
        weight_decay=training.weight_decay,
    )


def describe_training(training: Training) -> str:
    """E.g. ``adam lr1e-3 b64`` or ``adamw lr3e-4 b32 wd1e-4``."""
    text = f"{training.optimizer} lr{short(training.learning_rate)} b{training.batch_size}"
    return text + (f" wd{short(training.weight_decay)}" if training.weight_decay else "")


# --- JSON -------------------------------------------------------------------------------

GENOME_JSON = GenomeJson(
    "CNN",
    {
        Stem: {"width": "int", "kernel": "int", "stride": "int", "pool": "bool"},
        Stage: {
            "block": "str",
            "depth": "int",
            "width": "int",
            "kernel": "int",
            "stride": "int",
            "expansion": "int",
            "se": "bool",
            "activation": "str",
        },
        Head: {"pooling": "str", "dense": "ints", "dropout": "float"},
        Training: {
            "learning_rate": "float",
            "batch_size": "int",
            "optimizer": "str",
            "weight_decay": "float",
        },
    },
)


# --- the space --------------------------------------------------------------------------
