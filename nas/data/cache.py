"""The parsed-file cache: a data file is parsed once, and its arrays are kept as an
uncompressed ``.npz`` in the cache folder (:func:`default_cache_dir`), keyed by the
SHA-256 of the file's bytes; a damaged or foreign cache file is parsed again, and a
cache that cannot be written is only a warning."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from nas.core.errors import DataError
from nas.core.files import write_through
from nas.data.face_csv import (
    EXPECT_EMOTIONS,
    KEYPOINT_LAYOUT,
    KEYPOINT_LAYOUTS,
    KEYPOINT_SIDE,
    SIDE,
    ParsedEmotions,
    ParsedKeypoints,
    read_face_csv,
)
from nas.data.synthetic import KEYPOINT_NAMES

__all__ = ["CACHE_VERSION", "default_cache_dir", "file_sha256", "load_parsed"]

CACHE_VERSION = 2  # 2: keypoint files cache their near-identical frame groups
_PIXELS = SIDE * SIDE
_KP_PIXELS = KEYPOINT_SIDE * KEYPOINT_SIDE


def default_cache_dir() -> Path:
    """``$NAS_CACHE_DIR`` if set, else ``~/.cache/facenas``."""
    env = os.environ.get("NAS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facenas"


def load_parsed(
    path: Path, cache_dir: Path | None, expect: str | None = EXPECT_EMOTIONS
) -> ParsedEmotions | ParsedKeypoints:
    """Parse ``path``, or read its arrays from the cache when the file is unchanged.

    ``expect`` (what the caller wants, or None for any layout) only shapes the message
    for an empty file or a wrong header.
    """
    file_hash = file_sha256(path)
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    cache_file = folder / f"parsed-v{CACHE_VERSION}-{file_hash}.npz"
    cached = _read_cache(cache_file, file_hash)
    if cached is not None:
        return cached
    parsed = read_face_csv(path, file_hash, expect)
    _write_cache(cache_file, parsed)
    return parsed


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, hex; a file that cannot be read is a :class:`DataError`."""
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
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
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
