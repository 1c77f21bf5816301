"""Reading the face CSV layouts: pandas splits the rows, numpy checks every cell.

Emotions: Kaggle's ``fer2013.csv`` (header ``emotion,pixels,Usage``, or without
``Usage``) and ``icml_face_data.csv`` (``emotion, Usage, pixels``). Keypoints: Kaggle's
Facial Keypoints ``training.csv`` (30 coordinate columns and ``Image``, 96x96) and its
labels-only table. Files may be gzipped. The header is read here (to name the layout,
or what is wrong with it); the rows go through pandas' C parser in chunks, every value
as text, and each chunk is checked column by column. The first bad row is explained
again from its own text, so every problem is one line naming the file, the line and
the column, as :class:`~nas.core.errors.DataError`.

Line numbers count the file's lines (the header is line 1, blank lines count); a quoted
value spanning lines, which no face file has, shifts the numbers after it.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nas.core.errors import DataError
from nas.data.duplicates import near_identical_groups
from nas.data.synthetic import KEYPOINT_NAMES

__all__ = [
    "EMOTION_LAYOUTS",
    "EXPECT_EMOTIONS",
    "EXPECT_KEYPOINTS",
    "FER_CLASS_COUNT",
    "IMAGE",
    "KEYPOINT_COLUMNS",
    "KEYPOINT_LAYOUT",
    "KEYPOINT_LAYOUTS",
    "KEYPOINT_SIDE",
    "LABELS_ONLY_LAYOUT",
    "NO_USAGE",
    "SIDE",
    "USAGES",
    "ParsedEmotions",
    "ParsedKeypoints",
    "read_face_csv",
]

SIDE = 48  # FER2013 faces are 48x48
KEYPOINT_SIDE = 96  # Kaggle's keypoint faces are 96x96
FER_CLASS_COUNT = 7
USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
NO_USAGE = -1
EMOTION_LAYOUTS = ("fer2013.csv", "icml_face_data.csv")
KEYPOINT_LAYOUT = "facial keypoints training.csv"
LABELS_ONLY_LAYOUT = "facial keypoint labels only"
KEYPOINT_LAYOUTS = (KEYPOINT_LAYOUT, LABELS_ONLY_LAYOUT)
KEYPOINT_COLUMNS: tuple[str, ...] = tuple(
    f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in "xy"
)
IMAGE = "Image"
EXPECT_EMOTIONS = "the Kaggle fer2013.csv"
EXPECT_KEYPOINTS = "the Kaggle facial keypoints training.csv"

_PIXELS = SIDE * SIDE
_KP_PIXELS = KEYPOINT_SIDE * KEYPOINT_SIDE
_GZIP_MAGIC = b"\x1f\x8b"
_LABELS = {str(i): i for i in range(FER_CLASS_COUNT)}
_USAGE_CODES = {name: code for code, name in enumerate(USAGES)}
_CHUNK_ROWS = 2048
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_QUOTE_ERROR = re.compile(r"EOF inside string starting at row (\d+)")


@dataclass(frozen=True)
class ParsedEmotions:
    """An emotion file's rows, checked, before any class mapping (what the cache holds)."""

    layout: str
    pixels: np.ndarray  # uint8 (N, 2304)
    fer_labels: np.ndarray  # int8 (N,), FER ids 0..6
    usage: np.ndarray  # int8 (N,), index into USAGES, or NO_USAGE
    has_usage: bool
    file_hash: str

    def arrays(self) -> dict[str, np.ndarray]:
        """What the cache file stores."""
        return {
            "layout": np.array(self.layout),
            "pixels": self.pixels,
            "fer_labels": self.fer_labels,
            "usage": self.usage,
            "has_usage": np.array(self.has_usage),
        }


@dataclass(frozen=True)
class ParsedKeypoints:
    """A keypoint file's rows, checked (what the cache holds)."""

    layout: str  # KEYPOINT_LAYOUT or LABELS_ONLY_LAYOUT
    pixels: np.ndarray  # uint8 (N, 9216); (N, 0) for a labels-only table
    keypoints: np.ndarray  # float32 (N, 15, 2), NaN where missing
    groups: np.ndarray  # int64 (N,): near_identical_groups of the images (row i: i if none)
    file_hash: str

    def arrays(self) -> dict[str, np.ndarray]:
        """What the cache file stores."""
        return {
            "layout": np.array(self.layout),
            "pixels": self.pixels,
            "keypoints": self.keypoints,
            "groups": self.groups,
        }


