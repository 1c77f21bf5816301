"""nas predict: faces found in a real photograph, cropped as the models take them, and
an export's emotions and keypoints drawn in photo pixels; bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from nas.analysis.faces import Face, crop_face, find_faces, read_photo
from nas.analysis.predict import drawing_names
from nas.cli import main
from nas.data.datasets import FIVE_CLASS_NAMES
from nas.data.synthetic import KEYPOINT_NAMES

cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

ASTRONAUT_FACE = (170, 55, 110, 110)
"""Eileen Collins' face in ``skimage.data.astronaut()``: x, y, width, height (by eye)."""


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NASA's portrait of Eileen Collins (512x512 RGB), shipped by scikit-image, as JPEG."""
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def _inside(box: tuple[int, ...], outer: tuple[int, ...]) -> bool:
    x, y, w, h = box
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow and y + h <= oy + oh


def test_the_face_of_a_real_photograph_is_found_and_cropped_as_a_model_takes_it(astronaut: Path):
    photo = read_photo(astronaut)
    faces = find_faces(photo)
    assert len(faces) == 1
    (face,) = faces
    assert _inside(face.box, ASTRONAUT_FACE)
    grey = crop_face(photo, face, (48, 48, 1))
    colour = crop_face(photo, face, (96, 96, 3))
    assert grey.shape == (48, 48, 1) and colour.shape == (96, 96, 3)
    assert grey.dtype == np.float32 and grey.min() >= 0 and grey.max() <= 255
    assert grey.std() > 20  # a face, not a blank


def test_a_crop_past_the_photos_edge_repeats_the_edge_and_maps_points_back():
    photo = np.zeros((40, 60, 3), np.uint8)
    photo[:, :30] = 200
    face = Face(left=-10, top=-10, size=40, box=(0, 0, 20, 20))
    crop = crop_face(photo, face, (40, 40, 1))
    assert crop[0, 0, 0] == pytest.approx(200, abs=1)  # the edge repeated, not black
    points = face.to_photo(np.array([[0.0, 0.0], [39.0, 39.0]]), 40)
    np.testing.assert_allclose(points, [[-10.0, -10.0], [29.0, 29.0]])


def test_a_photo_without_a_face_has_none(tmp_path: Path):
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), np.full((200, 300, 3), 128, np.uint8))
    assert find_faces(read_photo(path)) == []


def _emotion_model() -> keras.Model:
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))


