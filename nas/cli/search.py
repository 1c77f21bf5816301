"""``nas search``: run an architecture search from an experiment file, or continue
one (``--resume``); print the front, then train the winner as ``[final]`` says.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from nas.cli.arguments import positive_int
from nas.cli.output import STOP_REASONS, make_console, print_front
from nas.cli.progress import ProgressListener, resumable
from nas.cli.train import train_and_report

if TYPE_CHECKING:
    from nas.storage.store import RunStore


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas search`` and its flags."""
    search = commands.add_parser(
        "search",
        help="run an architecture search from an experiment file",
        description="Evolve architectures as the experiment file says; print the Pareto front "
        "and write RUN/pareto.png at the end. Every evaluation is a trial in RUN/study.db. "
        "A search that stopped (killed, crashed, interrupted) continues where it stopped with "
        "--resume RUN, or when started again with the same experiment and --out.",
    )
    search.add_argument(
        "experiment", type=Path, nargs="?", help="experiment TOML file (see experiments/)"
    )
    search.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="continue the search in run directory RUN with its own settings",
    )
    search.add_argument("--data", metavar="PATH", help="dataset file, overrides [data] path")
    search.add_argument("--out", type=Path, metavar="DIR", help="run directory (default runs/NAME)")
    search.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to use (host:port or 'auto'); default: start Ray here",
    )
    search.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="parallel evaluations, overrides [search] workers",
    )
    search.add_argument(
        "--storage", metavar="URL", help="Optuna storage URL (default sqlite:///RUN/study.db)"
    )
    search.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas search`` as ``args`` say; the exit code."""
    from rich.markup import escape

    from nas.analysis.plots import plot_front
    from nas.core.errors import ConfigError
    from nas.engine.experiment import load_experiment
    from nas.engine.migration import stored_experiment
    from nas.engine.search import resume_search, run_search
    from nas.storage.store import RunStore
    from nas.storage.urls import connect_url, use_password

    use_password(args.storage)  # run.json keeps the URL without it
    if args.resume is not None:
        clashing = [
            flag
            for flag, value in (
                ("EXPERIMENT", args.experiment),
                ("--out", args.out),
                ("--data", args.data),
                ("--storage", args.storage),
            )
            if value is not None
        ]
        if clashing:
            raise ConfigError(
                f"--resume {args.resume} continues the run with its own settings; drop {clashing[0]}"
            )
        out_dir = args.resume
        store = RunStore.open(out_dir)
        experiment = stored_experiment(store.info.experiment, source=str(out_dir / "run.json"))
    elif args.experiment is None:
        raise ConfigError("nas search needs an EXPERIMENT file, or --resume RUN")
    else:
        experiment = load_experiment(args.experiment)
        out_dir = args.out or Path("runs") / experiment.name
    console = make_console()
    console.print(f"[bold]{experiment.name}[/]: {_describe_search(experiment)} -> {out_dir}")
    with ProgressListener(console, experiment.objectives[0]) as listener, resumable(out_dir):
        if args.resume is not None:
            summary = resume_search(
                out_dir, address=args.address, workers=args.workers, listener=listener
            )
        else:
            summary = run_search(
                experiment,
                out_dir=out_dir,
                data_path=args.data,
                storage=args.storage,
                address=args.address,
                workers=args.workers,
                listener=listener,
            )

    store = RunStore.open(out_dir)
    print_front(console, store, summary.front)
    plot = plot_front(summary.front, out_dir / "pareto.png", title=experiment.name)
    console.print(
        f"{summary.evaluations} evaluations ({summary.failures} failed, {summary.reused} repeats not "
        f"retrained, {summary.restored} restored from the store) in {summary.wall_seconds:.0f} s; "
        f"stopped by {escape(_stop_reason(experiment, summary.stopped))} after "
        f"{summary.search_seconds / 60:.1f} search minutes. Front plot: {plot}\n"
        f"Trials: optuna-dashboard {connect_url(store.info.storage, store.run_dir)}\n"
        f"Export the best: nas export {out_dir} --rank 1 --to exports/{experiment.name}"
    )
    if experiment.final.enabled:
        _final_of_search(store, experiment, spent_seconds=summary.search_seconds)
    return 0


def _stop_reason(experiment, stopped: str | None) -> str:
    """Why the search stopped, in the experiment's words: a clock cut short by
    ``[final] search_share`` names that key, not ``max_minutes``."""
    if stopped == "max_minutes" and experiment.search_minutes != experiment.search.max_minutes:
        final = experiment.final
        return (
            f"[final] search_share ({final.search_share:g} of total_minutes = "
            f"{experiment.search_minutes:g} minutes)"
        )
    return str(STOP_REASONS.get(stopped or "", stopped))


def _final_of_search(store: RunStore, experiment, *, spent_seconds: float) -> None:
    """The ``[final]`` section: train the chosen trial further into ``RUN/final``.
    ``spent_seconds`` is the search's clock, for ``total_minutes``."""
    from nas.engine.final import FINAL_DIR, minutes_left, plan_final
    from nas.engine.migration import stored_experiment
    from nas.engine.race import raced, run_race
    from nas.storage.selection import select_trial

    final = experiment.final
    race_started = time.monotonic()
    if (final.race > 1 or final.choose_by != "score") and not experiment.multitask:
        console = make_console()
        among = (
            "of the front by score"
            if final.choose_by == "score"
            else "of every trained candidate by score and FLOPs ranked together"
        )
        if final.race > 1:
            console.print(
                f"Race: the best {final.race} {among} train on, the better half each round, "
                "before the final training"
            )
        else:
            console.print(f"Winner: the best {among}")
        # the run's own experiment: the data path as the search read it (--data included)
        ran = stored_experiment(store.info.experiment, source=str(store.run_dir / "run.json"))
        deadline, final_seconds = None, None
        if final.total_minutes:  # the search and the race share search_share of it
            if final.search_seconds:
                deadline = race_started + final.search_seconds - spent_seconds
            final_seconds = 60.0 * final.total_minutes - max(spent_seconds, final.search_seconds)
        elif final.minutes:
            final_seconds = 60.0 * final.minutes
        record = run_race(
            ran, store.run_dir, echo=console.print, deadline=deadline, final_seconds=final_seconds
        )
        console.print(
            f"{'Race won by' if raced(store.run_dir) else 'Chosen:'} trial {record.number} ({record.description})"
        )
    else:
        record = select_trial(store, rank=experiment.final.rank)
    if final.total_minutes:
        spent_seconds += time.monotonic() - race_started
        left = minutes_left(final.total_minutes, spent_seconds, store.run_dir / FINAL_DIR)
        make_console().print(
            f"Final training: {left:.1f} of the run's {final.total_minutes:g} minutes are left "
            f"({spent_seconds / 60:.1f} spent by the search and the race)"
        )
        plan = plan_final(store, record, epochs=final.epochs, minutes=left)
    else:
        plan = plan_final(store, record)
    train_and_report(
        store,
        record,
        plan,
        store.run_dir / FINAL_DIR,
        experiment.final.restarts,
        resume_hint=f"nas search --resume {store.run_dir}",
    )


def _describe_search(experiment) -> str:
    search, budget = experiment.search, experiment.budget
    limits = []
    minutes = experiment.search_minutes
    if not (search.max_evaluations or minutes) or search.generations < 1000:
        limits.append(f"{search.generations + 1} generations of {search.population}")
    if search.max_evaluations:
        limits.append(f"{search.max_evaluations} evaluations")
    if minutes:
        limits.append(f"{minutes:g} minutes")
    training = (
        f"{budget.train_images:,} images" if budget.train_images else f"{budget.epochs} epoch(s)"
    )
    return (
        f"strategy {search.strategy}, space {experiment.space}, objectives "
        f"{', '.join(experiment.objectives)}, until {' or '.join(limits)}"
        f"{' (whichever first)' if len(limits) > 1 else ''}, "
        f"{training} per candidate, seed {experiment.seed}"
    )
