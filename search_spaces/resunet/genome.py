"""The ResUNet genome: its genes' grids and validation ranges, the frozen dataclasses,
their validation and JSON form, and the levels as mirrored encoder-decoder pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from search_spaces import cnn
from search_spaces._genes import (
    GenomeChecks,
    GenomeJson,
)
from search_spaces.cnn import Training

if TYPE_CHECKING:
    pass


Activation = Literal["relu", "swish", "gelu"]
Downsampling = Literal["maxpool", "strided"]
Upsampling = Literal["transpose", "bilinear"]
Join = Literal["concat", "add"]
Resolution = Literal["full", "half"]

ACTIVATIONS: tuple[str, ...] = cnn.genome.ACTIVATIONS
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
VALID_STEM_WIDTH = cnn.genome.VALID_STEM_WIDTH
VALID_STEM_KERNELS = cnn.genome.VALID_STEM_KERNELS
VALID_LEVELS = (1, 8)
VALID_WIDTH = cnn.genome.VALID_WIDTH
VALID_BLOCKS = (1, 64)
VALID_KERNELS = cnn.genome.VALID_STAGE_KERNELS


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


def decoder_length(encoder_levels: int, resolution: str) -> int:
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
    expected = decoder_length(len(genome.encoder), head.heatmap_resolution)
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

GENOME_JSON = GenomeJson(
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
TOP_LEVEL = ("stem", "encoder", "bottleneck", "decoder", "head", "activation", "training")


# --- levels as mirrored pairs (for the operators) ---------------------------------------

LevelPair = tuple[EncoderLevel, DecoderLevel | None]


def level_pairs(genome: ResUNetGenome) -> list[LevelPair]:
    """Encoder levels, shallowest first, each with its mirrored decoder level (``None``
    for the shallowest level when the heatmaps are at half resolution)."""
    mirrors: list[DecoderLevel | None] = list(reversed(genome.decoder))
    if genome.head.heatmap_resolution == "half":
        mirrors.insert(0, None)
    return list(zip(genome.encoder, mirrors, strict=True))


def with_level_pairs(
    genome: ResUNetGenome, pairs: Sequence[LevelPair], **changes: Any
) -> ResUNetGenome:
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


def width_index(width: int) -> int:
    """Position of the grid value nearest to ``width`` (ties to the smaller)."""
    return min(range(len(WIDTHS)), key=lambda i: (abs(WIDTHS[i] - width), i))
