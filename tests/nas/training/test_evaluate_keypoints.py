"""The keypoint task in a worker: masked loss, flips, and training on sparse real labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def test_masked_loss_exact_values_and_missing_points_contribute_nothing():
    import tensorflow as tf

    from nas.kinds.keypoints import masked_keypoint_loss

    nan = np.nan
    targets = tf.constant([[[10.0, 20.0], [nan, nan]], [[nan, nan], [30.0, 40.0]]])
    predicted = tf.Variable([[[12.0, 20.0], [99.0, -5.0]], [[7.0, 7.0], [30.0, 44.0]]])
    loss = masked_keypoint_loss(2.0)
    with tf.GradientTape() as tape:
        value = loss(targets, predicted)
    # Present coordinates: errors 2, 0, 0, 4 in pixels -> (1, 0, 0, 2) in units of 2 px.
    assert float(value) == pytest.approx((1 + 0 + 0 + 4) / 4)
    gradient = tape.gradient(value, predicted).numpy()
    assert np.all(gradient[0, 1] == 0) and np.all(gradient[1, 0] == 0)
    assert gradient[0, 0, 0] != 0 and gradient[1, 1, 1] != 0

    changed = tf.constant([[[12.0, 20.0], [0.0, 0.0]], [[1e6, -1e6], [30.0, 44.0]]])
    assert float(loss(targets, changed)) == float(value)


def _three_point_faces(count: int, seed: int):
    """``count`` random 8x8 faces with three points, the first two a left-right pair:
    their images, their points, and the training data of both."""
    from nas.core.task import Task
    from nas.core.trial import EvalData

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 8, 8, 1), dtype=np.uint8)
    keypoints = rng.uniform(0, 7, size=(count, 3, 2)).astype(np.float32)
    data = EvalData(
        task=Task(kind="keypoints", input_shape=(8, 8, 1), num_keypoints=3),
        train_images=images,
        train_targets=keypoints,
        validation_images=images,
        validation_targets=keypoints,
        flip_permutation=(1, 0, 2),
    )
    return images, keypoints, data


def test_flips_mirror_images_and_swap_left_and_right_points():
    from nas.training.core import training_batches

    images, keypoints, data = _three_point_faces(count=32, seed=0)
    flipped = 0
    for batch_images, batch_points in training_batches(data, batch_size=32, seed=1).take(1):
        for image, points in zip(batch_images.numpy(), batch_points.numpy(), strict=True):
            index = next(
                i
                for i in range(32)
                if np.array_equal(image, images[i]) or np.array_equal(image, images[i][:, ::-1])
            )
            if np.array_equal(image, images[index]):
                np.testing.assert_array_equal(points, keypoints[index])
            else:
                flipped += 1
                original = keypoints[index]
                np.testing.assert_allclose(points[0], [7 - original[1, 0], original[1, 1]])
                np.testing.assert_allclose(points[1], [7 - original[0, 0], original[0, 1]])
                np.testing.assert_allclose(points[2], [7 - original[2, 0], original[2, 1]])
    assert 0 < flipped < 32


def test_every_training_batch_is_full_even_past_the_end_of_a_pass():
    """The candidates' endless stream and the final training's epochs have no shorter last
    batch (oneDNN's strided 1x1 weight gradient corrupts the heap on odd batches,
    nas.training.core.full_batches): 20 faces in batches of 8 give 8, 8, 8, ..."""
    from nas.training.core import full_batches, training_batches

    _, _, data = _three_point_faces(count=20, seed=2)
    sizes = [
        int(images.shape[0]) for images, _ in training_batches(data, 8, seed=0, repeat=True).take(7)
    ]
    assert sizes == [8] * 7
    order = full_batches(np.arange(20), 8)
    assert len(order) == 24 and list(order[20:]) == [0, 1, 2, 3]
    assert list(full_batches(np.arange(3), 8)) == [0, 1, 2, 0, 1, 2, 0, 1]
    assert list(full_batches(np.arange(16), 8)) == list(range(16))


def test_flips_of_the_endless_stream_come_from_the_seed_and_the_batch_alone():
    """Two streams made with one seed flip the same faces in every batch, whatever the
    other streams of the process did (no shared or stateful generator); another seed
    flips others."""
    from nas.training.core import training_batches

    _, _, data = _three_point_faces(count=16, seed=1)

    def first_batches(seed: int) -> list[np.ndarray]:
        stream = iter(training_batches(data, batch_size=8, seed=seed, repeat=True))
        return [next(stream)[1].numpy() for _ in range(6)]

    first = first_batches(3)
    first_batches(4)  # another stream in between
    again = first_batches(3)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = first_batches(5)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.slow
def test_real_sparse_kaggle_labels_with_generated_images_train_with_the_masked_loss(tmp_path: Path):
    labels_file = SHARED / "keypoints" / "kaggle_labels_only.csv.gz"
    if not labels_file.exists():
        pytest.skip("the real Kaggle label table is not in ../shared/data")
    import pandas as pd

    from nas.core.config import Budget
    from nas.core.space import genome_hash, load_space
    from nas.core.trial import EvalData, EvalRequest
    from nas.data.datasets import load_keypoints
    from nas.data.synthetic import render_faces, write_keypoint_csv
    from nas.training.evaluate import evaluate

    table = pd.read_csv(labels_file).sample(160, random_state=0)
    points = table.to_numpy(dtype=np.float32).reshape(len(table), 15, 2)
    assert np.isnan(points).any(axis=(1, 2)).mean() > 0.3, "the slice should hold sparse rows"
    images, _, _ = render_faces(len(table), np.random.default_rng(0), size=96)
    path = tmp_path / "paired.csv"
    write_keypoint_csv(path, images, points)
    data = load_keypoints(path, validation_fraction=0.25, seed=0)
    missing = np.isnan(np.concatenate([data.train.keypoints, data.validation.keypoints]))
    assert missing.sum() == np.isnan(points).sum()

    space = load_space("cnn")
    genome = space.sample(np.random.default_rng(2))
    eval_data = EvalData(
        task=data.task(),
        train_images=data.train.images,
        train_targets=data.train.keypoints,
        validation_images=data.validation.images,
        validation_targets=data.validation.keypoints,
    )
    request = EvalRequest(
        space="cnn",
        genome=space.to_json(genome),
        genome_hash=genome_hash(space, genome),
        seed=0,
        budget=Budget(epochs=1, max_params=10**8),
    )
    result = evaluate(request, eval_data)
    assert result.ok, result.detail
    assert 0 < result.metrics["rmse"] < 96
