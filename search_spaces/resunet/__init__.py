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

The package: :mod:`.genome` (genes, dataclasses, validation, JSON), :mod:`.space` (the
operators), :mod:`.build` (the Keras decoder and the soft-argmax), :mod:`.cost`
(parameters and FLOPs on paper).
"""

from __future__ import annotations

from search_spaces.cnn import Training
from search_spaces.resunet.build import cell_centres, soft_argmax, soft_argmax_layers
from search_spaces.resunet.genome import (
    Bottleneck,
    DecoderLevel,
    EncoderLevel,
    Head,
    ResUNetGenome,
    Stem,
    downsampling,
    heatmap_stride,
    validate_genome,
)
from search_spaces.resunet.space import ResUNetSpace

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

SPACE = ResUNetSpace()
