"""nas evaluate: a saved model scored on a file of its task, with its figures, and every
kind of bad input refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.core.scoring import keypoint_rmse
from nas.core.task import Task
from nas.data.datasets import BUILTIN_KEYPOINT_FACES, load_emotions, load_keypoints

PNG = b"\x89PNG\r\n\x1a\n"


def _save(model, folder: Path, document: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    if document is not None:
        (folder / "genome.json").write_text(json.dumps(document))
    return folder


@pytest.fixture(scope="module")
def emotion_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained five-class CNN saved as an export folder without genome.json."""
    from search_spaces.cnn import SPACE

    genome = SPACE.sample(np.random.default_rng(3))
    model = SPACE.build(genome, Task(kind="classification", input_shape=(48, 48, 1), num_classes=5))
    return _save(model, tmp_path_factory.mktemp("emotion") / "export")


@pytest.fixture(scope="module")
def keypoint_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained ResUNet whose genome.json says the run split its data with seed 4."""
    from search_spaces.resunet import SPACE

    genome = SPACE.sample(np.random.default_rng(1))
    model = SPACE.build(genome, Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15))
    document = {
        "task": {"kind": "keypoints", "seed": 4, "validation_fraction": 0.2, "deduplicate": True}
    }
    return _save(model, tmp_path_factory.mktemp("keypoints") / "export", document)


def _predict(folder: Path, images: np.ndarray) -> np.ndarray:
    import keras

    model = keras.models.load_model(folder / "model.keras", compile=False)
    return np.asarray(model.predict(images.astype(np.float32), verbose=0))


@pytest.mark.slow
def test_an_emotion_model_is_scored_per_class_with_a_confusion_matrix(
    emotion_export: Path, faces_csv: Path, tmp_path: Path, capsys
):
    out = tmp_path / "report"
    code = main(["evaluate", str(emotion_export), "--data", str(faces_csv), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "metrics.json").read_text())
    validation = load_emotions(faces_csv).validation
    predicted = _predict(emotion_export, validation.images).argmax(axis=1)
    assert report["split"] == "PublicTest" and report["images"] == len(validation)
    assert report["accuracy"] == pytest.approx(np.mean(predicted == validation.labels))
    confusion = np.array(report["confusion"])
    assert confusion.sum() == len(validation) and np.trace(confusion) == np.sum(
        predicted == validation.labels
    )
    assert [row["support"] for row in report["per_class"].values()] == list(confusion.sum(axis=1))
    assert list(report["per_class"]) == ["angry", "disgust", "sad", "happy", "surprise"]
    assert (out / "confusion.png").read_bytes()[:8] == PNG
    printed = capsys.readouterr().out
    assert "an emotion classifier (5 classes" in printed and "surprise" in printed


@pytest.mark.slow
def test_a_keypoint_model_is_scored_on_the_runs_own_split(
    keypoint_export: Path, tmp_path: Path, capsys
):
    json_file = tmp_path / "kp.json"
    code = main(
        [
            "evaluate",
            str(keypoint_export),
            "--data",
            BUILTIN_KEYPOINT_FACES,
            "--json",
            str(json_file),
            "--out",
            str(tmp_path / "figures"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(json_file.read_text())
    # genome.json's seed, fraction and deduplicate choose the faces, as the run chose them
    validation = load_keypoints(
        BUILTIN_KEYPOINT_FACES, seed=4, validation_fraction=0.2, deduplicate=True
    ).validation
    rows_apart = load_keypoints(BUILTIN_KEYPOINT_FACES, seed=4, validation_fraction=0.2)
    assert not np.array_equal(rows_apart.validation.images, validation.images)
    predicted = _predict(keypoint_export, validation.images)
    assert report["images"] == len(validation)
    assert report["rmse"] == pytest.approx(keypoint_rmse(validation.keypoints, predicted), rel=1e-5)
    assert len(report["per_keypoint"]) == 15
    assert report["per_keypoint"]["nose_tip"]["faces"] == int(
        np.isfinite(validation.keypoints[:, 10, 0]).sum()
    )
    assert (tmp_path / "figures" / "keypoints.png").read_bytes()[:8] == PNG


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "data", "extra", "message"),
    [
        ("emotion", "keypoints", [], "(the model is an emotion classifier (5 classes"),
        ("keypoints", "faces", [], "(the model is a keypoint model (15 points"),
        ("emotion", "faces", ["--split", "Holdout"], "--split Holdout: not a split"),
        ("emotion", "faces", ["--split", "PrivateTest"], "has no PrivateTest rows"),
        ("nothing", "faces", [], "holds no model.keras"),
        ("broken", "faces", [], "cannot load it as a Keras model"),
        ("undocumented", "keypoints", [], "does not say how its validation split was drawn"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    emotion_export: Path,
    keypoint_export: Path,
    faces_csv: Path,
    tmp_path: Path,
    capsys,
    model: str,
    data: str,
    extra: list[str],
    message: str,
):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.keras").write_bytes(b"not a zip file")
    (tmp_path / "undocumented").mkdir()  # a keypoint model without its genome.json
    shutil.copy(keypoint_export / "model.keras", tmp_path / "undocumented")
    models = {"emotion": emotion_export, "keypoints": keypoint_export}
    folder = models.get(model, tmp_path / model)
    files = {"faces": str(faces_csv), "keypoints": BUILTIN_KEYPOINT_FACES}
    out = tmp_path / "out"
    args = ["evaluate", str(folder), "--data", files[data], "--out", str(out), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_faces_with_a_training_twin_are_scored_apart(
    emotion_export: Path, faces_csv: Path, tmp_path: Path, capsys
):
    import gzip

    lines = gzip.decompress(faces_csv.read_bytes()).decode().splitlines()
    training = [line for line in lines[1:] if line.endswith(",Training")][:7]
    twinned = tmp_path / "twinned.csv"
    copies = [line.removesuffix(",Training") + ",PublicTest" for line in training]
    twinned.write_text("\n".join([*lines, *copies]) + "\n")
    json_file = tmp_path / "m.json"
    code = main(["evaluate", str(emotion_export), "--data", str(twinned), "--json", str(json_file)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(json_file.read_text())
    twins = report["training_twins"]
    assert (twins["images"], twins["unseen_images"]) == (
        len(copies),
        report["images"] - len(copies),
    )
    overall = (
        twins["accuracy"] * twins["images"] + twins["unseen_accuracy"] * twins["unseen_images"]
    )
    assert overall / report["images"] == pytest.approx(report["accuracy"])
    assert f"{len(copies)} of these faces have a byte-identical Training image" in (
        capsys.readouterr().out
    )


def test_a_folder_export_is_scored_on_the_split_its_run_validated_with(
    emotion_export: Path, tmp_path: Path
):
    """A run with ``[data] validation_split = "test"`` validated on ``test/``: its export's
    default split is that folder, not ``val/`` (which the run held out)."""
    from PIL import Image

    root = tmp_path / "faces"
    counts = {"train": 2, "val": 3, "test": 5}
    rng = np.random.default_rng(0)
    for split, count in counts.items():
        for name in ("angry", "disgust", "happy", "sad", "surprise"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    export = tmp_path / "export"
    shutil.copytree(emotion_export, export)
    task = {
        "kind": "classification",
        "labels": ["angry", "disgust", "happy", "sad", "surprise"],
        "seed": 0,
        "validation_fraction": 0.1,
        "validation_split": "test",
    }
    (export / "genome.json").write_text(json.dumps({"task": task}))
    metrics = tmp_path / "metrics.json"
    args = ["evaluate", str(export), "--data", str(root), "--json", str(metrics)]
    assert main([*args, "--out", str(tmp_path / "report")]) == 0
    assert json.loads(metrics.read_text())["images"] == 5 * counts["test"]
