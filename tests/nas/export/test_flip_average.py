"""Flip averaging: a model that averages its answers for a face and its mirror image,
made of Keras' own layers, exported again from an export folder, and scored."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.core.task import Task
from nas.data.datasets import FIVE_CLASS_NAMES, FLIP_PAIRS
from nas.data.synthetic import KEYPOINT_NAMES

EMOTIONS = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)
KEYPOINTS = Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15)


def _model(task: Task, seed: int):
    import keras

    from search_spaces.cnn import SPACE

    keras.utils.set_random_seed(seed)
    return SPACE.build(SPACE.sample(np.random.default_rng(seed)), task)


def _faces(task: Task, count: int = 4) -> np.ndarray:
    shape = (count, *task.input_shape)
    return np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)


def test_the_mirror_permutation_swaps_left_and_right_by_name():
    from nas.kinds.keypoints import mirror_permutation

    expected = list(range(len(KEYPOINT_NAMES)))
    for left, right in FLIP_PAIRS:
        expected[left], expected[right] = right, left
    assert mirror_permutation(KEYPOINT_NAMES) == tuple(expected)
    assert mirror_permutation(("nose_tip", "left_ear", "right_ear")) == (0, 2, 1)


@pytest.mark.slow
def test_class_probabilities_are_averaged_and_no_longer_see_the_mirror():
    from nas.export.flip_average import flip_averaged, is_flip_averaged

    model = _model(EMOTIONS, 1)
    wrapped = flip_averaged(model, "classification")
    faces = _faces(EMOTIONS)
    mirrored = faces[:, :, ::-1].copy()
    both = (np.asarray(model(faces)) + np.asarray(model(mirrored))) / 2
    np.testing.assert_allclose(np.asarray(wrapped(faces)), both, atol=1e-6)
    np.testing.assert_allclose(np.asarray(wrapped(mirrored)), np.asarray(wrapped(faces)), atol=1e-6)
    assert is_flip_averaged(wrapped) and not is_flip_averaged(model)
    assert flip_averaged(wrapped, "classification") is wrapped
    assert wrapped.count_params() - model.count_params() == 48 * 48  # the fixed mirror


@pytest.mark.slow
def test_keypoints_found_on_the_mirror_are_mapped_back_before_averaging():
    from nas.export.flip_average import flip_averaged

    model = _model(KEYPOINTS, 2)
    wrapped = flip_averaged(model, "keypoints", KEYPOINT_NAMES)
    faces = _faces(KEYPOINTS)
    mirrored = faces[:, :, ::-1].copy()
    on_mirror = np.asarray(model(mirrored))
    # the mirror's left eye is the face's right eye, at x -> 95 - x
    swap = list(range(15))
    for left, right in FLIP_PAIRS:
        swap[left], swap[right] = right, left
    back = on_mirror[:, swap]
    back[..., 0] = 95.0 - back[..., 0]
    expected = (np.asarray(model(faces)) + back) / 2
    np.testing.assert_allclose(np.asarray(wrapped(faces)), expected, atol=1e-4)
    assert np.abs(np.asarray(model(faces)) - expected).max() > 1e-2  # the mirror counted


@pytest.mark.slow
def test_an_export_folder_exported_again_flip_averaged_loads_anywhere_and_scores(
    tmp_path: Path, faces_csv: Path, capsys
):
    from search_spaces.cnn import SPACE

    model = _model(EMOTIONS, 3)
    source = tmp_path / "final"
    source.mkdir()
    model.save(source / "model.keras")
    document = {
        "space": "cnn",
        "genome": SPACE.to_json(SPACE.sample(np.random.default_rng(3))),
        "task": {"kind": "classification", "input_shape": [48, 48, 1], "labels": FIVE_CLASS_NAMES},
    }
    (source / "genome.json").write_text(json.dumps(document))
    stale = "\n## Formats\n\n| format | file |\n|---|---|\n| LiteRT | `model.tflite` |\n"
    (source / "MODEL_CARD.md").write_text("# emotions\n\nThe net's own figures.\n" + stale)
    to = tmp_path / "averaged"
    assert main(["export", str(source), "--to", str(to), "--flip-average"]) == 0
    assert "flip-averaged" in capsys.readouterr().out
    assert json.loads((to / "genome.json").read_text())["flip_average"] is True
    card = (to / "MODEL_CARD.md").read_text()
    assert card.startswith("# emotions") and "## Flip averaging" in card
    assert "## Formats" not in card  # the source's table named files this folder lacks
    assert (to / "final" / "1" / "saved_model.pb").is_file()  # the served name: the folder's

    # plain Keras in a process that never imported this project loads it
    faces = _faces(EMOTIONS)
    np.save(tmp_path / "faces.npy", faces)
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import keras
        model = keras.models.load_model({str(to / "model.keras")!r})
        np.save({str(tmp_path / "out.npy")!r}, keras.ops.convert_to_numpy(
            model(np.load({str(tmp_path / "faces.npy")!r}))))
        assert model.name == "flip_averaged", model.name
        assert not any(m.split(".")[0] in ("nas", "search_spaces", "baselines") for m in sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    both = (np.asarray(model(faces)) + np.asarray(model(faces[:, :, ::-1].copy()))) / 2
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), both, atol=1e-6)

    # scoring the export equals scoring the source with --flip-average
    scores = []
    for folder, extra in ((to, []), (source, ["--flip-average"])):
        out = tmp_path / f"metrics-{folder.name}.json"
        args = ["evaluate", str(folder), "--data", str(faces_csv), "--json", str(out), *extra]
        assert main([*args, "--out", str(tmp_path / f"report-{folder.name}")]) == 0
        scores.append(json.loads(out.read_text()))
    assert [s["flip_averaged"] for s in scores] == [True, True]
    assert scores[0]["accuracy"] == scores[1]["accuracy"]
    assert "flip-averaged" in capsys.readouterr().out
