"""The ResUNet search space: residual U-Nets that predict keypoints through heatmaps.

A genome (:class:`ResUNetGenome`) is frozen plain data: a stem, the encoder levels, a
bottleneck, the mirrored decoder levels, a heatmap head, one activation for the whole
net and the training recipe (:class:`search_spaces.cnn.Training`, shared with the CNN
space). It decodes to a Keras model for a ``keypoints`` :class:`~nas.core.task.Task` that
takes raw pixels (0..255, float32), rescales them to [0, 1], predicts one heatmap per
keypoint (the layer named ``"heatmaps"``: the dense, pixel-level "mask" prediction) and
turns each heatmap into pixel coordinates ``(x, y)`` with a differentiable soft-argmax,
giving ``(batch, num_keypoints, 2)``.

Architecture (``L = len(encoder)`` levels; every spatial size below is of a 96x96 input
with ``L = 3``)::

    pixels -> Rescaling(1/255) -> stem: conv kxk + BN + act             96x96 (skip 0)
      encoder level 1: downsample x2, ``blocks`` residual blocks       48x48 (skip 1)
      encoder level 2: downsample x2, ...                              24x24 (skip 2)
      encoder level 3: downsample x2, ...                              12x12
      bottleneck: ``blocks`` residual blocks                           12x12
      decoder level mirroring encoder level 3: upsample x2, join skip 2   24x24
      decoder level mirroring encoder level 2: upsample x2, join skip 1   48x48
      decoder level mirroring encoder level 1: upsample x2, join skip 0   96x96
      heatmaps: 1x1 conv to K channels -> soft-argmax -> (K, 2)

* The encoder shrinks each side by ``2**L`` in all, so :meth:`ResUNetSpace.build`
  requires the input height and width to be divisible by ``2**L`` (``ValueError``).
* ``encoder[i].downsampling``: ``"maxpool"`` (2x2 max-pool, then the blocks) or
  ``"strided"`` (the level's first residual block has stride 2, with a strided 1x1
  projection shortcut, as in Zhang et al.'s ResUNet).
* ``decoder`` is listed in the order it is applied (deepest first): ``decoder[k]``
  mirrors ``encoder[L - 1 - k]``; it upsamples its input x2 to ``width`` channels
  (``"transpose"``: Conv2DTranspose 2x2, stride 2, + BN; ``"bilinear"``: bilinear
  UpSampling2D + 1x1 conv + BN), joins the skip (the input of the mirrored encoder
  level: ``"concat"``, or ``"add"`` after a 1x1 conv + BN projection of the skip when
  its channel count differs from ``width``), then runs ``blocks`` residual blocks.
* ``head.heatmap_resolution``: ``"full"`` (the decoder has ``L`` levels, heatmaps at
  the input resolution) or ``"half"`` (the decoder stops one level early: it has
  ``L - 1`` levels and the heatmaps have stride 2; with ``L = 1`` there is no decoder
  at all). A genome has exactly the decoder levels it uses, so it is canonical.
* Residual block: conv kxk - BN - act - conv kxk - BN, plus the shortcut (a 1x1 conv +
  BN projection when the stride or the channel count changes, identity otherwise), then
  the activation (``search_spaces.cnn``'s ``basic`` block, so the same conventions:
  biased convs, ``BatchNormalization(momentum=0.9, epsilon=1.001e-5)``, ``"same"``
  padding). Encoder blocks use their level's ``kernel``; bottleneck and decoder blocks
  are 3x3.
* ``activation`` is one gene for the whole network (the stem and every residual block
  use it); the upsampling, the skip projections and the heatmap conv are linear (the
  heatmap conv has no BN: its outputs are the soft-argmax logits).
* Soft-argmax: a softmax over all cells of each heatmap, then the expected cell centre.
  A heatmap cell ``(i, j)`` at stride ``s`` covers input pixels ``s*i .. s*i + s - 1``;
  with the pixel convention of :mod:`nas.data.synthetic` (the centre of pixel ``[row, col]``
  is ``(col, row)``) its centre is ``(s*j + (s - 1)/2, s*i + (s - 1)/2)``. Outputs stay
  within ``[0, width - 1] x [0, height - 1]``.

Two ranges matter for every gene (as in the CNN space):

* the **sampling grid** (``sample`` and ``mutate``): small, fast nets for brief CPU
  training at 96x96 or 48x48 (1..4 levels, so ``2**L`` divides both);
* the **validation range** (``validate`` and ``from_json``): much wider, wide enough
  for the hand-designed ResUNet (``baselines/resunet.py``).

The model is made of Keras' own layers only (the soft-argmax too:
:func:`soft_argmax_layers`), so a saved ``.keras`` file loads with plain
``keras.models.load_model`` in a process that never imported this project. Only the
decoder (:meth:`ResUNetSpace.build`, :func:`soft_argmax`) imports Keras;
:meth:`ResUNetSpace.cost` gives its exact parameter and FLOP counts from the genome alone.
"""

from __future__ import annotations

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
from search_spaces import cnn
from search_spaces._cost import CostCounter, Tensor
from search_spaces._genes import (
    GenomeChecks,
    GenomeJson,
    align,
    dump,
    is_valid,
    other,
    pick,
    step,
)
from search_spaces.cnn import Training

if TYPE_CHECKING:
    import keras

    from nas.core.task import Task

__all__ = [
    "SPACE",
    "Bottleneck",
    "DecoderLevel",
    "EncoderLevel",
    "Head",
    "ResUNetGenome",
    "ResUNetSpace",
    "Stem",
    "Training",
    "cell_centres",
    "downsampling",
    "heatmap_stride",
    "soft_argmax",
    "soft_argmax_layers",
    "validate_genome",
]

Activation = Literal["relu", "swish", "gelu"]
Downsampling = Literal["maxpool", "strided"]
Upsampling = Literal["transpose", "bilinear"]
Join = Literal["concat", "add"]
Resolution = Literal["full", "half"]

