"""Checkpoints, the run lock and the resume command line (no training)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from nas.cli import main
from nas.core.errors import StorageError
from nas.storage.checkpoint import (
    hold_run_lock,
    load_checkpoint,
    lock_holder,
    remove_temporaries,
    save_checkpoint,
)


def test_checkpoint_round_trip_and_missing(tmp_path: Path):
    assert load_checkpoint(tmp_path) is None
    state = {"generation": 2, "rng": {"state": {"state": 2**100, "inc": 7}}, "seen": ["a"]}
    save_checkpoint(tmp_path, state, finished=True)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.strategy == state and checkpoint.finished
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "unreadable checkpoint"), ('{"format": 99}', "not a checkpoint of this")],
)
def test_damaged_checkpoint_is_one_clear_error(tmp_path: Path, content: str, message: str):
    (tmp_path / "checkpoint.json").write_text(content)
    with pytest.raises(StorageError, match=message):
        load_checkpoint(tmp_path)


def test_remove_temporaries_deletes_only_half_written_files(tmp_path: Path):
    (tmp_path / "models").mkdir()
    for name in (".checkpoint.json.123.tmp", "models/.abc.weights.h5.9.tmp"):
        (tmp_path / name).write_bytes(b"half")
    (tmp_path / "checkpoint.json").write_text("{}")
    (tmp_path / "models" / "abc.weights.h5").write_bytes(b"whole")
    assert remove_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "abc.weights.h5",
        "checkpoint.json",
        "models",
    ]


def test_one_search_at_a_time_per_run(tmp_path: Path):
    assert lock_holder(tmp_path) is None
    descriptor = hold_run_lock(tmp_path)
    me = f"{socket.gethostname()}:{os.getpid()}"
    assert lock_holder(tmp_path) == me
    with pytest.raises(StorageError, match=f"is being searched by {me}"):
        hold_run_lock(tmp_path)
    os.close(descriptor)  # what the kernel does when the process dies, however it dies
    assert lock_holder(tmp_path) is None
    os.close(hold_run_lock(tmp_path))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["experiments/quickstart.toml"], "drop EXPERIMENT"),
        (["--out", "elsewhere"], "drop --out"),
        (["--data", "x.csv"], "drop --data"),
        (["--storage", "sqlite:///x.db"], "drop --storage"),
    ],
)
def test_resume_takes_the_runs_own_settings(tmp_path: Path, extra, message, capsys):
    assert main(["search", "--resume", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_resume_of_a_folder_that_is_not_a_run(tmp_path: Path, capsys):
    assert main(["search", "--resume", str(tmp_path)]) == 2
    assert "not a run directory (no run.json)" in capsys.readouterr().err


def test_search_needs_an_experiment_or_resume(capsys):
    assert main(["search"]) == 2
    assert "needs an EXPERIMENT file, or --resume RUN" in capsys.readouterr().err
