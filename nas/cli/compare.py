"""``nas compare``: search strategies side by side on one experiment, on several
seeds, at equal budget.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.arguments import positive_float, positive_int
from nas.cli.output import make_console
from nas.cli.progress import ProgressListener, resumable


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas compare`` and its flags."""
    compare = commands.add_parser(
        "compare",
        help="run search strategies side by side on one experiment and compare them",
        description="Run each strategy on several seeds, each as its own resumable run under "
        "--out, with the same data, candidate budget and search budget (--minutes on the "
        "search's own clock, or --evaluations); then print the hypervolume, the best score, "
        "the best score under a parameter cap, the evaluations done and the share of failed or "
        "chance-level candidates per strategy, and plot hypervolume against time. Run it again "
        "to continue a stopped comparison or to print it again.",
    )
    compare.add_argument("experiment", type=Path, help="experiment TOML file (see experiments/)")
    compare.add_argument(
        "--strategies",
        default="nsga2,random,optuna-nsga2,optuna-tpe",
        metavar="A,B,...",
        help="strategies to compare (default: %(default)s); a strategy may change [search] "
        "settings of the experiment, e.g. nsga2+inherit_weights=true+prescreen=4 or "
        "nsga2+prescreen=1 (keys: inherit_weights, prescreen, low_fidelity_images, "
        "promote_fraction)",
    )
    compare.add_argument(
        "--seeds", type=positive_int, default=3, metavar="N", help="seeds per strategy (3)"
    )
    budget = compare.add_mutually_exclusive_group()
    budget.add_argument(
        "--minutes", type=positive_float, metavar="M", help="search minutes per run"
    )
    budget.add_argument("--evaluations", type=positive_int, metavar="N", help="evaluations per run")
    compare.add_argument(
        "--param-cap",
        type=positive_int,
        default=100_000,
        metavar="N",
        help="the parameter cap of the 'best under a cap' column (%(default)s)",
    )
    compare.add_argument("--data", metavar="PATH", help="dataset file, overrides [data] path")
    compare.add_argument(
        "--out", type=Path, metavar="DIR", help="comparison folder (default runs/compare-NAME)"
    )
    compare.add_argument(
        "--workers", type=positive_int, metavar="N", help="parallel evaluations per run"
    )
    compare.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas compare`` as ``args`` say; the exit code."""
    from rich.table import Table

    from nas.core.errors import ConfigError
    from nas.engine.compare import (
        comparison_table,
        parse_contender,
        plot_hypervolume_over_time,
        run_comparison,
        summarize_comparison,
        write_json,
        write_markdown,
    )
    from nas.engine.experiment import load_experiment

    experiment = load_experiment(args.experiment)
    strategies = [name.strip() for name in args.strategies.split(",") if name.strip()]
    if not strategies or len(set(strategies)) != len(strategies):
        raise ConfigError(
            f"--strategies {args.strategies!r}: list each strategy once, separated by commas"
        )
    contenders = [parse_contender(text) for text in strategies]
    for contender in contenders:
        contender.search(experiment)  # one line for a bad setting, before anything runs
    out_dir = args.out or Path("runs") / f"compare-{experiment.name}"
    console = make_console()
    budget = (
        f"{args.minutes:g} search minutes"
        if args.minutes
        else f"{args.evaluations} evaluations"
        if args.evaluations
        else "the experiment's own budget"
    )
    console.print(
        f"[bold]compare[/] {', '.join(strategies)} on {experiment.name}, {args.seeds} seed(s) each "
        f"from {experiment.seed}, {budget} per run -> {out_dir}"
    )

    def announce(strategy: str, seed: int, run_dir: Path) -> None:
        console.print(f"[bold]{strategy}[/], seed {seed} -> {run_dir}")

    with ProgressListener(console, experiment.objectives[0]) as listener, resumable(out_dir):
        run_comparison(
            experiment,
            strategies=contenders,
            seeds=args.seeds,
            out_dir=out_dir,
            minutes=args.minutes,
            evaluations=args.evaluations,
            data_path=args.data,
            workers=args.workers,
            listener=lambda strategy, seed: listener,
            announce=announce,
        )
    groups = sorted(
        (
            g
            for g in summarize_comparison(out_dir, param_cap=args.param_cap)
            if g.strategy in strategies
        ),
        key=lambda g: strategies.index(g.strategy),  # as the user listed them
    )
    metric = experiment.objectives[0]
    rows = comparison_table(groups, metric=metric, param_cap=args.param_cap)
    table = Table(title=f"{experiment.name}: {budget} per run, median over seeds (min–max)")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    header = (
        f"`nas compare {args.experiment} --strategies {','.join(strategies)} --seeds {args.seeds}`"
        f", {budget} per run."
    )
    markdown = write_markdown(rows, out_dir / "comparison.md", header=header)
    data = write_json(groups, out_dir / "comparison.json")
    plot = plot_hypervolume_over_time(
        groups, out_dir / "hypervolume.png", title=f"{experiment.name}: {budget} per run"
    )
    console.print(f"Table: {markdown}  Figures: {data}  Plot: {plot}")
    return 0
