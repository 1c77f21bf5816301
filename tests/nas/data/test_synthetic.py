from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from nas.data.datasets import load_emotions, resolve_data_path
from nas.data.summary import summarize
from nas.data.synthetic import EMOTION_IDS, KEYPOINT_NAMES, render_faces, write_emotion_csv


def test_same_seed_same_faces_other_seed_other_faces() -> None:
    a = render_faces(40, np.random.default_rng(7))
    b = render_faces(40, np.random.default_rng(7))
    c = render_faces(40, np.random.default_rng(8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize("size", [48, 96])
def test_shapes_dtypes_labels_and_keypoints(size: int) -> None:
    images, labels, keypoints = render_faces(500, np.random.default_rng(0), size=size)
    assert images.shape == (500, size, size) and images.dtype == np.uint8
    assert labels.shape == (500,) and labels.dtype == np.int64
    assert keypoints.shape == (500, 15, 2) and keypoints.dtype == np.float32
    assert len(KEYPOINT_NAMES) == 15
    assert np.bincount(labels, minlength=6).tolist() == [100, 100, 0, 100, 100, 100]
    assert set(np.unique(labels).tolist()) == set(EMOTION_IDS)
    assert keypoints.min() >= 0 and keypoints.max() <= size - 1
    assert images.std(axis=(1, 2)).min() > 10  # every image shows something

    k = {name: keypoints[:, i] for i, name in enumerate(KEYPOINT_NAMES)}
    x, y = 0, 1
    # "left" is the subject's left, on the image's right
    assert (k["left_eye_center"][:, x] > k["right_eye_center"][:, x]).all()
    assert (k["left_eye_inner_corner"][:, x] < k["left_eye_center"][:, x]).all()
    assert (k["left_eye_outer_corner"][:, x] > k["left_eye_center"][:, x]).all()
    assert (k["right_eye_inner_corner"][:, x] > k["right_eye_center"][:, x]).all()
    assert (k["right_eye_outer_corner"][:, x] < k["right_eye_center"][:, x]).all()
    assert (k["left_eyebrow_inner_end"][:, x] < k["left_eyebrow_outer_end"][:, x]).all()
    assert (k["right_eyebrow_inner_end"][:, x] > k["right_eyebrow_outer_end"][:, x]).all()
    for brow, eye in (("left_eyebrow", "left_eye"), ("right_eyebrow", "right_eye")):
        for end in ("inner_end", "outer_end"):
            assert (k[f"{brow}_{end}"][:, y] < k[f"{eye}_center"][:, y]).all()
    assert (k["nose_tip"][:, y] > k["left_eye_center"][:, y]).all()
    assert (k["mouth_center_top_lip"][:, y] > k["nose_tip"][:, y]).all()
    assert (k["mouth_center_top_lip"][:, y] < k["mouth_center_bottom_lip"][:, y]).all()
    assert (k["mouth_left_corner"][:, x] > k["mouth_right_corner"][:, x]).all()


def test_expressions_follow_the_emotion() -> None:
    _, labels, keypoints = render_faces(1000, np.random.default_rng(1))
    k = {name: keypoints[:, i] for i, name in enumerate(KEYPOINT_NAMES)}
    # how far the mouth corners sit above the middle of the lips (a smile is > 0)
    lip_mid = (k["mouth_center_top_lip"][:, 1] + k["mouth_center_bottom_lip"][:, 1]) / 2
    corners = (k["mouth_left_corner"][:, 1] + k["mouth_right_corner"][:, 1]) / 2
    smile = lip_mid - corners
    brow_inner = k["left_eyebrow_inner_end"][:, 1] - k["left_eye_center"][:, 1]
    mouth_open = k["mouth_center_bottom_lip"][:, 1] - k["mouth_center_top_lip"][:, 1]

    def mean(values: np.ndarray, fer_id: int) -> float:
        return float(values[labels == fer_id].mean())

    assert mean(smile, 3) > mean(smile, 5) > mean(smile, 4)  # happy > surprise > sad
    assert mean(brow_inner, 0) > mean(brow_inner, 4)  # angry brows lower than sad ones
    assert mean(mouth_open, 5) > mean(mouth_open, 0)  # surprise opens the mouth


def test_keypoints_are_where_the_features_are_drawn() -> None:
    images, _, keypoints = render_faces(200, np.random.default_rng(2))
    i = np.arange(200)

    def at(name: str) -> np.ndarray:
        point = np.rint(keypoints[:, KEYPOINT_NAMES.index(name)]).astype(int)
        return images[i, point[:, 1], point[:, 0]].astype(float)

    # the mouth between the lips and the brows are drawn dark on the skin
    mouth = (keypoints[:, 13] + keypoints[:, 14]) / 2
    mx, my = np.rint(mouth).astype(int).T
    skin = images[i, my - 4, mx - 8].astype(float)  # the cheek, left of the mouth
    assert (images[i, my, mx] < skin).mean() > 0.95
    assert (at("left_eyebrow_outer_end") < skin).mean() > 0.9


def test_write_emotion_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "faces.csv.gz"
    write_emotion_csv(path, n=60, seed=5, validation_fraction=0.25)
    assert not list(tmp_path.glob("*.tmp"))
    with gzip.open(path, "rt") as f:
        assert f.readline() == "emotion,pixels,Usage\n"
    first = path.read_bytes()
    write_emotion_csv(path, n=60, seed=5, validation_fraction=0.25)
    assert path.read_bytes() == first  # the same arguments give the same bytes

    images, labels, _ = render_faces(60, np.random.default_rng(5))
    data = load_emotions(path, classes=5, cache_dir=tmp_path / "cache")
    assert (len(data.train), len(data.validation), data.test) == (45, 15, None)
    np.testing.assert_array_equal(data.train.images[..., 0], images[:45])
    np.testing.assert_array_equal(data.validation.images[..., 0], images[45:])
    five = {0: 0, 1: 1, 4: 2, 3: 3, 5: 4}
    assert data.train.labels.tolist() == [five[int(v)] for v in labels[:45]]

    plain = tmp_path / "faces.csv"
    write_emotion_csv(plain, n=10, seed=5)
    assert plain.read_bytes().startswith(b"emotion,pixels,Usage\n")
    assert summarize(plain, cache_dir=tmp_path / "cache").splits == {
        "Training": 8,
        "PublicTest": 2,
    }


def test_builtin_faces_are_generated_once(tmp_path: Path) -> None:
    path = resolve_data_path("builtin:faces", cache_dir=tmp_path)
    assert path.parent == tmp_path and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert resolve_data_path("builtin:faces", cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    data = load_emotions("builtin:faces", cache_dir=tmp_path)
    assert data.source == "builtin:faces"
    assert (len(data.train), len(data.validation)) == (2400, 600)
    assert set(np.unique(data.train.labels).tolist()) == {0, 1, 2, 3, 4}


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_faces(-1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        write_emotion_csv(tmp_path / "x.csv", n=10, validation_fraction=0.0)
    assert render_faces(0, np.random.default_rng(0))[0].shape == (0, 48, 48)
