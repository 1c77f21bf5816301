"""Face data: loading, checking, caching and summarising.

Emotions (FER2013): both Kaggle layouts are read, plain or gzipped: ``fer2013.csv``
(header ``emotion,pixels,Usage``) and ``icml_face_data.csv`` (header ``emotion, Usage,
pixels``). Keypoints: Kaggle's Facial Keypoints ``training.csv`` (30 coordinate columns
``left_eye_center_x, ..., mouth_center_bottom_lip_y`` and ``Image``, 96x96), plain or
gzipped, with empty cells for missing points; its labels-only variant (no ``Image``) is
summarised but cannot be loaded for training.

A file is parsed once; the arrays are cached as an uncompressed ``.npz`` in the cache
folder (:func:`default_cache_dir`), keyed by the SHA-256 of the file, so later loads
take a fraction of a second. Every problem with a file is a
:class:`~nas.core.errors.DataError` whose one-line message names the file, the line and the
fix. ``"builtin:faces"`` and ``"builtin:keypoint-faces"`` stand for the synthetic faces
of :mod:`nas.data.synthetic`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from nas.core.errors import DataError
from nas.core.files import write_through
from nas.core.task import Task
from nas.data.duplicates import NEAR_IDENTICAL_MEAN_ABS_DIFF, exact_twins
from nas.data.face_csv import (
    EMOTION_LAYOUTS,
    EXPECT_EMOTIONS,
    EXPECT_KEYPOINTS,
    IMAGE,
    KEYPOINT_COLUMNS,
    KEYPOINT_LAYOUT,
    KEYPOINT_LAYOUTS,
    KEYPOINT_SIDE,
    LABELS_ONLY_LAYOUT,
    SIDE,
    USAGES,
    ParsedEmotions,
    ParsedKeypoints,
    read_face_csv,
)
from nas.data.synthetic import KEYPOINT_NAMES

__all__ = [
    "FER_CLASS_NAMES",
    "FIVE_CLASS_FER_IDS",
    "FIVE_CLASS_NAMES",
    "FLIP_PAIRS",
    "KEYPOINT_NAMES",
    "DatasetSummary",
    "EmotionData",
    "KeypointData",
    "KeypointSplit",
    "Split",
    "default_cache_dir",
    "load_emotions",
    "load_keypoints",
    "resolve_data_path",
    "summarize",
]

#: FER2013 class names, indexed by FER id.
FER_CLASS_NAMES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)
#: The FER ids kept by the five-class setting, in the order of their new labels 0..4.
FIVE_CLASS_FER_IDS: tuple[int, ...] = (0, 1, 4, 3, 5)
#: The class names of the five-class setting.
FIVE_CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "sad", "happy", "surprise")

#: Index pairs of :data:`KEYPOINT_NAMES` that swap under a horizontal flip (the
#: subject's left becomes their right); the nose tip and the two lip centres stay.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (0, 1),  # left_eye_center <-> right_eye_center
    (2, 4),  # left_eye_inner_corner <-> right_eye_inner_corner
    (3, 5),  # left_eye_outer_corner <-> right_eye_outer_corner
    (6, 8),  # left_eyebrow_inner_end <-> right_eyebrow_inner_end
    (7, 9),  # left_eyebrow_outer_end <-> right_eyebrow_outer_end
    (11, 12),  # mouth_left_corner <-> mouth_right_corner
)

BUILTIN_FACES = "builtin:faces"
BUILTIN_KEYPOINT_FACES = "builtin:keypoint-faces"
# bump the versions when nas.data.synthetic changes
_BUILTIN_FILE = "builtin-faces-v1.csv.gz"
_BUILTIN_KEYPOINT_FILE = "builtin-keypoint-faces-v1.csv.gz"
_BUILTIN_KEYPOINT_ROWS = 1500
_CACHE_VERSION = 2  # 2: keypoint files cache their near-identical frame groups
_PIXELS = SIDE * SIDE
_KP_PIXELS = KEYPOINT_SIDE * KEYPOINT_SIDE


@dataclass(frozen=True)
class Split:
    """One split: ``uint8`` images ``(N, 48, 48, 1)`` and ``int64`` labels ``(N,)``."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise ValueError(
                f"images {self.images.shape} and labels {self.labels.shape} do not match"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, kw_only=True)
