"""The ResUNet decoder's layers on paper: exact parameters and MACs without Keras
(see ``search_spaces/_cost.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from search_spaces import cnn
from search_spaces._cost import CostCounter, Tensor
from search_spaces.resunet.genome import (
    DECODER_KERNEL,
    ResUNetGenome,
)

if TYPE_CHECKING:
    from nas.core.task import Task


def encoder_cost(
    counter: CostCounter, genome: ResUNetGenome, x: Tensor
) -> tuple[Tensor, list[Tensor]]:
    """:func:`apply_encoder`'s parameters and FLOPs, into ``counter``."""
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


def decoder_cost(
    counter: CostCounter, genome: ResUNetGenome, x: Tensor, skips: Sequence[Tensor], task: Task
) -> None:
    """:func:`apply_decoder_and_heatmaps`' parameters and FLOPs, into ``counter``."""
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
    counter.conv(x, task.head.shape[0], 1)  # the heatmaps, one per point (no BN)
