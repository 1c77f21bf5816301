"""Face data: loading and checking a dataset file into training and validation splits.

Emotions (FER2013): both Kaggle layouts are read, plain or gzipped: ``fer2013.csv``
(header ``emotion,pixels,Usage``) and ``icml_face_data.csv`` (header ``emotion, Usage,
pixels``). Keypoints: Kaggle's Facial Keypoints ``training.csv`` (30 coordinate columns
``left_eye_center_x, ..., mouth_center_bottom_lip_y`` and ``Image``, 96x96), plain or
gzipped, with empty cells for missing points; its labels-only variant (no ``Image``) is
summarised but cannot be loaded for training.

A file is parsed once (:mod:`nas.data.face_csv`); its arrays are cached
(:mod:`nas.data.cache`), so later loads take a fraction of a second; the splits are
drawn by :mod:`nas.data.splits`, and :mod:`nas.data.summary` counts what a file holds
for ``nas data``. Every problem with a file is a
:class:`~nas.core.errors.DataError` whose one-line message names the file, the line and the
fix. ``"builtin:faces"`` and ``"builtin:keypoint-faces"`` stand for the synthetic faces
of :mod:`nas.data.synthetic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.core.errors import DataError
from nas.core.task import Task
from nas.data.cache import default_cache_dir, load_parsed
from nas.data.duplicates import exact_twins
from nas.data.face_csv import (
    EMOTION_LAYOUTS,
    EXPECT_EMOTIONS,
    EXPECT_KEYPOINTS,
    IMAGE,
    KEYPOINT_COLUMNS,
    KEYPOINT_SIDE,
    LABELS_ONLY_LAYOUT,
    SIDE,
    USAGES,
    ParsedEmotions,
    ParsedKeypoints,
)
from nas.data.splits import group_split, stratified_split
from nas.data.synthetic import KEYPOINT_NAMES

__all__ = [
    "FER_CLASS_NAMES",
    "FIVE_CLASS_FER_IDS",
    "FIVE_CLASS_NAMES",
    "FLIP_PAIRS",
    "KEYPOINT_NAMES",
    "EmotionData",
    "KeypointData",
    "KeypointSplit",
    "Split",
    "load_emotions",
    "load_keypoints",
    "resolve_data_path",
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
_BUILTIN_TASKS = {BUILTIN_FACES: "emotion", BUILTIN_KEYPOINT_FACES: "keypoints"}
_BUILTIN_LACKS = {
    BUILTIN_FACES: "the built-in emotion faces have no keypoints",
    BUILTIN_KEYPOINT_FACES: "the built-in keypoint faces have no emotion labels",
}
_KP_PIXELS = KEYPOINT_SIDE * KEYPOINT_SIDE


@dataclass(frozen=True)
class Split:
    """One split: ``uint8`` images ``(N, H, W, C)`` (48x48x1 for FER2013) and ``int64``
    labels ``(N,)``."""

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
        height, width, channels = self.train.images.shape[1:]
        return Task(
            kind="classification",
            input_shape=(int(height), int(width), int(channels)),
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


def resolve_data_path(spec: str | Path, *, cache_dir: Path | None = None) -> Path:
    """Turn a ``--data`` value into an existing file.

    ``"builtin:faces"`` (synthetic FER2013-layout emotions) and
    ``"builtin:keypoint-faces"`` (1,500 synthetic 96x96 faces in the Kaggle Facial
    Keypoints layout, all 15 points) generate their CSV in the cache folder the first
    time (seeded, written atomically) and return its path; anything else is a path,
    which must exist.
    """
    return resolve_file(spec, cache_dir, EXPECT_EMOTIONS)


def resolve_file(
    spec: str | Path, cache_dir: Path | None, expect: str, builtin: str | None = None
) -> Path:
    """:func:`resolve_data_path`, naming ``expect`` in the message for a missing file and,
    given the ``builtin`` dataset a task reads, refusing the other one."""
    text = str(spec)
    if text.startswith("builtin:"):
        if text not in _BUILTIN_TASKS:
            raise DataError(
                f"{text}: no such built-in dataset; use {BUILTIN_FACES!r} (emotions) or "
                f"{BUILTIN_KEYPOINT_FACES!r} (keypoints), or the path of a CSV file"
            )
        if builtin is not None and text != builtin:
            raise DataError(
                f"{text}: {_BUILTIN_LACKS[text]}; use {builtin!r} for the "
                f"{_BUILTIN_TASKS[builtin]} task"
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
    path = resolve_file(spec, cache_dir, EXPECT_EMOTIONS, BUILTIN_FACES)
    parsed = load_parsed(path, cache_dir, EXPECT_EMOTIONS)
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
        train_idx, val_idx = stratified_split(
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
    path = resolve_file(spec, cache_dir, EXPECT_KEYPOINTS, BUILTIN_KEYPOINT_FACES)
    parsed = load_parsed(path, cache_dir, EXPECT_KEYPOINTS)
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
        val_idx, train_idx = group_split(parsed.groups, n_val, rng, path)
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


def load_image_classes(
    path: str | Path,
    *,
    classes: int | tuple[str, ...] = 0,
    image_size: tuple[int, int] = (SIDE, SIDE),
    channels: int = 1,
    validation_fraction: float = 0.1,
    validation_split: str = "",
    seed: int = 0,
    deduplicate: bool = False,
    skip_unreadable: bool = False,
    cache_dir: Path | None = None,
) -> EmotionData:
    """Load an image folder or a ``.zip`` of one (:mod:`nas.data.image_folders`) as
    classes, split as its folders say, or with a seeded stratified ``validation_fraction``
    of the training images where it has no validation folder.

    ``classes``: 0 keeps every class folder (sorted by name); 5 or 7 keeps FER2013's five
    or seven in FER's label order, where the folders are named as FER's; another number
    must be the number of class folders; a tuple names the folders to keep, in the order
    their labels get. ``deduplicate`` leaves out training images byte-identical to a
    validation or test image, as for the CSVs.
    """
    from nas.data.image_folders import TEST, TRAIN, VALIDATION, read_image_folder

    source = Path(path)
    decoded = read_image_folder(
        source,
        image_size=image_size,
        channels=channels,
        validation_split=validation_split,
        skip_unreadable=skip_unreadable,
        cache_dir=cache_dir,
    )
    kept_names = _kept_classes(source, decoded.class_names, classes)
    mapping = np.full(len(decoded.class_names), -1, dtype=np.int64)
    for label, name in enumerate(kept_names):
        mapping[decoded.class_names.index(name)] = label
    labels = mapping[decoded.labels]
    kept = labels >= 0
    train_idx = np.flatnonzero(kept & (decoded.splits == TRAIN))
    val_idx = np.flatnonzero(kept & (decoded.splits == VALIDATION))
    test_idx = np.flatnonzero(kept & (decoded.splits == TEST))
    if len(val_idx) == 0 and VALIDATION not in decoded.split_folders:
        train_idx, val_idx = stratified_split(train_idx, labels, validation_fraction, seed)
    dropped = 0
    if deduplicate:
        held_out = decoded.images[np.concatenate([val_idx, test_idx])]
        twins = exact_twins(decoded.images[train_idx], held_out)
        train_idx, dropped = train_idx[~twins], int(twins.sum())
    trained = set(labels[train_idx].tolist())
    untrained = [name for label, name in enumerate(kept_names) if label not in trained]
    if untrained:
        raise DataError(
            f"{source}: no training images of the class {untrained[0]!r}; add some, or "
            "leave it out with [data] classes"
        )
    if not len(val_idx):
        raise DataError(
            f"{source}: no validation images of the classes kept; add a val/ folder or "
            "more images per class"
        )

    def split(idx: np.ndarray) -> Split:
        return Split(images=decoded.images[idx], labels=labels[idx])

    return EmotionData(
        train=split(train_idx),
        validation=split(val_idx),
        test=split(test_idx) if len(test_idx) else None,
        class_names=tuple(kept_names),
        source=str(path),
        file_hash=decoded.content_hash,
        duplicates_dropped=dropped,
    )


def _kept_classes(
    source: Path, found: tuple[str, ...], classes: int | tuple[str, ...]
) -> tuple[str, ...]:
    """The class folders kept, in label order (see :func:`load_image_classes`)."""
    if isinstance(classes, tuple):
        absent = [name for name in classes if name not in found]
        if absent:
            raise DataError(
                f"{source}: [data] classes names {absent[0]!r}, which has no class folder "
                f"there (classes: {', '.join(found)})"
            )
        return classes
    if classes in (5, 7) and set(found) == set(FER_CLASS_NAMES):
        return FIVE_CLASS_NAMES if classes == 5 else FER_CLASS_NAMES
    if classes in (0, len(found)):
        return found
    raise DataError(
        f"{source}: [data] classes = {classes}, but it has {len(found)} class folders "
        f"({', '.join(found)}); set classes = 0 for all of them, or list the ones to keep"
    )