def _keypoint_model() -> keras.Model:
    """Points near the middle of a 96x96 face, whatever the face."""
    inputs = keras.Input((96, 96, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(30, activation="tanh")(x)
    x = keras.layers.Rescaling(20.0, offset=48.0)(x)
    return keras.Model(inputs, keras.layers.Reshape((15, 2))(x))


def _task(name: str, kind: str, shape: list[int], labels: tuple[str, ...]) -> dict:
    return {"name": name, "kind": kind, "input_shape": shape, "labels": list(labels), "seed": 0}


@pytest.fixture(scope="module")
def multitask_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multi-task export's layout (nas.export.multitask): tasks/emotion and
    tasks/keypoints, each a one-task export folder, and the whole genome.json."""
    folder = tmp_path_factory.mktemp("multitask") / "export"
    emotion = _task("emotion", "classification", [48, 48, 1], FIVE_CLASS_NAMES)
    keypoints = _task("keypoints", "keypoints", [96, 96, 1], KEYPOINT_NAMES)
    for name, model, task in (
        ("emotion", _emotion_model(), emotion),
        ("keypoints", _keypoint_model(), keypoints),
    ):
        alone = folder / "tasks" / name
        alone.mkdir(parents=True)
        model.save(alone / "model.keras")
        (alone / "genome.json").write_text(json.dumps({"space": "cnn", "task": task}))
    tasks = [emotion, keypoints]
    (folder / "genome.json").write_text(json.dumps({"space": "cnn", "tasks": tasks}))
    return folder


@pytest.mark.slow
def test_predict_draws_emotions_and_keypoints_of_a_multitask_export_in_photo_pixels(
    multitask_export: Path, astronaut: Path, tmp_path: Path, capsys
):
    out, report = tmp_path / "drawn", tmp_path / "faces.json"
    assert (
        main(
            [
                "predict",
                str(multitask_export),
                str(astronaut),
                "--out",
                str(out),
                "--json",
                str(report),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "1 face(s)" in printed and "keypoints: 15 points" in printed
    (photo,) = json.loads(report.read_text())["photos"]
    (face,) = photo["faces"]
    emotion = face["emotion"]
    assert set(emotion["probabilities"]) == set(FIVE_CLASS_NAMES)
    assert sum(emotion["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert emotion["label"] == max(emotion["probabilities"], key=emotion["probabilities"].get)
    assert set(face["keypoints"]) == set(KEYPOINT_NAMES)
    x, y, w, h = face["box"]
    for px, py in face["keypoints"].values():  # the model's middle of the crop: inside the box
        assert x <= px <= x + w and y <= py <= y + h
    drawn = cv2.imread(str(out / "astronaut.png"))
    original = cv2.imread(str(astronaut))
    assert drawn.shape == original.shape
    assert np.abs(drawn.astype(int) - original.astype(int)).max() > 100  # boxes drawn


@pytest.mark.slow
def test_predict_gives_the_same_answers_from_a_keras_and_a_litert_file(
    multitask_export: Path, astronaut: Path, tmp_path: Path
):
    from nas.training.litert import to_litert

    emotion = multitask_export / "tasks" / "emotion"
    tflite = tmp_path / "emotion.tflite"
    tflite.write_bytes(to_litert(keras.models.load_model(emotion / "model.keras")))
    (tmp_path / "genome.json").write_text((emotion / "genome.json").read_text())
    answers = []
    for model in (emotion, tflite):
        report = tmp_path / f"{model.name}.json"
        assert (
            main(
                [
                    "predict",
                    str(model),
                    str(astronaut),
                    "--out",
                    str(tmp_path),
                    "--json",
                    str(report),
                ]
            )
            == 0
        )
        answers.append(json.loads(report.read_text())["photos"][0]["faces"][0]["emotion"])
    keras_answer, litert_answer = answers
    assert keras_answer["label"] == litert_answer["label"]
    for name, p in keras_answer["probabilities"].items():
        assert litert_answer["probabilities"][name] == pytest.approx(p, abs=1e-4)


def test_predict_says_no_face_in_one_line_and_refuses_a_file_that_is_not_an_image(
    multitask_export: Path, tmp_path: Path, capsys
):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((120, 160), 90, np.uint8))  # grey photos are read too
    out = tmp_path / "drawn"
    assert (
        main(["predict", str(multitask_export / "tasks" / "emotion"), str(wall), "--out", str(out)])
        == 0
    )
    assert f"{wall}: no face found" in capsys.readouterr().out

    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    again = tmp_path / "again"
    assert main(["predict", str(multitask_export), str(wall), str(text), "--out", str(again)]) == 2
    error = capsys.readouterr().err
    assert f"{text}: not an image" in error and error.count("\n") == 1
    assert not again.exists()


def test_predict_refuses_an_export_of_an_unknown_kind_in_one_line(
    multitask_export: Path, astronaut: Path, tmp_path: Path, capsys
):
    folder = tmp_path / "smiles"
    folder.mkdir()
    source = multitask_export / "tasks" / "emotion"
    (folder / "model.keras").write_bytes((source / "model.keras").read_bytes())
    document = json.loads((source / "genome.json").read_text())
    document["task"]["kind"] = "smile_intensity"
    (folder / "genome.json").write_text(json.dumps(document))
    assert main(["predict", str(folder), str(astronaut), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "smile_intensity" in error and error.count("\n") == 1


def test_photos_that_share_a_stem_get_drawings_of_their_own_never_over_a_photo(tmp_path: Path):
    out = tmp_path / "out"
    photos = [tmp_path / "a" / "face.jpg", tmp_path / "b" / "face.jpg", tmp_path / "face.png"]
    photos.append(out / "me.png")  # a photo inside --out, which its drawing must not replace
    names = drawing_names(photos, out)
    assert [n.name for n in names] == ["face.png", "face-2.png", "face-3.png", "me-2.png"]
    assert all(n.parent == out for n in names)


def test_predict_refuses_an_out_that_is_a_file_in_one_line(
    multitask_export: Path, astronaut: Path, tmp_path: Path, capsys
):
    taken = tmp_path / "drawn"
    taken.write_text("mine")
    assert main(["predict", str(multitask_export), str(astronaut), "--out", str(taken)]) == 2
    error = capsys.readouterr().err
    assert f"--out {taken}: is a file" in error and error.count("\n") == 1
    assert taken.read_text() == "mine"
