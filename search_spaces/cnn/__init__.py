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

The package: :mod:`.genome` (genes, dataclasses, validation, JSON, the shared training
genes), :mod:`.space` (the operators), :mod:`.build` (the Keras decoder), :mod:`.cost`
(parameters and FLOPs on paper).
"""

from __future__ import annotations

from search_spaces.cnn.build import backbone, conv_bn, residual_block
from search_spaces.cnn.cost import residual_block_cost
from search_spaces.cnn.genome import (
    CnnGenome,
    Head,
    Stage,
    Stem,
    Training,
    check_training,
    describe_training,
    downsampling,
    draw_training,
    mutate_training,
    sample_training,
    training_recipe,
    validate_genome,
)
from search_spaces.cnn.space import CnnSpace

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
    "draw_training",
    "mutate_training",
    "residual_block",
    "residual_block_cost",
    "sample_training",
    "training_recipe",
    "validate_genome",
]

SPACE = CnnSpace()
"""The space ``load_space("cnn")`` returns."""
