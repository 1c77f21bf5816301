"""Every bad user input, end to end through the real command line.

The rule: one line on stderr, ``nas: error: <place>: <what is wrong>; <what to do>``,
naming the file, line, section, key or field; exit code 2; no traceback; nothing
written (no run directory at ``--out``, no export folder at ``--to``, no parsed-data
cache). Each case below builds its inputs under ``tmp_path`` from valid files (the
synthetic writers of :mod:`nas.data.synthetic`, the baseline genomes, a run store filled
without training), breaks one thing, and runs ``nas.cli.main``.

No case trains or starts Ray: the ``_no_evaluation`` fixture makes the Ray evaluator
fail loudly, so a check that regresses shows up as a test failure, not a slow search.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from baselines.resnet50 import RESNET50
from baselines.resunet import RESUNET
from nas.cli import main
from nas.core.space import load_space
from nas.data.synthetic import render_faces, write_emotion_csv, write_keypoint_csv

# --- valid inputs, built once ------------------------------------------------------------


@dataclass(frozen=True)
class Valid:
    """Lines (without their newline) of valid files, and valid genome JSON, to break."""

    emotion: list[bytes]  # header, 8 Training rows, 2 PublicTest rows
    keypoints: list[bytes]  # header, 4 rows with all 15 points and a 96x96 image
    cnn: dict
    resunet: dict


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Valid:
    folder = tmp_path_factory.mktemp("valid")
    write_emotion_csv(folder / "fer.csv", n=10, seed=0)
    images, _, points = render_faces(4, np.random.default_rng(0), size=96)
    write_keypoint_csv(folder / "kp.csv", images, points)
    return Valid(
        emotion=(folder / "fer.csv").read_bytes().splitlines(),
        keypoints=(folder / "kp.csv").read_bytes().splitlines(),
        cnn=load_space("cnn").to_json(RESNET50),
        resunet=load_space("resunet").to_json(RESUNET),
    )


@pytest.fixture(autouse=True)
def _no_evaluation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Bad input must stop a command before any evaluation; parsed data go to a cache we
    can check is left empty."""
    import nas.engine.parallel

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command got past its input checks and started Ray")

    monkeypatch.setattr(nas.engine.parallel.RayEvaluator, "__init__", refuse)
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))


# --- how a case is made ------------------------------------------------------------------

Make = Callable[[Path, Valid], list[str]]
"""Writes a case's inputs under the folder and returns the ``nas`` arguments; ``--out``
and ``--to`` always point to ``folder / "out"``."""


@dataclass(frozen=True)
class Case:
    id: str
    make: Make
    places: tuple[str, ...]
    """Fragments the error line must contain: the file, line, section, key or field."""
    parses: bool = False
    """The data file itself parses (only a search cannot use it), so its parsed arrays
    may be cached; otherwise the cache must stay empty."""


EMOTION_EXPERIMENT = 'objectives = ["accuracy", "params"]\n[data]\ntask = "emotion"\n'
KEYPOINT_EXPERIMENT = (
    'space = "resunet"\nobjectives = ["rmse", "params"]\n[data]\ntask = "keypoints"\n'
)


def _out(tmp: Path) -> str:
    return str(tmp / "out")


def _export_folder(tmp: Path, valid: Valid, *, genome: bool = True) -> str:
    """An export folder whose model.keras is damaged (not a zip)."""
    (tmp / "exported").mkdir()
    _write(tmp / "exported" / "model.keras", b"not a zip")
    if genome:
        _write(tmp / "exported" / "genome.json", json.dumps({"genome": valid.cnn}).encode())
    return str(tmp / "exported")


def _model_export(tmp: Path, valid: Valid, *, kind: str) -> str:
    """An export folder of a tiny real Keras model: ``keypoints`` (96x96 grey, its
    genome.json without the run's split) or ``rgb`` (five emotions from 48x48 colour)."""
    import keras

    from nas.data.datasets import FIVE_CLASS_NAMES
    from nas.data.synthetic import KEYPOINT_NAMES

    folder = tmp / "exported"
    folder.mkdir()
    if kind == "keypoints":
        inputs = keras.Input((96, 96, 1))
        x = keras.layers.Dense(30)(keras.layers.GlobalAveragePooling2D()(inputs))
        model = keras.Model(inputs, keras.layers.Reshape((15, 2))(x))
        task = {"kind": "keypoints", "input_shape": [96, 96, 1], "labels": list(KEYPOINT_NAMES)}
        genome = valid.resunet
    else:
        inputs = keras.Input((48, 48, 3))
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
        task = {
            "kind": "classification",
            "input_shape": [48, 48, 3],
            "labels": list(FIVE_CLASS_NAMES),
            "seed": 0,
            "validation_fraction": 0.1,
        }
        genome = valid.cnn
    model.save(folder / "model.keras")
    _write(folder / "genome.json", json.dumps({"genome": genome, "task": task}).encode())
    return str(folder)


def _lines(rows: list[bytes]) -> bytes:
    return b"".join(row + b"\n" for row in rows)


def _write(path: Path, content: bytes) -> Path:
    """Write ``content``, gzipped if the name ends with .gz and it is not gzip data yet."""
    gzipped = path.name.endswith(".gz") and not content.startswith(b"\x1f\x8b")
    path.write_bytes(gzip.compress(content) if gzipped else content)
    return path


