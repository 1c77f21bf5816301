"""Image-folder datasets, as most face sets are distributed: a folder, or a ``.zip`` of one
(read without unpacking it), in Keras' ``image_dataset_from_directory`` layout.

Two layouts, told apart by the folder names:

* ``ROOT/<class>/*``: every image is a training image; a seeded, stratified share of
  them becomes the validation split (``[data] validation_fraction``);
* ``ROOT/<split>/<class>/*`` with split folders ``train`` or ``training``, and ``val``,
  ``validation`` or ``test``: the training folder trains, ``[data] validation_split``
  (by default the first of ``val``, ``validation``, ``test`` present) validates, and any
  other of those is held out as the test split. FER2013's own names pick a split too: an
  image named ``PrivateTest_*`` is held out wherever it is, as the CSV's PrivateTest rows
  are.

A single folder wrapping everything (``faces.zip`` holding ``faces/train/...``) is looked
through. Class names are the class folders' names, sorted. Images may be PNG, JPEG or BMP
(by suffix; other files, hidden files and ``__MACOSX`` are skipped and counted), of any
size and mode: each is converted to grey (``L``) or RGB and resized to the requested
size (bilinear, without keeping the aspect ratio, as Keras does). The decoded arrays are
cached like the CSVs', keyed by the bytes of the zip or of every file of the folder, and
by the size and channels asked for. Bad input is a :class:`DataError` of one line that
names the folder or file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from nas.core.errors import DataError
from nas.core.files import write_through
from nas.data.cache import default_cache_dir
from nas.data.folder_source import IMAGE_SUFFIXES, FolderSource

__all__ = [
    "IMAGE_SUFFIXES",
    "SPLIT_NAMES",
    "DecodedFolder",
    "FolderListing",
    "is_image_folder",
    "list_folder",
    "read_image_folder",
]

TRAIN_FOLDERS = ("train", "training")
VALIDATION_FOLDERS = ("val", "validation", "test")
SPLIT_NAMES = TRAIN_FOLDERS + VALIDATION_FOLDERS
HELD_OUT_PREFIX = "PrivateTest_"
"""FER2013's held-out images: never trained on nor validated with, wherever they are."""
TRAIN, VALIDATION, TEST = 0, 1, 2
CACHE_VERSION = 2  # 2: 16-bit grey images scaled to 8 bits, not clipped
MAX_IMAGE_PIXELS = 40_000_000
"""An image past this many pixels (40 megapixels) is refused before it is decoded."""
FORMATS = ("PNG", "JPEG", "MPO", "BMP")
"""What Pillow may decode, whatever a file's suffix: no other decoder sees the files (MPO
is a phone's multi-picture JPEG)."""


def is_image_folder(path: str | Path) -> bool:
    """Whether ``path`` is read as an image folder: a folder, or a ``.zip`` file."""
    path = Path(path)
    return path.is_dir() or (path.suffix.lower() == ".zip" and path.is_file())


def _skipped(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts)


@dataclass(frozen=True)
class FolderListing:
    """What an image folder holds, from its names alone: ``layout`` (``"classes"`` or
    ``"splits"``), ``root`` (the folder looked through, ``""`` for none), ``class_names``
    (sorted), and per image its name, class index and split (:data:`TRAIN`,
    :data:`VALIDATION` or :data:`TEST`); ``ignored`` counts files that are not images."""

    layout: str
    root: str
    class_names: tuple[str, ...]
    names: tuple[str, ...]
    labels: np.ndarray
    splits: np.ndarray
    split_folders: dict[int, str]
    ignored: int


def list_folder(path: Path, *, validation_split: str = "") -> FolderListing:
    """Read ``path``'s names (no image is decoded) and check its layout."""
    source = FolderSource(path)
    try:
        return _listing(path, source, validation_split)
    finally:
        source.close()


