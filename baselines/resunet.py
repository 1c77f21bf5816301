"""The hand-designed ResUNet of the original project as a genome of the ResUNet space.

A 3x3 stem of 16 filters at full resolution; three encoder levels of one residual block
each, 32, 64 and 128 wide, each halving the resolution with a strided first conv (as in
Zhang et al.'s ResUNet); a bottleneck of one 256-wide residual block; a mirrored decoder
of three levels, 128, 64 and 32 wide (each as wide as the encoder level it mirrors), each
doubling the resolution (bilinear upsampling + 1x1 conv) and concatenating the skip of
the matching resolution (the outputs of encoder levels 2 and 1, then the stem's 16
channels); heatmaps at the full input resolution, read out by soft-argmax. Trained with
Adam, learning rate 1e-3, batch 32.

Its bottleneck width (256) lies outside the sampling grid of the space (up to 96), so it
is a seed for a search, not something the space would sample. At 96x96x1 with 15
keypoints it has 1,790,063 parameters (``tests/search_spaces/test_resunet.py``).
"""

from __future__ import annotations

from search_spaces.resunet import (
    Bottleneck,
    DecoderLevel,
    EncoderLevel,
    Head,
    ResUNetGenome,
    Stem,
    Training,
)

__all__ = ["RESUNET"]


RESUNET = ResUNetGenome(
    stem=Stem(width=16, kernel=3),
    encoder=tuple(
        EncoderLevel(width=w, blocks=1, kernel=3, downsampling="strided") for w in (32, 64, 128)
    ),
    bottleneck=Bottleneck(width=256, blocks=1),
    decoder=tuple(
        DecoderLevel(width=w, blocks=1, upsampling="bilinear", join="concat") for w in (128, 64, 32)
    ),
    head=Head(heatmap_resolution="full"),
    activation="relu",
    training=Training(learning_rate=1e-3, batch_size=32, optimizer="adam", weight_decay=0.0),
)
"""ResUNet: stem 16, encoder 32-64-128 (strided), bottleneck 256, decoder 128-64-32
(bilinear, concat), full-resolution heatmaps; adam 1e-3, batch 32."""