def _experiment(tmp: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _json_file(tmp: Path, content: object, name: str = "genome.json") -> Path:
    path = tmp / name
    path.write_text(json.dumps(content))
    return path


def search(text: str, name: str = "exp.toml") -> Make:
    """``nas search`` on an experiment file holding ``text``."""
    return lambda tmp, _: ["search", str(_experiment(tmp, text, name)), "--out", _out(tmp)]


def fidelity(*flags: str) -> Make:
    """``nas fidelity`` of an emotion experiment with ``flags``."""
    return lambda tmp, _: [
        "fidelity",
        str(_experiment(tmp, EMOTION_EXPERIMENT)),
        "--out",
        _out(tmp),
        *flags,
    ]


MULTITASK_EXPERIMENT = (
    'objectives = ["accuracy", "rmse", "params"]\n'
    '[[tasks]]\ntask = "emotion"\n[[tasks]]\ntask = "keypoints"\n'
)


def search_data(path: Callable[[Path], Path | str]) -> Make:
    """``nas search --data PATH`` with an emotion experiment; ``path(tmp)`` makes PATH."""
    return lambda tmp, _: [
        "search",
        str(_experiment(tmp, EMOTION_EXPERIMENT)),
        "--data",
        str(path(tmp)),
        "--out",
        _out(tmp),
    ]


def seed_file(change: Callable[[Valid], object], *, space: str = "cnn") -> Make:
    """``nas search`` of a ``space`` experiment seeded with ``genome.json``, which holds
    ``change(valid)`` (bytes are written as they are)."""

    def make(tmp: Path, valid: Valid) -> list[str]:
        content = change(valid)
        path = tmp / "genome.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(json.dumps(content))
        task = "emotion" if space == "cnn" else "keypoints"
        objectives = '["accuracy", "params"]' if space == "cnn" else '["rmse", "params"]'
        text = (
            f'space = "{space}"\nobjectives = {objectives}\n[data]\ntask = "{task}"\n'
            f"[search]\nseeds = [{json.dumps(str(path))}]\n"
        )
        return ["search", str(_experiment(tmp, text)), "--out", _out(tmp)]

    return make


def genome(space: str, edit: Callable[[dict], object], *, wrap: bool = True) -> Callable:
    """A copy of the space's baseline genome JSON with ``edit`` applied, as ``nas export``
    writes it (``{"space": ..., "genome": ...}``) or bare."""

    def change(valid: Valid) -> dict:
        data = copy.deepcopy(valid.cnn if space == "cnn" else valid.resunet)
        edit(data)
        return {"space": space, "genome": data} if wrap else data

    return change


def put(path: str, value: object) -> Callable[[dict], None]:
    """Set the field at ``path`` (``"stages.1.depth"``) of a genome JSON."""
    *parents, last = path.split(".")

    def edit(data: dict) -> None:
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def drop(path: str) -> Callable[[dict], None]:
    """Remove the field at ``path`` of a genome JSON."""
    *parents, last = path.split(".")

    def edit(data: dict) -> None:
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return edit


# --- CSV files, broken ---------------------------------------------------------------------

Corrupt = Callable[[list[bytes]], bytes]
"""From the valid lines of a file, the bytes of the broken file."""


def row_field(line: int, field: int, value: bytes | Callable[[bytes], bytes]) -> Corrupt:
    """Replace comma-separated field ``field`` of file line ``line`` (1 = header)."""

    def corrupt(rows: list[bytes]) -> bytes:
        rows = list(rows)
        fields = rows[line - 1].split(b",")
        fields[field] = value(fields[field]) if callable(value) else value
        rows[line - 1] = b",".join(fields)
        return _lines(rows)

    return corrupt


def pixel(position: int, value: bytes) -> Callable[[bytes], bytes]:
    """Replace the pixel value at ``position`` (0-based, -1 = last) of a pixels field."""

    def change(pixels: bytes) -> bytes:
        values = pixels.split(b" ")
        values[position] = value
        return b" ".join(values)

    return change


def header(text: bytes) -> Corrupt:
    return lambda rows: _lines([text, *rows[1:]])


def truncated_gzip(rows: list[bytes]) -> bytes:
    data = gzip.compress(_lines(rows))
    return data[: len(data) // 2]


def garbled_gzip(rows: list[bytes]) -> bytes:
    data = gzip.compress(_lines(rows))
    return data[:20] + bytes(range(256)) * 4 + data[20 + 1024 :]


def written(name: str, source: str, corrupt: Corrupt) -> Callable:
    """A function writing ``corrupt(valid lines of source)`` to ``tmp / name`` (see
    :func:`_write`); returns the path."""
    return lambda tmp, valid: _write(
        tmp / name, corrupt(valid.emotion if source == "emotion" else valid.keypoints)
    )


def data_cmd(write: Callable) -> Make:
    return lambda tmp, valid: ["data", str(write(tmp, valid))]


def search_with(write: Callable, source: str) -> Make:
    """``nas search --data FILE`` with an experiment of the file's task."""
    text = EMOTION_EXPERIMENT if source == "emotion" else KEYPOINT_EXPERIMENT

    def make(tmp: Path, valid: Valid) -> list[str]:
        experiment = _experiment(tmp, text)
        return ["search", str(experiment), "--data", str(write(tmp, valid)), "--out", _out(tmp)]

    return make


PIXELS = 1  # the pixels field of fer2013.csv rows (emotion,pixels,Usage)
IMAGE = 30  # the Image field of keypoint rows (30 coordinates, then Image)

# (id, source, file name, corruption, places): every case runs through `nas data` and
# through `nas search --data`.
CSV_CASES: list[tuple[str, str, str, Corrupt, tuple[str, ...]]] = [
    ("emotion-empty", "emotion", "empty.csv", lambda rows: b"", ("empty.csv: the file is empty",)),
    (
        "emotion-header-only",
        "emotion",
        "header.csv",
        lambda rows: _lines(rows[:1]),
        ("header.csv: the file holds only a header (line 1)",),
    ),
    (
        "emotion-wrong-columns",
        "emotion",
        "columns.csv",
        header(b"label,image,Usage"),
        ("columns.csv: line 1: wrong columns", "'label'"),
    ),
    (
        "emotion-too-few-pixels",
        "emotion",
        "short.csv",
        row_field(3, PIXELS, lambda p: p.rsplit(b" ", 1)[0]),
        ("short.csv: line 3:", "2,303 values"),
    ),
    (
        "emotion-too-many-pixels",
        "emotion",
        "long.csv",
        row_field(2, PIXELS, lambda p: p + b" 7"),
        ("long.csv: line 2:", "2,305 values"),
    ),
    (
        "emotion-no-pixels",
        "emotion",
        "nopixels.csv",
        row_field(4, PIXELS, b""),
        ("nopixels.csv: line 4:", "0 values"),
    ),
    (
        "emotion-pixel-not-a-number",
        "emotion",
        "nan_pixel.csv",
        row_field(3, PIXELS, pixel(0, b"x7")),
        ("nan_pixel.csv: line 3:", "'x7' (value 1)"),
    ),
    (
        "emotion-pixel-fraction",
        "emotion",
        "float_pixel.csv",
        row_field(2, PIXELS, pixel(5, b"1.5")),
        ("float_pixel.csv: line 2:", "'1.5' (value 6)"),
    ),
    (
        "emotion-pixel-over-255",
        "emotion",
        "bright.csv",
        row_field(3, PIXELS, pixel(-1, b"256")),
        ("bright.csv: line 3:", "'256' (value 2304)", "0..255"),
    ),
    (
        "emotion-pixel-negative",
        "emotion",
        "negative.csv",
        row_field(2, PIXELS, pixel(0, b"-1")),
        ("negative.csv: line 2:", "'-1'", "0..255"),
    ),
    (
        "emotion-label-not-a-number",
        "emotion",
        "label_text.csv",
        row_field(3, 0, b"happy"),
        ("label_text.csv: line 3:", "emotion label 'happy'"),
    ),
    (
        "emotion-label-unknown",
        "emotion",
        "label7.csv",
        row_field(4, 0, b"7"),
        ("label7.csv: line 4:", "unknown emotion label 7"),
    ),
    (
        "emotion-usage-unknown",
        "emotion",
        "usage.csv",
        row_field(3, 2, b"Testing"),
        ("usage.csv: line 3:", "unknown Usage 'Testing'"),
    ),
    (
        "emotion-missing-field",
        "emotion",
        "fields.csv",
        lambda rows: _lines([*rows[:2], rows[2].rsplit(b",", 1)[0], *rows[3:]]),
        ("fields.csv: line 3:", "2 comma-separated fields, expected 3"),
    ),
    (
        "emotion-gz-bad-row",
        "emotion",
        "rows.csv.gz",
        row_field(5, 0, b"9"),
        ("rows.csv.gz: line 5:", "unknown emotion label 9"),
    ),
    (
        "emotion-gzip-truncated",
        "emotion",
        "truncated.csv.gz",
        truncated_gzip,
        ("truncated.csv.gz: the gzip data is corrupt",),
    ),
    (
        "emotion-gzip-garbled",
        "emotion",
        "garbled.csv.gz",
        garbled_gzip,
        ("garbled.csv.gz: the gzip data is corrupt",),
    ),
    (
        "emotion-gzipped-twice",
        "emotion",
        "twice.csv.gz",
        lambda rows: gzip.compress(gzip.compress(_lines(rows))),
        ("twice.csv.gz: line 1: the file is gzipped twice",),
    ),
    (
        "emotion-binary-file",
        "emotion",
        "photo.csv",
        lambda rows: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
        ("photo.csv: line 1: wrong columns",),
    ),
    (
        "keypoints-empty",
        "keypoints",
        "empty_kp.csv",
        lambda rows: b"",
        ("empty_kp.csv: the file is empty",),
    ),
    (
        "keypoints-header-only",
        "keypoints",
        "header_kp.csv",
        lambda rows: _lines(rows[:1]),
        ("header_kp.csv: the file holds only a header (line 1)",),
    ),
    (
        "keypoints-missing-column",
        "keypoints",
        "nose.csv",
        lambda rows: _lines(
            [b",".join(c for c in rows[0].split(b",") if c != b"nose_tip_y"), *rows[1:]]
        ),
        ("nose.csv: line 1:", "missing column nose_tip_y"),
    ),
    (
        "keypoints-image-too-short",
        "keypoints",
        "short_kp.csv",
        row_field(3, IMAGE, lambda p: p.rsplit(b" ", 1)[0]),
        ("short_kp.csv: line 3:", "column Image holds 9,215 values, expected 9,216"),
    ),
    (
        "keypoints-image-too-long",
        "keypoints",
        "long_kp.csv",
        row_field(2, IMAGE, lambda p: p + b" 7"),
        ("long_kp.csv: line 2:", "9,217 values"),
    ),
    (
        "keypoints-pixel-not-a-number",
        "keypoints",
        "nan_kp.csv",
        row_field(4, IMAGE, pixel(-1, b"x7")),
        ("nan_kp.csv: line 4:", "'x7' (value 9216) in column Image"),
    ),
    (
        "keypoints-pixel-over-255",
        "keypoints",
        "bright_kp.csv",
        row_field(3, IMAGE, pixel(0, b"300")),
        ("bright_kp.csv: line 3:", "'300' (value 1) in column Image", "0..255"),
    ),
    (
        "keypoints-coordinate-not-a-number",
        "keypoints",
        "coord.csv",
        row_field(3, 20, b"abc"),
        ("coord.csv: line 3:", "'abc' in column nose_tip_x"),
    ),
    (
        "keypoints-coordinate-infinite",
        "keypoints",
        "inf.csv",
        row_field(2, 1, b"inf"),
        ("inf.csv: line 2:", "'inf' in column left_eye_center_y"),
    ),
    (
        "keypoints-x-without-y",
        "keypoints",
        "half.csv",
        row_field(4, 23, b""),
        ("half.csv: line 4:", "column mouth_left_corner_y is empty"),
    ),
    (
        "keypoints-missing-field",
        "keypoints",
        "fields_kp.csv",
        lambda rows: _lines([*rows[:2], rows[2].rsplit(b",", 1)[0], *rows[3:]]),
        ("fields_kp.csv: line 3:", "30 comma-separated fields, expected 31"),
    ),
    (
        "keypoints-gzip-truncated",
        "keypoints",
        "truncated_kp.csv.gz",
        truncated_gzip,
        ("truncated_kp.csv.gz: the gzip data is corrupt",),
    ),
]


def _search_only_file(name: str, content: Callable[[Valid], bytes]) -> Callable:
    """A function writing ``content(valid)`` to ``tmp / name``; returns the path."""
    return lambda tmp, valid: _write(tmp / name, content(valid))


def _usage(rows: list[bytes], usage: bytes) -> list[bytes]:
    return [rows[0], *(row.rsplit(b",", 1)[0] + b"," + usage for row in rows[1:])]


def _labels(rows: list[bytes], labels: list[bytes]) -> list[bytes]:
    return [
        rows[0],
        *(labels[i % len(labels)] + row[row.index(b",") :] for i, row in enumerate(rows[1:])),
    ]


# Files a summary accepts but a search cannot use (the splits, the classes, the task).
SEARCH_DATA_CASES: list[tuple[str, str, Callable, tuple[str, ...]]] = [
    (
        "emotion-no-PublicTest-rows",
        "emotion",
        _search_only_file("train_only.csv", lambda v: _lines(_usage(v.emotion, b"Training"))),
        ("train_only.csv: the Usage column has no PublicTest rows",),
    ),
    (
        "emotion-no-rows-of-the-5-classes",
        "emotion",
        _search_only_file("fear.csv", lambda v: _lines(_labels(v.emotion, [b"2", b"6"]))),
        ("fear.csv: no train rows of the 5 classes", "classes = 7"),
    ),
    (
        "emotion-given-a-keypoint-file",
        "emotion",
        _search_only_file("kp_for_emotion.csv", lambda v: _lines(v.keypoints)),
        ("kp_for_emotion.csv: a facial keypoints training.csv file holds no emotion labels",),
    ),
    (
        "keypoints-given-an-emotion-file",
        "keypoints",
        _search_only_file("fer_for_kp.csv", lambda v: _lines(v.emotion)),
        ("fer_for_kp.csv: a fer2013.csv file holds emotion labels, not keypoints",),
    ),
    (
        "keypoints-one-row",
        "keypoints",
        _search_only_file("one_row.csv", lambda v: _lines(v.keypoints[:2])),
        ("one_row.csv: only 1 data row",),
    ),
    (
        "keypoints-labels-only",
        "keypoints",
        _search_only_file(
            "labels_only.csv",
            lambda v: _lines([row.rsplit(b",", 1)[0] for row in v.keypoints]),
        ),
        ("labels_only.csv: the file has keypoint labels but no images",),
    ),
]


# --- a run directory, filled without training -----------------------------------------------


def _run(tmp: Path, *, completed: bool = True) -> Path:
    """``tmp / "run"``: trial 0 completed with damaged weights, trial 1 failed, trial 2
    completed without its weights file (or only a failed trial)."""
    from nas.core.task import Task
    from nas.core.trial import EvalResult
    from nas.storage.records import RunInfo
    from nas.storage.store import RunStore
    from search_spaces.cnn import CnnGenome, Stage, Stem

    run = tmp / "run"
    info = RunInfo(
        storage=RunStore.default_storage(run),
        study_name="tiny",
        space="cnn",
        objectives=("accuracy", "params"),
        task=Task(kind="classification", input_shape=(48, 48, 1), num_classes=5),
        output_names=("angry", "disgust", "sad", "happy", "surprise"),
        experiment={},
    )
    store = RunStore.create(run, info)
    space = load_space("cnn")
    tiny = space.to_json(
        CnnGenome(stem=Stem(width=8), stages=(Stage(block="plain", depth=1, width=8),))
    )

    def record(key: str, result: EvalResult, values: tuple[float, float] | None) -> None:
        store.record(result, genome=tiny, description=key, generation=0, values=values)

    if completed:
        metrics = {"accuracy": 0.5, "params": 100.0}
        record("a", EvalResult(genome_hash="a", metrics=metrics, weights=b"not hdf5"), (0.5, 100.0))
    record("b", EvalResult(genome_hash="b", failure="nan_loss", detail="loss became nan"), None)
    if completed:
        record(
            "c", EvalResult(genome_hash="c", metrics={"accuracy": 0.7, "params": 1e3}), (0.7, 1e3)
        )
        (run / "models" / "c.weights.h5").unlink(missing_ok=True)
    return run


def litert_of_export_folder(
    kind: str, data_name: str, rows: Callable[[Valid], list[bytes]]
) -> Make:
    """``nas export --litert --data`` of a tiny real export folder (:func:`_model_export`)
    with a data file of ``rows``."""
    return lambda tmp, v: [
        "export",
        _model_export(tmp, v, kind=kind),
        "--litert",
        "--data",
        str(_write(tmp / data_name, _lines(rows(v)))),
        "--to",
        _out(tmp),
    ]


def export(*args: str, completed: bool = True) -> Make:
    return lambda tmp, _: ["export", str(_run(tmp, completed=completed)), *args, "--to", _out(tmp)]


def folder(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).mkdir()
        return tmp / name

    return make


def image_folder(layout: dict[str, int], *, truncate: str = "") -> Callable[[Path], Path]:
    """``tmp/faces`` holding ``layout`` (folder to a number of 8x8 grey PNGs), with the
    image ``truncate`` cut short."""

    def make(tmp: Path) -> Path:
        from PIL import Image

        root = tmp / "faces"
        for name, count in layout.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / name / f"{i}.png")
        if truncate:
            (root / truncate).write_bytes((root / truncate).read_bytes()[:40])
        return root

    return make


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def damaged_run(tmp: Path) -> Path:
    run = folder("damaged_run")(tmp)
    (run / "run.json").write_text("{")
    return run


# --- the table ---------------------------------------------------------------------------------

_RANGE = "[search]\npopulation = 8\n"

CASES: list[Case] = [
    # experiment file: keys, types, ranges, objectives, syntax
    Case(
        "experiment-unknown-top-level-key",
        search("colour = 'red'\n"),
        ("exp.toml", "unknown key 'colour'"),
    ),
    Case(
        "experiment-unknown-budget-key",
        search("[budget]\nepoch = 2\n"),
        ("exp.toml: [budget]", "'epoch'"),
    ),
    Case(
        "experiment-unknown-search-key",
        search("[search]\npopulaton = 8\n"),
        ("exp.toml: [search]", "'populaton'"),
    ),
    Case(
        "experiment-unknown-data-key",
        search("[data]\nfile = 'x.csv'\n"),
        ("exp.toml: [data]", "'file'"),
    ),
    Case(
        "experiment-epochs-is-a-string",
        search("[budget]\nepochs = '2'\n"),
        ("exp.toml: [budget]", "epochs must be int"),
    ),
    Case(
        "experiment-population-is-a-float",
        search("[search]\npopulation = 8.0\n"),
        ("exp.toml: [search]", "population must be int"),
    ),
    Case(
        "experiment-epochs-is-a-boolean",
        search("[budget]\nepochs = true\n"),
        ("exp.toml: [budget]", "epochs must be int, got a boolean"),
    ),
    Case(
        "experiment-seeds-not-a-list",
        search("[search]\nseeds = 'resnet50'\n"),
        ("exp.toml: [search]", "seeds must be a list"),
    ),
    Case(
        "experiment-objectives-not-a-list",
        search("objectives = 'accuracy'\n"),
        ("exp.toml", "objectives must be a list"),
    ),
    Case(
        "experiment-population-6",
        search("[search]\npopulation = 6\n"),
        ("exp.toml: [search]", "population", "try 8"),
    ),
    Case(
        "experiment-epochs-0",
        search("[budget]\nepochs = 0\n"),
        ("exp.toml: [budget]", "epochs must be in 1..1000"),
    ),
    Case(
        "experiment-validation-fraction-0.7",
        search("[data]\nvalidation_fraction = 0.7\n"),
        ("exp.toml: [data]", "validation_fraction"),
    ),
    Case(
        "experiment-crossover-prob-2",
        search("[search]\ncrossover_prob = 2\n"),
        ("exp.toml: [search]", "crossover_prob", "got 2.0"),
    ),
    Case(
        "experiment-mutation-prob-nan",
        search("[search]\nmutation_prob = nan\n"),
        ("exp.toml: [search]", "mutation_prob must be a finite number"),
    ),
    Case(
        "experiment-timeout-infinite",
        search("[budget]\ntimeout_seconds = inf\n"),
        ("exp.toml: [budget]", "timeout_seconds must be a finite number"),
    ),
    Case(
        "experiment-timeout-not-above-train-seconds",
        search("[budget]\ntrain_seconds = 60\ntimeout_seconds = 60\n"),
        ("exp.toml: [budget]", "timeout_seconds (60.0) must exceed train_seconds (60.0)"),
    ),
    Case(
        "experiment-generations-negative",
        search("[search]\ngenerations = -1\n"),
        ("exp.toml: [search]", "generations", "got -1"),
    ),
    Case(
        "experiment-workers-0", search("[search]\nworkers = 0\n"), ("exp.toml: [search]", "workers")
    ),
    Case(
        "experiment-prescreen-0",
        search("[search]\nprescreen = 0\n"),
        ("exp.toml: [search]", "prescreen must be in 1..64", "1 = off"),
    ),
    Case(
        "experiment-prescreen-without-a-free-objective",
        search("objectives = ['accuracy', 'macro_f1']\n[search]\nprescreen = 4\n"),
        ("exp.toml: [search] prescreen = 4", "add 'params' or 'flops' to objectives"),
    ),
    Case(
        "experiment-low-fidelity-at-the-budget",
        search("[budget]\ntrain_images = 400\n[search]\nlow_fidelity_images = 400\n"),
        (
            "exp.toml: [search] low_fidelity_images = 400",
            "must be below [budget] train_images (400)",
        ),
    ),
    Case(
        "experiment-promote-fraction-0",
        search("[search]\npromote_fraction = 0\n"),
        ("exp.toml: [search]", "promote_fraction must be in (0, 1]"),
    ),
    Case(
        "experiment-select-by-unknown",
        search('[search]\nselect_by = "size"\n'),
        ("exp.toml: [search]", "select_by must be 'score' or 'score+flops'", "got 'size'"),
    ),
    Case(
        "experiment-precision-fp16",
        search('[budget]\nprecision = "fp16"\n'),
        ("exp.toml: [budget]", "precision must be 'float32' or 'bf16' or 'auto'", "'fp16'"),
    ),
    Case(
        "experiment-budget-recipe-unknown",
        search('[budget]\nrecipe = "adamw"\n'),
        ("exp.toml: [budget]", "recipe must be 'genome' or 'standard'", "'adamw'"),
    ),
    Case(
        "experiment-final-recipe-unknown",
        search('[final]\nepochs = 2\nrecipe = "search"\n'),
        ("exp.toml: [final]", "recipe must be 'genome' or 'standard'", "'search'"),
    ),
    Case(
        "experiment-standard-recipe-with-several-tasks",
        search(MULTITASK_EXPERIMENT + '[budget]\nrecipe = "standard"\n'),
        ('[budget] recipe = "standard" is not available for multi-task experiments yet',),
    ),
    Case(
        "fidelity-panel-too-small",
        fidelity("--panel", "3"),
        ("--panel must be at least 4",),
    ),
    Case(
        "fidelity-signal-unknown",
        fidelity("--signals", "genome,zico2"),
        ("--signals: unknown signal 'zico2'", "known: genome"),
    ),
    Case(
        "fidelity-fidelities-not-numbers",
        fidelity("--fidelities", "1500,lots"),
        ("--fidelities '1500,lots'", "image counts"),
    ),
    Case(
        "fidelity-scheduled-fidelities-zero",
        fidelity("--scheduled-fidelities", "0"),
        ("--scheduled-fidelities must be positive image counts",),
    ),
    Case(
        "fidelity-second-seeds-above-panel",
        fidelity("--panel", "4", "--second-seeds", "5"),
        ("--second-seeds must be in 0..4",),
    ),
    Case(
        "fidelity-keypoint-experiment",
        lambda tmp, _: [
            "fidelity",
            str(_experiment(tmp, KEYPOINT_EXPERIMENT)),
            "--out",
            _out(tmp),
        ],
        ("nas fidelity ranks by accuracy so far", "'keypoints' is not a classification"),
    ),
    Case(
        "fidelity-multitask-experiment",
        lambda tmp, _: [
            "fidelity",
            str(_experiment(tmp, MULTITASK_EXPERIMENT)),
            "--out",
            _out(tmp),
        ],
        ("nas fidelity measures one-task experiments only",),
    ),
    Case(
        "experiment-final-start-unknown",
        search('[final]\nepochs = 2\nstart = "imagenet"\n'),
        ("exp.toml: [final]", "start must be 'search'", "or 'scratch'"),
    ),
    Case(
        "experiment-final-minutes-negative",
        search("[final]\nminutes = -5\n"),
        ("exp.toml: [final]", "minutes must be >= 0"),
    ),
    Case(
        "experiment-final-search-share-out-of-range",
        search("[final]\ntotal_minutes = 35\nsearch_share = 0\n"),
        ("exp.toml: [final]", "search_share must be in (0, 1]", "got 0"),
    ),
    Case(
        "experiment-final-min-epochs-negative",
        search("[final]\ntotal_minutes = 35\nmin_epochs = -1\n"),
        ("exp.toml: [final]", "min_epochs must be in 0..1000", "got -1"),
    ),
    Case(
        "experiment-final-breed-affordable-without-a-time-bound",
        search("[final]\nepochs = 24\nbreed_affordable = true\n"),
        ("exp.toml: [final]", "breed_affordable needs a final training bounded by time"),
    ),
    Case(
        "experiment-final-minutes-and-total-minutes",
        search("[final]\nminutes = 20\ntotal_minutes = 35\n"),
        ("exp.toml: [final]", "set minutes", "or total_minutes", "not both"),
    ),
    Case(
        "experiment-final-unknown-key",
        search("[final]\nhours = 1\n"),
        ("exp.toml: [final]", "unknown key 'hours'", "minutes"),
    ),
    Case(
        "experiment-max-params-10",
        search("[budget]\nmax_params = 10\n"),
        ("exp.toml: [budget]", "max_params"),
    ),
    Case(
        "experiment-max-train-images-negative",
        search("[budget]\nmax_train_images = -1\n"),
        ("exp.toml: [budget]", "max_train_images", "got -1"),
    ),
    Case(
        "experiment-classes-6",
        search("[data]\nclasses = 6\n"),
        ("[data] classes = 6", "a FER2013 CSV gives 5 or 7 classes"),
    ),
    Case(
        "experiment-unknown-task",
        search("[data]\ntask = 'age'\n"),
        ("exp.toml: [data] unknown task 'age'", "use 'emotion' or 'keypoints'"),
    ),
    Case(
        "experiment-seed-negative",
        search("seed = -1\n"),
        ("exp.toml", "seed must be in 0..2**32-1"),
    ),
    Case(
        "experiment-bad-name", search("name = 'my run'\n"), ("exp.toml", "name must be", "'my run'")
    ),
    Case(
        "experiment-bad-name-from-file-name",
        search("", name="my run.toml"),
        ("my run.toml", "name must be", "set name ="),
    ),
    Case(
        "experiment-unknown-objective",
        search("objectives = ['accuracy', 'size']\n"),
        ("exp.toml", "unknown objective 'size'"),
    ),
    Case(
        "experiment-objective-of-another-task",
        search("objectives = ['rmse', 'params']\n"),
        ("exp.toml", "objective 'rmse' does not apply to the emotion task"),
    ),
    Case(
        "experiment-one-objective",
        search("objectives = ['accuracy']\n"),
        ("exp.toml", "at least two metrics"),
    ),
    Case(
        "experiment-repeated-objective",
        search("objectives = ['params', 'accuracy', 'params']\n"),
        ("exp.toml", "objectives repeat 'params'"),
    ),
    Case(
        "experiment-unknown-space",
        search("space = 'transformer'\n"),
        ("exp.toml", "unknown space 'transformer'", "'cnn', 'resunet'"),
    ),
    Case(
        "experiment-space-not-for-the-task",
        search("space = 'resunet'\n"),
        ("exp.toml", "space 'resunet'", "keypoints task only"),
    ),
    Case(
        "experiment-too-many-seeds",
        search(
            "[search]\npopulation = 4\nseeds = ['resnet50', 'resnet50', 'resnet50', 'resnet50', 'resnet50']\n"
        ),
        ("exp.toml: [search]", "5 seeds do not fit a population of 4"),
    ),
    Case(
        "experiment-not-toml",
        search("[budget\nepochs = 1\n"),
        ("exp.toml: not valid TOML", "line 1"),
    ),
    Case(
        "experiment-not-utf8",
        lambda tmp, _: [
            "search",
            str(_write(tmp / "latin1.toml", b"name = 'caf\xe9'\n")),
            "--out",
            _out(tmp),
        ],
        ("latin1.toml: not UTF-8",),
    ),
    Case(
        "experiment-missing-file",
        lambda tmp, _: ["search", str(tmp / "absent.toml"), "--out", _out(tmp)],
        ("absent.toml: no such experiment file",),
    ),
    Case(
        "experiment-is-a-folder",
        lambda tmp, _: ["search", str(folder("experiments")(tmp)), "--out", _out(tmp)],
        ("experiments: a folder, not an experiment file",),
    ),
    Case(
        "experiment-data-not-a-table", search("data = 3\n"), ("exp.toml: [data] must be a table",)
    ),
    Case(
        "experiment-budget-is-a-list",
        search("budget = [1, 2]\n"),
        ("exp.toml: [budget] must be a table",),
    ),
    Case(
        "experiment-nested-table-in-search",
        search("[search.extra]\nx = 1\n"),
        ("exp.toml: [search]", "unknown key 'extra'"),
    ),
    # data paths of a search
    Case(
        "search-data-path-missing",
        search("[data]\npath = 'nowhere/fer2013.csv'\n"),
        ("nowhere/fer2013.csv: no such file",),
    ),
    Case(
        "search-data-flag-missing",
        search_data(lambda tmp: tmp / "nowhere.csv"),
        ("nowhere.csv: no such file", "--data PATH"),
    ),
    Case(
        "search-data-flag-folder",
        search_data(folder("a_folder")),
        ("a_folder: no images",),
    ),
    # image folders and zips of them
    Case(
        "search-folder-empty-class",
        search_data(image_folder({"a": 2, "b": 2, "c": 0})),
        ("faces/c: a class folder with no images",),
    ),
    Case(
        "search-folder-one-class",
        search_data(image_folder({"a": 3})),
        ("faces: one class (a)", "at least two class folders"),
    ),
    Case(
        "search-folder-truncated-image",
        search_data(image_folder({"a": 2, "b": 2}, truncate="b/1.png")),
        ("b/1.png is not a readable image", "skip_unreadable"),
    ),
    Case(
        "search-folder-mixed-layouts",
        search_data(image_folder({"train/a": 2, "train/b": 2, "cats": 2})),
        ("split folders (train) beside class folders (cats)",),
    ),
    Case(
        "search-folder-class-not-there",
        lambda tmp, valid: search(
            EMOTION_EXPERIMENT + f'path = "{image_folder({"a": 2, "b": 2})(tmp)}"\n'
            'classes = ["a", "zebra"]\n'
        )(tmp, valid),
        ("classes names 'zebra', which has no class folder there",),
        parses=True,
    ),
    Case(
        "search-zip-without-images",
        search_data(lambda tmp: _zip(tmp / "faces.zip", {"readme.txt": b"no faces"})),
        ("faces.zip: no images",),
    ),
    Case(
        "search-csv-with-image-size",
        search(EMOTION_EXPERIMENT + "image_size = 64\n"),
        ("[data] image_size = 64 applies to image folders",),
    ),
    Case(
        "experiment-channels-2",
        search("[data]\nchannels = 2\n"),
        ("exp.toml: [data]", "channels must be 1 (grey) or 3 (RGB), got 2"),
    ),
    Case(
        "search-unknown-builtin-data",
        search("[data]\npath = 'builtin:cats'\n"),
        ("builtin:cats: no such built-in dataset",),
    ),
    Case(
        "search-emotion-builtin-for-keypoints",
        search(KEYPOINT_EXPERIMENT + "path = 'builtin:faces'\n"),
        ("builtin:faces: the built-in emotion faces have no keypoints",),
    ),
    Case(
        "search-keypoint-builtin-for-emotion",
        search_data(lambda tmp: "builtin:keypoint-faces"),
        ("builtin:keypoint-faces: the built-in keypoint faces have no emotion labels",),
    ),
    # seeds: names
    Case(
        "seed-unknown-name",
        search("[search]\nseeds = ['resnet51']\n"),
        ("exp.toml: [search] seed 'resnet51'", "not a baseline"),
    ),
    Case(
        "seed-of-another-space",
        search("[search]\nseeds = ['resunet']\n"),
        ("exp.toml: [search] seed 'resunet'", "'resunet' space", "'cnn' space"),
    ),
    Case(
        "seed-cnn-baseline-in-resunet-search",
        search(KEYPOINT_EXPERIMENT + "[search]\nseeds = ['resnet50']\n"),
        ("exp.toml: [search] seed 'resnet50'", "'cnn' space"),
    ),
    # seeds: genome JSON files
    Case(
        "seed-json-unknown-field",
        seed_file(genome("cnn", put("stem.colour", "red"))),
        ("exp.toml: [search] seed", "genome.json", "unknown field stem.colour"),
    ),
    Case(
        "seed-json-unknown-top-level-field",
        seed_file(genome("cnn", put("optimiser", "adam"))),
        ("genome.json", "unknown field optimiser"),
    ),
    Case(
        "seed-json-missing-field",
        seed_file(genome("cnn", drop("stages.0.depth"))),
        ("genome.json", "missing field stages[0].depth"),
    ),
    Case(
        "seed-json-missing-section",
        seed_file(genome("cnn", drop("head"))),
        ("genome.json", "missing field head"),
    ),
    Case(
        "seed-json-negative-depth",
        seed_file(genome("cnn", put("stages.1.depth", -2))),
        ("genome.json", "stages[1].depth = -2", "allowed 1..64"),
    ),
    Case(
        "seed-json-unknown-activation",
        seed_file(genome("cnn", put("stages.0.activation", "tanh"))),
        ("genome.json", "stages[0].activation = 'tanh'", "'relu'"),
    ),
    Case(
        "seed-json-kernel-not-allowed",
        seed_file(genome("cnn", put("stem.kernel", 4))),
        ("genome.json", "stem.kernel = 4", "choose one of"),
    ),
    Case(
        "seed-json-width-is-a-string",
        seed_file(genome("cnn", put("stages.0.width", "wide"))),
        ("genome.json", "stages[0].width must be an integer"),
    ),
    Case(
        "seed-json-depth-is-a-boolean",
        seed_file(genome("cnn", put("stages.0.depth", True))),
        ("genome.json", "stages[0].depth must be an integer"),
    ),
    Case(
        "seed-json-dense-not-integers",
        seed_file(genome("cnn", put("head.dense", [64.5]))),
        ("genome.json", "head.dense[0] must be an integer"),
    ),
    Case(
        "seed-json-no-stages",
        seed_file(genome("cnn", put("stages", []))),
        ("genome.json", "stages has 0 stages"),
    ),
    Case(
        "seed-json-stages-not-a-list",
        seed_file(genome("cnn", put("stages", {}))),
        ("genome.json", "stages must be a list"),
    ),
    Case(
        "seed-json-dropout-nan",
        seed_file(genome("cnn", put("head.dropout", float("nan")))),
        ("genome.json", "head.dropout = nan"),
    ),
    Case(
        "seed-json-learning-rate-0",
        seed_file(genome("cnn", put("training.learning_rate", 0))),
        ("genome.json", "training.learning_rate = 0.0"),
    ),
    Case(
        "seed-json-bare-genome-invalid",
        seed_file(genome("cnn", put("stem.width", 0), wrap=False)),
        ("genome.json", "stem.width = 0"),
    ),
    Case(
        "seed-json-not-an-object",
        seed_file(lambda v: [1, 2]),
        ("genome.json", "genome must be an object"),
    ),
    Case(
        "seed-json-does-not-parse",
        seed_file(lambda v: b'{"space": "cnn", "genome": {'),
        ("genome.json: not valid JSON", "line 1"),
    ),
    Case("seed-json-empty-file", seed_file(lambda v: b""), ("genome.json: not valid JSON",)),
    Case(
        "seed-json-not-utf8",
        seed_file(lambda v: b'{"space": "caf\xe9"}'),
        ("genome.json: not UTF-8",),
    ),
    Case(
        "seed-json-of-another-space",
        seed_file(genome("resunet", lambda d: None)),
        ("genome.json: a genome of the 'resunet' space, not 'cnn'",),
    ),
    Case(
        "seed-json-bare-genome-of-another-space",
        seed_file(genome("resunet", lambda d: None, wrap=False)),
        ("genome.json", "unknown field encoder"),
    ),
    Case(
        "seed-json-space-not-a-name",
        seed_file(lambda v: {"space": 5, "genome": v.cnn}),
        ("genome.json", '"space" must be the name of a search space'),
    ),
    Case(
        "seed-json-missing-file",
        search("[search]\nseeds = ['absent.json']\n"),
        ("exp.toml: [search] seed absent.json: no such genome file",),
    ),
    Case(
        "seed-json-is-a-folder",
        lambda tmp, v: [
            "search",
            str(
                _experiment(tmp, f"[search]\nseeds = [{json.dumps(str(folder('g.json')(tmp)))}]\n")
            ),
            "--out",
            _out(tmp),
        ],
        ("g.json: a folder, not a genome file",),
    ),
    Case(
        "seed-resunet-json-negative-blocks",
        seed_file(genome("resunet", put("encoder.0.blocks", -1)), space="resunet"),
        ("genome.json", "encoder[0].blocks = -1"),
    ),
    Case(
        "seed-resunet-json-unknown-activation",
        seed_file(genome("resunet", put("activation", "tanh")), space="resunet"),
        ("genome.json", "activation = 'tanh'"),
    ),
    Case(
        "seed-resunet-json-decoder-not-mirrored",
        seed_file(genome("resunet", lambda d: d["decoder"].pop()), space="resunet"),
        ("genome.json", "decoder has 2 levels"),
    ),
    Case(
        "seed-resunet-json-unknown-field",
        seed_file(genome("resunet", put("decoder.0.joint", "add")), space="resunet"),
        ("genome.json", "unknown field decoder[0].joint"),
    ),
    Case(
        "seed-cnn-json-in-resunet-search",
        seed_file(genome("cnn", lambda d: None), space="resunet"),
        ("genome.json: a genome of the 'cnn' space, not 'resunet'",),
    ),
    # nas data: the path itself
    Case(
        "data-missing-file",
        lambda tmp, _: ["data", str(tmp / "absent.csv")],
        ("absent.csv: no such file",),
    ),
    Case(
        "data-folder",
        lambda tmp, _: ["data", str(folder("a_folder")(tmp))],
        ("a_folder: no images",),
    ),
    Case(
        "data-unknown-builtin",
        lambda tmp, _: ["data", "builtin:cats"],
        ("builtin:cats: no such built-in dataset",),
    ),
    # runs: pareto and export
    Case(
        "pareto-not-a-run",
        lambda tmp, _: ["pareto", str(folder("empty_dir")(tmp))],
        ("empty_dir: not a run directory",),
    ),
    Case(
        "pareto-missing-folder",
        lambda tmp, _: ["pareto", str(tmp / "nowhere")],
        ("nowhere: not a run directory",),
    ),
    Case(
        "pareto-damaged-run-file",
        lambda tmp, _: ["pareto", str(damaged_run(tmp))],
        ("damaged_run/run.json: damaged run file",),
    ),
    Case(
        "export-not-a-run",
        lambda tmp, _: ["export", str(folder("empty_dir")(tmp)), "--to", _out(tmp)],
        ("empty_dir: not a run directory",),
    ),
    Case(
        "export-trial-out-of-range",
        export("--trial", "7"),
        ("--trial 7: no such trial", "trials 0..2"),
    ),
    Case("export-trial-negative", export("--trial", "-1"), ("--trial -1: no such trial",)),
    Case(
        "export-rank-too-large",
        export("--rank", "3"),
        ("--rank 3: the front", "has 2 members", "1..2"),
    ),
    Case("export-failed-trial", export("--trial", "1"), ("--trial 1 failed (nan_loss",)),
    Case(
        "export-weights-missing",
        export("--trial", "2"),
        ("trial 2: its trained weights are not in", "models"),
    ),
    Case(
        "export-weights-damaged",
        export("--trial", "0"),
        ("models/a.weights.h5: cannot load trial 0's trained weights",),
    ),
    Case("export-nothing-completed", export(completed=False), ("run: no trial completed",)),
    Case(
        "export-bad-model-name",
        export("--trial", "0", "--name", "my model"),
        ("--name 'my model'",),
    ),
    Case(
        "export-to-inside-a-file",
        lambda tmp, _: [
            "export",
            str(_run(tmp)),
            "--trial",
            "0",
            "--to",
            str(_write(tmp / "a_file", b"x") / "out"),
        ],
        ("a_file/out", "a_file is a file, not a folder"),
    ),
    Case(
        "export-export-folder-with-trial",
        lambda tmp, v: ["export", _export_folder(tmp, v), "--trial", "0", "--to", _out(tmp)],
        ("exported: an export folder holds one model", "drop --rank/--trial"),
    ),
    Case(
        "export-litert-folder-without-its-split",
        litert_of_export_folder("keypoints", "kp.csv", lambda v: v.keypoints),
        ("exported/genome.json: does not say how its run split", "from the run folder"),
    ),
    Case(
        "export-litert-data-of-another-shape",
        litert_of_export_folder("rgb", "fer.csv", lambda v: v.emotion),
        ("fer.csv: its images are 48x48x1", "takes 48x48x3"),
        parses=True,
    ),
    Case(
        "export-export-folder-without-genome",
        lambda tmp, v: ["export", _export_folder(tmp, v, genome=False), "--to", _out(tmp)],
        ("exported: holds no genome.json",),
    ),
    Case(
        "export-export-folder-damaged-model",
        lambda tmp, v: ["export", _export_folder(tmp, v), "--flip-average", "--to", _out(tmp)],
        ("exported/model.keras: cannot load it",),
    ),
    # run directories of a search
    Case(
        "search-out-under-a-file",
        lambda tmp, _: [
            "search",
            str(_experiment(tmp, EMOTION_EXPERIMENT)),
            "--out",
            str(_write(tmp / "a_file", b"x") / "run"),
        ],
        ("--out", "a_file is a file, not a folder"),
    ),
    Case(
        "search-flag-out-of-range",
        lambda tmp, _: ["search", str(_experiment(tmp, EMOTION_EXPERIMENT)), "--workers", "0"],
        ("nas search: argument --workers: expected a positive integer, got 0",),
    ),
    Case(
        "export-rank-zero",
        lambda tmp, _: ["export", str(tmp), "--rank", "0", "--to", _out(tmp)],
        ("nas export: argument --rank", "see nas export --help"),
    ),
    # baselines
    Case(
        "baseline-unknown-name",
        lambda tmp, _: ["baseline", "vgg16", "--out", _out(tmp)],
        ("unknown baseline 'vgg16'", "resnet50"),
    ),
    Case(
        "baseline-genome-file-without-space",
        lambda tmp, valid: [
            "baseline",
            str(_json_file(tmp, valid.cnn)),
            "--out",
            _out(tmp),
        ],
        ("genome.json", 'no "space"', "nas export"),
    ),
    Case(
        "baseline-genome-file-missing",
        lambda tmp, _: ["baseline", str(tmp / "winner.json"), "--out", _out(tmp)],
        ("winner.json: no such genome file",),
    ),
    Case(
        "baseline-weights-missing",
        lambda tmp, _: [
            "baseline",
            "resnet50",
            "--weights",
            str(tmp / "absent.h5"),
            "--out",
            _out(tmp),
        ],
        ("--weights", "absent.h5: no such file"),
    ),
    Case(
        "baseline-weights-for-resunet",
        lambda tmp, _: [
            "baseline",
            "resunet",
            "--weights",
            str(tmp / "absent.h5"),
            "--out",
            _out(tmp),
        ],
        ("--weights", "'resunet'"),
    ),
    Case(
        "baseline-space-not-for-the-task",
        lambda tmp, _: ["baseline", "resunet", "--task", "emotion", "--out", _out(tmp)],
        ("space 'resunet'", "keypoints task only"),
    ),
    Case(
        "baseline-task-contradicts-experiment",
        lambda tmp, _: [
            "baseline",
            "resunet",
            "--experiment",
            str(_experiment(tmp, "")),
            "--task",
            "keypoints",
            "--out",
            _out(tmp),
        ],
        ("--task keypoints", "exp.toml"),
    ),
    Case(
        "baseline-bad-experiment",
        lambda tmp, _: [
            "baseline",
            "resnet50",
            "--experiment",
            str(_experiment(tmp, "[budget]\nepoch = 1\n")),
            "--out",
            _out(tmp),
        ],
        ("exp.toml: [budget]", "'epoch'"),
    ),
    Case(
        "baseline-data-missing",
        lambda tmp, _: [
            "baseline",
            "resnet50",
            "--data",
            str(tmp / "nowhere.csv"),
            "--out",
            _out(tmp),
        ],
        ("nowhere.csv: no such file",),
    ),
    # every broken CSV file, through `nas data` and `nas search --data`
    *(
        Case(f"data-{id_}", data_cmd(written(name, source, corrupt)), places)
        for id_, source, name, corrupt, places in CSV_CASES
    ),
    *(
        Case(f"search-data-{id_}", search_with(written(name, source, corrupt), source), places)
        for id_, source, name, corrupt, places in CSV_CASES
    ),
    *(
        Case(f"search-data-{id_}", search_with(write, source), places, parses=True)
        for id_, source, write, places in SEARCH_DATA_CASES
    ),
]


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: Case, valid: Valid, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    argv = case.make(tmp_path, valid)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("nas: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for place in case.places:
        assert place in err, f"{place!r} is not in {err!r}"
    assert not (tmp_path / "out").exists(), "a run or export folder was written"
    cached = sorted(p.name for p in (tmp_path / "cache").glob("*"))
    if case.parses:
        assert all(name.startswith("parsed-") and name.endswith(".npz") for name in cached)
    else:
        assert not cached, "parsed data were cached"