ACTIVATIONS: tuple[str, ...] = cnn.ACTIVATIONS
DOWNSAMPLINGS: tuple[str, ...] = ("maxpool", "strided")
UPSAMPLINGS: tuple[str, ...] = ("transpose", "bilinear")
JOINS: tuple[str, ...] = ("concat", "add")
RESOLUTIONS: tuple[str, ...] = ("full", "half")
DECODER_KERNEL = 3  # bottleneck and decoder residual blocks

# --- sampling grids (sample and mutate) -------------------------------------------------
STEM_WIDTHS = (8, 12, 16, 24)
STEM_KERNELS = (3, 5, 7)
SAMPLED_STEM_KERNELS = (3, 5)
WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128)  # encoder, bottleneck and decoder levels
FIRST_LEVEL_WIDTHS = (8, 12, 16, 24)  # of the first sampled encoder level
MAX_SAMPLED_WIDTH = 64  # the pyramid of a sampled genome stops widening here
BLOCKS = (1, 2, 3)
SAMPLED_DECODER_BLOCKS = (1, 2)
SAMPLED_BOTTLENECK_BLOCKS = (1, 2)
KERNELS = (3, 5)
MAX_LEVELS = 4  # 2**4 = 16 divides 96 and 48
HALF_PROBABILITY = 0.3
BATCH_SIZES = (8, 16, 32, 64, 128)
SAMPLED_BATCH_SIZES = (16, 32, 64)

# --- validation ranges ------------------------------------------------------------------
VALID_STEM_WIDTH = cnn.VALID_STEM_WIDTH
VALID_STEM_KERNELS = cnn.VALID_STEM_KERNELS
VALID_LEVELS = (1, 8)
VALID_WIDTH = cnn.VALID_WIDTH
VALID_BLOCKS = (1, 64)
VALID_KERNELS = cnn.VALID_STAGE_KERNELS


@dataclass(frozen=True, kw_only=True)
class Stem:
    """The full-resolution conv: ``width`` filters, ``kernel`` x ``kernel``, then BN and
    the activation. Its output is the skip joined by the last (full-resolution) decoder
    level."""

    width: int
    kernel: int = 3


@dataclass(frozen=True, kw_only=True)
class EncoderLevel:
    """Halve the resolution (``downsampling``: ``"maxpool"`` or a ``"strided"`` first
    block), then ``blocks`` residual blocks of ``width`` filters, ``kernel`` x ``kernel``."""

    width: int
    blocks: int = 1
    kernel: int = 3
    downsampling: Downsampling = "maxpool"


@dataclass(frozen=True, kw_only=True)
class Bottleneck:
    """``blocks`` 3x3 residual blocks of ``width`` filters at the deepest resolution."""

    width: int
    blocks: int = 1


@dataclass(frozen=True, kw_only=True)
class DecoderLevel:
    """Double the resolution to ``width`` channels (``upsampling``), join the mirrored
    encoder level's skip (``join``), then ``blocks`` 3x3 residual blocks of ``width``."""

    width: int
    blocks: int = 1
    upsampling: Upsampling = "transpose"
    join: Join = "concat"


@dataclass(frozen=True, kw_only=True)
class Head:
    """Where the heatmaps are predicted: ``"full"`` input resolution or ``"half"``
    (stride 2; the decoder stops one level early)."""

    heatmap_resolution: Resolution = "full"


@dataclass(frozen=True, kw_only=True)
class ResUNetGenome:
    """A whole candidate. ``decoder`` is in application order (deepest first) and has
    ``len(encoder)`` levels, or one fewer with half-resolution heatmaps."""

    stem: Stem
    encoder: tuple[EncoderLevel, ...]
    bottleneck: Bottleneck
    decoder: tuple[DecoderLevel, ...]
    head: Head = Head()
    activation: Activation = "relu"
    training: Training = Training()  # noqa: RUF009 - a frozen dataclass, safe to share

    def __post_init__(self) -> None:
        for name in ("encoder", "decoder"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))


def downsampling(genome: ResUNetGenome) -> int:
    """The factor by which the encoder reduces each spatial side: ``2**len(encoder)``."""
    return 2 ** len(genome.encoder)


def heatmap_stride(genome: ResUNetGenome) -> int:
    """Input pixels per heatmap cell along each side: 1 (full) or 2 (half)."""
    return 1 if genome.head.heatmap_resolution == "full" else 2


def _decoder_length(encoder_levels: int, resolution: str) -> int:
    return encoder_levels - (1 if resolution == "half" else 0)


# --- validation -------------------------------------------------------------------------

_checks = GenomeChecks("ResUNet")


