"""A search's console life: one progress bar per generation, and a clean stop on
Ctrl-C or SIGTERM that says how to continue.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from nas.storage.records import TrialRecord


@contextmanager
def resumable(out_dir: Path) -> Iterator[None]:
    """On Ctrl-C or SIGTERM, stop cleanly and say how to continue.

    SIGTERM (``kill``, a scheduler's preemption) stops the search like Ctrl-C: running
    evaluations are cancelled, Ray is shut down, and the checkpoint and the store are
    intact. The exit code is 128 + the signal's number.
    """
    from nas.core.errors import ClusterLost
    from nas.engine.parallel import stop_cleanly_on_sigterm, stopped_by
    from nas.storage.store import RunStore

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    stop_cleanly_on_sigterm()
    try:
        yield
    except KeyboardInterrupt:
        if not (out_dir / "run.json").exists():
            raise
        print(f"nas: interrupted; continue with: nas search --resume {out_dir}", file=sys.stderr)
        raise SystemExit(128 + (stopped_by() or signal.SIGINT)) from None
    except ClusterLost as exc:
        kept = len(RunStore.open(out_dir).trials())
        print(
            f"nas: error: {exc}; {kept} recorded evaluation{'s' * (kept != 1)} kept in {out_dir}; "
            f"start the cluster again and continue with: nas search --resume {out_dir} "
            "--address NEW_HEAD:PORT",
            file=sys.stderr,
        )
        raise SystemExit(ClusterLost.exit_code) from None
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler installed outside Python
                signal.signal(signum, handler)


class ProgressListener:
    """Draws one progress bar per generation."""

    def __init__(self, console: Console, metric: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
        )
        self._task = None
        self._console = console
        self._metric = metric
        self._best: float | None = None
        self._failed = 0
        self._device_noted = False

    def __enter__(self) -> ProgressListener:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def resumed(self, generation: int, restored: int) -> None:
        self._console.print(
            f"Resuming at generation {generation}: {restored} evaluations restored from the store, "
            "none of them trained again"
        )

    def generation_started(self, generation: int, generations: int, to_train: int) -> None:
        # a search bounded by a budget in minutes or evaluations has no generation count
        label = f"generation {generation}" + (f"/{generations}" if 0 < generations < 10_000 else "")
        if not self._console.is_terminal:  # no live bars in a log: one line per generation
            self._console.print(f"{label}: {to_train} to train")
            self._task = None
            return
        self._failed = 0
        self._task = self._progress.add_task(label, total=to_train, status="")

    def noted(self, text: str) -> None:
        """A strategy's line about itself after a generation (the surrogate's tau)."""
        self._console.print(text)

    def evaluated(self, record: TrialRecord) -> None:
        from nas.core.objectives import METRICS

        if record.ok and record.values:
            value = record.values[0]
            better = max if METRICS[self._metric].direction == "maximize" else min
            self._best = value if self._best is None else better(self._best, value)
        self._failed += not record.ok
        if record.device_note and not self._device_noted:
            from rich.markup import escape

            self._device_noted = True  # once a run: every such worker says the same
            self._console.print(f"note: {escape(record.device_note)}")
        if self._task is None:
            return
        status = f"best {self._metric} {self._best:.3f}" if self._best is not None else ""
        if self._failed:
            status += f"  failed {self._failed}"
        self._progress.update(self._task, advance=1, status=status)