def _listing(path: Path, source: FolderSource, validation_split: str) -> FolderListing:
    kept = [n for n in source.names if not _skipped(n)]
    images = [n for n in kept if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]
    ignored = len(kept) - len(images)
    if not images:
        raise DataError(
            f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it; use a folder "
            "(or .zip) of class folders, ROOT/<class>/* or ROOT/<split>/<class>/*"
        )
    root = _wrapper(images)
    inside = [n[len(root) :] for n in images]
    folders = {
        f[len(root) :]
        for f in source.folders
        if f.startswith(root) and f != root.rstrip("/") and not _skipped(f)
    }
    shown = f"{path}/{root}".rstrip("/")
    top_files = [n for n in inside if "/" not in n]
    if top_files:
        raise DataError(
            f"{shown}: the image {top_files[0]} is not in a class folder; put each image in "
            f"ROOT/<class>/ (or ROOT/<split>/<class>/)"
        )
    tops = sorted({n.split("/", 1)[0] for n in inside} | {f.split("/", 1)[0] for f in folders})
    split_tops = [t for t in tops if t.lower() in SPLIT_NAMES]
    if split_tops and len(split_tops) != len(tops):
        others = [t for t in tops if t.lower() not in SPLIT_NAMES]
        raise DataError(
            f"{shown}: split folders ({', '.join(split_tops)}) beside class folders "
            f"({', '.join(others[:3])}); use ROOT/<class>/* or ROOT/<split>/<class>/*, not both"
        )
    if not split_tops:
        if validation_split:
            raise DataError(
                f"{shown}: [data] validation_split = {validation_split!r}, but the folder has "
                "no split folders (train/, val/, ...); remove the key to split off "
                "validation_fraction of the images"
            )
        return _classes_listing(shown, root, inside, folders, ignored)
    return _splits_listing(shown, root, inside, folders, split_tops, validation_split, ignored)


def _wrapper(names: Sequence[str]) -> str:
    """The folders every image is inside of and that hold nothing else, down to the one
    that holds the class or split folders."""
    root = ""
    while True:
        below = [n[len(root) :] for n in names]
        firsts = {n.split("/", 1)[0] for n in below}
        if len(firsts) != 1 or min(n.count("/") for n in below) < 2:
            return root
        (first,) = firsts
        if first.lower() in SPLIT_NAMES:
            return root
        root += first + "/"


def _classes_listing(
    shown: str, root: str, inside: list[str], folders: set[str], ignored: int
) -> FolderListing:
    class_names = _class_names(shown, {n.split("/", 1)[0] for n in inside}, folders, "")
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[n.split("/", 1)[0]] for n in inside], dtype=np.int64)
    return FolderListing(
        layout="classes",
        root=root,
        class_names=class_names,
        names=tuple(root + n for n in inside),
        labels=labels,
        splits=np.array([_held_out(n, TRAIN) for n in inside], dtype=np.int8),
        split_folders={},
        ignored=ignored,
    )


def _splits_listing(
    shown: str,
    root: str,
    inside: list[str],
    folders: set[str],
    split_tops: list[str],
    validation_split: str,
    ignored: int,
) -> FolderListing:
    by_lower = {t.lower(): t for t in split_tops}
    train = next((by_lower[n] for n in TRAIN_FOLDERS if n in by_lower), None)
    if train is None:
        raise DataError(
            f"{shown}: no training folder among its split folders ({', '.join(split_tops)}); "
            "name it train/ or training/"
        )
    if validation_split:
        validating = by_lower.get(validation_split.lower())
        if validating is None or validating == train:
            raise DataError(
                f"{shown}: [data] validation_split = {validation_split!r} names no split "
                f"folder of it other than {train}/ (it has {', '.join(split_tops)})"
            )
    else:
        validating = next((by_lower[n] for n in VALIDATION_FOLDERS if n in by_lower), None)
    role = {
        t: (TRAIN if t == train else VALIDATION if t == validating else TEST) for t in split_tops
    }
    if len([t for t in split_tops if t.lower() in TRAIN_FOLDERS]) > 1:
        raise DataError(f"{shown}: both train/ and training/; keep one training folder")
    per_split: dict[str, set[str]] = {t: set() for t in split_tops}
    for n in inside:
        parts = n.split("/")
        if len(parts) < 3:
            raise DataError(
                f"{shown}/{n}: an image directly in a split folder; put it in {parts[0]}/<class>/"
            )
        per_split[parts[0]].add(parts[1])
    train_classes = _class_names(f"{shown}/{train}", per_split[train], folders, train + "/")
    for top in split_tops:
        extra = sorted(per_split[top] - set(train_classes))
        if extra:
            raise DataError(
                f"{shown}/{top}/{extra[0]}: a class with no folder in {train}/; every class "
                f"needs training images (classes: {', '.join(train_classes)})"
            )
    index = {name: i for i, name in enumerate(train_classes)}
    labels = np.array([index[n.split("/")[1]] for n in inside], dtype=np.int64)
    splits = np.array([_held_out(n, role[n.split("/", 1)[0]]) for n in inside], dtype=np.int8)
    return FolderListing(
        layout="splits",
        root=root,
        class_names=train_classes,
        names=tuple(root + n for n in inside),
        labels=labels,
        splits=splits,
        split_folders={role[t]: t for t in split_tops if role[t] != TEST}
        | {TEST: ", ".join(t for t in split_tops if role[t] == TEST)},
        ignored=ignored,
    )


