"""The CNN search space: ResNet-style stages of plain, basic or bottleneck blocks.

A genome (:class:`CnnGenome`) is frozen plain data: a stem, one or more stages, a
classification head and the training recipe. It decodes to a Keras model that takes raw
pixels (0..255, float32), rescales them to [0, 1], runs the backbone, pools globally and
ends in a softmax over the task's classes.

Two ranges matter for every gene:

* the **sampling grid** (``sample`` and ``mutate``): small, fast nets that train in
  seconds to minutes on a CPU at 48x48 (most have 10k..1M parameters);
* the **validation range** (``validate`` and ``from_json``): much wider, wide enough for
  hand-designed architectures such as ResNet50 (``baselines/resnet50.py``).

``mutate`` steps ordered genes to a neighbouring grid value; a value off the grid (e.g.
ResNet50's width 512 or depth 6) moves to the nearest grid value on either side, so a
hand-designed genome drifts back into the sampled region.

Genomes are canonical by construction (``__post_init__``): genes that do not change the
architecture or the training are normalised (the expansion of a non-bottleneck stage is 1;
``adamw`` without weight decay is ``adam``; lists become tuples; integral floats become
floats), so two genomes that describe the same network compare and hash equal.

Decoder conventions (matching ``keras.applications.ResNet50`` exactly for bottlenecks):

* every conv has a bias and is followed by ``BatchNormalization(epsilon=1.001e-5)``,
  with momentum 0.9 instead of Keras' 0.99 so that brief training gives usable moving
  statistics (see ``BN_MOMENTUM``);
  padding is ``"same"`` everywhere;
* the stem is conv(width, kernel, stride) + BN + activation (+ 3x3/2 max-pool), with the
  first stage's activation;
* a stage's stride applies to its first block (for a bottleneck, on the first 1x1 conv,
  as in ResNet v1); a residual block gets a projection shortcut (1x1 conv with the stride
  + BN) when the stride is not 1 or the channel count changes, identity otherwise;
* squeeze-excitation (``se``): global average pool -> Dense(max(4, channels // 16), the
  stage activation) -> Dense(channels, sigmoid) -> scale; on a residual block it scales
  the residual branch after its last BN, before the add; on a plain block it scales the
  block output after the activation;
* the head's hidden Dense layers use the last stage's activation; ``dropout`` is one
  Dropout layer right before the output layer (none when 0).

Only the decoder (:meth:`CnnSpace.build`, :func:`backbone` and the layer helpers
:func:`conv_bn` and :func:`residual_block`, which the ResUNet space reuses) imports
Keras / TensorFlow. :meth:`CnnSpace.cost` gives the decoded model's exact parameter and
FLOP counts from the genome alone, without Keras (:mod:`search_spaces._cost`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nas.core.space import (
    Decisions,
    ModelCost,
    RandomDecisions,
    TrainingRecipe,
    TrialDecisions,
    WeightSource,
)
from search_spaces._cost import CostCounter, Tensor
from search_spaces._genes import (
    GenomeChecks,
    GenomeJson,
    align,
    as_float,
    dump,
    is_valid,
    other,
    pick,
    short,
    step,
)

if TYPE_CHECKING:
    import keras

    from nas.core.task import Task

__all__ = [
    "SPACE",
    "CnnGenome",
    "CnnSpace",
    "Head",
    "Stage",
    "Stem",
    "Training",
    "backbone",
    "check_training",
    "conv_bn",
    "describe_training",
    "downsampling",
    "mutate_training",
    "residual_block",
    "residual_block_cost",
    "sample_training",
    "training_recipe",
    "validate_genome",
]

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

_json = GenomeJson(
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


class CnnSpace:
    """The ResNet-style CNN search space (see the module docstring for its conventions).

    ``max_downsampling`` bounds how much sampled genomes shrink the input (16: a 48x48
    face ends at no less than 3x3); mutation and crossover keep children within it, or
    within their parents' downsampling when a parent already exceeds it (e.g. ResNet50's
    32). It bounds the operators only; ``validate`` accepts any downsampling.
    """

    name = "cnn"
    task_kinds: tuple[str, ...] = ("classification", "keypoints")
    """The kinds of :class:`~nas.core.task.Task` it builds models for (checked by nas.core.config)."""

    def __init__(self, *, max_downsampling: int = MAX_DOWNSAMPLING) -> None:
        self.max_downsampling = max_downsampling

    # -- sampling ------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> CnnGenome:
        """Draw a small random genome from the sampling grids."""
        return self.draw(RandomDecisions(rng))

    def suggest(self, trial: Any) -> CnnGenome:
        """The same draw as :meth:`sample`, each decision a parameter of an Optuna trial."""
        return self.draw(TrialDecisions(trial))

    def draw(self, decide: Decisions) -> CnnGenome:
        """A genome from named decisions: :meth:`sample` and :meth:`suggest` in one."""
        activation = decide.choice("activation", ACTIVATIONS)
        budget = int(math.log2(self.max_downsampling))
        stem_stride = decide.choice("stem.stride", (1, 2)) if budget >= 1 else 1
        budget -= stem_stride - 1
        pool = budget >= 1 and decide.flag("stem.pool", 0.5)
        budget -= int(pool)
        stem = Stem(
            width=decide.choice("stem.width", STEM_WIDTHS),
            kernel=decide.choice("stem.kernel", STEM_KERNELS),
            stride=stem_stride,
            pool=pool,
        )
        n_stages = decide.integer("stages", 1, MAX_STAGES)
        # a pyramid: the first stage is 8..32 wide; a later stage is as wide as the one
        # before or ~1.5x wider, and ~1.5x or 2x wider when it halves the resolution
        index = decide.integer("stage0.width_index", 0, FIRST_STAGE_WIDTHS - 1)
        stages = []
        for i in range(n_stages):
            stride = 2 if budget >= 1 and decide.flag(f"stage{i}.halves", 0.5) else 1
            budget -= stride - 1
            if i > 0:
                index += decide.integer(f"stage{i}.wider", 0, 1) + (stride - 1)
            width = STAGE_WIDTHS[min(index, len(STAGE_WIDTHS) - 1)]
            stages.append(
                self._draw_stage(
                    decide, f"stage{i}", width=width, stride=stride, activation=activation
                )
            )
        return CnnGenome(
            stem=stem,
            stages=tuple(stages),
            head=self._draw_head(decide),
            training=draw_training(decide),
        )

    def _sample_stage(
        self, rng: np.random.Generator, *, width: int, stride: int, activation: str
    ) -> Stage:
        return self._draw_stage(
            RandomDecisions(rng), "stage", width=width, stride=stride, activation=activation
        )

    def _draw_stage(
        self, decide: Decisions, name: str, *, width: int, stride: int, activation: str
    ) -> Stage:
        block = decide.choice(f"{name}.block", BLOCKS)
        return Stage(
            block=block,  # type: ignore[arg-type]
            depth=decide.choice(f"{name}.depth", STAGE_DEPTHS),
            width=width,
            kernel=decide.choice(f"{name}.kernel", STAGE_KERNELS),
            stride=stride,
            expansion=decide.choice(f"{name}.expansion", EXPANSIONS)
            if block == "bottleneck"
            else 1,
            se=decide.flag(f"{name}.se", SE_PROBABILITY),
            activation=activation,  # type: ignore[arg-type]
        )

    def _draw_head(self, decide: Decisions) -> Head:
        n_dense = decide.integer("head.dense_layers", 0, MAX_DENSE)
        widths = [decide.choice(f"head.dense{i}", DENSE_WIDTHS) for i in range(n_dense)]
        return Head(
            pooling=decide.choice("head.pooling", POOLINGS),  # type: ignore[arg-type]
            dense=tuple(sorted(widths, reverse=True)),
            dropout=decide.choice("head.dropout", DROPOUTS),
        )

    # -- variation -----------------------------------------------------------------------

    def mutate(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        """Change one randomly chosen gene group; the result is valid and differs.

        Groups (with their weights): one gene of one stage (0.5), add a sampled stage at
        a random position (0.08, up to 4 stages), remove a stage (0.08, down to 1), one
        stem gene (0.1), one head gene (0.1), one training gene (0.14). Raises
        :class:`GenomeError` if ``genome`` itself is invalid.
        """
        self.validate(genome)
        cap = max(self.max_downsampling, downsampling(genome))
        for _ in range(200):
            child = self._mutate_once(genome, rng)
            if child != genome and downsampling(child) <= cap and is_valid(validate_genome, child):
                return child
        raise RuntimeError(f"could not mutate {self.describe(genome)}")  # pragma: no cover

    def _mutate_once(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        n = len(genome.stages)
        groups: list[tuple[float, Callable[[], CnnGenome]]] = [
            (0.5, lambda: self._mutate_stage(genome, rng)),
            (0.08 if n < MAX_STAGES else 0.0, lambda: self._add_stage(genome, rng)),
            (0.08 if n > 1 else 0.0, lambda: self._remove_stage(genome, rng)),
            (0.1, lambda: replace(genome, stem=self._mutate_stem(genome.stem, rng))),
            (0.1, lambda: replace(genome, head=self._mutate_head(genome.head, rng))),
            (0.14, lambda: replace(genome, training=mutate_training(genome.training, rng))),
        ]
        weights = np.array([w for w, _ in groups])
        chosen = int(rng.choice(len(groups), p=weights / weights.sum()))
        return groups[chosen][1]()

    def _mutate_stage(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        i = int(rng.integers(len(genome.stages)))
        stage = genome.stages[i]
        genes = ["width", "depth", "kernel", "stride", "block", "se", "activation"]
        if stage.block == "bottleneck":
            genes.append("expansion")
        gene = pick(rng, genes)
        if gene == "width":
            new = replace(stage, width=step(stage.width, STAGE_WIDTHS, rng))
        elif gene == "depth":
            new = replace(stage, depth=step(stage.depth, STAGE_DEPTHS, rng))
        elif gene == "kernel":
            new = replace(stage, kernel=step(stage.kernel, STAGE_KERNELS, rng))
        elif gene == "stride":
            new = replace(stage, stride=3 - stage.stride)
        elif gene == "block":
            block = other(stage.block, BLOCKS, rng)
            expansion = pick(rng, EXPANSIONS) if block == "bottleneck" else 1
            new = replace(stage, block=block, expansion=expansion)
        elif gene == "se":
            new = replace(stage, se=not stage.se)
        elif gene == "activation":
            new = replace(stage, activation=other(stage.activation, ACTIVATIONS, rng))
        else:
            new = replace(stage, expansion=step(stage.expansion, EXPANSIONS, rng))
        stages = (*genome.stages[:i], new, *genome.stages[i + 1 :])
        return replace(genome, stages=stages)

    def _add_stage(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        position = int(rng.integers(len(genome.stages) + 1))
        neighbour = genome.stages[min(position, len(genome.stages) - 1)]
        stride = pick(rng, (1, 2))
        stage = self._sample_stage(
            rng, width=pick(rng, STAGE_WIDTHS), stride=stride, activation=neighbour.activation
        )
        stages = (*genome.stages[:position], stage, *genome.stages[position:])
        return replace(genome, stages=stages)

    def _remove_stage(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        i = int(rng.integers(len(genome.stages)))
        return replace(genome, stages=genome.stages[:i] + genome.stages[i + 1 :])

    def _mutate_stem(self, stem: Stem, rng: np.random.Generator) -> Stem:
        gene = pick(rng, ("width", "kernel", "stride", "pool"))
        if gene == "width":
            return replace(stem, width=step(stem.width, STEM_WIDTHS, rng))
        if gene == "kernel":
            return replace(stem, kernel=step(stem.kernel, STEM_KERNELS, rng))
        if gene == "stride":
            return replace(stem, stride=3 - stem.stride)
        return replace(stem, pool=not stem.pool)

    def _mutate_head(self, head: Head, rng: np.random.Generator) -> Head:
        gene = pick(rng, ("pooling", "dense", "dropout"))
        if gene == "pooling":
            return replace(head, pooling=other(head.pooling, POOLINGS, rng))
        if gene == "dropout":
            return replace(head, dropout=step(head.dropout, DROPOUTS, rng))
        moves = []
        if len(head.dense) < MAX_DENSE:
            moves.append("add")
        if head.dense:
            moves += ["remove", "resize"]
        move = pick(rng, moves)
        dense = list(head.dense)
        if move == "add":
            dense.insert(int(rng.integers(len(dense) + 1)), pick(rng, DENSE_WIDTHS))
        elif move == "remove":
            del dense[int(rng.integers(len(dense)))]
        else:
            i = int(rng.integers(len(dense)))
            dense[i] = step(dense[i], DENSE_WIDTHS, rng)
        return replace(head, dense=tuple(dense))

    def crossover(
        self, a: CnnGenome, b: CnnGenome, rng: np.random.Generator
    ) -> tuple[CnnGenome, CnnGenome]:
        """One-point crossover of the stage lists (aligned by index, so a child has as
        many stages as one of its parents or in between) plus a uniform exchange of stem,
        head and training. Both children are valid."""
        self.validate(a)
        self.validate(b)
        cap = max(self.max_downsampling, downsampling(a), downsampling(b))
        longest = max(len(a.stages), len(b.stages))
        children = (a, b)
        for _ in range(20):
            cut = int(rng.integers(1, longest)) if longest > 1 else 1
            stages_a = a.stages[:cut] + b.stages[cut:]
            stages_b = b.stages[:cut] + a.stages[cut:]
            swap = rng.random(3) < 0.5
            stem_a, stem_b = (b.stem, a.stem) if swap[0] else (a.stem, b.stem)
            head_a, head_b = (b.head, a.head) if swap[1] else (a.head, b.head)
            train_a, train_b = (b.training, a.training) if swap[2] else (a.training, b.training)
            children = (
                CnnGenome(stem=stem_a, stages=stages_a, head=head_a, training=train_a),
                CnnGenome(stem=stem_b, stages=stages_b, head=head_b, training=train_b),
            )
            if all(downsampling(c) <= cap for c in children):
                break
        return children

    def weight_sources(self, child: CnnGenome, parent: CnnGenome) -> tuple[WeightSource, ...]:
        """Which of ``parent``'s layers correspond to each part of ``child``'s model (no
        TensorFlow; see :class:`nas.core.space.WeightSource`).

        Parts: the stem (``stem_``), each stage (``stage{i}_``, its blocks by position
        within the stage) and each hidden Dense layer (``fc{i}``); stages and Dense layers
        are aligned as a diff aligns lines (:func:`search_spaces._genes.align`), so a stage
        inserted or removed by a mutation does not shift the ones behind it onto other
        weights. The head's output layer (``predictions`` / ``keypoints_raw``) corresponds
        by name. A part is ``identical`` when its genes are equal; the head's layers when
        the whole head is.
        """
        head = child.head == parent.head
        sources = [WeightSource("stem_", "stem_", child.stem == parent.stem)]
        for i, j in enumerate(align(parent.stages, child.stages)):
            same = j is not None and child.stages[i] == parent.stages[j]
            sources.append(
                WeightSource(f"stage{i + 1}_", None if j is None else f"stage{j + 1}_", same)
            )
        for i, j in enumerate(align(parent.head.dense, child.head.dense)):
            sources.append(WeightSource(f"fc{i + 1}", None if j is None else f"fc{j + 1}", head))
        sources += [WeightSource(name, name, head) for name in ("predictions", "keypoints_raw")]
        return tuple(sources)

    # -- validation and JSON -------------------------------------------------------------

    def validate(self, genome: Any) -> None:
        """Raise :class:`GenomeError` naming the first gene outside its validation range."""
        validate_genome(genome)

    def to_json(self, genome: CnnGenome) -> dict[str, Any]:
        """Nested plain dicts and lists: ``{"stem": {...}, "stages": [...], ...}``."""
        return {
            "stem": dump(genome.stem),
            "stages": [dump(s) for s in genome.stages],
            "head": dump(genome.head),
            "training": dump(genome.training),
        }

    def from_json(self, data: Mapping[str, Any]) -> CnnGenome:
        """Parse and validate; unknown, missing or mistyped fields raise
        :class:`GenomeError` naming their path, e.g. ``stages[1].width``."""
        _json.check_fields("", data, ("stem", "stages", "head", "training"))
        genome = CnnGenome(
            stem=_json.parse(Stem, "stem", data["stem"]),
            stages=_json.parse_list(Stage, "stages", data["stages"]),
            head=_json.parse(Head, "head", data["head"]),
            training=_json.parse(Training, "training", data["training"]),
        )
        validate_genome(genome)
        return genome

    # -- decoding and summaries ----------------------------------------------------------

    def build(self, genome: CnnGenome, task: Task) -> keras.Model:
        """Decode to an uncompiled Keras model: raw pixels -> Rescaling(1/255) ->
        backbone -> global pooling -> hidden Dense+activation -> Dropout -> output.

        The output is a softmax over the classes for classification, and for keypoints a
        linear Dense(2K) reshaped to (K, 2) and mapped from [-1, 1] to pixel coordinates
        (x, y) in [0, size - 1], so an untrained net starts at the image centre.
        """
        import keras

        _check_square(task)
        self.validate(genome)
        inputs = keras.Input(shape=task.input_shape, dtype="float32", name="pixels")
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        x = _apply_backbone(genome, x)
        return keras.Model(inputs, _apply_head(genome, x, task, prefix=""), name="cnn")

    def build_multitask(
        self, genome: CnnGenome, tasks: Sequence[Task], names: Sequence[str]
    ) -> keras.Model:
        """One model for several tasks: an input per task (``NAME_pixels``, at the task's
        own image size), the genome's backbone shared by all of them (one set of
        weights: the convolutions run on any size), and a head per task as :meth:`build`
        makes it, its layers prefixed ``NAME_`` (the output: ``NAME_predictions`` or
        ``NAME_keypoints``). Outputs are in the order of ``tasks``."""
        import keras

        channels = {task.input_shape[2] for task in tasks}
        if len(channels) != 1:
            raise ValueError(f"the tasks' images differ in channels {sorted(channels)}")
        for task in tasks:
            _check_square(task)
        self.validate(genome)
        shared = backbone(genome, (None, None, channels.pop()))
        inputs, outputs = [], []
        for task, name in zip(tasks, names, strict=True):
            pixels = keras.Input(shape=task.input_shape, dtype="float32", name=f"{name}_pixels")
            x = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(pixels)
            inputs.append(pixels)
            outputs.append(_apply_head(genome, shared(x), task, prefix=f"{name}_"))
        return keras.Model(inputs, outputs, name="cnn_multitask")

    def cost_multitask(self, genome: CnnGenome, tasks: Sequence[Task]) -> ModelCost:
        """The parameters (the shared backbone once) and FLOPs (one image of each task)
        of :meth:`build_multitask`, without building it."""
        costs = [self.cost(genome, task) for task in tasks]
        counter = CostCounter()
        _backbone_cost(counter, genome, Tensor(*tasks[0].input_shape))
        shared = counter.total().params
        return ModelCost(
            params=sum(c.params for c in costs) - (len(costs) - 1) * shared,
            flops=sum(c.flops for c in costs),
        )

    def cost(self, genome: CnnGenome, task: Task) -> ModelCost:
        """The parameters and FLOPs of ``build(genome, task)``, exactly, without building
        it (no TensorFlow): ``model.count_params()`` and
        :func:`nas.training.model_stats.count_flops`. Raises where :meth:`build` does."""
        height, width, channels = task.input_shape
        _check_square(task)
        self.validate(genome)
        counter = CostCounter()
        x = _backbone_cost(counter, genome, Tensor(height, width, channels))
        x = Tensor(1, 1, x.channels)  # global pooling
        for units in genome.head.dense:
            x = counter.dense(x, units)
        counter.dense(x, task.outputs)  # keypoints_raw or predictions
        return counter.total()

    def recipe(self, genome: CnnGenome) -> TrainingRecipe:
        """The genome's training settings."""
        return training_recipe(genome.training)

    def describe(self, genome: CnnGenome) -> str:
        """One line, e.g. ``stem16k3 | basic2x32 | bottleneck3x64e4 s2 se | avg | adam lr1e-3 b64``."""
        stem = genome.stem
        parts = [
            f"stem{stem.width}k{stem.kernel}"
            + (" s2" if stem.stride == 2 else "")
            + (" pool" if stem.pool else "")
        ]
        for s in genome.stages:
            text = f"{s.block}{s.depth}x{s.width}"
            text += f"e{s.expansion}" if s.block == "bottleneck" else ""
            text += f"k{s.kernel}" if s.kernel != 3 else ""
            text += " s2" if s.stride == 2 else ""
            text += " se" if s.se else ""
            text += f" {s.activation}" if s.activation != "relu" else ""
            parts.append(text)
        head = genome.head
        text = head.pooling
        text += f" fc{'-'.join(str(u) for u in head.dense)}" if head.dense else ""
        text += f" drop{head.dropout:g}" if head.dropout else ""
        parts.append(text)
        parts.append(describe_training(genome.training))
        return " | ".join(parts)