class EmotionData:
    """A loaded emotion dataset: the three splits and where they came from.

    ``test`` holds the ``PrivateTest`` rows when the file has them, else ``None``.
    ``source`` is the path as given; ``file_hash`` the SHA-256 of the file's bytes.
    ``duplicates_dropped`` counts the training rows left out because their image is
    byte-identical to a validation or test image (``deduplicate``).
    """

    train: Split
    validation: Split
    test: Split | None
    class_names: tuple[str, ...]
    source: str
    file_hash: str
    duplicates_dropped: int = 0

    def task(self) -> Task:
        """The classification task these images and labels define."""
        return Task(
            kind="classification",
            input_shape=(SIDE, SIDE, 1),
            num_classes=len(self.class_names),
        )


@dataclass(frozen=True, eq=False)
class KeypointSplit:
    """One split of a keypoint dataset.

    ``images`` are ``uint8`` ``(N, 96, 96, 1)``; ``keypoints`` are ``float32``
    ``(N, 15, 2)`` pixel ``(x, y)`` coordinates in :data:`KEYPOINT_NAMES` order, NaN (both
    coordinates) where a point is missing.
    """

    images: np.ndarray
    keypoints: np.ndarray

    def __post_init__(self) -> None:
        if (
            self.images.ndim != 4
            or self.keypoints.ndim != 3
            or self.keypoints.shape[2] != 2
            or len(self.images) != len(self.keypoints)
        ):
            raise ValueError(
                f"images {self.images.shape} and keypoints {self.keypoints.shape} do not match"
            )

    def __len__(self) -> int:
        return len(self.keypoints)


