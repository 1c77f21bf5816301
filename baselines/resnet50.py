"""ResNet50 (He et al. 2016, v1 as in ``keras.applications.ResNet50``) as a CNN genome.

Its backbone, :func:`search_spaces.cnn.backbone`, has exactly the layers and the
23,587,712 parameters of ``keras.applications.ResNet50(include_top=False, weights=None)``.
Its genes lie outside the sampling grids of the CNN space (stem width 64, stage widths up
to 512, depth 6), so it is a seed for a search, not something the space would sample.
"""

from __future__ import annotations

from search_spaces.cnn import CnnGenome, Head, Stage, Stem, Training

__all__ = ["RESNET50"]


def _stage(depth: int, width: int, stride: int) -> Stage:
    return Stage(
        block="bottleneck",
        depth=depth,
        width=width,
        kernel=3,
        stride=stride,
        expansion=4,
        se=False,
        activation="relu",
    )


RESNET50 = CnnGenome(
    stem=Stem(width=64, kernel=7, stride=2, pool=True),
    stages=(
        _stage(3, 64, 1),
        _stage(4, 128, 2),
        _stage(6, 256, 2),
        _stage(3, 512, 2),
    ),
    head=Head(pooling="avg", dense=(), dropout=0.0),
    training=Training(learning_rate=1e-3, batch_size=32, optimizer="adam", weight_decay=0.0),
)
"""ResNet50: 7x7/2 stem with max-pool, bottleneck stages 3-4-6-3 of widths 64-512 (x4)."""
