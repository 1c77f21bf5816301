"""What several commands print: the front's table, the stop reasons, the
``train_seconds`` guard's note, a metric's format.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from nas.storage.front import Front
    from nas.storage.records import TrialRecord
    from nas.storage.store import RunStore


def make_console() -> Console:
    """The console every command prints to: no colour guessing, 160 columns in a log."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


STOP_REASONS = {
    "generations": "its generations",
    "max_evaluations": "[search] max_evaluations",
    "max_minutes": "[search] max_minutes",
}


def print_front(console: Console, store: RunStore, front: Front) -> None:
    """The front's table, then what is not on it: low-fidelity candidates, cut ones, dominated baselines."""
    from rich.table import Table

    objectives = store.info.objectives
    extras = [
        m
        for m in ("accuracy", "macro_f1", "rmse", "params", "flops")
        if m not in objectives and any(m in r.metrics for r in front.members)
    ]
    reference = ", ".join(f"{name} {_number(value)}" for name, value in front.reference.items())
    table = Table(
        title=f"Pareto front of {store.info.name} — hypervolume {front.hypervolume:.4f} "
        f"(reference point: {reference})"
    )
    for column in ("rank", "trial", "gen", *objectives, *extras, "architecture"):
        table.add_column(column, justify="left" if column == "architecture" else "right")
    for rank, record in enumerate(front.members, start=1):
        label = record.description + (
            f"  [bold magenta]◆ {record.baseline}[/]" if record.baseline else ""
        )
        if record.stopped_early:
            label += "  [bold yellow]⏱ cut by train_seconds[/]"
        table.add_row(
            str(rank),
            str(record.number),
            str(record.generation),
            *(metric_text(name, record) for name in (*objectives, *extras)),
            label,
        )
    console.print(table)
    if front.low_fidelity:  # multi-fidelity: evaluated, but never comparable with the front
        console.print(
            f"{len(front.low_fidelity)} candidates trained at low fidelity only "
            r"(\[search] low_fidelity_images, not promoted): not on the front"
        )
    cut = sum(r.stopped_early for r in front.evaluated)
    if cut:
        console.print(guard_note(cut, len(front.evaluated), store.info.experiment))
    baselines = [r for r in front.evaluated if r.baseline and r not in front.members]
    for record in baselines:
        console.print(
            f"  baseline {record.baseline} (trial {record.number}) is dominated: {_summary(record, objectives)}"
        )


def guard_note(cut: int, total: int, experiment: dict) -> str:
    """The line saying how many candidates the ``train_seconds`` guard cut, and what to do."""
    seconds = experiment.get("budget", {}).get("train_seconds", 0)
    return (
        f"⏱ {cut} of {total} candidates were cut by the train_seconds guard ({seconds:g} s) before "
        "their image budget: their figures depend on this machine's speed and load; raise "
        "[budget] train_seconds or lower the image budget"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def metric_text(name: str, record: TrialRecord) -> str:
    """``record``'s metric ``name`` as the tables print it (``-`` when it has none)."""
    value = record.metrics.get(name)
    if value is None:
        return "-"
    if name in ("params", "flops"):
        return f"{value:,.0f}"
    if name == "latency_ms":
        return f"{value:.2f}"
    if name == "latency_litert_ms":
        return f"{value:.3f}"
    return f"{value:.4f}"


def _summary(record: TrialRecord, objectives: Sequence[str]) -> str:
    return ", ".join(f"{name} {metric_text(name, record)}" for name in objectives)
