"""The search's checkpoint: the strategy's state, written atomically at every step.

``RUN/checkpoint.json`` holds what the evaluations in the store cannot tell: the
population with its crowding distances, the generation, the random generator's state,
the hashes seen so far and the genomes of the generation being evaluated. Together with
the store (every completed evaluation) it lets a killed search continue exactly where it
stopped. It is replaced with ``os.replace``, so a reader sees the previous checkpoint or
the next one, never a torn file, whenever the process dies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import StorageError
from nas.store import write_atomically

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "load_checkpoint",
    "remove_temporaries",
    "save_checkpoint",
]

CHECKPOINT_FILE = "checkpoint.json"
_FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """The strategy's state and whether the search had finished."""

    strategy: dict[str, Any]
    finished: bool


def save_checkpoint(run_dir: Path, strategy: dict[str, Any], *, finished: bool = False) -> None:
    """Replace the run's checkpoint with ``strategy`` (see :meth:`nas.evolution.Nsga2.state`)."""
    content = {"format": _FORMAT, "finished": finished, "strategy": strategy}
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
    return Checkpoint(strategy=content["strategy"], finished=bool(content["finished"]))


def remove_temporaries(run_dir: Path) -> int:
    """Delete files left half-written by a process killed inside :func:`write_atomically`."""
    removed = 0
    for folder in (run_dir, run_dir / "models"):
        for path in folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