def validate_genome(genome: Any) -> None:
    """Raise :class:`GenomeError` naming the first gene outside its validation range."""
    _checks.check_type("genome", genome, ResUNetGenome)
    _checks.check_choice("activation", genome.activation, ACTIVATIONS)
    stem = genome.stem
    _checks.check_type("stem", stem, Stem)
    _checks.check_int("stem.width", stem.width, *VALID_STEM_WIDTH)
    _checks.check_choice("stem.kernel", stem.kernel, VALID_STEM_KERNELS)

    _checks.check_tuple("encoder", genome.encoder, EncoderLevel)
    low, high = VALID_LEVELS
    if not low <= len(genome.encoder) <= high:
        raise _checks.fail("encoder", f"has {len(genome.encoder)} levels; allowed {low}..{high}")
    for i, level in enumerate(genome.encoder):
        path = f"encoder[{i}]"
        _checks.check_type(path, level, EncoderLevel)
        _checks.check_int(f"{path}.width", level.width, *VALID_WIDTH)
        _checks.check_int(f"{path}.blocks", level.blocks, *VALID_BLOCKS)
        _checks.check_choice(f"{path}.kernel", level.kernel, VALID_KERNELS)
        _checks.check_choice(f"{path}.downsampling", level.downsampling, DOWNSAMPLINGS)

    bottleneck = genome.bottleneck
    _checks.check_type("bottleneck", bottleneck, Bottleneck)
    _checks.check_int("bottleneck.width", bottleneck.width, *VALID_WIDTH)
    _checks.check_int("bottleneck.blocks", bottleneck.blocks, *VALID_BLOCKS)

    head = genome.head
    _checks.check_type("head", head, Head)
    _checks.check_choice("head.heatmap_resolution", head.heatmap_resolution, RESOLUTIONS)

    _checks.check_tuple("decoder", genome.decoder, DecoderLevel)
    expected = _decoder_length(len(genome.encoder), head.heatmap_resolution)
    if len(genome.decoder) != expected:
        raise _checks.fail(
            "decoder",
            f"has {len(genome.decoder)} levels; it must mirror the {len(genome.encoder)} "
            f"encoder levels with {expected} (one fewer with half-resolution heatmaps)",
        )
    for i, level in enumerate(genome.decoder):
        path = f"decoder[{i}]"
        _checks.check_type(path, level, DecoderLevel)
        _checks.check_int(f"{path}.width", level.width, *VALID_WIDTH)
        _checks.check_int(f"{path}.blocks", level.blocks, *VALID_BLOCKS)
        _checks.check_choice(f"{path}.upsampling", level.upsampling, UPSAMPLINGS)
        _checks.check_choice(f"{path}.join", level.join, JOINS)

    cnn.check_training(_checks, genome.training)


# --- JSON -------------------------------------------------------------------------------

_json = GenomeJson(
    "ResUNet",
    {
        Stem: {"width": "int", "kernel": "int"},
        EncoderLevel: {"width": "int", "blocks": "int", "kernel": "int", "downsampling": "str"},
        Bottleneck: {"width": "int", "blocks": "int"},
        DecoderLevel: {"width": "int", "blocks": "int", "upsampling": "str", "join": "str"},
        Head: {"heatmap_resolution": "str"},
        Training: {
            "learning_rate": "float",
            "batch_size": "int",
            "optimizer": "str",
            "weight_decay": "float",
        },
    },
)
_TOP_LEVEL = ("stem", "encoder", "bottleneck", "decoder", "head", "activation", "training")


# --- levels as mirrored pairs (for the operators) ---------------------------------------

_Pair = tuple[EncoderLevel, DecoderLevel | None]


def _pairs(genome: ResUNetGenome) -> list[_Pair]:
    """Encoder levels, shallowest first, each with its mirrored decoder level (``None``
    for the shallowest level when the heatmaps are at half resolution)."""
    mirrors: list[DecoderLevel | None] = list(reversed(genome.decoder))
    if genome.head.heatmap_resolution == "half":
        mirrors.insert(0, None)
    return list(zip(genome.encoder, mirrors, strict=True))


def _with_pairs(genome: ResUNetGenome, pairs: Sequence[_Pair], **changes: Any) -> ResUNetGenome:
    """``genome`` with its levels replaced; the head follows the shallowest pair."""
    half = pairs[0][1] is None
    decoder = tuple(d for _, d in reversed(pairs) if d is not None)
    return replace(
        genome,
        encoder=tuple(e for e, _ in pairs),
        decoder=decoder,
        head=Head(heatmap_resolution="half" if half else "full"),
        **changes,
    )


def _index(width: int) -> int:
    """Position of the grid value nearest to ``width`` (ties to the smaller)."""
    return min(range(len(WIDTHS)), key=lambda i: (abs(WIDTHS[i] - width), i))


# --- the space --------------------------------------------------------------------------