@dataclass(frozen=True, kw_only=True, eq=False)
class KeypointData:
    """A loaded keypoint dataset: train and validation splits and where they came from.

    ``keypoint_names`` are the 15 Kaggle point names (:data:`KEYPOINT_NAMES`);
    ``source`` is the path as given; ``file_hash`` the SHA-256 of the file's bytes.
    ``grouped_rows`` counts the rows split with the near-identical frames of their group
    (``deduplicate``; 0 when rows were split one by one).
    """

    train: KeypointSplit
    validation: KeypointSplit
    keypoint_names: tuple[str, ...]
    source: str
    file_hash: str
    grouped_rows: int = 0

    def task(self) -> Task:
        """The keypoint task these images and points define."""
        return Task(
            kind="keypoints",
            input_shape=(KEYPOINT_SIDE, KEYPOINT_SIDE, 1),
            num_keypoints=len(self.keypoint_names),
        )


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """What a dataset file holds, as printed by ``nas data``.

    ``kind`` is the task the file's labels are for. Emotion files: ``splits`` maps each
    ``Usage`` value to its rows (empty without a ``Usage`` column); ``class_counts``
    maps the seven FER class names to their rows. Keypoint files (``splits`` and
    ``class_counts`` empty): ``keypoint_counts`` maps each of the 15 point names to the
    rows that carry it, ``keypoint_means`` to its mean ``(x, y)`` over those rows (NaN
    when none), ``complete_rows`` counts the rows with all 15 points,
    ``points_per_row`` maps a number of points to the rows with that many, and
    ``has_images`` is False for a labels-only table (no ``Image`` column).
    ``twins`` maps each held-out split (``PublicTest``, ``PrivateTest``) to its rows
    whose image is byte-identical to a ``Training`` image and, of those, the rows whose
    label differs from every such twin's; ``near_identical`` is (rows, groups) of the
    keypoint rows that have a near-identical frame in the file.
    """

    source: str
    path: str
    file_hash: str
    layout: str
    rows: int
    splits: dict[str, int]
    class_counts: dict[str, int]
    kind: Literal["classification", "keypoints"] = "classification"
    keypoint_counts: dict[str, int] = field(default_factory=dict)
    keypoint_means: dict[str, tuple[float, float]] = field(default_factory=dict)
    complete_rows: int = 0
    points_per_row: dict[int, int] = field(default_factory=dict)
    has_images: bool = True
    twins: dict[str, tuple[int, int]] = field(default_factory=dict)
    near_identical: tuple[int, int] = (0, 0)

    def lines(self) -> list[str]:
        """Human-readable lines, one fact per line."""
        shown = self.source if self.source == self.path else f"{self.source} ({self.path})"
        out = [
            f"file:    {shown}",
            f"sha256:  {self.file_hash}",
            f"layout:  {self.layout}",
            f"rows:    {self.rows:,}",
        ]
        if self.kind == "keypoints":
            return out + self._keypoint_lines()
        if self.splits:
            out.append("splits:  " + ", ".join(f"{name} {n:,}" for name, n in self.splits.items()))
        else:
            out.append("splits:  no Usage column (validation is split off the rows, seeded)")
        width = max(len(name) for name in self.class_counts)
        out.append("classes: FER id, name, rows (* = kept by classes = 5)")
        for fer_id, (name, n) in enumerate(self.class_counts.items()):
            mark = "*" if fer_id in FIVE_CLASS_FER_IDS else " "
            share = n / self.rows if self.rows else 0.0
            out.append(f"  {fer_id} {mark} {name:<{width}} {n:>7,}  {share:6.1%}")
        for split, (n, relabelled) in self.twins.items():
            out.append(
                f"twins:   {n:,} {split} rows have a byte-identical Training image "
                f"({relabelled:,} of them labelled otherwise); [data] deduplicate (on by "
                "default) leaves those Training rows out"
            )
        return out

    def _keypoint_lines(self) -> list[str]:
        def share(n: int) -> str:
            return f"{n / self.rows:6.1%}" if self.rows else f"{0:6.1%}"

        if self.has_images:
            out = [f"images:  {KEYPOINT_SIDE}x{KEYPOINT_SIDE} grey, one per row"]
        else:
            out = [
                "images:  none (no Image column): labels only, good for label statistics; "
                "training needs a file with images"
            ]
        complete = share(self.complete_rows).strip()
        out.append(f"complete: {self.complete_rows:,} rows have all 15 points ({complete})")
        per_row = sorted(self.points_per_row.items(), key=lambda item: (-item[1], -item[0]))
        out.append("points per row: " + ", ".join(f"{k} in {n:,} rows" for k, n in per_row if n))
        width = max(len(name) for name in self.keypoint_counts)
        out.append("points:  name, rows that carry it, mean (x, y) in pixels")
        for name, n in self.keypoint_counts.items():
            x, y = self.keypoint_means.get(name, (float("nan"), float("nan")))
            out.append(f"  {name:<{width}} {n:>7,}  {share(n)}  ({x:5.1f}, {y:5.1f})")
        rows, groups = self.near_identical
        if rows:
            out.append(
                f"near-identical frames: {rows:,} rows in {groups:,} groups (pixels at most "
                f"{NEAR_IDENTICAL_MEAN_ABS_DIFF:g} grey levels apart on average); [data] "
                "deduplicate (on by default) keeps each group on one side of the split"
            )
        return out


