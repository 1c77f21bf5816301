"""Exact parameter and FLOP counts of decoded models, computed from shapes alone.

A space's ``cost(genome, task)`` walks its decoder's layers on paper with a
:class:`CostCounter`, so the driver knows a candidate's ``params`` and ``flops`` before
any training and without TensorFlow. The counts follow Keras and
:func:`nas.training.model_stats.count_flops` exactly:

* parameters are ``model.count_params()``: every weight, trainable or not, so a
  ``BatchNormalization`` has 4 per channel (gamma, beta, moving mean and variance) and a
  biased ``Conv2D`` ``k*k*c_in*c_out + c_out``;
* FLOPs are 2 x the multiply-accumulates of the convolution, transposed convolution and
  ``Dense`` layers (see :mod:`nas.training.model_stats`), from their static input and output shapes;
* ``"same"`` padding gives ``ceil(side / stride)``; a ``"valid"`` 2x2 max-pool with stride
  2 gives ``floor(side / 2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.core.space import ModelCost

__all__ = ["CostCounter", "Tensor"]


@dataclass(frozen=True)
class Tensor:
    """The static shape of one image's feature map: ``height`` x ``width`` x ``channels``."""

    height: int
    width: int
    channels: int


class CostCounter:
    """Accumulates the parameters and multiply-accumulates of the layers it is shown.

    Each method takes the input feature map, adds the layer's cost and returns its output
    feature map, mirroring one Keras layer of a decoder.
    """

    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def total(self) -> ModelCost:
        """The model's ``count_params()`` and ``count_flops`` (2 x the MACs) so far."""
        return ModelCost(params=self.params, flops=2 * self.macs)

    def conv(self, x: Tensor, filters: int, kernel: int, stride: int = 1) -> Tensor:
        """A biased ``Conv2D`` with ``"same"`` padding."""
        out = Tensor(_same(x.height, stride), _same(x.width, stride), filters)
        self.params += kernel * kernel * x.channels * filters + filters
        self.macs += out.height * out.width * filters * kernel * kernel * x.channels
        return out

    def batch_norm(self, x: Tensor) -> Tensor:
        """``BatchNormalization`` over the channels: 4 weights each, no FLOPs counted."""
        self.params += 4 * x.channels
        return x

    def conv_bn(self, x: Tensor, filters: int, kernel: int, stride: int = 1) -> Tensor:
        """:meth:`conv` then :meth:`batch_norm` (``search_spaces.cnn.conv_bn``)."""
        return self.batch_norm(self.conv(x, filters, kernel, stride))

    def transpose_conv(self, x: Tensor, filters: int, kernel: int, stride: int) -> Tensor:
        """A biased ``Conv2DTranspose`` with ``"same"`` padding: each input position
        scatters a full kernel into every output channel."""
        self.params += kernel * kernel * x.channels * filters + filters
        self.macs += x.height * x.width * x.channels * kernel * kernel * filters
        return Tensor(x.height * stride, x.width * stride, filters)

    def dense(self, x: Tensor, units: int) -> Tensor:
        """A biased ``Dense`` on the last axis; every other position is independent."""
        self.params += x.channels * units + units
        self.macs += x.height * x.width * x.channels * units
        return Tensor(x.height, x.width, units)


def _same(side: int, stride: int) -> int:
    return math.ceil(side / stride)
