"""``nas fidelity``: how well the search's brief training predicts the trained
model (the fidelity benchmark).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.arguments import non_negative_int, positive_int
from nas.cli.output import make_console


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas fidelity`` and its flags."""
    fidelity = commands.add_parser(
        "fidelity",
        help="measure how well the search's brief training predicts the trained model",
        description="Build a fixed panel of architectures of the experiment's space, train "
        "each from scratch for --epochs with the final training's recipe (the truth), train "
        "each briefly as a search candidate under every signal at several fidelities, and "
        "report Kendall's tau, Spearman's rho, the top-5 overlap, the regret of the signal's "
        "pick and the CPU-seconds per candidate. Resumable: the same command continues; "
        "--report only writes the report from what was measured.",
    )
    fidelity.add_argument("experiment", type=Path, help="experiment TOML file")
    fidelity.add_argument("--out", type=Path, required=True, help="benchmark folder")
    fidelity.add_argument("--data", help="dataset file (overrides [data] path)")
    fidelity.add_argument(
        "--panel", type=positive_int, default=24, help="architectures (default 24)"
    )
    fidelity.add_argument(
        "--epochs", type=positive_int, default=10, help="epochs of each truth (default 10)"
    )
    fidelity.add_argument(
        "--second-seeds",
        type=non_negative_int,
        help="members trained again with a second seed (default 8, or the panel if smaller)",
    )
    fidelity.add_argument(
        "--signals",
        default="genome,standard,zico",
        help="signals to measure (default genome,standard,zico)",
    )
    fidelity.add_argument(
        "--fidelities",
        default="1500,3000,6000,12000,24000",
        help="images at which signals with a constant rate are scored, in one training "
        "(default 1500,3000,6000,12000,24000)",
    )
    fidelity.add_argument(
        "--scheduled-fidelities",
        default="3000,6000",
        help="images of each training of a signal whose schedule ends with its budget "
        "(default 3000,6000)",
    )
    fidelity.add_argument(
        "--signal-seeds", type=positive_int, default=2, help="seeds per signal (default 2)"
    )
    fidelity.add_argument(
        "--max-flops",
        type=non_negative_int,
        default=0,
        help="leave draws above this many FLOPs per image out of the panel (0: none)",
    )
    fidelity.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        metavar="RUN",
        help="add the front members of this finished run to the panel (repeatable)",
    )
    fidelity.add_argument("--workers", type=positive_int, default=2, help="processes (default 2)")
    fidelity.add_argument(
        "--only",
        choices=("truths", "signals"),
        help="measure one kind only (two commands can share)",
    )
    fidelity.add_argument(
        "--max-jobs", type=non_negative_int, default=0, help="stop after N measurements"
    )
    fidelity.add_argument(
        "--report",
        action="store_true",
        help="write the report from what was measured; train nothing",
    )
    fidelity.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas fidelity`` as ``args`` say; the exit code."""
    import dataclasses

    from nas.analysis.fidelity_report import write_report
    from nas.core.errors import ConfigError
    from nas.engine.experiment import changed, load_experiment
    from nas.engine.fidelity import BenchmarkPlan, run_benchmark

    experiment = load_experiment(args.experiment)
    if experiment.multitask:
        raise ConfigError(f"{args.experiment}: nas fidelity measures one-task experiments only")
    from nas.kinds import output_kind
    from nas.tasks import load_task

    if not output_kind(load_task(experiment.data.task).output_kind).has_accuracy:
        raise ConfigError(
            f"{args.experiment}: nas fidelity ranks by accuracy so far; its task "
            f"{experiment.data.task!r} is not a classification"
        )
    if args.data:
        experiment = changed(experiment, data=dataclasses.replace(experiment.data, path=args.data))
    fidelities = _image_counts("--fidelities", args.fidelities)
    scheduled = _image_counts("--scheduled-fidelities", args.scheduled_fidelities)
    signals = tuple(name.strip() for name in args.signals.split(",") if name.strip())
    plan = BenchmarkPlan(
        panel_size=args.panel,
        truth_epochs=args.epochs,
        second_seeds=min(8, args.panel) if args.second_seeds is None else args.second_seeds,
        signals=signals,
        fidelities=fidelities,
        scheduled_fidelities=scheduled,
        signal_seeds=args.signal_seeds,
        max_flops=args.max_flops,
    )
    console = make_console()
    if not args.report:
        run_benchmark(
            experiment,
            args.out,
            plan,
            workers=args.workers,
            only=args.only or "",
            include=args.include,
            echo=console.print,
            max_jobs=args.max_jobs,
        )
    report = write_report(args.out, plan)
    console.print(report.table)
    console.print(f"Report: {report.json_file}  Figure: {report.figure}")
    return 0


def _image_counts(flag: str, text: str) -> tuple[int, ...]:
    from nas.core.errors import ConfigError

    try:
        return tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected image counts separated by commas") from None
