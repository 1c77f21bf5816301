"""nas/data/folder_source.py: the files of a folder or a zip, from anyone."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nas.core.errors import DataError
from nas.data.folder_source import FolderSource


def test_a_zips_folders_are_implied_by_its_names_odd_names_included(tmp_path: Path):
    """No folder entries: the folders come from the files' names, ``a//b`` and ``./``
    normalised; an absolute name (from an untrusted zip) ends the walk up at its root
    (it looped forever before)."""
    archive = tmp_path / "odd.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("train/a/x.png", "train/b/y.png", "c//d/./e.png", "/abs/f.png"):
            z.writestr(name, b"")
    source = FolderSource(archive)
    try:
        assert source.folders == {"train", "train/a", "train/b", "c", "c/d", "/abs"}
        assert source.names[0] == "/abs/f.png" and len(source.names) == 4
    finally:
        source.close()


def test_a_zip_is_read_only_when_its_names_are_asked_for(tmp_path: Path):
    """The hash needs the bytes alone; a file that is no zip says so when listed."""
    not_a_zip = tmp_path / "faces.zip"
    not_a_zip.write_bytes(b"PK not really")
    source = FolderSource(not_a_zip)
    try:
        assert len(source.content_hash()) == 64
        with pytest.raises(DataError, match=r"faces\.zip: not a readable zip file"):
            _ = source.names
    finally:
        source.close()
