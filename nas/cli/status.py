"""``nas status``: where a run stands (progress, failures, memory) and how to resume."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.output import STOP_REASONS, guard_note


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas status`` and its flags."""
    status = commands.add_parser(
        "status",
        help="where a run stands: progress, failures, memory; how to resume it",
        description="Print a run's progress (finished, or where it stopped and how to resume), "
        "its failures by reason, and the peak resident memory of the driver and the workers "
        "at evaluation 10 and at the last evaluation.",
    )
    status.add_argument("run", type=Path, help="run directory")
    status.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas status`` as ``args`` say; the exit code."""
    from collections import Counter

    from nas.storage.checkpoint import load_checkpoint, lock_holder
    from nas.storage.store import RunStore

    store = RunStore.open(args.run)
    trials = store.trials()
    search = store.info.experiment.get("search", {})
    generations = search.get("generations", 0)
    checkpoint = load_checkpoint(args.run)
    holder = lock_holder(args.run)
    print(f"{args.run}: experiment {store.info.name}, space {store.info.space}")
    if holder is not None:
        generation = checkpoint.strategy.get("generation", 0) if checkpoint else 0
        print(f"running (driver {holder}): generation {generation} of 0..{generations}")
    elif checkpoint is not None and "baseline" in checkpoint.strategy:
        print(f"finished: baseline {checkpoint.strategy['baseline']} trained alone")
    elif checkpoint is not None and checkpoint.finished:
        if checkpoint.stopped in (None, "generations"):
            print(f"finished: generations 0..{generations}")
        else:
            generation = checkpoint.strategy.get("generation", 0)
            print(f"finished in generation {generation}: its search budget ran out")
    else:
        generation = checkpoint.strategy["generation"] if checkpoint else 0
        print(
            f"stopped in generation {generation} of 0..{generations}; "
            f"continue with: nas search --resume {args.run}"
        )
    failures = Counter(t.failure for t in trials if not t.ok)
    failed = ", ".join(f"{reason} {count}" for reason, count in failures.most_common())
    print(
        f"{len(trials)} evaluations recorded, {sum(failures.values())} failed"
        + (f" ({failed})" if failed else "")
    )
    limits = []
    if search.get("max_evaluations"):
        limits.append(f"{len(trials)} of {search['max_evaluations']} evaluations")
    minutes = (checkpoint.seconds if checkpoint else 0.0) / 60
    limits.append(
        f"{minutes:.1f}"
        + (f" of {search['max_minutes']:g}" if search.get("max_minutes") else "")
        + " search minutes"
    )
    print(f"strategy {search.get('strategy', 'nsga2')}: {', '.join(limits)}")
    if checkpoint is not None and checkpoint.stopped not in (None, "generations"):
        print(f"stopped by {STOP_REASONS.get(checkpoint.stopped, checkpoint.stopped)}")
    cut = sum(t.stopped_early for t in trials)
    if cut:
        print(guard_note(cut, len(trials), store.info.experiment))
    deaths = sum(t.restarts for t in trials) + failures.get("worker_died", 0)
    if deaths:
        restarted = sum(t.restarts > 0 for t in trials)
        print(
            f"worker deaths: {deaths} (evaluations run again after one: {restarted}; "
            f"failed with one: {failures.get('worker_died', 0)})"
        )
    devices = Counter(t.device for t in trials if t.device)
    if devices:
        print("trained on: " + ", ".join(f"{d} {n}" for d, n in devices.most_common()))
    unseen = [t for t in trials if t.device_note]
    if unseen:
        print(f"note: {len(unseen)} of {len(trials)} evaluations: {unseen[-1].device_note}")
    measured = [t for t in trials if t.worker_peak_rss_mb]
    if measured:
        print("peak resident memory (MB):")
        marks = sorted({min(10, len(measured)), len(measured)})
        for label, trial in ((f"evaluation {n}", measured[n - 1]) for n in marks):
            print(
                f"  at {label:<16} driver {trial.driver_peak_rss_mb:8.0f}   worker {trial.worker_peak_rss_mb:8.0f}"
            )
        print(f"  highest worker      {max(t.worker_peak_rss_mb for t in measured):8.0f}")
    return 0