# --- decoder ----------------------------------------------------------------------------


def _check_square(task: Task) -> None:
    height, width, _ = task.input_shape
    if task.kind == "keypoints" and height != width:
        raise ValueError(f"keypoint regression needs square images, got {height}x{width}")


def _apply_head(genome: CnnGenome, x: Any, task: Task, *, prefix: str) -> Any:
    """Global pooling, the hidden Dense+activation layers, Dropout and the task's output;
    layer names start with ``prefix``."""
    import keras

    head = genome.head
    if head.pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
    else:
        x = keras.layers.GlobalMaxPooling2D(name=f"{prefix}pool")(x)
    activation = genome.stages[-1].activation
    for i, units in enumerate(head.dense, start=1):
        x = keras.layers.Dense(units, name=f"{prefix}fc{i}")(x)
        x = keras.layers.Activation(activation, name=f"{prefix}fc{i}_act")(x)
    if head.dropout > 0:
        x = keras.layers.Dropout(head.dropout, name=f"{prefix}dropout")(x)
    # the output layers compute in float32 whatever the global precision policy
    if task.kind == "keypoints":
        x = keras.layers.Dense(task.outputs, name=f"{prefix}keypoints_raw", dtype="float32")(x)
        x = keras.layers.Reshape(
            (task.num_keypoints, 2), name=f"{prefix}keypoints_xy", dtype="float32"
        )(x)
        half = (task.input_shape[1] - 1) / 2.0
        return keras.layers.Rescaling(
            half, offset=half, name=f"{prefix}keypoints", dtype="float32"
        )(x)
    return keras.layers.Dense(
        task.num_classes, activation="softmax", name=f"{prefix}predictions", dtype="float32"
    )(x)


