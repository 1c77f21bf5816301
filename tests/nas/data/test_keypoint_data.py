"""The Kaggle Facial Keypoints loader, its summary, the built-in keypoint faces and the writer."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

import nas.data.cache as cache_module
import nas.data.datasets as datasets
from nas.core.errors import DataError
from nas.core.task import Task
from nas.data.datasets import (
    FLIP_PAIRS,
    KEYPOINT_NAMES,
    load_emotions,
    load_keypoints,
    resolve_data_path,
)
from nas.data.summary import summarize
from nas.data.synthetic import render_faces, write_keypoint_csv

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "keypoints"

# Kaggle's column order, spelled out so that a change to KEYPOINT_NAMES is caught.
KAGGLE_POINTS = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
COLUMNS = [f"{name}_{axis}" for name in KAGGLE_POINTS for axis in ("x", "y")]
HEADER = ",".join([*COLUMNS, "Image"])
LABELS_HEADER = ",".join(COLUMNS)
IMAGE = " ".join(["7"] * 9216)
COORDS = ",".join(f"{10 + i * 0.5}" for i in range(30))
GOOD = f"{COORDS},{IMAGE}"


def numbered_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random 96x96 images whose first pixel is the row number (to find rows after a split)."""
    images = rng.integers(0, 256, size=(n, 96, 96), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    return images


def sparse_points(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random keypoints with whole points missing: some rows complete, some Kaggle-like
    (4 points), some with none, the rest random."""
    points = rng.uniform(0, 95, size=(n, 15, 2)).astype(np.float32)
    missing = rng.random((n, 15)) < 0.4
    missing[0::4] = False  # complete rows
    missing[1::4] = True
    missing[1::4, [0, 1, 10, 14]] = False  # Kaggle's usual four
    missing[2::8] = True  # no point at all: still a row
    points[missing] = np.nan
    return points


def write_lines(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def by_row(data: datasets.KeypointData) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation put back in file order (via the row number in pixel [0, 0])."""
    images = np.concatenate([data.train.images, data.validation.images])
    points = np.concatenate([data.train.keypoints, data.validation.keypoints])
    order = np.argsort(images[:, 0, 0, 0])
    return images[order], points[order]


def test_names_match_kaggle() -> None:
    assert KEYPOINT_NAMES == KAGGLE_POINTS
    assert len(COLUMNS) == 30 and len(set(COLUMNS)) == 30


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_round_trip_keeps_every_row_and_the_nan_mask(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(1)
    images, points = numbered_images(40, rng), sparse_points(40, rng)
    path = tmp_path / f"training{suffix}"
    write_keypoint_csv(path, images, points)
    assert not list(tmp_path.glob("*.tmp"))
    with gzip.open(path, "rt") if suffix.endswith(".gz") else path.open() as f:
        lines = f.read().splitlines()
    assert lines[0] == HEADER and len(lines) == 41
    present = [cell != "" for cell in lines[2].split(",")[:30]]  # row 1: Kaggle's usual 4
    assert [i for i, p in enumerate(present) if p] == [0, 1, 2, 3, 20, 21, 28, 29]
    assert lines[3].startswith(",," * 15)  # row 2 has no point: 30 empty cells

    data = load_keypoints(path, validation_fraction=0.25, seed=0, cache_dir=tmp_path / "cache")
    assert (len(data.train), len(data.validation)) == (30, 10)
    assert data.keypoint_names == KAGGLE_POINTS
    assert data.source == str(path) and len(data.file_hash) == 64
    assert data.task() == Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15)
    for split in (data.train, data.validation):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (96, 96, 1)
        assert split.keypoints.dtype == np.float32 and split.keypoints.shape[1:] == (15, 2)
    got_images, got_points = by_row(data)
    np.testing.assert_array_equal(got_images[..., 0], images)
    np.testing.assert_array_equal(np.isnan(got_points), np.isnan(points))
    np.testing.assert_array_equal(got_points, points)  # bit-exact float32, NaN where missing
    assert np.isnan(got_points).all(axis=(1, 2)).sum() == 5  # rows without points are kept


def test_empty_cells_are_written_like_kaggle(tmp_path: Path) -> None:
    points = np.full((1, 15, 2), np.nan, dtype=np.float32)
    points[0, 0] = (66.03356, 39.00227)
    points[0, 10] = (44.0, 57.25)
    path = tmp_path / "one.csv"
    write_keypoint_csv(path, np.zeros((1, 96, 96, 1), dtype=np.uint8), points)
    row = path.read_text().splitlines()[1]
    cells = row.split(",")
    assert len(cells) == 31
    assert cells[:2] == ["66.03356", "39.00227"] and cells[20:22] == ["44", "57.25"]
    assert all(cell == "" for i, cell in enumerate(cells[:30]) if i not in (0, 1, 20, 21))
    assert cells[30] == " ".join(["0"] * 9216)


def test_writer_is_reproducible_and_checks_its_arguments(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images, points = numbered_images(5, rng), sparse_points(5, rng)
    path = tmp_path / "k.csv.gz"
    write_keypoint_csv(path, images, points)
    first = path.read_bytes()
    write_keypoint_csv(path, images, points)
    assert path.read_bytes() == first

    with pytest.raises(ValueError, match="uint8 of shape"):
        write_keypoint_csv(path, images.astype(np.int64), points)
    with pytest.raises(ValueError, match="uint8 of shape"):
        write_keypoint_csv(path, images[:, :48, :48], points)
    with pytest.raises(ValueError, match="keypoints must have shape"):
        write_keypoint_csv(path, images, points[:, :14])
    half = np.zeros((5, 15, 2), dtype=np.float32)
    half[3, 11, 1] = np.nan
    with pytest.raises(ValueError, match=r"keypoints\[3\].*mouth_left_corner"):
        write_keypoint_csv(path, images, half)
    with pytest.raises(ValueError, match="infinite"):
        write_keypoint_csv(path, images, np.full((5, 15, 2), np.inf))
    assert path.read_bytes() == first  # a refused write leaves the old file


def test_split_sizes_and_determinism(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    images, points = numbered_images(60, rng), sparse_points(60, rng)
    path = tmp_path / "k.csv"
    write_keypoint_csv(path, images, points)
    cache = tmp_path / "cache"

    def rows(split: datasets.KeypointSplit) -> list[int]:
        return split.images[:, 0, 0, 0].tolist()

    data = load_keypoints(path, cache_dir=cache)  # default 0.15 -> 9 of 60
    assert (len(data.train), len(data.validation)) == (51, 9)
    train, val = rows(data.train), rows(data.validation)
    assert sorted(train + val) == list(range(60))
    assert train == sorted(train) and val == sorted(val)
    expected = np.sort(np.random.default_rng(0).permutation(60)[:9]).tolist()
    assert val == expected  # a plain random split by rows
    np.testing.assert_array_equal(data.validation.keypoints, points[val])

    again = load_keypoints(path, seed=0, cache_dir=cache)
    assert rows(again.validation) == val
    other = load_keypoints(path, seed=1, cache_dir=cache)
    assert rows(other.validation) != val
    half = load_keypoints(path, validation_fraction=0.5, seed=5, cache_dir=cache)
    assert (len(half.train), len(half.validation)) == (30, 30)
    tiny = load_keypoints(path, validation_fraction=0.001, cache_dir=cache)
    assert len(tiny.validation) == 1
    # sparse rows land in both splits
    sparse = np.isnan(points).any(axis=(1, 2))
    assert sparse[train].any() and sparse[val].any()

    with pytest.raises(ValueError, match="validation_fraction"):
        load_keypoints(path, validation_fraction=0.0, cache_dir=cache)


def test_the_parsed_file_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    images, points = numbered_images(12, rng), sparse_points(12, rng)
    path = tmp_path / "k.csv.gz"
    write_keypoint_csv(path, images, points)
    cache = tmp_path / "cache"
    first = load_keypoints(path, cache_dir=cache)
    (cached,) = cache.glob("*.npz")
    assert first.file_hash in cached.name and not list(cache.glob("*.tmp"))

    def no_parsing(*args: object) -> None:
        raise AssertionError("the cache was not used")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "read_face_csv", no_parsing)
        second = load_keypoints(path, cache_dir=cache)
        assert summarize(path, cache_dir=cache).rows == 12
    for a, b in ((first.train, second.train), (first.validation, second.validation)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)

    cached.write_bytes(b"not a zip file")  # a damaged cache is re-parsed
    third = load_keypoints(path, cache_dir=cache)
    np.testing.assert_array_equal(third.train.keypoints, first.train.keypoints)


def test_flip_pairs_are_an_involution_over_the_left_and_right_points() -> None:
    permutation = list(range(15))
    seen: set[int] = set()
    for left, right in FLIP_PAIRS:
        assert not {left, right} & seen  # every point in at most one pair
        seen |= {left, right}
        permutation[left], permutation[right] = right, left
    permutation_array = np.array(permutation)
    np.testing.assert_array_equal(permutation_array[permutation_array], np.arange(15))
    fixed = {KEYPOINT_NAMES[i] for i in range(15) if permutation[i] == i}
    assert fixed == {"nose_tip", "mouth_center_top_lip", "mouth_center_bottom_lip"}
    for i, j in enumerate(permutation):
        if i != j:
            name = KEYPOINT_NAMES[i]
            mirrored = name.replace("left", "@").replace("right", "left").replace("@", "right")
            assert KEYPOINT_NAMES[j] == mirrored

    # Mirroring a face and swapping the pairs gives a face with left and right in place.
    _, _, points = render_faces(20, np.random.default_rng(5), size=96)
    flipped = points[:, permutation].copy()
    flipped[..., 0] = 95 - flipped[..., 0]
    k = {name: flipped[:, i] for i, name in enumerate(KEYPOINT_NAMES)}
    assert (k["left_eye_center"][:, 0] > k["right_eye_center"][:, 0]).all()
    assert (k["left_eye_outer_corner"][:, 0] > k["left_eye_inner_corner"][:, 0]).all()
    assert (k["mouth_left_corner"][:, 0] > k["mouth_right_corner"][:, 0]).all()


def test_columns_in_another_order_crlf_and_blank_lines(tmp_path: Path) -> None:
    order = [30, *range(29, -1, -1)]  # Image first, coordinates reversed
    header = ",".join([*COLUMNS, "Image"][i] for i in order)
    cells = [*COORDS.split(","), IMAGE]
    row = ",".join(cells[i] for i in order)
    path = tmp_path / "odd.csv"
    path.write_bytes(("\r\n".join([header, row, "", row]) + "\r\n").encode())
    data = load_keypoints(path, validation_fraction=0.5, cache_dir=tmp_path / "cache")
    assert len(data.train) == len(data.validation) == 1
    expected = np.array([10 + i * 0.5 for i in range(30)], dtype=np.float32).reshape(15, 2)
    np.testing.assert_array_equal(data.train.keypoints[0], expected)
    assert (data.train.images == 7).all()


# --- summaries -------------------------------------------------------------------------------


def test_summarize_counts_rows_per_point(tmp_path: Path) -> None:
    points = np.tile(np.arange(30, dtype=np.float32).reshape(1, 15, 2) + 20, (5, 1, 1))
    points[1, [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]] = np.nan  # Kaggle's usual 4 remain
    points[2, 14] = np.nan
    points[3] = np.nan
    images = numbered_images(5, np.random.default_rng(6))
    path = tmp_path / "k.csv.gz"
    write_keypoint_csv(path, images, points)
    summary = summarize(path, cache_dir=tmp_path / "cache")
    assert summary.kind == "keypoints" and summary.has_images
    assert summary.rows == 5 and summary.complete_rows == 2
    assert summary.points_per_row == {15: 2, 4: 1, 14: 1, 0: 1}
    expected = dict.fromkeys(KAGGLE_POINTS, 3)
    for name in ("left_eye_center", "right_eye_center", "nose_tip"):
        expected[name] = 4
    expected["mouth_center_bottom_lip"] = 3
    assert summary.keypoint_counts == expected
    assert summary.keypoint_means["nose_tip"] == (40.0, 41.0)
    text = "\n".join(summary.lines())
    assert "facial keypoints training.csv" in text
    assert "complete: 2 rows have all 15 points" in text
    assert re.search(r"\n  nose_tip +4 +80\.0% +\( *40\.0, +41\.0\)\n", text), text
    assert summary.kind == "keypoints" and not hasattr(summary, "class_counts")


def test_labels_only_table_is_summarised_but_not_loaded(tmp_path: Path) -> None:
    rows = [COORDS, ",".join(["33.5", "40", "", "", *[""] * 26])]
    # the second row has only left_eye_center
    path = write_lines(tmp_path / "labels.csv.gz", [LABELS_HEADER, *rows])
    cache = tmp_path / "cache"
    summary = summarize(path, cache_dir=cache)
    assert summary.kind == "keypoints" and not summary.has_images
    assert summary.rows == 2 and summary.complete_rows == 1
    assert summary.keypoint_counts["left_eye_center"] == 2
    assert summary.keypoint_counts["nose_tip"] == 1
    text = "\n".join(summary.lines())
    assert "labels only" in text and "no Image column" in text
    with pytest.raises(DataError) as info:
        load_keypoints(path, cache_dir=cache)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "labels but no images" in message and "write_keypoint_csv" in message
    with pytest.raises(DataError, match="holds no emotion labels"):
        load_emotions(path, cache_dir=cache)


def test_emotion_and_keypoint_files_are_not_confused(tmp_path: Path, faces_csv: Path) -> None:
    with pytest.raises(DataError, match="holds emotion labels, not keypoints"):
        load_keypoints(faces_csv, cache_dir=tmp_path)
    path = write_lines(tmp_path / "k.csv", [HEADER, GOOD, GOOD])
    with pytest.raises(DataError, match="holds no emotion labels; use it for the keypoints"):
        load_emotions(path, cache_dir=tmp_path)
    assert summarize(faces_csv, cache_dir=tmp_path).kind == "classification"


# --- bad input ---------------------------------------------------------------------------------


def bad_case(name: str) -> tuple[list[str] | bytes, str]:
    """(file content, expected message fragments separated by '|') for one bad input."""
    short = " ".join(["7"] * 9215)
    coords = COORDS.split(",")

    def with_coord(index: int, token: str) -> str:
        cells = list(coords)
        cells[index] = token
        return ",".join([*cells, IMAGE])

    no_nose_y = [c for c in COLUMNS if c != "nose_tip_y"]
    return {
        "empty": (b"", "the file is empty|facial keypoints training.csv|Image"),
        "header_only": ([HEADER], "only a header (line 1)|facial keypoints"),
        "missing_column": (
            [",".join([*no_nose_y, "Image"]), GOOD],
            "line 1|missing column nose_tip_y of the Kaggle facial keypoints layout",
        ),
        "missing_many_columns": (
            [",".join(c for c in no_nose_y if not c.startswith("mouth")), GOOD],
            "line 1|missing columns nose_tip_y, mouth_left_corner_x, mouth_left_corner_y, "
            "mouth_right_corner_x, mouth_right_corner_y, mouth_center_top_lip_x and 4 more",
        ),
        "wrong_columns": (
            ["a,b,c", "1,2,3"],
            "line 1|wrong columns|the 30 Kaggle keypoint columns (left_eye_center_x|'a', 'b'",
        ),
        "short_image": (
            [HEADER, GOOD, f"{COORDS},{short}"],
            "line 3|column Image holds 9,215 values, expected 9,216 (96x96)",
        ),
        "long_image": ([HEADER, f"{COORDS},{IMAGE} 1"], "line 2|9,217 values"),
        "empty_image": ([HEADER, GOOD, GOOD, f"{COORDS},"], "line 4|holds 0 values"),
        "non_numeric_pixel": (
            [HEADER, f"{COORDS},{short} x7"],
            "line 2|'x7' (value 9216) in column Image is not a number",
        ),
        "pixel_over_255": (
            [HEADER, GOOD, f"{COORDS},300 {short}"],
            "line 3|'300' (value 1) in column Image is outside 0..255",
        ),
        "non_numeric_coordinate": (
            [HEADER, GOOD, with_coord(20, "abc")],
            "line 3|coordinate 'abc' in column nose_tip_x is not a number",
        ),
        "comma_decimal_coordinate": (
            [HEADER, '"66,5",' + ",".join(coords[1:]) + f",{IMAGE}"],
            "line 2|'66,5'|column left_eye_center_x|not a number",
        ),
        "infinite_coordinate": (
            [HEADER, with_coord(1, "inf")],
            "line 2|coordinate 'inf' in column left_eye_center_y is not finite|leave the cell empty",
        ),
        "nan_coordinate": (
            [HEADER, GOOD, GOOD, with_coord(29, "NaN")],
            "line 4|'NaN' in column mouth_center_bottom_lip_y is not finite",
        ),
        "x_without_y": (
            [HEADER, GOOD, with_coord(23, "")],
            "line 3|column mouth_left_corner_y is empty but mouth_left_corner_x is '21.0'"
            "|both coordinates",
        ),
        "y_without_x": (
            [HEADER, with_coord(0, "")],
            "line 2|column left_eye_center_x is empty but left_eye_center_y is '10.5'",
        ),
        "field_count": (
            [HEADER, GOOD, f"{COORDS}"],
            "line 3|30 comma-separated fields, expected 31",
        ),
    }[name]


BAD_CASES = [
    "empty",
    "header_only",
    "missing_column",
    "missing_many_columns",
    "wrong_columns",
    "short_image",
    "long_image",
    "empty_image",
    "non_numeric_pixel",
    "pixel_over_255",
    "non_numeric_coordinate",
    "comma_decimal_coordinate",
    "infinite_coordinate",
    "nan_coordinate",
    "x_without_y",
    "y_without_x",
    "field_count",
]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_a_one_line_data_error(tmp_path: Path, case: str, suffix: str) -> None:
    content, expected = bad_case(case)
    path = tmp_path / f"training{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    else:
        write_lines(path, content)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        load_keypoints(path, cache_dir=cache)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for fragment in expected.split("|"):
        assert fragment in message, (fragment, message)
    with pytest.raises(DataError):
        summarize(path, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


def test_missing_file_and_too_few_rows(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "training.csv"
    with pytest.raises(DataError) as info:
        load_keypoints(path, cache_dir=tmp_path)
    assert str(info.value) == (
        f"{path}: no such file; put the Kaggle facial keypoints training.csv there "
        "or pass --data PATH"
    )
    one = write_lines(tmp_path / "one.csv", [HEADER, GOOD])
    with pytest.raises(DataError, match="only 1 data row"):
        load_keypoints(one, cache_dir=tmp_path / "cache")
    assert summarize(one, cache_dir=tmp_path / "cache").rows == 1


# --- built-in and real data ------------------------------------------------------------------


def test_builtin_keypoint_faces(tmp_path: Path) -> None:
    path = resolve_data_path("builtin:keypoint-faces", cache_dir=tmp_path)
    assert path.parent == tmp_path and path.is_file() and "keypoint-faces-v" in path.name
    stamp = path.stat().st_mtime_ns
    assert resolve_data_path("builtin:keypoint-faces", cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # generated once
    data = load_keypoints("builtin:keypoint-faces", cache_dir=tmp_path)
    assert data.source == "builtin:keypoint-faces"
    assert (len(data.train), len(data.validation)) == (1275, 225)
    points = np.concatenate([data.train.keypoints, data.validation.keypoints])
    assert not np.isnan(points).any()
    assert points.min() >= 0 and points.max() <= 95
    k = {name: points[:, i] for i, name in enumerate(KEYPOINT_NAMES)}
    assert (k["left_eye_center"][:, 0] > k["right_eye_center"][:, 0]).all()  # subject's left
    assert (k["nose_tip"][:, 1] < k["mouth_center_top_lip"][:, 1]).all()
    assert data.task().num_keypoints == 15
    with pytest.raises(DataError, match="builtin:keypoint-faces"):
        resolve_data_path("builtin:keypoints", cache_dir=tmp_path)


@pytest.mark.skipif(
    not (SHARED / "training.csv.gz").is_file(), reason="the shared keypoint data is not here"
)
def test_real_training_csv(tmp_path: Path) -> None:
    data = load_keypoints(SHARED / "training.csv.gz", cache_dir=tmp_path)
    assert len(data.train) + len(data.validation) == 3462
    assert len(data.validation) == round(3462 * 0.15)
    for split in (data.train, data.validation):
        assert not np.isnan(split.keypoints).any()
        assert split.keypoints.min() >= 0 and split.keypoints.max() < 96
        assert split.images.shape[1:] == (96, 96, 1)
    left = data.train.keypoints[:, KEYPOINT_NAMES.index("left_eye_center"), 0]
    right = data.train.keypoints[:, KEYPOINT_NAMES.index("right_eye_center"), 0]
    assert (left > right).mean() > 0.99  # "left" is the subject's left, the image's right


@pytest.mark.skipif(
    not (SHARED / "kaggle_labels_only.csv.gz").is_file(),
    reason="the shared Kaggle label table is not here",
)
def test_real_kaggle_labels_only(tmp_path: Path) -> None:
    path = SHARED / "kaggle_labels_only.csv.gz"
    summary = summarize(path, cache_dir=tmp_path)
    assert summary.rows == 7049 and summary.complete_rows == 2140
    assert not summary.has_images
    assert summary.points_per_row[4] > 4000  # most rows carry just 4 points
    for name in ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip"):
        assert summary.keypoint_counts[name] > 7000
    with pytest.raises(DataError, match="labels but no images"):
        load_keypoints(path, cache_dir=tmp_path)


def test_deduplicate_keeps_near_identical_frames_on_one_side(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    images = numbered_images(40, rng)
    images[1:6] = images[0]  # one shot: rows 0..5 are the same frame ...
    images[1:6, 0, 0] = np.arange(1, 6)  # ... but for their row number pixel
    images[20:30] = np.clip(images[10:20].astype(np.int16) + 3, 0, 255)  # 10 close pairs
    images[20:30, 0, 0] = np.arange(20, 30)
    path = tmp_path / "kp.csv"
    write_keypoint_csv(path, images, sparse_points(40, rng))
    for seed in range(5):
        data = load_keypoints(path, seed=seed, deduplicate=True, cache_dir=tmp_path)
        assert data.grouped_rows == 5 + 10
        train_rows = set(data.train.images[:, 0, 0, 0].tolist())
        val_rows = set(data.validation.images[:, 0, 0, 0].tolist())
        assert not train_rows & val_rows and len(train_rows | val_rows) == 40
        for shot in [set(range(6)), *({i, i + 10} for i in range(10, 20))]:
            assert shot <= train_rows or shot <= val_rows, (seed, shot)
        assert abs(len(val_rows) - 6) <= 5  # about 15% of 40, whole groups at a time
    summary = summarize(path, cache_dir=tmp_path)
    assert summary.near_identical == (6 + 20, 1 + 10)
    assert any(line.startswith("near-identical frames: 26 rows") for line in summary.lines())
