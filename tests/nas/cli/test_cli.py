"""The command line: help, and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_help_is_fast_and_imports_no_tensorflow():
    code = "import sys; from nas.cli import build_parser; build_parser(); print('tensorflow' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path):
    """``nas data FILE | head -1``: the pipe closes before nas has written; nas stops
    quietly, as a Unix filter does."""
    nas = Path(sys.executable).with_name("nas")
    done = subprocess.run(
        ["bash", "-c", f"'{nas}' data builtin:faces | true; echo \"${{PIPESTATUS[0]}}\""],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NAS_CACHE_DIR": str(tmp_path)},
        check=True,
    )
    assert done.stderr == "" and done.stdout.strip() in ("0", "1")


@pytest.mark.parametrize("command", ["search", "pareto", "export", "train", "data"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 200


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ")
    assert err.count("\n") == 1, err
    return err


def test_bad_experiment_file_exits_2_and_writes_nothing(tmp_path: Path, capsys):
    experiment = tmp_path / "bad.toml"
    experiment.write_text("[search]\npopulation = 6\n")
    assert main(["search", str(experiment), "--out", str(tmp_path / "run")]) == 2
    assert "population must be a multiple of 4" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_missing_data_file_exits_2_and_writes_nothing(tmp_path: Path, capsys):
    experiment = tmp_path / "e.toml"
    experiment.write_text('[data]\npath = "nowhere/fer2013.csv"\n')
    assert main(["search", str(experiment), "--out", str(tmp_path / "run")]) == 2
    assert "nowhere/fer2013.csv: no such file" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_bad_dataset_row(tmp_path: Path, capsys):
    path = tmp_path / "fer.csv"
    path.write_text("emotion,pixels,Usage\n0," + " ".join(["1"] * 2303) + ",Training\n")
    assert main(["data", str(path)]) == 2
    message = _one_line_error(capsys)
    assert str(path) in message and "line 2" in message and "2,303" in message


def test_data_summary(faces_csv: Path, capsys):
    assert main(["data", str(faces_csv)]) == 0
    out = capsys.readouterr().out
    assert "rows:    400" in out and "Training 320" in out and "PublicTest 80" in out


@pytest.mark.parametrize("command", [["pareto"], ["export", "--to", "x"]])
def test_not_a_run_directory(tmp_path: Path, command: list[str], capsys):
    assert main([command[0], str(tmp_path), *command[1:]]) == 2
    assert "not a run directory" in _one_line_error(capsys)


def test_console_script_exit_code(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "nas", "data", str(tmp_path / "absent.csv")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().endswith("pass --data PATH")


def test_evaluate_keeps_a_report_per_model_file_of_an_export(tmp_path: Path):
    """The float and int8 files of one export, evaluated in turn, do not overwrite each
    other's report; a folder's report goes inside it."""
    from nas.cli.evaluate import _default_out

    export = tmp_path / "final"
    export.mkdir()
    folders = {
        _default_out(export / "model.tflite", "PublicTest", False),
        _default_out(export / "model_int8.tflite", "PublicTest", False),
        _default_out(export, "PublicTest", False),
        _default_out(export, "PublicTest", True),
    }
    assert len(folders) == 4 and all(folder.parent == export for folder in folders)
    assert export / "evaluation-model_int8-PublicTest" in folders