def backbone(genome: CnnGenome, input_shape: tuple[int, int, int]) -> keras.Model:
    """The stem and stages alone (no rescaling, pooling or head), as a Keras model.

    With ``baselines.resnet50.RESNET50`` this is ``keras.applications.ResNet50(
    include_top=False, weights=None)`` layer for layer.
    """
    import keras

    validate_genome(genome)
    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    return keras.Model(inputs, _apply_backbone(genome, inputs), name="cnn_backbone")


def _apply_backbone(genome: CnnGenome, x: Any) -> Any:
    import keras

    layers = keras.layers
    stem = genome.stem
    activation = genome.stages[0].activation
    x = conv_bn(x, stem.width, stem.kernel, stem.stride, "stem")
    x = layers.Activation(activation, name="stem_act")(x)
    if stem.pool:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    channels = stem.width
    for i, stage in enumerate(genome.stages, start=1):
        for j in range(1, stage.depth + 1):
            stride = stage.stride if j == 1 else 1
            x = _block(x, stage, stride, channels, f"stage{i}_block{j}")
            channels = stage.out_channels
    return x


def conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
    """Conv2D (biased, ``"same"`` padding) + BatchNormalization with this space's
    ``BN_MOMENTUM`` and ``BN_EPSILON``; layers ``{name}_conv`` and ``{name}_bn``."""
    import keras

    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=True, name=f"{name}_conv"
    )(x)
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)


