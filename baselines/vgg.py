"""A small VGG-style net for 48x48 faces, as a CNN genome: the kind of net one designs by hand.

Plain 3x3 conv-BN-ReLU layers doubling in width as the resolution halves (32 at 48x48,
64 at 24x24, 128 at 12x12; strided convs instead of max-pools), global average pooling,
one hidden Dense layer and dropout: 305,381 parameters (171 MFLOPs). It stands for the hand-designed
nets a search must beat on FER2013, and, seeded into a search, gives it one net with the
capacity that long training rewards (the briefly trained candidates of a search tend to
be much smaller).
"""

from __future__ import annotations

from search_spaces.cnn import CnnGenome, Head, Stage, Stem, Training

__all__ = ["VGG"]

VGG = CnnGenome(
    stem=Stem(width=32, kernel=3, stride=1, pool=False),
    stages=(
        Stage(block="plain", depth=1, width=32),
        Stage(block="plain", depth=2, width=64, stride=2),
        Stage(block="plain", depth=2, width=128, stride=2),
    ),
    head=Head(pooling="avg", dense=(128,), dropout=0.4),
    training=Training(learning_rate=1e-3, batch_size=64, optimizer="adam"),
)
