"""Images that appear twice: exact copies across splits, near-identical video frames.

FER2013 holds byte-identical faces in Training and PublicTest (211 of the 2,486
five-class PublicTest rows), so a net that memorises Training is flattered on
validation; :func:`exact_twins` finds them. Kaggle's facial keypoint file holds runs of
frames from the same videos, a few grey levels apart; :func:`near_identical_groups`
joins them so a split can keep each run on one side. Both are exact (no hashing of
approximate features, no sampling) and need only NumPy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NEAR_IDENTICAL_MEAN_ABS_DIFF", "exact_twins", "near_identical_groups"]

NEAR_IDENTICAL_MEAN_ABS_DIFF = 10.0
"""Two frames are near-identical when their pixels differ by at most this many grey
levels (of 255) on average. In the shared keypoint file, pairs under 10 are the same
face in the same shot a moment apart; around 10-12 they are still the same shot."""


def exact_twins(images: np.ndarray, others: np.ndarray) -> np.ndarray:
    """A boolean mask over ``images``: True where the image's bytes equal some image of
    ``others`` (same shape per image)."""
    if len(images) == 0 or len(others) == 0:
        return np.zeros(len(images), dtype=bool)
    return np.isin(_row_keys(images), _row_keys(others))


def _row_keys(images: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    return flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))).ravel()


def near_identical_groups(
    images: np.ndarray,
    *,
    max_mean_abs_diff: float = NEAR_IDENTICAL_MEAN_ABS_DIFF,
    chunk: int = 64,
) -> np.ndarray:
    """A group number per image (``int64``, the smallest index in its group): images are
    joined, transitively, when their mean absolute pixel difference is at most
    ``max_mean_abs_diff``. An image alike to no other is a group of its own.

    Exact, and quadratic only on a coarse copy: the mean absolute difference of block
    means never exceeds that of the pixels, so pairs are screened on 8x8 block means,
    then on 24x24, and only the survivors are compared pixel by pixel.
    """
    n = len(images)
    parent = np.arange(n)
    if n < 2:
        return parent.astype(np.int64)
    pixels = images.reshape(n, *images.shape[1:3], -1).astype(np.float32)
    pairs = _screened_pairs(_block_means(pixels, 8), max_mean_abs_diff, chunk)
    pairs = _close_pairs(_block_means(pixels, 24), pairs, max_mean_abs_diff)
    pairs = _close_pairs(pixels.reshape(n, -1), pairs, max_mean_abs_diff)
    for i, j in pairs:
        _union(parent, int(i), int(j))
    return np.array([_find(parent, i) for i in range(n)], dtype=np.int64)


def _screened_pairs(coarse: np.ndarray, limit: float, chunk: int) -> np.ndarray:
    """Every pair (i < j) whose coarse rows differ by at most ``limit`` on average."""
    found = []
    for start in range(0, len(coarse), chunk):
        block = coarse[start : start + chunk]
        distance = np.abs(block[:, None, :] - coarse[None, :, :]).mean(axis=2)
        rows, cols = np.nonzero(distance <= limit)
        rows = rows + start
        found.append(np.stack([rows, cols], axis=1)[cols > rows])
    return np.concatenate(found)


def _close_pairs(
    rows: np.ndarray, pairs: np.ndarray, limit: float, batch: int = 1024
) -> np.ndarray:
    """The ``pairs`` whose ``rows`` differ by at most ``limit`` on average."""
    keep = np.zeros(len(pairs), dtype=bool)
    for start in range(0, len(pairs), batch):
        i, j = pairs[start : start + batch].T
        keep[start : start + batch] = np.abs(rows[i] - rows[j]).mean(axis=1) <= limit
    return pairs[keep]


def _block_means(pixels: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) -> (N, side*side*C) means of side x side blocks (cropped to
    a multiple of the block size); their mean absolute difference never exceeds the
    pixels'."""
    n, height, width = pixels.shape[:3]
    bh, bw = max(1, height // side), max(1, width // side)
    rows, cols = height // bh, width // bw
    cropped = pixels[:, : rows * bh, : cols * bw].reshape(n, rows, bh, cols, bw, -1)
    return cropped.mean(axis=(2, 4)).reshape(n, -1)


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:
        parent[i], i = root, parent[i]
    return int(root)


def _union(parent: np.ndarray, i: int, j: int) -> None:
    a, b = _find(parent, i), _find(parent, j)
    if a != b:
        parent[max(a, b)] = min(a, b)
