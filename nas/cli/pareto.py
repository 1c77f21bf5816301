"""``nas pareto``: print a run's Pareto front and plot every candidate."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.output import make_console, print_front


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas pareto`` and its flags."""
    pareto = commands.add_parser(
        "pareto",
        help="print a run's Pareto front and write pareto.png",
        description="Print the non-dominated trials of a run with the hypervolume, and plot every "
        "evaluated candidate with the front highlighted.",
    )
    pareto.add_argument("run", type=Path, help="run directory (the --out of a search)")
    pareto.add_argument(
        "--plot", type=Path, metavar="PNG", help="where to write the plot (default RUN/pareto.png)"
    )
    pareto.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas pareto`` as ``args`` say; the exit code."""
    from nas.analysis.plots import plot_front
    from nas.storage.front import compute_front
    from nas.storage.store import RunStore

    store = RunStore.open(args.run)
    records = store.trials()
    front = compute_front(records, store.info.objectives, store.info.reference, store.info.chance)
    console = make_console()
    print_front(console, store, front)
    failed = sum(not r.ok for r in records)
    plot = plot_front(front, args.plot or args.run / "pareto.png", title=store.info.name)
    console.print(f"{len(records)} trials, {failed} failed. Plot: {plot}")
    return 0
