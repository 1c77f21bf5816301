"""experiments/results.py: the results table of docs/results.md read from the lines' exports."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from baselines.vgg import VGG
from nas.core.space import load_space
from nas.core.task import Task

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "results.py"


@pytest.fixture(scope="module")
def results() -> ModuleType:
    spec = importlib.util.spec_from_file_location("results_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _export(folder: Path, *, accuracy: float, classes: int) -> None:
    (folder / "training").mkdir(parents=True)
    labels = [f"class{i}" for i in range(classes)]
    document = {
        "space": "cnn",
        "genome": load_space("cnn").to_json(VGG),
        "task": {"kind": "classification", "input_shape": [48, 48, 1], "labels": labels},
    }
    (folder / "genome.json").write_text(json.dumps(document))
    state = {
        "epochs_done": 12,
        "best_epoch": 11,
        "best": {"accuracy": accuracy},
        "images": 12 * 19_647,
        "seconds": 1_500.0,
        "stopped": "epochs",
    }
    (folder / "training" / "state.json").write_text(json.dumps(state))
    plan = {"threads": 1, "precision": "bf16", "run_dir": str(folder.parent)}
    (folder / "training" / "plan.json").write_text(json.dumps(plan))


def test_table_reads_finished_lines_and_names_the_missing(
    results: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    _export(tmp_path / "vgg-7" / "final", accuracy=0.61234, classes=7)
    assert results.main(["table", "--runs", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("| vgg |")]
    cost = load_space("cnn").cost(
        VGG, Task(kind="classification", input_shape=(48, 48, 1), num_classes=7)
    )
    assert f"| 7 classes | {cost.params:,} |" in row
    assert "0.6123 | – |" in row and "12 epochs, 235,764 images, bf16" in row and "25.0 (1)" in row
    twins = {"images": 280, "accuracy": 0.8, "unseen_images": 3309, "unseen_accuracy": 0.59876}
    evaluation = {"accuracy": 0.61334, "training_twins": twins}  # the export, in float32
    (tmp_path / "vgg-7" / "final" / "evaluation.json").write_text(json.dumps(evaluation))
    flipped = {"accuracy": 0.63, "training_twins": {**twins, "unseen_accuracy": 0.62}}
    (tmp_path / "vgg-7" / "final" / "evaluation-flip.json").write_text(json.dumps(flipped))
    assert results.main(["table", "--runs", str(tmp_path)]) == 0
    assert "| 0.6133 (0.5988) | 0.6300 (0.6200) |" in capsys.readouterr().out
    assert "not run yet: vgg-5" in out
    (record,) = json.loads((tmp_path / "r.json").read_text())
    assert record["key"] == "vgg-7" and record["flops"] == cost.flops


def test_run_skips_finished_steps_and_stops_at_a_failing_one(
    results: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    runs = tmp_path / "runs"
    (runs / "vgg-5").mkdir(parents=True)
    (runs / "vgg-5" / "checkpoint.json").write_text("{}")
    _export(runs / "vgg-5" / "final", accuracy=0.5, classes=5)
    args = ["run", "--runs", str(runs), "--fer", str(tmp_path / "absent.csv")]
    for evaluation in ("evaluation.json", "evaluation-flip.json"):
        (runs / "vgg-5" / "final" / evaluation).write_text("{}")
    assert results.main([*args, "--keypoints", "kp.csv", "--only", "vgg-5"]) == 0
    # baseline, train, evaluate as it is and flip-averaged
    assert capsys.readouterr().out.count("done already") == 4
    # The next line's first step runs for real and fails on the missing data file.
    assert results.main([*args, "--keypoints", "kp.csv", "--only", "vgg-7"]) == 2
    assert "[vgg-7] failed with exit code 2" in capsys.readouterr().out
    assert not (runs / "vgg-7").exists()
