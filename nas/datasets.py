"""FER2013 emotion data: loading, checking, caching and summarising.

Both Kaggle layouts are read, plain or gzipped: ``fer2013.csv`` (header
``emotion,pixels,Usage``) and ``icml_face_data.csv`` (header ``emotion, Usage, pixels``).
A file is parsed once; the arrays are cached as an uncompressed ``.npz`` in the cache
folder (:func:`default_cache_dir`), keyed by the SHA-256 of the file, so later loads
take a fraction of a second. Every problem with a file is a
:class:`~nas.errors.DataError` whose one-line message names the file, the line and the
fix. ``"builtin:faces"`` stands for the synthetic faces of :mod:`nas.synthetic`.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.errors import DataError
from nas.task import Task

__all__ = [
    "FER_CLASS_NAMES",
    "FIVE_CLASS_FER_IDS",
    "FIVE_CLASS_NAMES",
    "DatasetSummary",
    "EmotionData",
    "Split",
    "default_cache_dir",
    "load_emotions",
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

BUILTIN_FACES = "builtin:faces"
_BUILTIN_FILE = "builtin-faces-v1.csv.gz"  # bump the version when nas.synthetic changes
_CACHE_VERSION = 1
_SIDE = 48
_PIXELS = _SIDE * _SIDE
_USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
_NO_USAGE = -1
_GZIP_MAGIC = b"\x1f\x8b"
_EMOTION_LAYOUTS = ("fer2013.csv", "icml_face_data.csv")
_LABEL_BYTES = {str(i).encode(): i for i in range(len(FER_CLASS_NAMES))}
_USAGE_BYTES = {name.encode(): code for code, name in enumerate(_USAGES)}
_ROW_CHUNK = 4096


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
    """

    train: Split
    validation: Split
    test: Split | None
    class_names: tuple[str, ...]
    source: str
    file_hash: str

    def task(self) -> Task:
        """The classification task these images and labels define."""
        return Task(
            kind="classification",
            input_shape=(_SIDE, _SIDE, 1),
            num_classes=len(self.class_names),
        )


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """What a dataset file holds, as printed by ``nas data``.

    ``splits`` maps each ``Usage`` value to its rows (empty without a ``Usage``
    column); ``class_counts`` maps the seven FER class names to their rows.
    """

    source: str
    path: str
    file_hash: str
    layout: str
    rows: int
    splits: dict[str, int]
    class_counts: dict[str, int]

    def lines(self) -> list[str]:
        """Human-readable lines, one fact per line."""
        shown = self.source if self.source == self.path else f"{self.source} ({self.path})"
        out = [
            f"file:    {shown}",
            f"sha256:  {self.file_hash}",
            f"layout:  {self.layout}",
            f"rows:    {self.rows:,}",
        ]
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
        return out


@dataclass(frozen=True)
class _Parsed:
    """A parsed file before any class mapping (what the cache holds)."""

    layout: str
    pixels: np.ndarray  # uint8 (N, 2304)
    fer_labels: np.ndarray  # int8 (N,), FER ids 0..6
    usage: np.ndarray  # int8 (N,), index into _USAGES, or _NO_USAGE
    has_usage: bool
    file_hash: str