def residual_block(
    x: Any, width: int, kernel: int, stride: int, in_channels: int, activation: str, name: str
) -> Any:
    """This space's ``basic`` residual block: conv-BN-act-conv-BN plus the shortcut (a
    1x1 :func:`conv_bn` projection when ``stride`` or the channel count changes, identity
    otherwise), then the activation; layers named ``{name}_...``."""
    stage = Stage(block="basic", depth=1, width=width, kernel=kernel, activation=activation)  # type: ignore[arg-type]
    return _block(x, stage, stride, in_channels, name)


def _block(x: Any, stage: Stage, stride: int, in_channels: int, name: str) -> Any:
    import keras

    layers = keras.layers
    act = stage.activation
    if stage.block == "plain":
        y = conv_bn(x, stage.width, stage.kernel, stride, f"{name}_1")
        y = layers.Activation(act, name=f"{name}_1_act")(y)
        return _squeeze_excite(y, act, f"{name}_se") if stage.se else y

    out_channels = stage.out_channels
    if stride != 1 or in_channels != out_channels:
        shortcut = conv_bn(x, out_channels, 1, stride, f"{name}_0")
    else:
        shortcut = x
    if stage.block == "basic":
        y = conv_bn(x, stage.width, stage.kernel, stride, f"{name}_1")
        y = layers.Activation(act, name=f"{name}_1_act")(y)
        y = conv_bn(y, stage.width, stage.kernel, 1, f"{name}_2")
    else:  # bottleneck, ResNet v1: the stride is on the first 1x1 conv
        y = conv_bn(x, stage.width, 1, stride, f"{name}_1")
        y = layers.Activation(act, name=f"{name}_1_act")(y)
        y = conv_bn(y, stage.width, stage.kernel, 1, f"{name}_2")
        y = layers.Activation(act, name=f"{name}_2_act")(y)
        y = conv_bn(y, out_channels, 1, 1, f"{name}_3")
    if stage.se:
        y = _squeeze_excite(y, act, f"{name}_se")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation(act, name=f"{name}_out")(y)


