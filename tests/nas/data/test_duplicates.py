"""nas.data.duplicates: exact twins across splits and near-identical frames."""

from __future__ import annotations

import numpy as np

from nas.data.duplicates import exact_twins, near_identical_groups


def test_exact_twins_compare_whole_images_byte_for_byte():
    rng = np.random.default_rng(0)
    others = rng.integers(0, 256, size=(5, 4, 4, 1), dtype=np.uint8)
    images = np.concatenate([others[[3, 1]], others[[0]] ^ 1, others[[2]]])
    images[3, 3, 3, 0] ^= 1  # one pixel off: not a twin
    assert exact_twins(images, others).tolist() == [True, True, False, False]
    assert exact_twins(images[:0], others).shape == (0,)
    assert not exact_twins(images, others[:0]).any()


def _brute_force_groups(images: np.ndarray, limit: float) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float64)
    n = len(flat)
    group = np.arange(n)
    changed = True
    while changed:  # propagate the smallest index along every close pair
        changed = False
        for i in range(n):
            for j in range(n):
                close = np.abs(flat[i] - flat[j]).mean() <= limit
                if close and group[j] < group[i]:
                    group[i], changed = group[j], True
    return group


def test_near_identical_groups_match_brute_force_and_are_transitive():
    rng = np.random.default_rng(1)
    base = rng.integers(40, 200, size=(6, 32, 32), dtype=np.int16)
    frames = [base[0], base[0] + 6, base[0] + 12]  # a chain: 0-1 and 1-2 close, 0-2 not
    frames += [base[1], base[1] + 11]  # 11 levels apart: too far
    frames += [base[2], np.where(rng.random((32, 32)) < 0.05, 0, base[2])]  # 5% pixels lost
    frames += list(base[3:])
    images = np.clip(np.stack(frames), 0, 255).astype(np.uint8)
    groups = near_identical_groups(images, max_mean_abs_diff=10.0, chunk=3)
    assert groups.tolist() == _brute_force_groups(images, 10.0).tolist()
    assert groups[:3].tolist() == [0, 0, 0]
    assert groups[3] != groups[4]
    assert len(np.unique(groups)) == len(images) - 2 - (groups[5] == groups[6])


def test_near_identical_groups_of_random_faces_equal_brute_force():
    rng = np.random.default_rng(2)
    faces = rng.integers(0, 256, size=(12, 24, 24, 1), dtype=np.uint8)
    noisy = np.clip(faces[:6].astype(np.int16) + rng.integers(-12, 13, size=(6, 24, 24, 1)), 0, 255)
    images = np.concatenate([faces, noisy.astype(np.uint8)])
    for limit in (2.0, 6.0, 7.0):
        assert (
            near_identical_groups(images, max_mean_abs_diff=limit).tolist()
            == _brute_force_groups(images, limit).tolist()
        )
    assert near_identical_groups(images[:1]).tolist() == [0]
