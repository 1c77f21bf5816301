"""Writing files so that a crash at any instant leaves the old file or the new one, never
half of one, and the rename survives a power cut: the one way every module here writes a
file that someone reads back (run files, checkpoints, weights, caches, exports).

A file is written beside its target as ``.NAME.PID.tmp`` (what
:func:`nas.storage.checkpoint.remove_temporaries` clears after a kill), synced, renamed
over the target, and then its folder is synced so that the rename itself is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nas.core.faults import failpoint

__all__ = ["replace_synced", "sync_folder", "temporary_for", "write_atomically", "write_through"]


def sync_folder(folder: Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (``fsync`` of the folder); a
    file system that cannot sync folders is left as it is."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _sync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def replace_synced(temporary: Path, path: Path) -> None:
    """Rename a written ``temporary`` (a file or a folder) over ``path``, syncing first
    what it holds (every file and folder of a folder) and then the folder that holds it."""
    if temporary.is_dir():
        for folder, _, names in os.walk(temporary):
            for name in names:
                _sync_file(Path(folder) / name)
            sync_folder(Path(folder))
    os.replace(temporary, path)
    sync_folder(path.parent)


def temporary_for(path: Path, suffix: str = "") -> Path:
    """The temporary name :func:`write_atomically` writes ``path`` under (``suffix`` for
    writers that insist on an extension, such as Keras' ``.weights.h5``)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path``: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        failpoint(
            f"write:{path.name}"
        )  # tests kill here: the new file is written, not yet in place
        replace_synced(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_through(path: Path, write: Callable[[Path], None], *, suffix: str = "") -> None:
    """Like :func:`write_atomically` for a writer that takes a path (``np.savez``, Keras'
    ``save_weights``): ``write`` writes the temporary file, which is then synced and
    renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(path, suffix)
    try:
        write(temporary)
        _sync_file(temporary)
        os.replace(temporary, path)
        sync_folder(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