def read_face_csv(
    path: Path, file_hash: str, expect: str | None = EXPECT_EMOTIONS
) -> ParsedEmotions | ParsedKeypoints:
    """Read and check every row of an emotion or keypoint CSV (plain or gzipped).

    ``expect`` (:data:`EXPECT_EMOTIONS`, :data:`EXPECT_KEYPOINTS`, or None for either)
    only shapes the message for an empty file or a wrong header.
    """
    rows: _EmotionChunks | _KeypointChunks
    try:
        with _open_binary(path) as f:
            columns = _header_columns(path, f.readline(), expect)
            layout = _detect_layout(columns)
            if layout is None:
                missing = _missing_keypoint_columns(columns)
                if missing is not None:
                    raise DataError(f"{path}: line 1: {missing}")
                found = ", ".join(repr(c[:30]) for c in columns[:8])
                more = f" and {len(columns) - 8} more" if len(columns) > 8 else ""
                raise DataError(
                    f"{path}: line 1: wrong columns: {_expected_columns_text(expect)}, "
                    f"found {found}{more}"
                )
            if twice := sorted({c for c in columns if columns.count(c) > 1}):
                raise DataError(
                    f"{path}: line 1: column {twice[0]!r} appears more than once; give each "
                    "column one name"
                )
            if layout in KEYPOINT_LAYOUTS:
                rows = _KeypointChunks(path, columns, with_images=layout == KEYPOINT_LAYOUT)
            else:
                rows = _EmotionChunks(path, columns)
            for chunk in _chunks(path, f, columns):
                rows.add(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        where = f"after line {rows.lines + 1}" if "rows" in locals() else "at its start"
        raise DataError(
            f"{path}: the gzip data is corrupt {where} ({exc}); download the file again"
        ) from exc
    if rows.rows == 0:
        full = "facial keypoints training.csv" if layout in KEYPOINT_LAYOUTS else "fer2013.csv"
        raise DataError(
            f"{path}: the file holds only a header (line 1) and no data rows; use the "
            f"full Kaggle {full}"
        )
    return rows.result(layout, file_hash)


# --- the header -------------------------------------------------------------------------


def _header_columns(path: Path, header: bytes, expect: str | None) -> list[str]:
    """The stripped column names of the first line."""
    if not header.strip():
        raise DataError(f"{path}: the file is empty; {_empty_file_hint(expect)}")
    if header.startswith(_GZIP_MAGIC):
        raise DataError(
            f"{path}: line 1: the file is gzipped twice (its content is gzip data again); "
            "decompress it once (gunzip) and pass the result"
        )
    text = header.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    try:
        fields = next(csv.reader([text]), [])
    except csv.Error:  # e.g. a stray carriage return: a binary or doubly gzipped file
        fields = text.split(",")
    return [name.strip() for name in fields]


def _detect_layout(columns: Sequence[str]) -> str | None:
    """The name of the layout a header (stripped column names) belongs to, or None.

    Add a layout here (and a chunk checker in :func:`read_face_csv`) to read another
    kind of file.
    """
    if "emotion" in columns and "pixels" in columns:
        if "Usage" in columns and columns.index("Usage") < columns.index("pixels"):
            return "icml_face_data.csv"
        return "fer2013.csv"
    if all(name in columns for name in KEYPOINT_COLUMNS):
        return KEYPOINT_LAYOUT if IMAGE in columns else LABELS_ONLY_LAYOUT
    return None


def _expected_columns_text(expect: str | None) -> str:
    emotions = (
        "'emotion,pixels,Usage' (fer2013.csv) or 'emotion, Usage, pixels' (icml_face_data.csv)"
    )
    keypoints = (
        f"the 30 Kaggle keypoint columns ({KEYPOINT_COLUMNS[0]}, ..., {KEYPOINT_COLUMNS[-1]}) "
        f"and {IMAGE}"
    )
    if expect == EXPECT_EMOTIONS:
        return f"expected {emotions}"
    if expect == EXPECT_KEYPOINTS:
        return f"expected {keypoints}"
    return f"expected {emotions}, or {keypoints}"


def _missing_keypoint_columns(columns: Sequence[str]) -> str | None:
    """Which keypoint columns a header that has some of them lacks, or None."""
    wanted = (*KEYPOINT_COLUMNS, IMAGE)
    if not any(name in columns for name in wanted):
        return None
    missing = [name for name in wanted if name not in columns]
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return (
        f"missing column{'s' if len(missing) > 1 else ''} {shown} of the Kaggle facial "
        f"keypoints layout (30 coordinate columns and {IMAGE})"
    )


def _empty_file_hint(expect: str | None) -> str:
    emotions = "a Kaggle fer2013.csv (header 'emotion,pixels,Usage' then one row per image)"
    keypoints = (
        f"a Kaggle facial keypoints training.csv (header {KEYPOINT_COLUMNS[0]},...,"
        f"{KEYPOINT_COLUMNS[-1]},{IMAGE} then one row per image)"
    )
    if expect == EXPECT_KEYPOINTS:
        return f"it should be {keypoints}"
    if expect == EXPECT_EMOTIONS:
        return f"it should be {emotions}"
    return f"it should be {emotions} or {keypoints}"


# --- the rows ---------------------------------------------------------------------------


@contextmanager
def _open_binary(path: Path) -> Iterator[io.BufferedIOBase]:
    """Open ``path`` for reading bytes, decompressing it if it is gzipped."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if gzipped:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f
        else:
            yield raw


def _chunks(path: Path, f: io.BufferedIOBase, columns: list[str]) -> Iterator[pd.DataFrame]:
    """The rows after the header, ``_CHUNK_ROWS`` at a time, every value as text ("" for
    an empty or missing value); blank lines stay as rows of "", so row ``i`` is line
    ``i + 2``."""
    reader = pd.read_csv(
        f,
        header=None,
        names=columns,
        index_col=False,
        dtype=str,
        na_filter=False,
        skip_blank_lines=False,
        encoding="utf-8",
        encoding_errors="replace",
        chunksize=_CHUNK_ROWS,
    )
    try:
        yield from reader
    except pd.errors.EmptyDataError:
        return
    except pd.errors.ParserError as exc:
        raise _parser_error(path, columns, str(exc)) from None


def _parser_error(path: Path, columns: list[str], message: str) -> DataError:
    """pandas' tokenizer error as one line with the file's own line number."""
    if found := _FIELDS_ERROR.search(message):
        expected, line, saw = (int(n) for n in found.groups())
        return DataError(
            f"{path}: line {line + 1}: {saw} comma-separated fields, expected {expected} "
            f"({_shown_columns(columns)})"
        )
    if found := _QUOTE_ERROR.search(message):
        return DataError(
            f'{path}: line {int(found.group(1)) + 2}: a quoted value (") is never closed; '
            "remove the stray quote"
        )
    detail = message.strip().splitlines()[-1] if message.strip() else "unreadable"
    return DataError(
        f"{path}: not a readable CSV file ({detail}); pass {EXPECT_EMOTIONS} or "
        f"{EXPECT_KEYPOINTS[4:]}"
    )


def _shown_columns(columns: list[str]) -> str:
    if len(columns) <= 4:
        return ", ".join(columns)
    return ", ".join(columns[:3]) + ", ..., " + columns[-1]


class _Chunks:
    """What both layouts share: counting rows, skipping blank lines, and explaining the
    first bad row from the file's own text."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.rows = 0  # data rows kept
        self.lines = 0  # lines read after the header (blank ones too)
        self.pixel_chunks: list[np.ndarray] = []

    def _fail(self, row: int, problem: str) -> DataError:
        return DataError(f"{self.path}: line {self.lines + row + 2}: {problem}")

    def _fields_problem(self, row: int) -> str | None:
        """The field-count message when line ``row`` of this chunk has too few fields
        (pandas fills them with "", so the line itself is read again)."""
        line_no = self.lines + row + 2
        with _open_binary(self.path) as f:
            line = next(itertools.islice(f, line_no - 1, None), b"")
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        try:
            count = len(next(csv.reader([text]), []))
        except csv.Error:
            count = text.count(",") + 1
        if count == len(self.columns):
            return None
        return (
            f"{count} comma-separated fields, expected {len(self.columns)} "
            f"({_shown_columns(self.columns)})"
        )

    @staticmethod
    def _blank(chunk: pd.DataFrame) -> np.ndarray:
        """Rows of a chunk that were blank (or whitespace-only) lines: a column at a time,
        only among the rows still blank (the long pixel text is rarely looked at)."""
        blank = np.ones(len(chunk), dtype=bool)
        for column in chunk.columns:
            rows = np.flatnonzero(blank)
            if not len(rows):
                break
            blank[rows] = (chunk[column].iloc[rows].str.strip() == "").to_numpy()
        return blank

    def _images(self, chunk: pd.DataFrame, column: str, width: int) -> tuple[np.ndarray, int]:
        """The images of a chunk's rows, and the first row whose pixels are not ``width``
        values in 0..255 (or -1)."""
        images = np.empty((len(chunk), width), dtype=np.uint8)
        for row, field in enumerate(chunk[column]):
            values = _pixel_values(field, width)
            if values is None:
                return images, row
            images[row] = values
        return images, -1


class _EmotionChunks(_Chunks):
    def __init__(self, path: Path, columns: list[str]) -> None:
        super().__init__(path, columns)
        self.usage_column = "Usage" if "Usage" in columns else None
        self.labels: list[np.ndarray] = []
        self.usages: list[np.ndarray] = []

    def add(self, chunk: pd.DataFrame) -> None:
        """Check a chunk of rows and keep its values."""
        kept = ~self._blank(chunk)
        labels = chunk["emotion"].str.strip().map(_LABELS)
        bad = kept & labels.isna().to_numpy()
        if self.usage_column:
            usage = chunk[self.usage_column].str.strip().map(_USAGE_CODES)
            bad |= kept & usage.isna().to_numpy()
        rows = np.flatnonzero(kept)
        images, bad_image = self._images(chunk.iloc[rows], "pixels", _PIXELS)
        if bad_image >= 0:
            bad[rows[bad_image]] = True
        if bad.any():
            raise self._fail(int(np.argmax(bad)), self._problem(chunk, int(np.argmax(bad))))
        self.pixel_chunks.append(images)
        self.labels.append(labels.to_numpy()[kept].astype(np.int8))
        self.usages.append(
            usage.to_numpy()[kept].astype(np.int8)
            if self.usage_column
            else np.full(len(rows), NO_USAGE, dtype=np.int8)
        )
        self.rows += len(rows)
        self.lines += len(chunk)

    def _problem(self, chunk: pd.DataFrame, row: int) -> str:
        """Why row ``row`` of the chunk is refused."""
        if (fields := self._fields_problem(row)) is not None:
            return fields
        label = chunk["emotion"].iat[row]
        if label.strip() not in _LABELS:
            return _label_problem(label)
        if self.usage_column and (token := chunk[self.usage_column].iat[row].strip()) not in (
            _USAGE_CODES
        ):
            return f"unknown Usage {_show(token)}; expected Training, PublicTest or PrivateTest"
        return _pixel_problem(chunk["pixels"].iat[row])

    def result(self, layout: str, file_hash: str) -> ParsedEmotions:
        """The checked rows of every chunk."""
        return ParsedEmotions(
            layout=layout,
            pixels=np.concatenate(self.pixel_chunks),
            fer_labels=np.concatenate(self.labels),
            usage=np.concatenate(self.usages),
            has_usage=self.usage_column is not None,
            file_hash=file_hash,
        )


class _KeypointChunks(_Chunks):
    """No row is dropped: an empty coordinate is NaN, and a point must have both
    coordinates or neither."""

    def __init__(self, path: Path, columns: list[str], *, with_images: bool) -> None:
        super().__init__(path, columns)
        self.with_images = with_images
        self.points: list[np.ndarray] = []

    def add(self, chunk: pd.DataFrame) -> None:
        """Check a chunk of rows and keep its values."""
        kept = ~self._blank(chunk)
        cells = pd.DataFrame({c: chunk[c].str.strip() for c in KEYPOINT_COLUMNS})
        empty = (cells == "").to_numpy()
        values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, copy=True)
        bad = kept & ((~empty & ~np.isfinite(values)).any(axis=1))
        bad |= kept & (empty[:, 0::2] != empty[:, 1::2]).any(axis=1)
        rows = np.flatnonzero(kept)
        width = _KP_PIXELS if self.with_images else 0
        images = np.empty((len(rows), 0), dtype=np.uint8)
        if self.with_images:
            images, bad_image = self._images(chunk.iloc[rows], IMAGE, width)
            if bad_image >= 0:
                bad[rows[bad_image]] = True
        if bad.any():
            row = int(np.argmax(bad))
            raise self._fail(row, self._problem(chunk, row, values[row]))
        values[empty] = np.nan
        self.pixel_chunks.append(images)
        self.points.append(values[kept].astype(np.float32))
        self.rows += len(rows)
        self.lines += len(chunk)

    def _problem(self, chunk: pd.DataFrame, row: int, values: np.ndarray) -> str:
        """Why row ``row`` of the chunk (its coordinates read as ``values``) is refused."""
        if (fields := self._fields_problem(row)) is not None:
            return fields
        cells = [chunk[c].iat[row].strip() for c in KEYPOINT_COLUMNS]
        for k, token in enumerate(cells):
            if token and not np.isfinite(values[k]):
                return _coordinate_problem(token, KEYPOINT_COLUMNS[k])
        for k in range(0, len(cells), 2):
            if (cells[k] == "") != (cells[k + 1] == ""):
                empty, given = (k, k + 1) if cells[k] == "" else (k + 1, k)
                return (
                    f"column {KEYPOINT_COLUMNS[empty]} is empty but {KEYPOINT_COLUMNS[given]} "
                    f"is {_show(cells[given])}; give both coordinates of a point or leave "
                    "both empty"
                )
        return _pixel_problem(
            chunk[IMAGE].iat[row], expected=_KP_PIXELS, side=KEYPOINT_SIDE, column=IMAGE
        )

    def result(self, layout: str, file_hash: str) -> ParsedKeypoints:
        """The checked rows of every chunk, with their near-identical frame groups."""
        pixels = np.concatenate(self.pixel_chunks)
        groups = (
            near_identical_groups(pixels.reshape(-1, KEYPOINT_SIDE, KEYPOINT_SIDE))
            if self.with_images
            else np.arange(self.rows, dtype=np.int64)
        )
        return ParsedKeypoints(
            layout=layout,
            pixels=pixels,
            keypoints=np.concatenate(self.points).reshape(self.rows, len(KEYPOINT_NAMES), 2),
            groups=groups,
            file_hash=file_hash,
        )