def _held_out(name: str, role: int) -> int:
    return TEST if PurePosixPath(name).name.startswith(HELD_OUT_PREFIX) else role


def _class_names(
    shown: str, with_images: set[str], folders: set[str], prefix: str
) -> tuple[str, ...]:
    """The sorted class names; an empty class folder or a single class is refused."""
    declared = {
        f[len(prefix) :] for f in folders if f.startswith(prefix) and "/" not in f[len(prefix) :]
    }
    empty = sorted(declared - with_images)
    if empty:
        raise DataError(
            f"{shown}/{empty[0]}: a class folder with no images; add images or remove it"
        )
    names = tuple(sorted(with_images))
    if len(names) < 2:
        raise DataError(
            f"{shown}: one class ({', '.join(names)}); a classifier needs at least two class "
            "folders"
        )
    return names


@dataclass(frozen=True)
class DecodedFolder:
    """An image folder decoded: ``images`` ``uint8`` ``(N, H, W, C)`` and, per image,
    ``labels`` (into ``class_names``), ``splits`` and ``names``; what the files were
    (``sizes``: ``"WxH"`` to count, ``modes``: Pillow mode to count), the ``unreadable``
    files skipped (``skip_unreadable``) and the ``content_hash`` it is cached under."""

    layout: str
    class_names: tuple[str, ...]
    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    names: tuple[str, ...]
    split_folders: dict[int, str]
    sizes: dict[str, int]
    modes: dict[str, int]
    unreadable: tuple[str, ...]
    ignored: int
    content_hash: str


def read_image_folder(
    path: Path,
    *,
    image_size: tuple[int, int],
    channels: int,
    validation_split: str = "",
    skip_unreadable: bool = False,
    cache_dir: Path | None = None,
) -> DecodedFolder:
    """Decode every image of the folder or zip at ``path`` to ``image_size`` (height,
    width) and ``channels`` (1: grey, 3: RGB), or read them from the cache."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    source = FolderSource(path)
    try:
        content = source.content_hash()
        key = hashlib.sha256(
            json.dumps(
                [CACHE_VERSION, content, image_size, channels, skip_unreadable, validation_split]
            ).encode()
        ).hexdigest()
        cache_file = (cache_dir or default_cache_dir()) / f"parsed-folder-{key}.npz"
        cached = _read_cached(cache_file, content)
        if cached is not None:  # the same bytes, listed and checked when they were cached
            return cached
        listing = _listing(path, source, validation_split)
        decoded = _decode(path, source, listing, image_size, channels, skip_unreadable, content)
    finally:
        source.close()
    _write_cached(cache_file, decoded)
    return decoded


def _decode(
    path: Path,
    source: FolderSource,
    listing: FolderListing,
    image_size: tuple[int, int],
    channels: int,
    skip_unreadable: bool,
    content: str,
) -> DecodedFolder:
    height, width = image_size
    _check_memory(path, len(listing.names), height * width * channels)
    images = np.empty((len(listing.names), height, width, channels), dtype=np.uint8)
    readable = np.ones(len(listing.names), dtype=bool)
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    unreadable = []
    target = "L" if channels == 1 else "RGB"
    for i, name in enumerate(listing.names):
        try:
            pixels, size, mode = _decoded(source.read(name), target, (width, height))
        except MemoryError:
            raise
        except Exception as exc:  # Pillow's decoders and zipfile raise many kinds
            if not skip_unreadable:
                raise DataError(
                    f"{path}: {name} is not a readable image ({_reason(exc)}); remove it, or set "
                    "[data] skip_unreadable = true to count and skip such files"
                ) from None
            readable[i] = False
            unreadable.append(name)
            continue
        sizes[size] += 1
        modes[mode] += 1
        images[i] = pixels.reshape(height, width, channels)
    return DecodedFolder(
        layout=listing.layout,
        class_names=listing.class_names,
        images=images[readable],
        labels=listing.labels[readable],
        splits=listing.splits[readable],
        names=tuple(n for n, ok in zip(listing.names, readable, strict=True) if ok),
        split_folders=listing.split_folders,
        sizes=dict(sizes.most_common()),
        modes=dict(modes.most_common()),
        unreadable=tuple(unreadable),
        ignored=listing.ignored,
        content_hash=content,
    )


def _decoded(data: bytes, target: str, size: tuple[int, int]) -> tuple[np.ndarray, str, str]:
    """One image file's pixels in Pillow mode ``target`` at ``size`` (width, height), and
    the file's own size (``"WxH"``) and mode. Only :data:`FORMATS` are decoded, and only
    images up to :data:`MAX_IMAGE_PIXELS`; 16-bit grey keeps its top 8 bits."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
        with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                raise ValueError(
                    f"{opened.width}x{opened.height} pixels, past the "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels an image may have"
                )
            opened.load()
            image, mode = opened, opened.mode
            if mode in ("I", "I;16", "I;16B", "I;16L"):
                wide = np.asarray(image).astype(np.int64)
                image = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
            if "transparency" in image.info:
                image = image.convert("RGBA")  # a palette's transparency, resolved
            if image.mode != target:
                image = image.convert(target)
            if image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8), f"{opened.width}x{opened.height}", mode