def default_cache_dir() -> Path:
    """``$NAS_CACHE_DIR`` if set, else ``~/.cache/facenas``."""
    env = os.environ.get("NAS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facenas"


def resolve_data_path(spec: str | Path, *, cache_dir: Path | None = None) -> Path:
    """Turn a ``--data`` value into an existing file.

    ``"builtin:faces"`` (synthetic FER2013-layout emotions) and
    ``"builtin:keypoint-faces"`` (1,500 synthetic 96x96 faces in the Kaggle Facial
    Keypoints layout, all 15 points) generate their CSV in the cache folder the first
    time (seeded, written atomically) and return its path; anything else is a path,
    which must exist.
    """
    return _resolve(spec, cache_dir, EXPECT_EMOTIONS)


def _resolve(
    spec: str | Path,
    cache_dir: Path | None,
    expect: str,
    task: Literal["emotion", "keypoints"] | None = None,
) -> Path:
    """:func:`resolve_data_path`, naming ``expect`` in the message for a missing file and
    refusing the built-in dataset of the other ``task``."""
    text = str(spec)
    if text.startswith("builtin:"):
        if text not in (BUILTIN_FACES, BUILTIN_KEYPOINT_FACES):
            raise DataError(
                f"{text}: no such built-in dataset; use {BUILTIN_FACES!r} (emotions) or "
                f"{BUILTIN_KEYPOINT_FACES!r} (keypoints), or the path of a CSV file"
            )
        if text == BUILTIN_FACES and task == "keypoints":
            raise DataError(
                f"{text}: the built-in emotion faces have no keypoints; use "
                f"{BUILTIN_KEYPOINT_FACES!r} for the keypoints task"
            )
        if text == BUILTIN_KEYPOINT_FACES and task == "emotion":
            raise DataError(
                f"{text}: the built-in keypoint faces have no emotion labels; use "
                f"{BUILTIN_FACES!r} for the emotion task"
            )
        folder = cache_dir if cache_dir is not None else default_cache_dir()
        name = _BUILTIN_FILE if text == BUILTIN_FACES else _BUILTIN_KEYPOINT_FILE
        path = folder / name
        if not path.is_file():
            try:
                _write_builtin(text, path)
            except OSError as exc:
                raise DataError(
                    f"{path}: cannot write the built-in faces ({exc.strerror or exc}); "
                    "set NAS_CACHE_DIR to a writable folder"
                ) from exc
        return path
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{path}: no such file; put {expect} there or pass --data PATH")
    if not path.is_file():
        raise DataError(f"{path}: not a file; pass the CSV file itself with --data PATH")
    return path


def _write_builtin(name: str, path: Path) -> None:
    """Generate a built-in dataset file (seeded: the same bytes every time)."""
    from nas.data.synthetic import render_faces, write_emotion_csv, write_keypoint_csv

    if name == BUILTIN_FACES:
        write_emotion_csv(path, n=3000, seed=0, validation_fraction=0.2)
    else:
        images, _, points = render_faces(
            _BUILTIN_KEYPOINT_ROWS, np.random.default_rng(0), size=KEYPOINT_SIDE
        )
        write_keypoint_csv(path, images, points)


def load_emotions(
    spec: str | Path,
    *,
    classes: int = 5,
    validation_fraction: float = 0.1,
    seed: int = 0,
    deduplicate: bool = False,
    cache_dir: Path | None = None,
) -> EmotionData:
    """Load a FER2013 CSV (either Kaggle layout, plain or gzipped) or ``builtin:faces``.

    ``classes=7`` keeps all FER classes; ``classes=5`` keeps angry, disgust, sad, happy,
    surprise (FER ids 0, 1, 4, 3, 5 become labels 0..4) and drops the other rows.
    ``Usage`` gives the splits (``Training`` -> train, ``PublicTest`` -> validation,
    ``PrivateTest`` -> test); without it, a stratified ``validation_fraction`` of the
    rows, drawn with ``numpy.random.default_rng(seed)``, becomes the validation split and
    ``test`` is ``None``. ``deduplicate`` leaves out of the training split every row
    whose image is byte-identical to a validation or test image (FER2013 has 211 such
    twins of its 2,486 five-class PublicTest rows), so validation measures faces the net
    has not seen. The parsed file is cached (see :func:`default_cache_dir`).
    """
    if classes not in (5, 7):
        raise ValueError(f"classes must be 5 or 7, got {classes}")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    path = _resolve(spec, cache_dir, EXPECT_EMOTIONS, "emotion")
    parsed = _load_parsed(path, cache_dir, EXPECT_EMOTIONS)
    if not isinstance(parsed, ParsedEmotions) or parsed.layout not in EMOTION_LAYOUTS:
        raise DataError(
            f"{path}: a {parsed.layout} file holds no emotion labels; use it for the "
            "keypoints task, or pass a Kaggle fer2013.csv for emotions"
        )

    if classes == 7:
        class_names = FER_CLASS_NAMES
        mapping = np.arange(len(FER_CLASS_NAMES), dtype=np.int64)
    else:
        class_names = FIVE_CLASS_NAMES
        mapping = np.full(len(FER_CLASS_NAMES), -1, dtype=np.int64)
        mapping[list(FIVE_CLASS_FER_IDS)] = np.arange(len(FIVE_CLASS_FER_IDS))
    labels = mapping[parsed.fer_labels]
    kept = labels >= 0

    if parsed.has_usage:
        for code, role in ((0, "train"), (1, "validation")):
            if not np.any(parsed.usage == code):
                raise DataError(
                    f"{path}: the Usage column has no {USAGES[code]} rows (needed for the "
                    f"{role} split); fix the file or drop its Usage column to split "
                    "validation off the rows"
                )
        train_idx = np.flatnonzero(kept & (parsed.usage == 0))
        val_idx = np.flatnonzero(kept & (parsed.usage == 1))
        test_idx = np.flatnonzero(kept & (parsed.usage == 2))
        has_test = bool(np.any(parsed.usage == 2))
    else:
        train_idx, val_idx = _stratified_split(
            np.flatnonzero(kept), labels, validation_fraction, seed
        )
        test_idx = np.zeros(0, dtype=np.int64)
        has_test = False
    dropped = 0
    if deduplicate:
        held_out = parsed.pixels[np.concatenate([val_idx, test_idx])]
        twins = exact_twins(parsed.pixels[train_idx], held_out)
        train_idx, dropped = train_idx[~twins], int(twins.sum())
    if len(train_idx) == 0 or len(val_idx) == 0:
        which = "train" if len(train_idx) == 0 else "validation"
        also = "; use a file with more rows" + (
            ", or [data] classes = 7 to keep every class" if classes == 5 else ""
        )
        raise DataError(
            f"{path}: no {which} rows of the {classes} classes ({', '.join(class_names)}){also}"
        )

    def split(idx: np.ndarray) -> Split:
        images = parsed.pixels[idx].reshape(-1, SIDE, SIDE, 1)
        return Split(images=images, labels=labels[idx])

    return EmotionData(
        train=split(train_idx),
        validation=split(val_idx),
        test=split(test_idx) if has_test else None,
        class_names=class_names,
        source=str(spec),
        file_hash=parsed.file_hash,
        duplicates_dropped=dropped,
    )


def load_keypoints(
    spec: str | Path,
    *,
    validation_fraction: float = 0.15,
    seed: int = 0,
    deduplicate: bool = False,
    cache_dir: Path | None = None,
) -> KeypointData:
    """Load a Kaggle Facial Keypoints ``training.csv`` (plain or gzipped) or
    ``builtin:keypoint-faces``.

    Every row is kept, whatever points it has: a missing point is NaN in both
    coordinates, so a loss or metric can be masked to the points present. A plain random
    ``validation_fraction`` of the rows (at least one, drawn with
    ``numpy.random.default_rng(seed)``) becomes the validation split; both splits keep
    the file's row order. With ``deduplicate``, near-identical frames (see
    :func:`nas.data.duplicates.near_identical_groups`) are drawn together, whole groups at a
    time, so no face has a twin frame on the other side of the split. A labels-only table
    (no ``Image`` column) is refused. The parsed file is cached (see
    :func:`default_cache_dir`).
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    path = _resolve(spec, cache_dir, EXPECT_KEYPOINTS, "keypoints")
    parsed = _load_parsed(path, cache_dir, EXPECT_KEYPOINTS)
    if not isinstance(parsed, ParsedKeypoints):
        raise DataError(
            f"{path}: a {parsed.layout} file holds emotion labels, not keypoints; pass "
            f"a Kaggle facial keypoints training.csv ({KEYPOINT_COLUMNS[0]}, ..., "
            f"{KEYPOINT_COLUMNS[-1]}, {IMAGE})"
        )
    if parsed.layout == LABELS_ONLY_LAYOUT:
        raise DataError(
            f"{path}: the file has keypoint labels but no images (no {IMAGE} column, "
            f"like Kaggle's label table); add an {IMAGE} column of {_KP_PIXELS:,} grey "
            "values per row, e.g. with nas.data.synthetic.write_keypoint_csv"
        )
    rows = len(parsed.keypoints)
    if rows < 2:
        raise DataError(
            f"{path}: only {rows} data row; a train and a validation split need at least 2"
        )
    rng = np.random.default_rng(seed)
    n_val = min(rows - 1, max(1, round(rows * validation_fraction)))
    grouped = 0
    if deduplicate:
        val_idx, train_idx = _group_split(parsed.groups, n_val, rng, path)
        grouped = int(rows - len(np.unique(parsed.groups)))
    else:
        order = rng.permutation(rows)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

    def split(idx: np.ndarray) -> KeypointSplit:
        images = parsed.pixels[idx].reshape(-1, KEYPOINT_SIDE, KEYPOINT_SIDE, 1)
        return KeypointSplit(images=images, keypoints=parsed.keypoints[idx])

    return KeypointData(
        train=split(train_idx),
        validation=split(val_idx),
        keypoint_names=KEYPOINT_NAMES,
        source=str(spec),
        file_hash=parsed.file_hash,
        grouped_rows=grouped,
    )


def _group_split(
    groups: np.ndarray, n_val: int, rng: np.random.Generator, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) rows: whole groups, in a seeded random order, until the
    validation split holds about ``n_val`` rows (never every group)."""
    ids, sizes = np.unique(groups, return_counts=True)
    if len(ids) < 2:
        raise DataError(
            f"{path}: every row is a near-identical frame of the others, so no validation "
            "split can hold other faces; add rows of other faces, or set [data] "
            "deduplicate = false"
        )
    order = rng.permutation(len(ids))
    filled = np.cumsum(sizes[order])
    # The groups whose running total gets closest to n_val; at least one, never all.
    take = int(np.clip(np.argmin(np.abs(filled - n_val)) + 1, 1, len(ids) - 1))
    validation = np.isin(groups, ids[order[:take]])
    return np.flatnonzero(validation), np.flatnonzero(~validation)


def summarize(spec: str | Path, *, cache_dir: Path | None = None) -> DatasetSummary:
    """Check a dataset file (parsing it fully) and count what it holds.

    Emotion files: rows per split and class. Keypoint files (with images, or Kaggle's
    labels-only table): rows per point, complete rows and points per row.
    """
    path = _resolve(spec, cache_dir, f"{EXPECT_EMOTIONS} or {EXPECT_KEYPOINTS[4:]}")
    parsed = _load_parsed(path, cache_dir, None)
    if isinstance(parsed, ParsedKeypoints):
        return _summarize_keypoints(spec, path, parsed)
    splits = (
        {
            name: int(n)
            for name, n in zip(
                USAGES, np.bincount(parsed.usage[parsed.usage >= 0], minlength=3), strict=True
            )
            if n
        }
        if parsed.has_usage
        else {}
    )
    counts = np.bincount(parsed.fer_labels, minlength=len(FER_CLASS_NAMES))
    return DatasetSummary(
        twins=_twins(parsed) if parsed.has_usage else {},
        source=str(spec),
        path=str(path),
        file_hash=parsed.file_hash,
        layout=parsed.layout,
        rows=len(parsed.fer_labels),
        splits=splits,
        class_counts={name: int(n) for name, n in zip(FER_CLASS_NAMES, counts, strict=True)},
    )


def _summarize_keypoints(spec: str | Path, path: Path, parsed: ParsedKeypoints) -> DatasetSummary:
    points = parsed.keypoints
    present = ~np.isnan(points[..., 0])  # (N, 15); x and y are missing together
    counts = present.sum(axis=0)
    with np.errstate(invalid="ignore"):
        sums = np.where(present[..., None], points, 0.0).sum(axis=0, dtype=np.float64)
        means = sums / counts[:, None]
    per_row = np.bincount(present.sum(axis=1), minlength=len(KEYPOINT_NAMES) + 1)
    return DatasetSummary(
        source=str(spec),
        path=str(path),
        file_hash=parsed.file_hash,
        layout=parsed.layout,
        rows=len(points),
        splits={},
        class_counts={},
        kind="keypoints",
        keypoint_counts={name: int(n) for name, n in zip(KEYPOINT_NAMES, counts, strict=True)},
        keypoint_means={
            name: (float(x), float(y)) for name, (x, y) in zip(KEYPOINT_NAMES, means, strict=True)
        },
        complete_rows=int(present.all(axis=1).sum()),
        points_per_row={k: int(n) for k, n in enumerate(per_row) if n},
        has_images=parsed.layout == KEYPOINT_LAYOUT,
        near_identical=_near_identical(parsed.groups),
    )


def _twins(parsed: ParsedEmotions) -> dict[str, tuple[int, int]]:
    """Per held-out split: rows with a byte-identical Training image, and how many of
    those carry a label no twin has."""
    training = parsed.usage == 0
    labels_of: dict[bytes, set[int]] = {}
    for row in np.flatnonzero(training):
        labels_of.setdefault(parsed.pixels[row].tobytes(), set()).add(int(parsed.fer_labels[row]))
    out = {}
    for code in (1, 2):
        rows = np.flatnonzero(parsed.usage == code)
        if not len(rows):
            continue
        twinned = rows[exact_twins(parsed.pixels[rows], parsed.pixels[training])]
        relabelled = sum(
            int(parsed.fer_labels[r]) not in labels_of[parsed.pixels[r].tobytes()] for r in twinned
        )
        out[USAGES[code]] = (len(twinned), relabelled)
    return out


def _near_identical(groups: np.ndarray) -> tuple[int, int]:
    """(rows, groups) of the rows whose group has more than one row."""
    _, sizes = np.unique(groups, return_counts=True)
    return int(sizes[sizes > 1].sum()), int((sizes > 1).sum())


# --- parsing ----------------------------------------------------------------------------


def _load_parsed(
    path: Path, cache_dir: Path | None, expect: str | None = EXPECT_EMOTIONS
) -> ParsedEmotions | ParsedKeypoints:
    """Parse ``path``, or read its arrays from the cache when the file is unchanged.

    ``expect`` (what the caller wants, or None for any layout) only shapes the message
    for an empty file or a wrong header.
    """
    file_hash = _sha256(path)
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    cache_file = folder / f"parsed-v{_CACHE_VERSION}-{file_hash}.npz"
    cached = _read_cache(cache_file, file_hash)
    if cached is not None:
        return cached
    parsed = read_face_csv(path, file_hash, expect)
    _write_cache(cache_file, parsed)
    return parsed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def _read_cache(cache_file: Path, file_hash: str) -> ParsedEmotions | ParsedKeypoints | None:
    """The cached arrays, or None if absent or unreadable (then the file is re-parsed)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            layout = str(z["layout"])
            if layout in KEYPOINT_LAYOUTS:
                return _checked_keypoints(
                    ParsedKeypoints(
                        layout=layout,
                        pixels=z["pixels"],
                        keypoints=z["keypoints"],
                        groups=z["groups"],
                        file_hash=file_hash,
                    )
                )
            parsed = ParsedEmotions(
                layout=layout,
                pixels=z["pixels"],
                fer_labels=z["fer_labels"],
                usage=z["usage"],
                has_usage=bool(z["has_usage"]),
                file_hash=file_hash,
            )
    except (OSError, ValueError, KeyError, EOFError):
        return None
    n = len(parsed.fer_labels)
    if parsed.pixels.shape != (n, _PIXELS) or parsed.usage.shape != (n,):
        return None
    return parsed


def _checked_keypoints(parsed: ParsedKeypoints) -> ParsedKeypoints | None:
    """``parsed`` if its arrays have the shapes and types of its layout, else None."""
    n = len(parsed.keypoints)
    width = _KP_PIXELS if parsed.layout == KEYPOINT_LAYOUT else 0
    if (
        parsed.keypoints.shape != (n, len(KEYPOINT_NAMES), 2)
        or parsed.keypoints.dtype != np.float32
        or parsed.pixels.shape != (n, width)
        or parsed.pixels.dtype != np.uint8
        or parsed.groups.shape != (n,)
    ):
        return None
    return parsed


def _write_cache(cache_file: Path, parsed: ParsedEmotions | ParsedKeypoints) -> None:
    """Write the arrays atomically; a cache that cannot be written is only a warning."""
    try:
        write_through(cache_file, lambda path: _save_arrays(path, parsed))
    except OSError as exc:
        warnings.warn(
            f"cannot cache the parsed data in {cache_file.parent} ({exc}); "
            "set NAS_CACHE_DIR to a writable folder to load faster next time",
            stacklevel=3,
        )


def _save_arrays(path: Path, parsed: ParsedEmotions | ParsedKeypoints) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would add ".npz" to a name
        np.savez(handle, **parsed.arrays())


def _stratified_split(
    rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (train, validation), ``fraction`` of each class to validation."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label]
        members = members[rng.permutation(len(members))]
        n_val = round(len(members) * fraction)
        validation.append(members[:n_val])
        train.append(members[n_val:])
    if not train:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))