# --- what is wrong with one value -------------------------------------------------------


def _pixel_values(field: str, expected: int) -> np.ndarray | None:
    """``expected`` grey values parsed by numpy's C parser, or None if anything is off."""
    try:
        values = np.fromstring(field, dtype=np.int64, sep=" ")  # saturates, never wraps
    except ValueError:
        return None
    if values.size == expected and values.min() >= 0 and values.max() <= 255:
        return values
    return None


def _show(text: str, limit: int = 24) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _label_problem(token: str) -> str:
    text = token.strip()
    try:
        value = int(text)
    except ValueError:
        return f"emotion label {_show(text)} is not a number; expected 0..6"
    return f"unknown emotion label {value}; expected 0..6 (FER2013 ids)"


def _coordinate_problem(token: str, column: str) -> str:
    """What is wrong with a coordinate that is neither empty nor a finite number."""
    try:
        value = float(token)
    except ValueError:
        value = 0.0  # or pandas read it otherwise than Python, e.g. '1_0': not plain
    if np.isfinite(value):
        return f"coordinate {_show(token)} in column {column} is not a number"
    return (
        f"coordinate {_show(token)} in column {column} is not finite; leave the cell "
        "empty for a missing point"
    )


def _pixel_problem(
    field: str, *, expected: int = _PIXELS, side: int = SIDE, column: str | None = None
) -> str:
    """Exactly what is wrong with a pixels field that failed the fast path.

    ``column`` names the column in the message (the emotion layouts' messages have
    always said "the pixels" instead).
    """
    where = f" in column {column}" if column else ""
    tokens = field.split()
    for position, token in enumerate(tokens, start=1):
        if not token.isdigit():
            try:
                int(token)
            except ValueError:
                return f"pixel value {_show(token)} (value {position}){where} is not a number"
            return f"pixel value {_show(token)} (value {position}){where} is outside 0..255"
        if int(token) > 255:
            return f"pixel value {_show(token)} (value {position}){where} is outside 0..255"
    subject = f"column {column} holds" if column else "the pixels hold"
    if len(tokens) != expected:
        return f"{subject} {len(tokens):,} values, expected {expected:,} ({side}x{side})"
    if column:
        return f"column {column} is not space-separated whole numbers"
    return "the pixels are not space-separated whole numbers"
