"""The decoder's layers on paper: a genome's exact parameters and MACs without Keras
(see ``search_spaces/_cost.py``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from search_spaces._cost import CostCounter, Tensor
from search_spaces.cnn.genome import (
    SE_MIN_UNITS,
    SE_RATIO,
    CnnGenome,
    Stage,
)

if TYPE_CHECKING:
    pass


def backbone_cost(counter: CostCounter, genome: CnnGenome, x: Tensor) -> Tensor:
    """:func:`apply_backbone`'s parameters and MACs added to ``counter``; its output."""
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
