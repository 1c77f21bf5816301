"""NumPy augmentation: exact flips and shifts, keypoints moving with their image, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from nas.data.augment import Augmentation, augment

OFF = Augmentation(flip=0.0, shift=0.0, zoom=0.0)


def _images(count: int = 6, side: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, side, side, 1), dtype=np.uint8)


def test_no_perturbation_returns_the_images_as_float32():
    images = _images()
    out, moved = augment(images, np.random.default_rng(0), OFF)
    assert out.dtype == np.float32 and moved is None
    np.testing.assert_array_equal(out, images.astype(np.float32))


def test_a_certain_flip_mirrors_every_image_and_swaps_left_and_right_keypoints():
    images = _images()
    keypoints = np.array([[[2.0, 5.0], [12.0, 6.0], [7.5, np.nan]]] * len(images), np.float32)
    out, moved = augment(
        images,
        np.random.default_rng(0),
        Augmentation(flip=1.0, shift=0.0, zoom=0.0),
        keypoints=keypoints,
        flip_permutation=(1, 0, 2),
    )
    np.testing.assert_allclose(out, images[:, :, ::-1].astype(np.float32), atol=1e-4)
    # point 0 becomes the mirror of point 1 and vice versa; a missing point stays missing
    np.testing.assert_allclose(moved[:, 0], [[15 - 12.0, 6.0]] * len(images))
    np.testing.assert_allclose(moved[:, 1], [[15 - 2.0, 5.0]] * len(images))
    assert np.isnan(moved[:, 2, 1]).all() and np.allclose(moved[:, 2, 0], 15 - 7.5)


def test_keypoint_images_are_not_flipped_without_a_permutation():
    images = _images()
    keypoints = np.zeros((len(images), 2, 2), np.float32)
    out, _ = augment(
        images,
        np.random.default_rng(0),
        Augmentation(flip=1.0, shift=0, zoom=0),
        keypoints=keypoints,
    )
    np.testing.assert_array_equal(out, images.astype(np.float32))


def test_a_keypoint_on_a_bright_pixel_stays_on_it_under_shifts_and_zooms():
    side, count = 32, 40
    images = np.zeros((count, side, side, 1), np.uint8)
    rng = np.random.default_rng(1)
    spots = rng.integers(10, 22, (count, 2))
    for i, (x, y) in enumerate(spots):
        images[i, y - 1 : y + 2, x - 1 : x + 2] = 255  # a 3x3 spot survives resampling
    keypoints = spots[:, None, :].astype(np.float32)
    out, moved = augment(
        images,
        np.random.default_rng(2),
        Augmentation(flip=0.5, shift=0.1, zoom=0.1),
        keypoints=keypoints,
        flip_permutation=(0,),
    )
    for image, point in zip(out[..., 0], moved[:, 0], strict=True):
        y, x = np.unravel_index(np.argmax(image), image.shape)
        assert abs(x - point[0]) <= 1.0 and abs(y - point[1]) <= 1.0
    assert not np.allclose(moved, keypoints)  # something moved


def test_the_same_generator_state_gives_the_same_epoch():
    images = _images(count=20)
    settings = Augmentation()
    first, _ = augment(images, np.random.default_rng([5, 3]), settings)
    again, _ = augment(images, np.random.default_rng([5, 3]), settings)
    other, _ = augment(images, np.random.default_rng([5, 4]), settings)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.min() >= 0 and first.max() <= 255


@pytest.mark.parametrize(
    ("field", "value"), [("flip", 1.5), ("shift", 0.6), ("zoom", 1.0), ("flip", -0.1)]
)
def test_out_of_range_settings_are_refused(field: str, value: float):
    with pytest.raises(ValueError, match=field):
        Augmentation(**{field: value})
