"""The user's path through the CLI, on real Ray workers: search -> pareto -> export -> serve."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.storage.store import RunStore


@pytest.fixture(scope="module")
def cli_run(tiny_search: Path) -> Path:
    """The session's small search, run with ``nas search`` on Ray workers."""
    return tiny_search


@pytest.mark.slow
def test_search_prints_the_front_and_writes_the_plot(cli_run: Path, capsys):
    assert (cli_run / "pareto.png").stat().st_size > 10_000
    trials = RunStore.open(cli_run).trials()
    assert len(trials) >= 5
    assert {t.generation for t in trials} == {0, 1}
    workers = {t.worker for t in trials if t.ok}
    assert workers and all(not w.endswith(f":{os.getpid()}") for w in workers)

    assert main(["pareto", str(cli_run)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front of tiny" in out and "hypervolume" in out
    assert f"{len(trials)} trials" in out


@pytest.mark.slow
def test_export_loads_in_keras_and_tf_serving_layout_with_the_same_prediction(
    cli_run: Path, tmp_path: Path
):
    import keras
    import tensorflow as tf

    from nas.core.space import load_space
    from nas.export.exporter import load_trained_model, select_trial

    target = tmp_path / "export"
    assert (
        main(["export", str(cli_run), "--rank", "1", "--to", str(target), "--name", "emotions"])
        == 0
    )
    store = RunStore.open(cli_run)
    record = select_trial(store, rank=1)
    face = np.random.default_rng(0).integers(0, 256, size=(1, 48, 48, 1)).astype(np.float32)

    expected = load_trained_model(store, record).predict(face, verbose=0)
    from_keras = keras.models.load_model(target / "model.keras").predict(face, verbose=0)
    saved_model = tf.saved_model.load(str(target / "emotions" / "1"))  # keep it referenced
    served = saved_model.serve(tf.constant(face)).numpy()
    np.testing.assert_allclose(from_keras, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    assert expected.shape == (1, 5) and np.isclose(expected.sum(), 1.0, atol=1e-5)

    genome = json.loads((target / "genome.json").read_text())
    space = load_space(genome["space"])
    assert space.to_json(space.from_json(genome["genome"])) == record.genome
    card = (target / "MODEL_CARD.md").read_text()
    assert f"trial {record.number}" in card and "angry, disgust, sad, happy, surprise" in card


def test_export_refuses_a_non_empty_target_and_leaves_it_alone(
    cli_run: Path, tmp_path: Path, capsys
):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert main(["export", str(cli_run), "--to", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken")]


def test_export_unknown_trial(cli_run: Path, tmp_path: Path, capsys):
    assert main(["export", str(cli_run), "--trial", "999", "--to", str(tmp_path / "x")]) == 2
    assert "--trial 999: no such trial" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_search_refuses_a_run_of_another_experiment(
    cli_run: Path, tmp_path: Path, faces_csv: Path, capsys
):
    experiment = tmp_path / "again.toml"
    experiment.write_text(f'[data]\npath = "{faces_csv}"\n')
    trials = len(RunStore.open(cli_run).trials())
    assert main(["search", str(experiment), "--out", str(cli_run)]) == 2
    error = capsys.readouterr().err
    assert "holds a run of another experiment (name: 'tiny' in the run, 'again' now)" in error
    assert f"nas search --resume {cli_run}" in error
    assert len(RunStore.open(cli_run).trials()) == trials


def test_resuming_a_finished_run_trains_nothing(cli_run: Path, capsys):
    trials = RunStore.open(cli_run).trials()
    assert main(["search", "--resume", str(cli_run)]) == 0
    out = capsys.readouterr().out
    assert f"0 evaluations (0 failed, 0 repeats not retrained, {len(trials)} restored" in out
    assert RunStore.open(cli_run).trials() == trials


@pytest.mark.slow
def test_export_int8_writes_litert_files_the_litert_runtime_runs_and_evaluate_scores(
    cli_run: Path, tmp_path: Path, faces_csv: Path, capsys
):
    """``--int8``: the float32 file answers as Keras does, the int8 one close to it, the
    card gives each format's size, latency and score, and ``nas evaluate`` scores the int8
    file on the same faces (in the LiteRT runtime without TensorFlow, ai_edge_litert)."""
    from nas.export.exporter import load_trained_model, select_trial
    from nas.training.litert import LiteRTModel, float32_model, runtime_name

    target = tmp_path / "export"
    assert main(["export", str(cli_run), "--to", str(target), "--int8"]) == 0
    assert "model_int8.tflite" in capsys.readouterr().out
    assert runtime_name() == "ai_edge_litert"
    faces = np.random.default_rng(1).integers(0, 256, size=(16, 48, 48, 1)).astype(np.float32)
    store = RunStore.open(cli_run)
    model = float32_model(load_trained_model(store, select_trial(store, rank=1)))
    expected = model.predict(faces, verbose=0)
    plain = LiteRTModel.from_file(target / "model.tflite")
    assert np.abs(plain.predict(faces) - expected).max() <= 1e-4
    quantised = LiteRTModel.from_file(target / "model_int8.tflite")
    assert quantised.int8 and quantised.input.zero_point == -128
    assert np.abs(quantised.predict(faces) - expected).max() <= 0.1
    card = (target / "MODEL_CARD.md").read_text()
    rows = [line for line in card.splitlines() if line.startswith("| ") and ".tflite`" in line]
    assert len(rows) == 2 and "scored on the run's validation split" in card
    for line in rows:
        size, latency, accuracy = (cell.strip() for cell in line.strip("|").split("|")[2:5])
        assert int(size.replace(",", "")) > 1000 and float(latency) > 0
        assert 0.0 <= float(accuracy) <= 1.0

    metrics = tmp_path / "int8.json"
    command = ["evaluate", str(target / "model_int8.tflite"), "--data", str(faces_csv)]
    assert main([*command, "--json", str(metrics)]) == 0
    report = json.loads(metrics.read_text())
    assert report["model"].endswith("model_int8.tflite") and 0.0 <= report["accuracy"] <= 1.0
    accuracies = []
    for model_path in (target, next(target.glob("*/1"))):  # model.keras, and the SavedModel
        scored = tmp_path / f"{len(accuracies)}.json"
        assert (
            main(["evaluate", str(model_path), "--data", str(faces_csv), "--json", str(scored)])
            == 0
        )
        accuracies.append(json.loads(scored.read_text())["accuracy"])
    assert accuracies[0] == accuracies[1]

    again = tmp_path / "again"
    assert main(["export", str(target), "--to", str(again), "--int8"]) == 2
    assert "pass --data FILE" in capsys.readouterr().err
    assert not again.exists()


@pytest.mark.slow
def test_export_onnx_writes_a_model_onnxruntime_agrees_with(cli_run: Path, tmp_path: Path):
    import onnxruntime

    from nas.export.exporter import load_trained_model, select_trial

    target = tmp_path / "export"
    assert main(["export", str(cli_run), "--to", str(target), "--onnx"]) == 0
    faces = np.random.default_rng(1).integers(0, 256, size=(8, 48, 48, 1)).astype(np.float32)
    store = RunStore.open(cli_run)
    expected = load_trained_model(store, select_trial(store, rank=1)).predict(faces, verbose=0)
    session = onnxruntime.InferenceSession(str(target / "model.onnx"))
    (got,) = session.run(None, {"pixels": faces})
    assert np.abs(got - expected).max() <= 1e-4
    assert {p.name for p in target.iterdir()} >= {"model.keras", "model.onnx", "genome.json"}
