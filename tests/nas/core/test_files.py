"""nas.core.files: the one way files are written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nas.core import files


def test_write_atomically_replaces_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "deep" / "run.json"
    files.write_atomically(target, b"one")
    files.write_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["run.json"]


def test_a_failing_writer_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path):
    target = tmp_path / "weights.npz"
    target.write_bytes(b"old")

    def half(path: Path) -> None:
        path.write_bytes(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_through(target, half, suffix=".npz")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]


def test_write_through_gives_the_writer_the_suffix_it_needs(tmp_path: Path):
    seen = []
    files.write_through(
        tmp_path / "m.weights.h5",
        lambda p: (seen.append(p.name), p.write_text("w")),
        suffix=".weights.h5",
    )
    assert seen[0].endswith(".tmp.weights.h5") and seen[0].startswith(".m.weights.h5.")
    assert (tmp_path / "m.weights.h5").read_text() == "w"


def test_a_folder_is_synced_and_renamed_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    staging = tmp_path / ".export.tmp"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "a").write_text("a")
    (staging / "card").write_text("c")
    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    files.replace_synced(staging, tmp_path / "export")
    assert (tmp_path / "export" / "sub" / "a").read_text() == "a"
    assert not staging.exists()
    assert len(synced) >= 5  # two files, two folders inside, and the parent after the rename


def test_the_temporary_name_is_what_remove_temporaries_clears(tmp_path: Path):
    from nas.storage.checkpoint import remove_temporaries

    leftover = files.temporary_for(tmp_path / "checkpoint.json")
    leftover.write_text("half")
    assert remove_temporaries(tmp_path) == 1 and not leftover.exists()