def default_cache_dir() -> Path:
    """``$NAS_CACHE_DIR`` if set, else ``~/.cache/facenas``."""
    env = os.environ.get("NAS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facenas"


def resolve_data_path(spec: str | Path, *, cache_dir: Path | None = None) -> Path:
    """Turn a ``--data`` value into an existing file.

    ``"builtin:faces"`` generates the synthetic faces CSV in the cache folder the first
    time (seeded, written atomically) and returns its path; anything else is a path,
    which must exist.
    """
    text = str(spec)
    if text.startswith("builtin:"):
        if text != BUILTIN_FACES:
            raise DataError(
                f"unknown built-in dataset {text!r}; the built-in one is {BUILTIN_FACES!r}"
            )
        from nas.synthetic import write_emotion_csv

        folder = cache_dir if cache_dir is not None else default_cache_dir()
        path = folder / _BUILTIN_FILE
        if not path.is_file():
            try:
                write_emotion_csv(path, n=3000, seed=0, validation_fraction=0.2)
            except OSError as exc:
                raise DataError(
                    f"{path}: cannot write the built-in faces ({exc.strerror or exc}); "
                    "set NAS_CACHE_DIR to a writable folder"
                ) from exc
        return path
    path = Path(spec)
    if not path.exists():
        raise DataError(
            f"{path}: no such file; put the Kaggle fer2013.csv there or pass --data PATH"
        )
    if not path.is_file():
        raise DataError(f"{path}: not a file; pass the CSV file itself with --data PATH")
    return path


def load_emotions(
    spec: str | Path,
    *,
    classes: int = 5,
    validation_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> EmotionData:
    """Load a FER2013 CSV (either Kaggle layout, plain or gzipped) or ``builtin:faces``.

    ``classes=7`` keeps all FER classes; ``classes=5`` keeps angry, disgust, sad, happy,
    surprise (FER ids 0, 1, 4, 3, 5 become labels 0..4) and drops the other rows.
    ``Usage`` gives the splits (``Training`` -> train, ``PublicTest`` -> validation,
    ``PrivateTest`` -> test); without it, a stratified ``validation_fraction`` of the
    rows, drawn with ``numpy.random.default_rng(seed)``, becomes the validation split and
    ``test`` is ``None``. The parsed file is cached (see :func:`default_cache_dir`).
    """
    if classes not in (5, 7):
        raise ValueError(f"classes must be 5 or 7, got {classes}")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    path = resolve_data_path(spec, cache_dir=cache_dir)
    parsed = _load_parsed(path, cache_dir)
    if parsed.layout not in _EMOTION_LAYOUTS:
        raise DataError(f"{path}: a {parsed.layout} file holds no emotion labels")

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
                    f"{path}: the Usage column has no {_USAGES[code]} rows (needed for the "
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
    if len(train_idx) == 0 or len(val_idx) == 0:
        which = "train" if len(train_idx) == 0 else "validation"
        raise DataError(
            f"{path}: no {which} rows of the {classes} classes ({', '.join(class_names)}); "
            "use a file with more rows"
        )

    def split(idx: np.ndarray) -> Split:
        images = parsed.pixels[idx].reshape(-1, _SIDE, _SIDE, 1)
        return Split(images=images, labels=labels[idx])

    return EmotionData(
        train=split(train_idx),
        validation=split(val_idx),
        test=split(test_idx) if has_test else None,
        class_names=class_names,
        source=str(spec),
        file_hash=parsed.file_hash,
    )


def summarize(spec: str | Path, *, cache_dir: Path | None = None) -> DatasetSummary:
    """Check a dataset file (parsing it fully) and count its rows per split and class."""
    path = resolve_data_path(spec, cache_dir=cache_dir)
    parsed = _load_parsed(path, cache_dir)
    splits = (
        {
            name: int(n)
            for name, n in zip(
                _USAGES, np.bincount(parsed.usage[parsed.usage >= 0], minlength=3), strict=True
            )
            if n
        }
        if parsed.has_usage
        else {}
    )
    counts = np.bincount(parsed.fer_labels, minlength=len(FER_CLASS_NAMES))
    return DatasetSummary(
        source=str(spec),
        path=str(path),
        file_hash=parsed.file_hash,
        layout=parsed.layout,
        rows=len(parsed.fer_labels),
        splits=splits,
        class_counts={name: int(n) for name, n in zip(FER_CLASS_NAMES, counts, strict=True)},
    )


# --- parsing ----------------------------------------------------------------------------


def _detect_layout(columns: Sequence[str]) -> str | None:
    """The name of the layout a header (stripped column names) belongs to, or None.

    Add a layout here (and a parser in :func:`_parse`) to read another kind of file.
    """
    if "emotion" in columns and "pixels" in columns:
        if "Usage" in columns and columns.index("Usage") < columns.index("pixels"):
            return "icml_face_data.csv"
        return "fer2013.csv"
    return None


def _expected_columns_text() -> str:
    return "expected 'emotion,pixels,Usage' (fer2013.csv) or 'emotion, Usage, pixels' (icml_face_data.csv)"


def _load_parsed(path: Path, cache_dir: Path | None) -> _Parsed:
    """Parse ``path``, or read its arrays from the cache when the file is unchanged."""
    file_hash = _sha256(path)
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    cache_file = folder / f"parsed-v{_CACHE_VERSION}-{file_hash}.npz"
    cached = _read_cache(cache_file, file_hash)
    if cached is not None:
        return cached
    parsed = _parse(path, file_hash)
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


def _read_cache(cache_file: Path, file_hash: str) -> _Parsed | None:
    """The cached arrays, or None if absent or unreadable (then the file is re-parsed)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            parsed = _Parsed(
                layout=str(z["layout"]),
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


def _write_cache(cache_file: Path, parsed: _Parsed) -> None:
    """Write the arrays atomically; a cache that cannot be written is only a warning."""
    tmp: str | None = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=cache_file.parent, prefix=f".{cache_file.stem}.", suffix=".tmp"
        )
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                layout=np.array(parsed.layout),
                pixels=parsed.pixels,
                fer_labels=parsed.fer_labels,
                usage=parsed.usage,
                has_usage=np.array(parsed.has_usage),
            )
        os.replace(tmp, cache_file)
        tmp = None
    except OSError as exc:
        warnings.warn(
            f"cannot cache the parsed data in {cache_file.parent} ({exc}); "
            "set NAS_CACHE_DIR to a writable folder to load faster next time",
            stacklevel=3,
        )
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


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


def _parse(path: Path, file_hash: str) -> _Parsed:
    """Parse and check every row of an emotion CSV."""
    line_no = 0
    try:
        with _open_binary(path) as f:
            header = f.readline()
            line_no = 1
            if not header.strip():
                raise DataError(
                    f"{path}: the file is empty; it should be a Kaggle fer2013.csv "
                    "(header 'emotion,pixels,Usage' then one row per image)"
                )
            columns = _split_header(header)
            layout = _detect_layout(columns)
            if layout is None:
                found = ", ".join(repr(c[:30]) for c in columns[:8])
                more = f" and {len(columns) - 8} more" if len(columns) > 8 else ""
                raise DataError(
                    f"{path}: line 1: wrong columns: {_expected_columns_text()}, "
                    f"found {found}{more}"
                )
            reader = _EmotionRows(path, columns)
            for line_no, line in enumerate(f, start=2):
                reader.add(line_no, line)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        where = f"after line {line_no}" if line_no else "at its start"
        raise DataError(
            f"{path}: the gzip data is corrupt {where} ({exc}); download the file again"
        ) from exc
    if reader.rows == 0:
        raise DataError(
            f"{path}: the file holds only a header (line 1) and no data rows; "
            "use the full Kaggle fer2013.csv"
        )
    return reader.result(layout, file_hash)


def _split_header(header: bytes) -> list[str]:
    text = header.decode("utf-8-sig", errors="replace")
    fields = next(csv.reader([text]), [])
    return [field.strip() for field in fields]


class _EmotionRows:
    """Accumulates checked rows of an emotion CSV; errors name the file and line."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.i_emotion = columns.index("emotion")
        self.i_pixels = columns.index("pixels")
        self.i_usage = columns.index("Usage") if "Usage" in columns else None
        self.chunks: list[np.ndarray] = []
        self.chunk = np.empty((_ROW_CHUNK, _PIXELS), dtype=np.uint8)
        self.in_chunk = 0
        self.labels = bytearray()
        self.usage = bytearray()
        self.rows = 0

    def _fail(self, line_no: int, problem: str) -> DataError:
        return DataError(f"{self.path}: line {line_no}: {problem}")

    def add(self, line_no: int, line: bytes) -> None:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            return  # blank lines are skipped, as pandas does
        if b'"' in line:
            text = line.decode("utf-8", errors="replace")
            fields = [s.encode("utf-8") for s in next(csv.reader([text]))]
        else:
            fields = line.split(b",")
        if len(fields) != len(self.columns):
            raise self._fail(
                line_no,
                f"{len(fields)} comma-separated fields, expected {len(self.columns)} "
                f"({', '.join(self.columns)})",
            )
        label = _LABEL_BYTES.get(fields[self.i_emotion].strip())
        if label is None:
            raise self._fail(line_no, _label_problem(fields[self.i_emotion]))
        usage = _NO_USAGE
        if self.i_usage is not None:
            token = fields[self.i_usage].strip()
            code = _USAGE_BYTES.get(token)
            if code is None:
                raise self._fail(
                    line_no,
                    f"unknown Usage {_show(token)}; expected Training, PublicTest or PrivateTest",
                )
            usage = code
        self.chunk[self.in_chunk] = self._pixels(line_no, fields[self.i_pixels])
        self.in_chunk += 1
        if self.in_chunk == _ROW_CHUNK:
            self.chunks.append(self.chunk)
            self.chunk = np.empty((_ROW_CHUNK, _PIXELS), dtype=np.uint8)
            self.in_chunk = 0
        self.labels.append(label)
        self.usage.append(usage & 0xFF)  # _NO_USAGE (-1) is stored as 255, read back as int8
        self.rows += 1

    def _pixels(self, line_no: int, field: bytes) -> np.ndarray:
        """Fast path: numpy's C parser; on any doubt, an exact diagnosis of the row."""
        try:
            values = np.fromstring(field, dtype=np.int64, sep=" ")  # saturates, never wraps
        except ValueError:
            values = None
        if (
            values is not None
            and values.size == _PIXELS
            and values.min() >= 0
            and values.max() <= 255
        ):
            return values
        raise self._fail(line_no, _pixel_problem(field))

    def result(self, layout: str, file_hash: str) -> _Parsed:
        pixels = np.concatenate([*self.chunks, self.chunk[: self.in_chunk]])
        return _Parsed(
            layout=layout,
            pixels=pixels,
            fer_labels=np.frombuffer(bytes(self.labels), dtype=np.uint8).astype(np.int8),
            usage=np.frombuffer(bytes(self.usage), dtype=np.uint8).view(np.int8).copy(),
            has_usage=self.i_usage is not None,
            file_hash=file_hash,
        )


def _show(token: bytes, limit: int = 24) -> str:
    text = token.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _label_problem(token: bytes) -> str:
    text = token.strip().decode("utf-8", errors="replace")
    try:
        value = int(text)
    except ValueError:
        return f"emotion label {_show(token.strip())} is not a number; expected 0..6"
    return f"unknown emotion label {value}; expected 0..6 (FER2013 ids)"


def _pixel_problem(field: bytes) -> str:
    """Exactly what is wrong with a pixels field that failed the fast path."""
    tokens = field.split()
    for position, token in enumerate(tokens, start=1):
        if not token.isdigit():
            try:
                int(token)
            except ValueError:
                return f"pixel value {_show(token)} (value {position}) is not a number"
            return f"pixel value {_show(token)} (value {position}) is outside 0..255"
        if int(token) > 255:
            return f"pixel value {_show(token)} (value {position}) is outside 0..255"
    if len(tokens) != _PIXELS:
        return f"the pixels hold {len(tokens):,} values, expected 2,304 (48x48)"
    return "the pixels are not space-separated whole numbers"


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