class ResUNetSpace:
    """The ResUNet keypoint search space (see the module docstring for its conventions).

    ``max_levels`` bounds the encoder depth of sampled genomes (4: a 96x96 or 48x48
    input shrinks by 16); mutation and crossover keep children within it, or within
    their parents' depth when a parent already exceeds it. ``validate`` accepts 1..8.
    """

    name = "resunet"
    task_kinds: tuple[str, ...] = ("keypoints",)
    """The kinds of :class:`~nas.core.task.Task` it builds models for (checked by nas.core.config)."""
    multitask_kinds: tuple[str, ...] = ("keypoints", "classification")
    """The heads a multi-task model can have: the decoder's keypoints, and classes from
    the pooled bottleneck (:meth:`build_multitask`)."""

    def __init__(self, *, max_levels: int = MAX_LEVELS) -> None:
        self.max_levels = max_levels

    # -- sampling ------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> ResUNetGenome:
        """Draw a small random genome from the sampling grids.

        The encoder is a pyramid: the first level is 8..24 wide, each deeper level ~1.5x
        or 2x wider (up to 64); the bottleneck is as wide as the last level or one grid
        step wider; each decoder level is as wide as its mirrored encoder level or one
        grid step narrower.
        """
        return self.draw(RandomDecisions(rng))

    def suggest(self, trial: Any) -> ResUNetGenome:
        """The same draw as :meth:`sample`, each decision a parameter of an Optuna trial."""
        return self.draw(TrialDecisions(trial))

    def draw(self, decide: Decisions) -> ResUNetGenome:
        """A genome from named decisions: :meth:`sample` and :meth:`suggest` in one."""
        activation = decide.choice("activation", ACTIVATIONS)
        stem = Stem(
            width=decide.choice("stem.width", STEM_WIDTHS),
            kernel=decide.choice("stem.kernel", SAMPLED_STEM_KERNELS),
        )
        n_levels = decide.integer("levels", 1, self.max_levels)
        top = WIDTHS.index(MAX_SAMPLED_WIDTH)
        index = WIDTHS.index(decide.choice("level0.width", FIRST_LEVEL_WIDTHS))
        pairs: list[_Pair] = []
        for i in range(n_levels):
            if i > 0:
                index = min(index + 1 + decide.integer(f"level{i}.wider", 0, 1), top)
            pairs.append(
                (
                    self._draw_encoder_level(decide, f"level{i}.encoder", WIDTHS[index]),
                    self._draw_decoder(decide, f"level{i}.decoder", index),
                )
            )
        bottleneck = Bottleneck(
            width=WIDTHS[min(index + decide.integer("bottleneck.wider", 0, 1), top)],
            blocks=decide.choice("bottleneck.blocks", SAMPLED_BOTTLENECK_BLOCKS),
        )
        if n_levels > 1 and decide.flag("half_resolution", HALF_PROBABILITY):
            pairs[0] = (pairs[0][0], None)
        genome = ResUNetGenome(
            stem=stem,
            encoder=(),
            bottleneck=bottleneck,
            decoder=(),
            activation=activation,  # type: ignore[arg-type]
            training=cnn.draw_training(decide, SAMPLED_BATCH_SIZES),
        )
        return _with_pairs(genome, pairs)

    def _sample_encoder_level(self, rng: np.random.Generator, width: int) -> EncoderLevel:
        return self._draw_encoder_level(RandomDecisions(rng), "encoder", width)

    def _draw_encoder_level(self, decide: Decisions, name: str, width: int) -> EncoderLevel:
        return EncoderLevel(
            width=width,
            blocks=decide.choice(f"{name}.blocks", BLOCKS),
            kernel=decide.choice(f"{name}.kernel", KERNELS),
            downsampling=decide.choice(f"{name}.downsampling", DOWNSAMPLINGS),  # type: ignore[arg-type]
        )

    def _sample_decoder(self, rng: np.random.Generator, mirror_index: int) -> DecoderLevel:
        return self._draw_decoder(RandomDecisions(rng), "decoder", mirror_index)

    def _draw_decoder(self, decide: Decisions, name: str, mirror_index: int) -> DecoderLevel:
        return DecoderLevel(
            width=WIDTHS[max(0, mirror_index - decide.integer(f"{name}.narrower", 0, 1))],
            blocks=decide.choice(f"{name}.blocks", SAMPLED_DECODER_BLOCKS),
            upsampling=decide.choice(f"{name}.upsampling", UPSAMPLINGS),  # type: ignore[arg-type]
            join=decide.choice(f"{name}.join", JOINS),  # type: ignore[arg-type]
        )

    # -- variation -----------------------------------------------------------------------

    def mutate(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        """Change one randomly chosen gene group; the result is valid and differs.

        Groups (with their weights): one gene of one level's encoder or decoder part
        (0.45), add a sampled level (encoder and mirrored decoder) at a random depth
        (0.07, up to ``max_levels``), remove a level (0.07, down to 1), one stem gene
        (0.08), one bottleneck gene (0.1), the heatmap resolution (0.05; going to full
        resolution adds a sampled decoder level), the activation (0.05), one training
        gene (0.13). Ordered genes step to a neighbouring grid value. Raises
        :class:`GenomeError` if ``genome`` itself is invalid.
        """
        self.validate(genome)
        cap = max(self.max_levels, len(genome.encoder))
        for _ in range(200):
            child = self._mutate_once(genome, rng)
            if child != genome and len(child.encoder) <= cap and is_valid(validate_genome, child):
                return child
        raise RuntimeError(f"could not mutate {self.describe(genome)}")  # pragma: no cover

    def _mutate_once(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        n = len(genome.encoder)
        groups: list[tuple[float, Callable[[], ResUNetGenome]]] = [
            (0.45, lambda: self._mutate_level(genome, rng)),
            (0.07 if n < self.max_levels else 0.0, lambda: self._add_level(genome, rng)),
            (0.07 if n > 1 else 0.0, lambda: self._remove_level(genome, rng)),
            (0.08, lambda: replace(genome, stem=self._mutate_stem(genome.stem, rng))),
            (0.1, lambda: replace(genome, bottleneck=self._mutate_bottleneck(genome, rng))),
            (0.05, lambda: self._flip_resolution(genome, rng)),
            (0.05, lambda: replace(genome, activation=other(genome.activation, ACTIVATIONS, rng))),
            (
                0.13,
                lambda: replace(
                    genome, training=cnn.mutate_training(genome.training, rng, BATCH_SIZES)
                ),
            ),
        ]
        weights = np.array([w for w, _ in groups])
        chosen = int(rng.choice(len(groups), p=weights / weights.sum()))
        return groups[chosen][1]()

    def _mutate_level(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = _pairs(genome)
        i = int(rng.integers(len(pairs)))
        enc, dec = pairs[i]
        genes = ["enc.width", "enc.blocks", "enc.kernel", "enc.downsampling"]
        if dec is not None:
            genes += ["dec.width", "dec.blocks", "dec.upsampling", "dec.join"]
        gene = pick(rng, genes)
        if gene == "enc.width":
            enc = replace(enc, width=step(enc.width, WIDTHS, rng))
        elif gene == "enc.blocks":
            enc = replace(enc, blocks=step(enc.blocks, BLOCKS, rng))
        elif gene == "enc.kernel":
            enc = replace(enc, kernel=step(enc.kernel, KERNELS, rng))
        elif gene == "enc.downsampling":
            enc = replace(enc, downsampling=other(enc.downsampling, DOWNSAMPLINGS, rng))
        elif dec is not None:
            if gene == "dec.width":
                dec = replace(dec, width=step(dec.width, WIDTHS, rng))
            elif gene == "dec.blocks":
                dec = replace(dec, blocks=step(dec.blocks, BLOCKS, rng))
            elif gene == "dec.upsampling":
                dec = replace(dec, upsampling=other(dec.upsampling, UPSAMPLINGS, rng))
            else:
                dec = replace(dec, join=other(dec.join, JOINS, rng))
        pairs[i] = (enc, dec)
        return _with_pairs(genome, pairs)

    def _add_level(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = _pairs(genome)
        half = pairs[0][1] is None
        # the shallowest level of a half-resolution genome keeps its place (it has no
        # decoder level), so a new level goes below it
        position = int(rng.integers(1 if half else 0, len(pairs) + 1))
        neighbour = pairs[min(position, len(pairs) - 1)][0]
        index = _index(neighbour.width)
        pairs.insert(
            position,
            (self._sample_encoder_level(rng, WIDTHS[index]), self._sample_decoder(rng, index)),
        )
        return _with_pairs(genome, pairs)

    def _remove_level(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = _pairs(genome)
        half = pairs[0][1] is None
        del pairs[int(rng.integers(1 if half else 0, len(pairs)))]
        return _with_pairs(genome, pairs)

    def _flip_resolution(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = _pairs(genome)
        enc, dec = pairs[0]
        if dec is None:
            pairs[0] = (enc, self._sample_decoder(rng, _index(enc.width)))
        else:
            pairs[0] = (enc, None)
        return _with_pairs(genome, pairs)

    def _mutate_stem(self, stem: Stem, rng: np.random.Generator) -> Stem:
        if rng.random() < 0.5:
            return replace(stem, width=step(stem.width, STEM_WIDTHS, rng))
        return replace(stem, kernel=step(stem.kernel, STEM_KERNELS, rng))

    def _mutate_bottleneck(self, genome: ResUNetGenome, rng: np.random.Generator) -> Bottleneck:
        b = genome.bottleneck
        if rng.random() < 0.5:
            return replace(b, width=step(b.width, WIDTHS, rng))
        return replace(b, blocks=step(b.blocks, BLOCKS, rng))

    def crossover(
        self, a: ResUNetGenome, b: ResUNetGenome, rng: np.random.Generator
    ) -> tuple[ResUNetGenome, ResUNetGenome]:
        """One-point crossover of the levels, each encoder level travelling with its
        mirrored decoder level (aligned by depth, so a child has as many levels as one of
        its parents or in between, and stays mirrored), plus a uniform exchange of stem,
        bottleneck, activation, training and head. The head travels with the shallowest
        decoder level (the one a half-resolution head lacks). Both children are valid."""
        self.validate(a)
        self.validate(b)
        pa, pb = _pairs(a), _pairs(b)
        longest = max(len(pa), len(pb))
        cut = int(rng.integers(1, longest)) if longest > 1 else 1
        kid_a, kid_b = pa[:cut] + pb[cut:], pb[:cut] + pa[cut:]
        swap = rng.random(5) < 0.5
        if swap[0]:  # exchange the heads with the shallowest decoder levels
            kid_a[0], kid_b[0] = (kid_a[0][0], kid_b[0][1]), (kid_b[0][0], kid_a[0][1])

        def exchange(i: int, x: Any, y: Any) -> tuple[Any, Any]:
            return (y, x) if swap[i] else (x, y)

        stem_a, stem_b = exchange(1, a.stem, b.stem)
        bott_a, bott_b = exchange(2, a.bottleneck, b.bottleneck)
        act_a, act_b = exchange(3, a.activation, b.activation)
        train_a, train_b = exchange(4, a.training, b.training)
        return (
            _with_pairs(
                a, kid_a, stem=stem_a, bottleneck=bott_a, activation=act_a, training=train_a
            ),
            _with_pairs(
                b, kid_b, stem=stem_b, bottleneck=bott_b, activation=act_b, training=train_b
            ),
        )

    def weight_sources(
        self, child: ResUNetGenome, parent: ResUNetGenome
    ) -> tuple[WeightSource, ...]:
        """Which of ``parent``'s layers correspond to each part of ``child``'s model (no
        TensorFlow; see :class:`nas.core.space.WeightSource`).

        Parts: the stem (``stem_``), each level (``enc{i}_`` and its mirrored ``dec{i}_``),
        the bottleneck (``bottleneck_``) and the heatmap conv (``heatmaps``). Levels are
        aligned as encoder / decoder pairs, as a diff aligns lines
        (:func:`search_spaces._genes.align`), so an inserted or removed level does not
        shift the others onto other weights. A part is ``identical`` when its own genes are
        equal (the net-wide activation is not compared: it has no weights).
        """
        mine, theirs = _pairs(child), _pairs(parent)
        sources = [
            WeightSource("stem_", "stem_", child.stem == parent.stem),
            WeightSource("bottleneck_", "bottleneck_", child.bottleneck == parent.bottleneck),
            WeightSource("heatmaps", "heatmaps", child.head == parent.head),
        ]
        for i, j in enumerate(align(theirs, mine)):
            (encoder, decoder), level = mine[i], i + 1
            source = None if j is None else j + 1
            sources.append(
                WeightSource(
                    f"enc{level}_",
                    None if source is None else f"enc{source}_",
                    j is not None and encoder == theirs[j][0],
                )
            )
            if decoder is not None:
                known = j is not None and theirs[j][1] is not None
                sources.append(
                    WeightSource(
                        f"dec{level}_",
                        f"dec{source}_" if known else None,
                        known and decoder == theirs[j][1],  # type: ignore[index]
                    )
                )
        return tuple(sources)

    # -- validation and JSON -------------------------------------------------------------

    def validate(self, genome: Any) -> None:
        """Raise :class:`GenomeError` naming the first gene outside its validation range."""
        validate_genome(genome)

    def to_json(self, genome: ResUNetGenome) -> dict[str, Any]:
        """Nested plain dicts and lists: ``{"stem": {...}, "encoder": [...], ...}``."""
        return {
            "stem": dump(genome.stem),
            "encoder": [dump(level) for level in genome.encoder],
            "bottleneck": dump(genome.bottleneck),
            "decoder": [dump(level) for level in genome.decoder],
            "head": dump(genome.head),
            "activation": genome.activation,
            "training": dump(genome.training),
        }

    def from_json(self, data: Mapping[str, Any]) -> ResUNetGenome:
        """Parse and validate; unknown, missing or mistyped fields raise
        :class:`GenomeError` naming their path, e.g. ``decoder[1].join``."""
        _json.check_fields("", data, _TOP_LEVEL)
        genome = ResUNetGenome(
            stem=_json.parse(Stem, "stem", data["stem"]),
            encoder=_json.parse_list(EncoderLevel, "encoder", data["encoder"]),
            bottleneck=_json.parse(Bottleneck, "bottleneck", data["bottleneck"]),
            decoder=_json.parse_list(DecoderLevel, "decoder", data["decoder"]),
            head=_json.parse(Head, "head", data["head"]),
            activation=_json.parse_value("activation", data["activation"], "str"),
            training=_json.parse(Training, "training", data["training"]),
        )
        validate_genome(genome)
        return genome

    # -- decoding and summaries ----------------------------------------------------------

    def build(self, genome: ResUNetGenome, task: Task) -> keras.Model:
        """Decode to an uncompiled Keras model: raw pixels -> Rescaling(1/255) -> stem ->
        encoder -> bottleneck -> decoder -> ``heatmaps`` (1x1 conv, K channels) ->
        soft-argmax (:func:`soft_argmax_layers`) -> ``(batch, K, 2)`` input-pixel
        coordinates ``(x, y)``.

        Raises :class:`GenomeError` for an invalid genome and :class:`ValueError` for a
        classification task or an input whose height or width ``2**len(encoder)`` does
        not divide.
        """
        import keras

        self._check_buildable(genome, task)
        inputs = keras.Input(shape=task.input_shape, dtype="float32", name="pixels")
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        x, skips = _apply_encoder(genome, x)
        outputs = _apply_decoder_and_heatmaps(genome, x, skips, task, prefix="")
        return keras.Model(inputs, outputs, name="resunet")

    def build_multitask(
        self, genome: ResUNetGenome, tasks: Sequence[Task], names: Sequence[str]
    ) -> keras.Model:
        """One model for several tasks, as the original project's two nets in one: an
        input per task (``NAME_pixels``, at the task's own size), the genome's stem,
        encoder and bottleneck shared by all of them (one nested model, fully
        convolutional), then per task its own head: the decoder and heatmaps for a
        keypoint task (layers prefixed ``NAME_``, output ``NAME_keypoints``), global
        average pooling of the bottleneck and a softmax for a classification task
        (``NAME_predictions``). Outputs are in the order of ``tasks``."""
        import keras

        channels = {task.input_shape[2] for task in tasks}
        if len(channels) != 1:
            raise ValueError(f"the tasks' images differ in channels {sorted(channels)}")
        for task in tasks:
            self._check_sides(genome, task)
        image = keras.Input(shape=(None, None, channels.pop()), dtype="float32", name="image")
        bottom, skips = _apply_encoder(genome, image)
        encoder = keras.Model(image, [*skips, bottom], name="resunet_encoder")
        inputs, outputs = [], []
        for task, name in zip(tasks, names, strict=True):
            pixels = keras.Input(shape=task.input_shape, dtype="float32", name=f"{name}_pixels")
            x = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(pixels)
            *task_skips, x = encoder(x)
            inputs.append(pixels)
            if task.kind == "keypoints":
                outputs.append(
                    _apply_decoder_and_heatmaps(genome, x, task_skips, task, prefix=f"{name}_")
                )
            else:
                x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
                outputs.append(
                    keras.layers.Dense(
                        task.num_classes,
                        activation="softmax",
                        name=f"{name}_predictions",
                        dtype="float32",  # the output in float32 whatever the policy
                    )(x)
                )
        return keras.Model(inputs, outputs, name="resunet_multitask")

    def _check_buildable(self, genome: ResUNetGenome, task: Task) -> None:
        """Raise ``ValueError`` (or :class:`GenomeError`) where :meth:`build` cannot build."""
        if task.kind != "keypoints":
            raise ValueError("the resunet space builds keypoint models only")
        self._check_sides(genome, task)

    def _check_sides(self, genome: ResUNetGenome, task: Task) -> None:
        """Raise unless the genome is valid and its encoder can halve ``task``'s images."""
        self.validate(genome)
        factor = downsampling(genome)
        height, width, _ = task.input_shape
        if height % factor or width % factor:
            raise ValueError(
                f"the input {height}x{width} is not divisible by {factor}: a ResUNet with "
                f"{len(genome.encoder)} encoder levels needs sides that are multiples of "
                f"2**{len(genome.encoder)}"
            )

    def cost(self, genome: ResUNetGenome, task: Task) -> ModelCost:
        """The parameters and FLOPs of ``build(genome, task)``, exactly, without building
        it (no TensorFlow): ``model.count_params()`` and
        :func:`nas.training.model_stats.count_flops`. Raises where :meth:`build` does."""
        self._check_buildable(genome, task)
        counter = CostCounter()
        x, skips = _encoder_cost(counter, genome, Tensor(*task.input_shape))
        _decoder_cost(counter, genome, x, skips, task)
        return counter.total()

    def cost_multitask(self, genome: ResUNetGenome, tasks: Sequence[Task]) -> ModelCost:
        """The parameters (the shared encoder once) and FLOPs (one image of each task) of
        :meth:`build_multitask`, without building it."""
        counter = CostCounter()
        shared = 0
        for i, task in enumerate(tasks):
            self._check_sides(genome, task)
            before = counter.total().params
            x, skips = _encoder_cost(counter, genome, Tensor(*task.input_shape))
            if i:  # the encoder's weights are counted once, its FLOPs per image
                shared += counter.total().params - before
            if task.kind == "keypoints":
                _decoder_cost(counter, genome, x, skips, task)
            else:
                counter.dense(Tensor(1, 1, x.channels), task.num_classes)  # after pooling
        total = counter.total()
        return ModelCost(params=total.params - shared, flops=total.flops)

    def recipe(self, genome: ResUNetGenome) -> TrainingRecipe:
        """The genome's training settings."""
        return cnn.training_recipe(genome.training)

    def describe(self, genome: ResUNetGenome) -> str:
        """One line, e.g. ``stem16 | enc s2:32 s2:64 s2:128 | bott256 | dec up:128+cat
        up:64+cat up:32+cat | full relu | adam lr1e-3 b32``.

        Encoder levels read ``{mp|s2}:{width}[x{blocks}][k{kernel}]`` (max-pool or
        strided), decoder levels ``{tc|up}:{width}[x{blocks}]+{cat|add}`` (transpose conv
        or bilinear upsampling); block counts of 1 and 3x3 kernels are left out.
        """
        stem = genome.stem
        parts = [f"stem{stem.width}" + (f"k{stem.kernel}" if stem.kernel != 3 else "")]
        enc = []
        for e in genome.encoder:
            text = f"{'mp' if e.downsampling == 'maxpool' else 's2'}:{e.width}"
            text += f"x{e.blocks}" if e.blocks != 1 else ""
            text += f"k{e.kernel}" if e.kernel != 3 else ""
            enc.append(text)
        parts.append("enc " + " ".join(enc))
        b = genome.bottleneck
        parts.append(f"bott{b.width}" + (f"x{b.blocks}" if b.blocks != 1 else ""))
        dec = []
        for d in genome.decoder:
            text = f"{'tc' if d.upsampling == 'transpose' else 'up'}:{d.width}"
            text += f"x{d.blocks}" if d.blocks != 1 else ""
            text += "+cat" if d.join == "concat" else "+add"
            dec.append(text)
        parts.append("dec " + " ".join(dec) if dec else "dec none")
        parts.append(f"{genome.head.heatmap_resolution} {genome.activation}")
        parts.append(cnn.describe_training(genome.training))
        return " | ".join(parts)


# --- encoder and decoder, shared by build and build_multitask ------------------------------


def _apply_encoder(genome: ResUNetGenome, x: Any) -> tuple[Any, list[Any]]:
    """Stem, encoder levels and bottleneck on ``x`` (rescaled pixels): the bottleneck's
    output and the skips (the stem's and each level's input, shallowest first)."""
    import keras

    layers = keras.layers
    act = genome.activation
    x = cnn.conv_bn(x, genome.stem.width, genome.stem.kernel, 1, "stem")
    x = layers.Activation(act, name="stem_act")(x)
    skips = []
    channels = genome.stem.width
    for i, level in enumerate(genome.encoder, start=1):
        skips.append(x)
        stride = 2
        if level.downsampling == "maxpool":
            x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)
            stride = 1
        for j in range(1, level.blocks + 1):
            x = cnn.residual_block(
                x, level.width, level.kernel, stride, channels, act, f"enc{i}_block{j}"
            )
            channels, stride = level.width, 1
    for j in range(1, genome.bottleneck.blocks + 1):
        x = cnn.residual_block(
            x, genome.bottleneck.width, DECODER_KERNEL, 1, channels, act, f"bottleneck_block{j}"
        )
        channels = genome.bottleneck.width
    return x, skips


def _apply_decoder_and_heatmaps(
    genome: ResUNetGenome, x: Any, skips: Sequence[Any], task: Task, *, prefix: str
) -> Any:
    """The decoder levels on the bottleneck's output ``x`` with the encoder's ``skips``,
    the heatmaps and their soft-argmax: the ``(batch, K, 2)`` keypoints. Layer names
    start with ``prefix``."""
    import keras

    layers = keras.layers
    act = genome.activation
    channels = int(x.shape[-1])
    mirrored = range(len(genome.encoder), len(genome.encoder) - len(genome.decoder), -1)
    for i, level in zip(mirrored, genome.decoder, strict=True):
        x = _upsample(x, level, f"{prefix}dec{i}")
        skip = skips[i - 1]
        if level.join == "concat":
            x = layers.Concatenate(name=f"{prefix}dec{i}_concat")([x, skip])
            channels = level.width + int(skip.shape[-1])
        else:
            if int(skip.shape[-1]) != level.width:
                skip = cnn.conv_bn(skip, level.width, 1, 1, f"{prefix}dec{i}_skip")
            x = layers.Add(name=f"{prefix}dec{i}_add")([x, skip])
            channels = level.width
        for j in range(1, level.blocks + 1):
            x = cnn.residual_block(
                x, level.width, DECODER_KERNEL, 1, channels, act, f"{prefix}dec{i}_block{j}"
            )
            channels = level.width
    # the output layers compute in float32 whatever the global precision policy
    heatmaps = layers.Conv2D(task.num_keypoints, 1, name=f"{prefix}heatmaps", dtype="float32")(x)
    return soft_argmax_layers(heatmaps, stride=heatmap_stride(genome), prefix=prefix)


def _encoder_cost(
    counter: CostCounter, genome: ResUNetGenome, x: Tensor
) -> tuple[Tensor, list[Tensor]]:
    """:func:`_apply_encoder`'s parameters and FLOPs, into ``counter``."""
    x = counter.conv_bn(x, genome.stem.width, genome.stem.kernel)
    skips = []
    for level in genome.encoder:
        skips.append(x)
        stride = 2
        if level.downsampling == "maxpool":  # 2x2 max-pool, "valid" padding
            x, stride = Tensor(x.height // 2, x.width // 2, x.channels), 1
        for _ in range(level.blocks):
            x = cnn.residual_block_cost(counter, x, level.width, level.kernel, stride)
            stride = 1
    for _ in range(genome.bottleneck.blocks):
        x = cnn.residual_block_cost(counter, x, genome.bottleneck.width, DECODER_KERNEL, 1)
    return x, skips


def _decoder_cost(
    counter: CostCounter, genome: ResUNetGenome, x: Tensor, skips: Sequence[Tensor], task: Task
) -> None:
    """:func:`_apply_decoder_and_heatmaps`' parameters and FLOPs, into ``counter``."""
    mirrored = range(len(genome.encoder), len(genome.encoder) - len(genome.decoder), -1)
    for i, level in zip(mirrored, genome.decoder, strict=True):
        if level.upsampling == "transpose":
            x = counter.transpose_conv(x, level.width, 2, 2)
        else:  # bilinear x2, then a 1x1 conv
            x = counter.conv(Tensor(2 * x.height, 2 * x.width, x.channels), level.width, 1)
        x = counter.batch_norm(x)
        skip = skips[i - 1]
        if level.join == "concat":
            x = Tensor(x.height, x.width, x.channels + skip.channels)
        elif skip.channels != level.width:
            counter.conv_bn(skip, level.width, 1)
        for _ in range(level.blocks):
            x = cnn.residual_block_cost(counter, x, level.width, DECODER_KERNEL, 1)
    counter.conv(x, task.num_keypoints, 1)  # the heatmaps (no BN)


# --- decoder ----------------------------------------------------------------------------


def _upsample(x: Any, level: DecoderLevel, name: str) -> Any:
    import keras

    layers = keras.layers
    if level.upsampling == "transpose":
        x = layers.Conv2DTranspose(
            level.width, 2, strides=2, padding="same", name=f"{name}_up_conv"
        )(x)
    else:
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = layers.Conv2D(level.width, 1, name=f"{name}_up_conv")(x)
    return layers.BatchNormalization(
        momentum=cnn.BN_MOMENTUM, epsilon=cnn.BN_EPSILON, name=f"{name}_up_bn"
    )(x)


def soft_argmax(heatmaps: Any, *, stride: int = 1) -> Any:
    """Differentiable argmax of ``(batch, height, width, K)`` heatmap logits: a softmax
    over the cells of each channel, then the expected cell centre in input pixels,
    ``(batch, K, 2)`` as ``(x, y)``. A cell ``(i, j)`` at ``stride`` ``s`` has its centre
    at ``(s*j + (s - 1)/2, s*i + (s - 1)/2)`` (pixel ``[row, col]`` is centred on
    ``(col, row)``), so a one-hot heatmap gives exactly that centre."""
    from keras import ops

    logits = ops.cast(heatmaps, "float32")
    _, height, width, channels = logits.shape
    if height is None or width is None or channels is None:
        raise ValueError(f"soft_argmax needs static heatmap sizes, got {logits.shape}")
    cells = ops.reshape(logits, (-1, height * width, channels))  # row-major cells
    probs = ops.softmax(cells, axis=1)
    centres = np.stack(cell_centres(height, width, stride), axis=-1)  # (cells, 2)
    return ops.einsum("bck,cd->bkd", probs, centres)


def cell_centres(height: int, width: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The input-pixel ``x`` and ``y`` of the centre of each heatmap cell, in row-major
    cell order (``height * width`` each): cell ``(i, j)`` at ``(s*j + (s-1)/2, s*i + (s-1)/2)``."""
    offset = (stride - 1) / 2.0
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return (
        (columns.ravel() * stride + offset).astype(np.float32),
        (rows.ravel() * stride + offset).astype(np.float32),
    )


def soft_argmax_layers(heatmaps: Any, *, stride: int, prefix: str = "") -> Any:
    """:func:`soft_argmax` from Keras' own layers, so a saved model loads in any Keras
    without this project: the cells of each channel flattened (``Reshape``) and turned
    into probabilities (``Softmax``); for ``x``, each cell's probability times its centre's
    offset from the middle of the image (``Rescaling`` by a constant array), averaged over
    the cells (``GlobalAveragePooling1D``), then times the cell count plus the middle
    (``Rescaling``): the expected ``x``. The same for ``y``; ``(x, y)`` side by side as the
    ``keypoints`` output ``(batch, K, 2)``. Offsets from the middle keep the float32 sums
    small (an ONNX runtime, summing in another order, agrees to about 1e-5 px). No
    weights, no FLOPs counted; float32 whatever the precision policy. Layer names start
    with ``prefix``."""
    import keras

    layers = keras.layers
    _, height, width, channels = heatmaps.shape
    cells = height * width
    flat = layers.Reshape((cells, channels), name=f"{prefix}heatmap_cells", dtype="float32")(
        heatmaps
    )
    probs = layers.Softmax(axis=1, name=f"{prefix}heatmap_softmax", dtype="float32")(flat)
    xs, ys = cell_centres(height, width, stride)
    axes = []
    for axis, centres in (("x", xs), ("y", ys)):
        middle = float((centres.min() + centres.max()) / 2)
        weighted = layers.Rescaling(
            scale=(centres - middle).reshape(cells, 1),
            name=f"{prefix}keypoint_{axis}_offsets",
            dtype="float32",
        )(probs)
        mean = layers.GlobalAveragePooling1D(name=f"{prefix}keypoint_{axis}_mean", dtype="float32")(
            weighted
        )
        expected = layers.Rescaling(
            scale=float(cells),
            offset=middle,
            name=f"{prefix}keypoint_{axis}_pixels",
            dtype="float32",
        )(mean)
        axes.append(
            layers.Reshape((channels, 1), name=f"{prefix}keypoint_{axis}", dtype="float32")(
                expected
            )
        )
    return layers.Concatenate(axis=-1, name=f"{prefix}keypoints", dtype="float32")(axes)


SPACE = ResUNetSpace()
"""The space ``load_space("resunet")`` returns."""
