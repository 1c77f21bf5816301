"""``nas report``: one self-contained HTML page about a run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas report`` and its flags."""
    report = commands.add_parser(
        "report",
        help="write one self-contained HTML page about a run",
        description="Write an HTML page (no network, no scripts) with the front (hover a point "
        "for its trial, metrics and architecture), the hypervolume after each generation, the "
        "front's table and a drawing of each front member's architecture; baselines marked.",
    )
    report.add_argument("run", type=Path, help="run directory")
    report.add_argument(
        "--out", type=Path, metavar="FILE", help="the page to write (default RUN/report.html)"
    )
    report.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas report`` as ``args`` say; the exit code."""
    from nas.analysis.report import write_report

    path = write_report(args.run, args.out)
    print(f"Report: {path}")
    return 0
