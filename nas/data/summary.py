"""What a dataset file holds, checked and counted for ``nas data``: rows per split and
class for an emotion file, points per row and near-identical frames for a keypoint file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from nas.data.cache import load_parsed
from nas.data.datasets import FER_CLASS_NAMES, FIVE_CLASS_FER_IDS, resolve_file
from nas.data.duplicates import NEAR_IDENTICAL_MEAN_ABS_DIFF, exact_twins
from nas.data.face_csv import (
    EXPECT_EMOTIONS,
    EXPECT_KEYPOINTS,
    KEYPOINT_LAYOUT,
    KEYPOINT_SIDE,
    USAGES,
    ParsedEmotions,
    ParsedKeypoints,
)
from nas.data.synthetic import KEYPOINT_NAMES

__all__ = [
    "DatasetSummary",
    "EmotionFileSummary",
    "ImageFolderSummary",
    "KeypointFileSummary",
    "summarize",
]


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """What a dataset file holds, as printed by ``nas data``: where it is, its hash, its
    layout and rows; :class:`EmotionFileSummary` and :class:`KeypointFileSummary` add what
    their labels say. ``kind`` is the kind of task the file's labels are for."""

    kind: ClassVar[str]
    source: str
    path: str
    file_hash: str
    layout: str
    rows: int

    def lines(self) -> list[str]:
        """Human-readable lines, one fact per line."""
        shown = self.source if self.source == self.path else f"{self.source} ({self.path})"
        return [
            f"file:    {shown}",
            f"sha256:  {self.file_hash}",
            f"layout:  {self.layout}",
            f"rows:    {self.rows:,}",
            *self._label_lines(),
        ]

    def _label_lines(self) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class EmotionFileSummary(DatasetSummary):
    """An emotion file: ``splits`` maps each ``Usage`` value to its rows (empty without a
    ``Usage`` column); ``class_counts`` maps the seven FER class names to their rows;
    ``twins`` maps each held-out split (``PublicTest``, ``PrivateTest``) to its rows whose
    image is byte-identical to a ``Training`` image and, of those, the rows whose label
    differs from every such twin's."""

    kind: ClassVar[str] = "classification"
    splits: dict[str, int]
    class_counts: dict[str, int]
    twins: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _label_lines(self) -> list[str]:
        out = []
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


@dataclass(frozen=True, kw_only=True)
class KeypointFileSummary(DatasetSummary):
    """A keypoint file (with images, or Kaggle's labels-only table): ``keypoint_counts``
    maps each of the 15 point names to the rows that carry it, ``keypoint_means`` to its
    mean ``(x, y)`` over those rows (NaN when none), ``complete_rows`` counts the rows with
    all 15 points, ``points_per_row`` maps a number of points to the rows with that many,
    ``has_images`` is False for a labels-only table (no ``Image`` column), and
    ``near_identical`` is (rows, groups) of the rows that have a near-identical frame in
    the file."""

    kind: ClassVar[str] = "keypoints"
    keypoint_counts: dict[str, int]
    keypoint_means: dict[str, tuple[float, float]]
    complete_rows: int
    points_per_row: dict[int, int]
    has_images: bool = True
    near_identical: tuple[int, int] = (0, 0)

    def _label_lines(self) -> list[str]:
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


@dataclass(frozen=True, kw_only=True)
class ImageFolderSummary(DatasetSummary):
    """An image folder or zip: ``counts`` maps each split (its folder's name, or
    ``train`` where validation is split off) to images per class; what the files were
    (``sizes`` and ``modes``, most common first); the ``unreadable`` files and the
    ``ignored`` ones (not images); ``twins`` maps each held-out split to its images
    byte-identical to a training image once decoded (48x48 grey)."""

    kind: ClassVar[str] = "classification"
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    sizes: dict[str, int]
    modes: dict[str, int]
    unreadable: tuple[str, ...]
    ignored: int
    twins: dict[str, int] = field(default_factory=dict)

    def _label_lines(self) -> list[str]:
        out = []
        splits = list(self.counts)
        if len(splits) == 1:
            out.append(
                "splits:  no split folders (validation is split off each class, seeded: "
                "[data] validation_fraction)"
            )
        width = max(len(name) for name in (*self.class_names, "class"))
        out.append("classes: " + f"{'name':<{width}} " + " ".join(f"{s:>10}" for s in splits))
        for name in self.class_names:
            cells = " ".join(f"{self.counts[s].get(name, 0):>10,}" for s in splits)
            out.append(f"         {name:<{width}} {cells}")
        out.append("sizes:   " + _common(self.sizes, "px"))
        out.append("modes:   " + _common(self.modes, ""))
        for split, n in self.twins.items():
            out.append(
                f"twins:   {n:,} {split} images are byte-identical to a training image; "
                "[data] deduplicate (on by default) leaves those training images out"
            )
        if self.unreadable:
            out.append(
                f"unreadable: {len(self.unreadable):,} files, e.g. {self.unreadable[0]} "
                "(skipped with [data] skip_unreadable = true)"
            )
        if self.ignored:
            out.append(f"ignored: {self.ignored:,} files that are not .png/.jpg/.jpeg/.bmp")
        return out


