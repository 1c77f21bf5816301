"""The search's checkpoint: the strategy's state, written atomically at every step.

``RUN/checkpoint.json`` holds what the evaluations in the store cannot tell: the
population with its crowding distances, the generation, the random generator's state,
the hashes seen so far and the genomes of the generation being evaluated. Together with
the store (every completed evaluation) it lets a killed search continue exactly where it
stopped. It is replaced with ``os.replace``, so a reader sees the previous checkpoint or
the next one, never a torn file, whenever the process dies.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.errors import StorageError
from nas.core.files import write_atomically

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "hold_run_lock",
    "load_checkpoint",
    "lock_holder",
    "remove_temporaries",
    "save_checkpoint",
]

CHECKPOINT_FILE = "checkpoint.json"
LOCK_FILE = ".lock"
_FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """The strategy's state, the search's clock, and whether (and why) the search ended."""

    strategy: dict[str, Any]
    finished: bool
    seconds: float = 0.0
    """Seconds spent searching so far, over every session of the run."""
    stopped: str | None = None
    """Why a finished search ended: generations, max_evaluations or max_minutes."""


def save_checkpoint(
    run_dir: Path,
    strategy: dict[str, Any],
    *,
    finished: bool = False,
    seconds: float = 0.0,
    stopped: str | None = None,
) -> None:
    """Replace the run's checkpoint with ``strategy`` (see :meth:`nas.strategies.Strategy.state`)."""
    content = {
        "format": _FORMAT,
        "finished": finished,
        "strategy": strategy,
        "seconds": seconds,
        "stopped": stopped,
    }
    write_atomically(run_dir / CHECKPOINT_FILE, json.dumps(content).encode())


def load_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The run's last checkpoint, or None when the search never wrote one."""
    path = run_dir / CHECKPOINT_FILE
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StorageError(
            f"{path}: unreadable checkpoint ({exc}); it is only ever replaced whole, "
            "so it was changed by hand: restore it or start a new run"
        ) from None
    if not isinstance(content, dict) or content.get("format") != _FORMAT:
        raise StorageError(f"{path}: not a checkpoint of this version of nas (format {_FORMAT})")
    return Checkpoint(
        strategy=content["strategy"],
        finished=bool(content["finished"]),
        seconds=float(content.get("seconds", 0.0)),
        stopped=content.get("stopped"),
    )


def hold_run_lock(run_dir: Path) -> int:
    """Take the run's exclusive lock for this process, or say who holds it.

    The lock is an ``flock`` on ``RUN/.lock``: the kernel releases it when the process
    ends, however it ends, so a killed search never leaves a stale lock behind. Returns
    the descriptor to keep open for as long as the search runs.
    """
    descriptor = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 200).decode(errors="replace").strip() or "another process"
        os.close(descriptor)
        raise StorageError(
            f"{run_dir} is being searched by {holder}; wait for it to end or stop it, then resume"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{socket.gethostname()}:{os.getpid()}".encode())
    return descriptor


def lock_holder(run_dir: Path) -> str | None:
    """``host:pid`` of the process searching ``run_dir`` now, or None when none is."""
    try:
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(descriptor, 200).decode(errors="replace").strip() or "another process"
    finally:
        os.close(descriptor)
    return None


def remove_temporaries(run_dir: Path) -> int:
    """Delete files left half-written by a process killed inside :func:`write_atomically`."""
    removed = 0
    for folder in (run_dir, run_dir / "models"):
        for path in folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