def _check_memory(path: Path, count: int, image_bytes: int) -> None:
    """Refuse, in one line, to decode more than half this machine's memory."""
    needed = count * image_bytes
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if needed > memory // 2:
        raise DataError(
            f"{path}: {count:,} images of {image_bytes:,} bytes decoded are {needed / 2**30:.1f} "
            f"GiB, more than half this machine's memory ({memory / 2**30:.1f} GiB); use a "
            "smaller [data] image_size or fewer images"
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    return text if len(text) < 120 else text[:117] + "..."


def _read_cached(cache_file: Path, content: str) -> DecodedFolder | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            facts = json.loads(str(z["facts"]))
            decoded = DecodedFolder(
                layout=facts["layout"],
                class_names=tuple(facts["class_names"]),
                images=z["images"],
                labels=z["labels"],
                splits=z["splits"],
                names=tuple(str(n) for n in z["names"]),
                split_folders={int(k): v for k, v in facts["split_folders"].items()},
                sizes=facts["sizes"],
                modes=facts["modes"],
                unreadable=tuple(facts["unreadable"]),
                ignored=int(facts["ignored"]),
                content_hash=content,
            )
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile):
        return None
    n = len(decoded.names)
    if (
        decoded.images.ndim != 4
        or decoded.images.dtype != np.uint8
        or len(decoded.images) != n
        or decoded.labels.shape != (n,)
        or decoded.splits.shape != (n,)
    ):
        return None
    return decoded


def _write_cached(cache_file: Path, decoded: DecodedFolder) -> None:
    facts = {
        "layout": decoded.layout,
        "class_names": list(decoded.class_names),
        "ignored": decoded.ignored,
        "split_folders": {str(k): v for k, v in decoded.split_folders.items()},
        "sizes": decoded.sizes,
        "modes": decoded.modes,
        "unreadable": list(decoded.unreadable),
    }

    def save(path: Path) -> None:
        with open(path, "wb") as handle:
            np.savez(
                handle,
                images=decoded.images,
                labels=decoded.labels,
                splits=decoded.splits,
                names=np.array(decoded.names, dtype=str),
                facts=np.array(json.dumps(facts)),
            )

    try:
        write_through(cache_file, save)
    except OSError as exc:
        warnings.warn(
            f"cannot cache the decoded images in {cache_file.parent} ({exc}); "
            "set NAS_CACHE_DIR to a writable folder to load faster next time",
            stacklevel=3,
        )