def _common(counts: dict[str, int], unit: str) -> str:
    shown = [f"{key}{unit} {n:,}" for key, n in list(counts.items())[:4]]
    more = len(counts) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def summarize_folder(spec: str | Path, *, cache_dir: Path | None = None) -> ImageFolderSummary:
    """Check an image folder or zip (decoding every image, at 48x48 grey, and counting
    the unreadable ones instead of stopping at the first) and count what it holds."""
    from nas.data.image_folders import TEST, TRAIN, VALIDATION, read_image_folder

    path = Path(spec)
    decoded = read_image_folder(
        path, image_size=(48, 48), channels=1, skip_unreadable=True, cache_dir=cache_dir
    )
    named = {TRAIN: "train", VALIDATION: "validation", TEST: "test"}
    counts: dict[str, dict[str, int]] = {}
    twins: dict[str, int] = {}
    training = decoded.images[decoded.splits == TRAIN]
    for code in (TRAIN, VALIDATION, TEST):
        chosen = decoded.splits == code
        if not chosen.any():
            continue
        name = decoded.split_folders.get(code) or named[code]
        per_class = np.bincount(decoded.labels[chosen], minlength=len(decoded.class_names))
        counts[name] = {c: int(n) for c, n in zip(decoded.class_names, per_class, strict=True)}
        if code != TRAIN:
            twins[name] = int(exact_twins(decoded.images[chosen], training).sum())
    return ImageFolderSummary(
        source=str(spec),
        path=str(path),
        file_hash=decoded.content_hash,
        layout=f"image folders ({'ROOT/<split>/<class>' if decoded.layout == 'splits' else 'ROOT/<class>'})",
        rows=len(decoded.labels),
        class_names=decoded.class_names,
        counts=counts,
        sizes=decoded.sizes,
        modes=decoded.modes,
        unreadable=decoded.unreadable,
        ignored=decoded.ignored,
        twins={k: v for k, v in twins.items() if v},
    )


def summarize(spec: str | Path, *, cache_dir: Path | None = None) -> DatasetSummary:
    """Check a dataset file (parsing it fully) and count what it holds.

    Emotion files: rows per split and class. Keypoint files (with images, or Kaggle's
    labels-only table): rows per point, complete rows and points per row.
    """
    from nas.data.image_folders import is_image_folder

    if not str(spec).startswith("builtin:") and is_image_folder(spec):
        return summarize_folder(spec, cache_dir=cache_dir)
    path = resolve_file(spec, cache_dir, f"{EXPECT_EMOTIONS} or {EXPECT_KEYPOINTS[4:]}")
    parsed = load_parsed(path, cache_dir, None)
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
    return EmotionFileSummary(
        twins=_twins(parsed) if parsed.has_usage else {},
        source=str(spec),
        path=str(path),
        file_hash=parsed.file_hash,
        layout=parsed.layout,
        rows=len(parsed.fer_labels),
        splits=splits,
        class_counts={name: int(n) for name, n in zip(FER_CLASS_NAMES, counts, strict=True)},
    )


def _summarize_keypoints(
    spec: str | Path, path: Path, parsed: ParsedKeypoints
) -> KeypointFileSummary:
    points = parsed.keypoints
    present = ~np.isnan(points[..., 0])  # (N, 15); x and y are missing together
    counts = present.sum(axis=0)
    with np.errstate(invalid="ignore"):
        sums = np.where(present[..., None], points, 0.0).sum(axis=0, dtype=np.float64)
        means = sums / counts[:, None]
    per_row = np.bincount(present.sum(axis=1), minlength=len(KEYPOINT_NAMES) + 1)
    return KeypointFileSummary(
        source=str(spec),
        path=str(path),
        file_hash=parsed.file_hash,
        layout=parsed.layout,
        rows=len(points),
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
