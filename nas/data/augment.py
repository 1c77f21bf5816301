"""Random flips, shifts and zooms of whole image arrays, in NumPy, with an explicit generator.

The final training (:mod:`nas.engine.final`) draws a fresh augmented copy of the training
images for every epoch. Doing it here instead of with Keras' random preprocessing
layers keeps the epoch a pure function of ``(images, seed, epoch)``, so a resumed
training sees the same images as one that never stopped; and it keeps those layers
out of the process: with TensorFlow 2.21 on CPU they crashed the process (heap
corruption) in runs of a few minutes, see docs/reliability.md, "TensorFlow's own crashes".

Each image gets its own affine map: a horizontal flip (probability ``flip``), a zoom
by a factor in ``[1 - zoom, 1 + zoom]`` about the centre, and a shift of up to
``shift`` of the side in each direction. Pixels are resampled bilinearly; the border
is extended (``nearest``), so no black frame teaches the net a shortcut. Keypoints move
with their image: the same map is applied to their coordinates, and a flip swaps left
and right points through ``flip_permutation``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Augmentation", "augment"]

_CHUNK = 2048  # images resampled at once: bounds the temporary arrays to ~100 MB


@dataclass(frozen=True, kw_only=True)
class Augmentation:
    """How strongly to perturb training images (0 turns a perturbation off)."""

    flip: float = 0.5
    shift: float = 0.1
    zoom: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip <= 1.0:
            raise ValueError(f"flip must be a probability in [0, 1], got {self.flip}")
        if not 0.0 <= self.shift <= 0.5:
            raise ValueError(f"shift must be in [0, 0.5] of the side, got {self.shift}")
        if not 0.0 <= self.zoom < 1.0:
            raise ValueError(f"zoom must be in [0, 1), got {self.zoom}")

    @property
    def active(self) -> bool:
        """False when every perturbation is off."""
        return bool(self.flip or self.shift or self.zoom)


def augment(
    images: np.ndarray,
    rng: np.random.Generator,
    settings: Augmentation,
    *,
    keypoints: np.ndarray | None = None,
    flip_permutation: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A randomly perturbed float32 copy of ``images`` (N, H, W, C), and moved ``keypoints``.

    ``keypoints`` (N, K, 2) are pixel ``(x, y)`` coordinates, NaN where missing. With
    keypoints, a flip needs ``flip_permutation`` (keypoint ``i`` becomes keypoint
    ``flip_permutation[i]``); without one, keypoint images are never flipped.
    """
    count, height, width = images.shape[:3]
    flips = rng.random(count) < settings.flip
    if keypoints is not None and flip_permutation is None:
        flips[:] = False
    scale = rng.uniform(1.0 - settings.zoom, 1.0 + settings.zoom, count)
    shift_x = rng.uniform(-settings.shift, settings.shift, count) * width
    shift_y = rng.uniform(-settings.shift, settings.shift, count) * height
    out = np.empty(images.shape, dtype=np.float32)
    centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    for start in range(0, count, _CHUNK):
        part = slice(start, min(start + _CHUNK, count))
        # output pixel -> source pixel: undo the shift, undo the zoom, undo the flip
        sx = (grid_x[None] - centre_x - shift_x[part, None, None]) / scale[part, None, None]
        sy = (grid_y[None] - centre_y - shift_y[part, None, None]) / scale[part, None, None]
        sx = np.where(flips[part, None, None], -sx, sx) + centre_x
        sy = sy + centre_y
        out[part] = _bilinear(images[part], sx, sy)
    moved = None
    if keypoints is not None:
        moved = keypoints.astype(np.float32, copy=True)
        if flips.any():
            permuted = moved[flips][:, list(flip_permutation or ())]
            permuted[..., 0] = width - 1 - permuted[..., 0]
            moved[flips] = permuted
        moved[..., 0] = (moved[..., 0] - centre_x) * scale[:, None] + centre_x + shift_x[:, None]
        moved[..., 1] = (moved[..., 1] - centre_y) * scale[:, None] + centre_y + shift_y[:, None]
    return out, moved


def _bilinear(images: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Sample ``images`` (n, H, W, C) at source coordinates ``sx``, ``sy`` (n, H, W)."""
    n, height, width = images.shape[:3]
    sx = np.clip(sx, 0.0, width - 1.0)
    sy = np.clip(sy, 0.0, height - 1.0)
    x0 = np.minimum(np.floor(sx).astype(np.int64), width - 2 if width > 1 else 0)
    y0 = np.minimum(np.floor(sy).astype(np.int64), height - 2 if height > 1 else 0)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    fx = (sx - x0)[..., None].astype(np.float32)
    fy = (sy - y0)[..., None].astype(np.float32)
    index = np.arange(n)[:, None, None]
    source = images.astype(np.float32, copy=False)
    top = source[index, y0, x0] * (1 - fx) + source[index, y0, x1] * fx
    bottom = source[index, y1, x0] * (1 - fx) + source[index, y1, x1] * fx
    return top * (1 - fy) + bottom * fy
