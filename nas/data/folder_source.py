"""The files of an image folder, or of a ``.zip`` of one read without unpacking it: their
``/``-separated names, their bytes, and a hash of their content for the cache
(:mod:`nas.data.image_folders` reads the layout and decodes the images).

A folder is walked through linked folders, each real folder once; a zip is listed from
its directory, its folders implied by its files' names where it does not list them (an
odd name, ``a//b`` or ``./a`` or ``/a``, implies the folders :class:`PurePosixPath` makes
of it). Both come from anyone: a file past :data:`MAX_FILE_BYTES` is not read (a
``ValueError``, counted as an unreadable image by the caller), and a folder or zip that
cannot be listed is a :class:`DataError` of one line.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from nas.core.errors import DataError
from nas.data.cache import file_sha256

__all__ = ["IMAGE_SUFFIXES", "MAX_FILE_BYTES", "FolderSource", "walk"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
MAX_FILE_BYTES = 64 << 20
"""An image file (a zip member uncompressed) past this is refused: a face photo is far
smaller, and a zip bomb's member is not read into memory."""


class FolderSource:
    """The files of a folder or a zip, by their ``/``-separated names inside it.

    A zip is only opened as a file here: its directory is read, and its names listed, the
    first time they are needed, so that a cached load, which needs the zip's bytes alone
    (:meth:`content_hash`), skips them (0.3 s and 32,298 names for the shared FER2013 zip).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._file: BinaryIO | None = None
        self._listed: tuple[list[str], set[str]] | None = None
        if not path.is_dir():
            # one handle for the hash, the listing and the reads: a zip replaced meanwhile
            # is not mixed with the old one
            try:
                self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
            except OSError as exc:
                raise self._unreadable(exc) from None

    def _unreadable(self, exc: Exception) -> DataError:
        return DataError(
            f"{self.path}: not a readable zip file ({exc}); pass a .zip of an image folder, or the folder"
        )

    @property
    def zip(self) -> zipfile.ZipFile | None:
        """The zip, its directory read on first use; None for a folder."""
        if self._file is not None and self._zip is None:
            try:
                self._zip = zipfile.ZipFile(self._file)
            except (zipfile.BadZipFile, OSError) as exc:
                self.close()
                raise self._unreadable(exc) from None
        return self._zip

    @property
    def names(self) -> list[str]:
        """Every file's name, sorted."""
        return self._listing()[0]

    @property
    def folders(self) -> set[str]:
        """Every folder's name, those a zip only implies by its files' names included."""
        return self._listing()[1]

    def _listing(self) -> tuple[list[str], set[str]]:
        if self._listed is None:
            archive = self.zip
            if archive is None:
                self._listed = walk(self.path)
            else:
                infos = archive.infolist()
                names = sorted(i.filename for i in infos if not i.is_dir())
                folders = {i.filename.rstrip("/") for i in infos if i.is_dir()}
                implied: set[str] = set()  # a zip need not list its folders
                for name in names:
                    if "//" in name or "/." in name or name.startswith((".", "/")):
                        implied |= _parents(name)  # an odd name: normalised, as read later
                        continue
                    cut = name.rfind("/")
                    while cut > 0 and (parent := name[:cut]) not in implied:
                        implied.add(parent)  # and then its own parents, once
                        cut = parent.rfind("/")
                self._listed = names, folders | implied
        return self._listed

    def read(self, name: str) -> bytes:
        """The bytes of the file ``name``; a ``ValueError`` (an unreadable image) when it
        is past :data:`MAX_FILE_BYTES` or not a regular file."""
        if self.zip is not None:
            size = self.zip.getinfo(name).file_size
        else:
            file = self.path / name
            if not file.is_file():
                raise ValueError("not a regular file")
            size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"{size:,} bytes, past the {MAX_FILE_BYTES >> 20} MiB an image may have"
            )
        if self.zip is not None:
            return self.zip.read(name)
        return (self.path / name).read_bytes()

    def content_hash(self) -> str:
        """The SHA-256 of the zip's bytes, or of a folder's file names and its images'
        bytes (the other files count by their names only)."""
        digest = hashlib.sha256()
        if self._file is not None:
            offset = 0
            while chunk := os.pread(self._file.fileno(), 1 << 22, offset):
                digest.update(chunk)
                offset += len(chunk)
            return digest.hexdigest()
        for name in self.names:
            digest.update(os.fsencode(name) + b"\0")
            file = self.path / name
            if PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                digest.update(bytes.fromhex(file_sha256(file)))
        return digest.hexdigest()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._file is not None:
            self._file.close()


def _parents(name: str) -> set[str]:
    """The folders above ``name``, normalised as :class:`PurePosixPath` does (an absolute
    name's root is not a folder of the zip)."""
    parents = set()
    parent = PurePosixPath(name).parent
    while str(parent) not in (".", "/"):
        parents.add(str(parent))
        parent = parent.parent
    return parents


def walk(root: Path) -> tuple[list[str], set[str]]:
    """Every file and folder under ``root``, through linked folders (each real folder
    once: a link back up, or two links to one folder, is refused)."""

    def refuse(error: OSError) -> None:
        raise DataError(
            f"{error.filename}: cannot list it ({error.strerror or error}); check its permissions"
        )

    names, folders, seen = [], set(), {os.path.realpath(root)}
    for folder, subfolders, files in os.walk(root, onerror=refuse, followlinks=True):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        for sub in subfolders:
            real = os.path.realpath(os.path.join(folder, sub))
            if real in seen:
                raise DataError(
                    f"{root}/{prefix}{sub}: links to a folder read already ({real}); remove "
                    "the link, so that no image is read twice"
                )
            seen.add(real)
        folders.update(prefix + sub for sub in subfolders)
        names.extend(prefix + name for name in files)
    return sorted(names), folders