def _squeeze_excite(x: Any, activation: str, name: str) -> Any:
    import keras

    layers = keras.layers
    channels = int(x.shape[-1])
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(max(SE_MIN_UNITS, channels // SE_RATIO), name=f"{name}_reduce")(s)
    s = layers.Activation(activation, name=f"{name}_reduce_act")(s)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


# --- cost: the decoder's layers on paper (see search_spaces/_cost.py) -------------------


def _backbone_cost(counter: CostCounter, genome: CnnGenome, x: Tensor) -> Tensor:
    """:func:`_apply_backbone`'s parameters and MACs added to ``counter``; its output."""
    stem = genome.stem
    x = counter.conv_bn(x, stem.width, stem.kernel, stem.stride)
    if stem.pool:  # 3x3 max-pool, stride 2, "same" padding
        x = Tensor(math.ceil(x.height / 2), math.ceil(x.width / 2), x.channels)
    for stage in genome.stages:
        for j in range(stage.depth):
            x = _block_cost(counter, x, stage, stage.stride if j == 0 else 1)
    return x


def residual_block_cost(
    counter: CostCounter, x: Tensor, width: int, kernel: int, stride: int
) -> Tensor:
    """:func:`residual_block`'s parameters and MACs added to ``counter``; its output."""
    stage = Stage(block="basic", depth=1, width=width, kernel=kernel)
    return _block_cost(counter, x, stage, stride)


def _block_cost(counter: CostCounter, x: Tensor, stage: Stage, stride: int) -> Tensor:
    """:func:`_block`'s parameters and MACs added to ``counter``; its output."""
    if stage.block == "plain":
        y = counter.conv_bn(x, stage.width, stage.kernel, stride)
        return _squeeze_excite_cost(counter, y) if stage.se else y
    out_channels = stage.out_channels
    if stride != 1 or x.channels != out_channels:
        counter.conv_bn(x, out_channels, 1, stride)  # projection shortcut
    if stage.block == "basic":
        y = counter.conv_bn(x, stage.width, stage.kernel, stride)
        y = counter.conv_bn(y, stage.width, stage.kernel)
    else:
        y = counter.conv_bn(x, stage.width, 1, stride)
        y = counter.conv_bn(y, stage.width, stage.kernel)
        y = counter.conv_bn(y, out_channels, 1)
    return _squeeze_excite_cost(counter, y) if stage.se else y


def _squeeze_excite_cost(counter: CostCounter, x: Tensor) -> Tensor:
    """:func:`_squeeze_excite`: two Dense layers on the pooled (1, 1, C) vector."""
    squeezed = Tensor(1, 1, x.channels)
    reduced = counter.dense(squeezed, max(SE_MIN_UNITS, x.channels // SE_RATIO))
    counter.dense(reduced, x.channels)
    return x


SPACE = CnnSpace()
"""The space ``load_space("cnn")`` returns."""
