from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import nas.data.cache as cache_module
import nas.data.datasets as datasets
from nas.core.errors import DataError
from nas.core.task import Task
from nas.data.cache import default_cache_dir
from nas.data.datasets import FER_CLASS_NAMES, FIVE_CLASS_NAMES, load_emotions, resolve_data_path
from nas.data.summary import summarize

REAL_FER = (
    Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
)

FER_HEADER = "emotion,pixels,Usage"
ICML_HEADER = "emotion, Usage, pixels"


def pixels(value: int) -> str:
    """A constant image: every pixel of row ``value`` equals ``value``."""
    return " ".join([str(value)] * 2304)


def write_csv(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def fer_rows(rows: list[tuple[int, str | None]], layout: str = "fer2013") -> list[str]:
    """CSV lines for (FER label, Usage or None) rows; row i's pixels all equal i."""
    with_usage = rows[0][1] is not None
    if layout == "fer2013":
        header = FER_HEADER if with_usage else "emotion,pixels"
        body = [
            f"{label},{pixels(i)}" + (f",{usage}" if with_usage else "")
            for i, (label, usage) in enumerate(rows)
        ]
    else:
        header = ICML_HEADER if with_usage else "emotion, pixels"
        body = [
            f"{label}," + (f" {usage}, " if with_usage else " ") + pixels(i)
            for i, (label, usage) in enumerate(rows)
        ]
    return [header, *body]


# Seven Training rows (one per FER class), two PublicTest, two PrivateTest.
SPLIT_ROWS: list[tuple[int, str | None]] = [
    (0, "Training"),
    (1, "Training"),
    (2, "Training"),
    (3, "Training"),
    (4, "Training"),
    (5, "Training"),
    (6, "Training"),
    (5, "PublicTest"),
    (6, "PublicTest"),
    (4, "PrivateTest"),
    (3, "PrivateTest"),
]


def row_ids(split: datasets.Split) -> list[int]:
    """Which rows a split holds (each row's pixels equal its index)."""
    assert split.images.dtype == np.uint8 and split.images.shape[1:] == (48, 48, 1)
    flat = split.images.reshape(len(split.images), -1)
    assert (flat == flat[:, :1]).all()
    return flat[:, 0].tolist()


@pytest.mark.parametrize("layout", ["fer2013", "icml"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_seven_classes_with_usage(tmp_path: Path, layout: str, suffix: str) -> None:
    path = write_csv(tmp_path / f"data{suffix}", fer_rows(SPLIT_ROWS, layout))
    data = load_emotions(path, classes=7, cache_dir=tmp_path / "cache")
    assert data.class_names == FER_CLASS_NAMES
    assert row_ids(data.train) == [0, 1, 2, 3, 4, 5, 6]
    assert data.train.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert data.train.labels.dtype == np.int64
    assert row_ids(data.validation) == [7, 8]
    assert data.validation.labels.tolist() == [5, 6]
    assert data.test is not None
    assert row_ids(data.test) == [9, 10]
    assert data.test.labels.tolist() == [4, 3]
    assert data.source == str(path)
    assert len(data.file_hash) == 64
    assert data.task() == Task(kind="classification", input_shape=(48, 48, 1), num_classes=7)


@pytest.mark.parametrize("layout", ["fer2013", "icml"])
def test_five_classes_map_and_drop(tmp_path: Path, layout: str) -> None:
    path = write_csv(tmp_path / "data.csv.gz", fer_rows(SPLIT_ROWS, layout))
    data = load_emotions(path, classes=5, cache_dir=tmp_path / "cache")
    assert data.class_names == FIVE_CLASS_NAMES == ("angry", "disgust", "sad", "happy", "surprise")
    # FER 0, 1, 3, 4, 5 kept (2 fear and 6 neutral dropped); 4 sad -> 2, 3 happy -> 3
    assert row_ids(data.train) == [0, 1, 3, 4, 5]
    assert data.train.labels.tolist() == [0, 1, 3, 2, 4]
    assert row_ids(data.validation) == [7]
    assert data.validation.labels.tolist() == [4]
    assert data.test is not None
    assert data.test.labels.tolist() == [2, 3]
    assert data.task().num_classes == 5


def test_no_private_test_gives_no_test_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", fer_rows(SPLIT_ROWS[:9]))
    data = load_emotions(path, classes=7, cache_dir=tmp_path / "cache")
    assert data.test is None
    assert len(data.train) == 7 and len(data.validation) == 2


@pytest.mark.parametrize("layout", ["fer2013", "icml"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_without_usage_a_seeded_stratified_split(tmp_path: Path, layout: str, suffix: str) -> None:
    labels = [i % 7 for i in range(140)]  # 20 rows per class
    path = write_csv(tmp_path / f"data{suffix}", fer_rows([(k, None) for k in labels], layout))
    cache = tmp_path / "cache"
    data = load_emotions(path, classes=7, validation_fraction=0.1, seed=3, cache_dir=cache)
    assert data.test is None
    assert np.bincount(data.validation.labels).tolist() == [2] * 7
    assert np.bincount(data.train.labels).tolist() == [18] * 7
    train, val = row_ids(data.train), row_ids(data.validation)
    assert sorted(train + val) == list(range(140))
    assert train == sorted(train) and val == sorted(val)
    assert all(labels[i] == k for i, k in zip(val, data.validation.labels.tolist(), strict=True))
    again = load_emotions(path, classes=7, validation_fraction=0.1, seed=3, cache_dir=cache)
    assert row_ids(again.validation) == val
    other = load_emotions(path, classes=7, validation_fraction=0.1, seed=4, cache_dir=cache)
    assert row_ids(other.validation) != val

    five = load_emotions(path, classes=5, validation_fraction=0.25, seed=3, cache_dir=cache)
    assert np.bincount(five.validation.labels).tolist() == [5] * 5
    assert np.bincount(five.train.labels).tolist() == [15] * 5
    assert {labels[i] for i in row_ids(five.train)} == {0, 1, 3, 4, 5}


def test_cache_hit_returns_equal_arrays_and_a_changed_file_gets_a_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    path = write_csv(tmp_path / "data.csv", fer_rows(SPLIT_ROWS))
    first = load_emotions(path, classes=7, cache_dir=cache)
    cached = sorted(cache.glob("*.npz"))
    assert len(cached) == 1 and first.file_hash in cached[0].name
    assert not list(cache.glob("*.tmp"))

    def no_parsing(*args: object) -> None:
        raise AssertionError("the cache was not used")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "read_face_csv", no_parsing)
        second = load_emotions(path, classes=7, cache_dir=cache)
        five = load_emotions(path, classes=5, cache_dir=cache)  # same cache for 5 classes
    for a, b in ((first.train, second.train), (first.validation, second.validation)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    assert five.train.labels.tolist() == [0, 1, 3, 2, 4]

    write_csv(path, fer_rows([*SPLIT_ROWS, (6, "Training")]))
    changed = load_emotions(path, classes=7, cache_dir=cache)
    assert changed.file_hash != first.file_hash
    assert len(changed.train) == 8
    assert len(list(cache.glob("*.npz"))) == 2


def test_a_corrupt_cache_file_is_reparsed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = write_csv(tmp_path / "data.csv", fer_rows(SPLIT_ROWS))
    first = load_emotions(path, classes=7, cache_dir=cache)
    (cache_file,) = cache.glob("*.npz")
    cache_file.write_bytes(b"not a zip file")
    second = load_emotions(path, classes=7, cache_dir=cache)
    np.testing.assert_array_equal(first.train.images, second.train.images)


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    path = write_csv(tmp_path / "data.csv", fer_rows(SPLIT_ROWS))
    load_emotions(path)
    assert len(list((tmp_path / "env-cache").glob("*.npz"))) == 1
    monkeypatch.delenv("NAS_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "facenas"


def test_argument_errors(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "data.csv", fer_rows(SPLIT_ROWS))
    with pytest.raises(ValueError, match="classes must be 5 or 7"):
        load_emotions(path, classes=6, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="validation_fraction"):
        load_emotions(path, validation_fraction=1.0, cache_dir=tmp_path)


def test_missing_split_is_an_error(tmp_path: Path) -> None:
    rows = [(0, "Training"), (3, "Training"), (4, "PrivateTest")]
    path = write_csv(tmp_path / "data.csv", fer_rows(rows))
    with pytest.raises(DataError, match="no PublicTest rows") as info:
        load_emotions(path, cache_dir=tmp_path / "cache")
    assert str(path) in str(info.value)
    rows = [(0, "PublicTest"), (3, "PublicTest")]
    path = write_csv(tmp_path / "data.csv", fer_rows(rows))
    with pytest.raises(DataError, match="no Training rows"):
        load_emotions(path, cache_dir=tmp_path / "cache")


def test_five_classes_with_no_rows_left_is_an_error(tmp_path: Path) -> None:
    rows = [(2, "Training"), (6, "Training"), (2, "PublicTest")]
    path = write_csv(tmp_path / "data.csv", fer_rows(rows))
    with pytest.raises(DataError, match="no train rows of the 5 classes"):
        load_emotions(path, classes=5, cache_dir=tmp_path / "cache")
    assert len(load_emotions(path, classes=7, cache_dir=tmp_path / "cache").train) == 2


def test_summarize(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "icml_face_data.csv", fer_rows(SPLIT_ROWS, "icml"))
    summary = summarize(path, cache_dir=tmp_path / "cache")
    assert summary.layout == "icml_face_data.csv"
    assert summary.rows == 11
    assert summary.splits == {"Training": 7, "PublicTest": 2, "PrivateTest": 2}
    assert summary.class_counts == {
        "angry": 1,
        "disgust": 1,
        "fear": 1,
        "happy": 2,
        "sad": 2,
        "surprise": 2,
        "neutral": 2,
    }
    text = "\n".join(summary.lines())
    assert "icml_face_data.csv" in text and "11" in text and "PrivateTest 2" in text

    plain = write_csv(tmp_path / "plain.csv", fer_rows([(3, None), (4, None)]))
    summary = summarize(plain, cache_dir=tmp_path / "cache")
    assert summary.layout == "fer2013.csv" and summary.splits == {} and summary.rows == 2
    assert any("no Usage column" in line for line in summary.lines())


def test_blank_lines_and_crlf_are_accepted(tmp_path: Path) -> None:
    lines = fer_rows(SPLIT_ROWS[:9])
    path = tmp_path / "data.csv"
    path.write_bytes(("\r\n".join([*lines[:3], "", *lines[3:]]) + "\r\n").encode())
    data = load_emotions(path, classes=7, cache_dir=tmp_path / "cache")
    assert row_ids(data.train) == list(range(7))


# --- bad input ---------------------------------------------------------------------------

GOOD = f"3,{pixels(1)},Training"


def bad_case(name: str) -> tuple[list[str] | bytes, str]:
    """(file content, expected message fragments separated by '|') for one bad input."""
    short = " ".join(["7"] * 2303)
    return {
        "empty": (b"", "the file is empty"),
        "header_only": ([FER_HEADER], "only a header (line 1)"),
        "wrong_columns": (
            ["label,image,Usage", GOOD],
            "line 1|expected 'emotion,pixels,Usage'|'label', 'image', 'Usage'",
        ),
        "short_pixels": (
            [FER_HEADER, GOOD, f"3,{short},Training"],
            "line 3|2,303 values, expected 2,304",
        ),
        "long_pixels": ([FER_HEADER, f"3,{short} 1 2,Training"], "line 2|2,305 values"),
        "no_pixels": ([FER_HEADER, GOOD, GOOD, "3,,Training"], "line 4|0 values"),
        "non_numeric_pixel": (
            [FER_HEADER, GOOD, f"3,{short} x7,Training"],
            "line 3|'x7'|not a number",
        ),
        "float_pixel": (
            [FER_HEADER, f"3,1.5 {short},Training"],
            "line 2|'1.5' (value 1)|not a number",
        ),
        "pixel_over_255": (
            [FER_HEADER, GOOD, f"3,{short} 256,Training"],
            "line 3|'256' (value 2304)|outside 0..255",
        ),
        "huge_pixel": (
            [FER_HEADER, f"3,{short} 99999999999999999999999,Training"],
            "line 2|outside 0..255",
        ),
        "negative_pixel": ([FER_HEADER, f"3,-1 {short},Training"], "line 2|'-1'|outside 0..255"),
        "label_not_numeric": (
            [FER_HEADER, GOOD, f"happy,{pixels(1)},Training"],
            "line 3|'happy' is not a number|0..6",
        ),
        "label_unknown": (
            [FER_HEADER, GOOD, GOOD, f"7,{pixels(1)},Training"],
            "line 4|unknown emotion label 7|0..6",
        ),
        "usage_unknown": (
            [FER_HEADER, GOOD, f"3,{pixels(1)},Testing"],
            "line 3|unknown Usage 'Testing'|PublicTest",
        ),
        "field_count": (
            [FER_HEADER, GOOD, f"3,{pixels(1)}"],
            "line 3|2 comma-separated fields, expected 3",
        ),
        "too_many_fields": (
            [FER_HEADER, GOOD, "", f"{GOOD},extra"],
            "line 4|4 comma-separated fields, expected 3",
        ),
        "unclosed_quote": (
            [FER_HEADER, GOOD, f'3,"{pixels(1)},Training'],
            'line 3|quoted value (")',
        ),
        "duplicate_column": (["emotion,pixels,pixels", GOOD], "line 1|'pixels' appears more"),
        # past pandas' first chunk of rows, blank lines counted: the file's own line number
        "late_bad_row": (
            [FER_HEADER, *([GOOD, ""] * 1100), f"3,{pixels(1)},Later"],
            "line 2202|unknown Usage 'Later'",
        ),
    }[name]


BAD_CASES = [
    "empty",
    "header_only",
    "wrong_columns",
    "short_pixels",
    "long_pixels",
    "no_pixels",
    "non_numeric_pixel",
    "float_pixel",
    "pixel_over_255",
    "huge_pixel",
    "negative_pixel",
    "label_not_numeric",
    "label_unknown",
    "usage_unknown",
    "field_count",
    "too_many_fields",
    "unclosed_quote",
    "duplicate_column",
    "late_bad_row",
]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_a_one_line_data_error(tmp_path: Path, case: str, suffix: str) -> None:
    content, expected = bad_case(case)
    path = tmp_path / f"bad{suffix}"
    if isinstance(content, bytes):
        path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    else:
        write_csv(path, content)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        load_emotions(path, cache_dir=cache)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for fragment in expected.split("|"):
        assert fragment in message, (fragment, message)
    with pytest.raises(DataError):
        summarize(path, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-written


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "fer2013.csv"
    with pytest.raises(DataError) as info:
        load_emotions(path, cache_dir=tmp_path)
    assert str(info.value) == (
        f"{path}: no such file; put the Kaggle fer2013.csv there or pass --data PATH"
    )
    with pytest.raises(DataError, match="no such file"):
        resolve_data_path(str(path))
    with pytest.raises(DataError, match="not a file"):
        resolve_data_path(tmp_path)


def test_unknown_builtin(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="builtin:faces"):
        resolve_data_path("builtin:cats", cache_dir=tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_gzip(tmp_path: Path, damage: str) -> None:
    lines = fer_rows([(3, "Training")] * 30 + [(4, "PublicTest")] * 5)
    data = gzip.compress("".join(line + "\n" for line in lines).encode())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = data[:20] + bytes(range(256)) * 4 + data[20 + 1024 :]
    path = tmp_path / "fer2013.csv.gz"
    path.write_bytes(data)
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        load_emotions(path, cache_dir=cache)
    message = str(info.value)
    assert message.startswith(f"{path}: the gzip data is corrupt")
    assert "download the file again" in message and "\n" not in message
    assert not cache.exists() or not any(cache.iterdir())


# --- the real file -------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_FER.is_file(), reason="the shared FER2013 copy is not here")
def test_real_fer2013_counts(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    summary = summarize(REAL_FER, cache_dir=cache)
    assert summary.rows == 32_298
    assert summary.splits == {"Training": 28_709, "PublicTest": 3_589}
    assert sum(summary.class_counts.values()) == 32_298

    seven = load_emotions(REAL_FER, classes=7, cache_dir=cache)
    assert (len(seven.train), len(seven.validation)) == (28_709, 3_589)
    assert seven.test is None
    counts = np.bincount(seven.train.labels, minlength=7) + np.bincount(
        seven.validation.labels, minlength=7
    )
    assert dict(zip(FER_CLASS_NAMES, counts.tolist(), strict=True)) == summary.class_counts

    five = load_emotions(REAL_FER, classes=5, cache_dir=cache)
    kept = sum(summary.class_counts[name] for name in FIVE_CLASS_NAMES)
    assert len(five.train) + len(five.validation) == kept
    assert len(five.train) == int(np.isin(seven.train.labels, [0, 1, 3, 4, 5]).sum())
    assert set(np.unique(five.train.labels).tolist()) == {0, 1, 2, 3, 4}
    # the same image, relabelled: FER 4 (sad) is label 2 in the five-class setting
    first_sad = int(np.flatnonzero(seven.train.labels == 4)[0])
    index = int(np.isin(seven.train.labels[:first_sad], [0, 1, 3, 4, 5]).sum())
    assert five.train.labels[index] == 2
    np.testing.assert_array_equal(five.train.images[index], seven.train.images[first_sad])

    # Byte-identical faces across splits (what nas data reports, deduplicate drops).
    assert summary.twins["PublicTest"][0] > 0
    deduplicated = load_emotions(REAL_FER, classes=5, deduplicate=True, cache_dir=cache)
    assert deduplicated.duplicates_dropped > 0
    assert len(deduplicated.train) == len(five.train) - deduplicated.duplicates_dropped
    np.testing.assert_array_equal(deduplicated.validation.images, five.validation.images)
    held_out = deduplicated.validation.images.reshape(len(deduplicated.validation), -1)
    train = deduplicated.train.images.reshape(len(deduplicated.train), -1)
    assert not {row.tobytes() for row in held_out} & {row.tobytes() for row in train}


def test_deduplicate_drops_training_twins_of_validation_and_test_faces(tmp_path: Path) -> None:
    # Row i's pixels all equal i; rows 7 and 8 (PublicTest, PrivateTest) are made twins of
    # Training rows 0 (same label) and 1 (another label).
    lines = fer_rows(SPLIT_ROWS)
    lines[1 + 7] = lines[1 + 7].replace(pixels(7), pixels(0))
    lines[1 + 9] = lines[1 + 9].replace(pixels(9), pixels(1))
    path = write_csv(tmp_path / "fer.csv", lines)
    kept = load_emotions(path, classes=7, cache_dir=tmp_path)
    dropped = load_emotions(path, classes=7, deduplicate=True, cache_dir=tmp_path)
    assert (kept.duplicates_dropped, dropped.duplicates_dropped) == (0, 2)
    assert row_ids(dropped.train) == [i for i in row_ids(kept.train) if i not in (0, 1)]
    assert len(dropped.validation) == len(kept.validation)
    summary = summarize(path, cache_dir=tmp_path)
    assert summary.twins == {
        "PublicTest": (1, SPLIT_ROWS[7][0] != SPLIT_ROWS[0][0]),
        "PrivateTest": (1, SPLIT_ROWS[9][0] != SPLIT_ROWS[1][0]),
    }
    assert any(line.startswith("twins:   1 PublicTest rows") for line in summary.lines())
