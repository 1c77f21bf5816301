"""The ``nas`` command line: search, pareto, export, data.

Every user error is one line on stderr and exit code 2; heavy modules (TensorFlow, Ray,
Optuna) are imported only by the commands that need them, so ``nas --help`` is instant.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from nas.core.errors import NasError

if TYPE_CHECKING:
    from rich.console import Console

    from nas.storage.front import Front
    from nas.storage.store import RunStore, TrialRecord

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.command(args)
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    """argparse with the product's error format: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        from nas.core.errors import ConfigError

        raise ConfigError(f"{self.prog}: {message}; see {self.prog} --help")


def build_parser() -> argparse.ArgumentParser:
    """The `nas` command line: every command, its flags and their help."""
    parser = _Parser(
        prog="nas",
        description="Neuroevolution architecture search for face analysis: evolve Keras models "
        "with NSGA-II, train them on Ray workers, keep every trial in an Optuna storage.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

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
        type=_positive_int,
        metavar="N",
        help="parallel evaluations, overrides [search] workers",
    )
    search.add_argument(
        "--storage", metavar="URL", help="Optuna storage URL (default sqlite:///RUN/study.db)"
    )
    search.set_defaults(command=_cmd_search)

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
    pareto.set_defaults(command=_cmd_pareto)

    export = commands.add_parser(
        "export",
        help="export a trained architecture: model.keras, SavedModel, genome.json, model card",
        description="Write the chosen trial's trained model as model.keras, a SavedModel in TF "
        "Serving's DIR/NAME/1/ layout, genome.json and MODEL_CARD.md. Given an export folder "
        "(of nas export or nas train) instead of a run, export its model again, e.g. with "
        "--flip-average or --onnx.",
    )
    export.add_argument("run", type=Path, help="run directory, or an export folder")
    _add_trial_choice(export, default_rank="1")
    export.add_argument(
        "--to", type=Path, required=True, metavar="DIR", help="new or empty folder to write"
    )
    export.add_argument(
        "--name", metavar="NAME", help="served model name (default: the experiment's name)"
    )
    export.add_argument(
        "--onnx",
        action="store_true",
        help="also write model.onnx (input 'pixels': float32 0..255, batch x H x W x 1)",
    )
    export.add_argument(
        "--flip-average",
        action="store_true",
        help="the model averages each face's answer with its mirror image's (twice the FLOPs)",
    )
    export.set_defaults(command=_cmd_export)

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
    report.set_defaults(command=_cmd_report)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained model on a labelled file: metrics, per-class or per-point, a PNG",
        description="Score an exported model (a folder holding model.keras, e.g. RUN/final, or a "
        ".keras file) on a file of its task's layout. Emotions: accuracy, macro-F1, per-class "
        "precision and recall, and a confusion-matrix PNG. Keypoints: RMSE over the points "
        "present, per keypoint, and a PNG of faces with predicted and true points. Writes "
        "metrics.json and the PNG into --out.",
    )
    evaluate.add_argument("model", type=Path, help="export folder or .keras file")
    evaluate.add_argument(
        "--data", required=True, metavar="FILE", help="FER2013 or keypoint CSV (or builtin:...)"
    )
    evaluate.add_argument(
        "--split",
        metavar="NAME",
        help="emotions: PublicTest (default), PrivateTest, Training or all; keypoints: "
        "validation (default; the run's seeded split), train or all",
    )
    evaluate.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the report goes (default MODEL/evaluation-SPLIT)",
    )
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="write the metrics JSON here")
    evaluate.add_argument(
        "--flip-average",
        action="store_true",
        help="average each face's answer with its mirror image's (twice the inference FLOPs)",
    )
    evaluate.set_defaults(command=_cmd_evaluate)

    train = commands.add_parser(
        "train",
        help="train a run's chosen architecture further and export it",
        description="Continue training one trial of a run (from the weights the search gave "
        "it, or from scratch) on the whole training split, with flips, shifts and zooms and a "
        "cosine learning rate; keep the epoch best on the validation split and write the same "
        "export as 'nas export'. Checkpoints every epoch: started again with the same --out, it "
        "continues; a crashed training process is restarted from its last epoch. Settings left "
        "out come from the run's [final] section (else 20 epochs).",
    )
    train.add_argument("run", type=Path, help="run directory")
    _add_trial_choice(train, default_rank="[final] rank, 1")
    train.add_argument(
        "--epochs", type=_positive_int, metavar="E", help="epochs over the whole training split"
    )
    train.add_argument(
        "--minutes",
        type=_positive_float,
        metavar="M",
        help="stop at M minutes (alone: as many epochs as fit, from the first epoch's speed)",
    )
    train.add_argument(
        "--patience",
        type=_non_negative_int,
        metavar="P",
        help="stop after P epochs without improvement (0: never)",
    )
    train.add_argument(
        "--scratch", action="store_true", help="start from fresh weights, not the search's"
    )
    train.add_argument("--no-augment", action="store_true", help="no flips, shifts or zooms")
    train.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help="TensorFlow threads (default: every core)",
    )
    train.add_argument(
        "--precision",
        choices=("float32", "bf16"),
        help="training precision (default: the run's [budget] precision)",
    )
    train.add_argument(
        "--tensorboard",
        type=Path,
        metavar="DIR",
        help="write each epoch's loss, validation metrics, learning rate and speed for "
        "TensorBoard (tensorboard --logdir DIR)",
    )
    train.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the checkpoints and export",
    )
    train.add_argument(
        "--name", metavar="NAME", help="served model name (default: the experiment's name)"
    )
    train.set_defaults(command=_cmd_train)

    baseline = commands.add_parser(
        "baseline",
        help="train a hand-designed baseline (or any genome file) alone, with a search's budget",
        description="Train a baseline genome (resnet50, resunet, vgg), or a genome JSON as nas "
        "export writes it, once, with the data and budget of an experiment, into a run directory "
        "that 'nas pareto', 'nas export' and 'nas train' read. A genome file moves an evolved "
        "architecture to other data, e.g. a net evolved on five emotions trained on seven.",
    )
    baseline.add_argument(
        "name",
        help="baseline name (resnet50, vgg: cnn space; resunet: resunet space) or a genome .json",
    )
    baseline.add_argument(
        "--experiment", type=Path, metavar="TOML", help="take data and budget from this experiment"
    )
    baseline.add_argument(
        "--task",
        metavar="TASK",
        help="the task when no --experiment is given: emotion, keypoints, or a module "
        "defining TASK (default: the space's)",
    )
    baseline.add_argument("--data", metavar="PATH", help="dataset file, overrides the experiment's")
    baseline.add_argument(
        "--weights",
        type=Path,
        metavar="H5",
        help="local pre-trained weights (ResNet50: Keras' ImageNet notop .h5); never downloaded",
    )
    baseline.add_argument(
        "--out", type=Path, metavar="DIR", help="run directory (default runs/baseline-NAME-TASK)"
    )
    baseline.add_argument(
        "--address", metavar="ADDR", help="Ray cluster to use; default: start Ray here"
    )
    baseline.add_argument(
        "--storage", metavar="URL", help="Optuna storage URL (default sqlite:///RUN/study.db)"
    )
    baseline.add_argument(
        "--max-params",
        type=_positive_int,
        metavar="N",
        help="refuse a net larger than this, counted before it is built (default: none for "
        "the built-in baselines, the experiment's [budget] max_params for a genome file)",
    )
    baseline.add_argument(
        "--space",
        metavar="MODULE",
        help="let a genome file name this plugin space module (a file alone may only name the "
        "built-in spaces cnn and resunet: it never chooses code to import)",
    )
    baseline.set_defaults(command=_cmd_baseline)

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
        "--seeds", type=_positive_int, default=3, metavar="N", help="seeds per strategy (3)"
    )
    budget = compare.add_mutually_exclusive_group()
    budget.add_argument(
        "--minutes", type=_positive_float, metavar="M", help="search minutes per run"
    )
    budget.add_argument(
        "--evaluations", type=_positive_int, metavar="N", help="evaluations per run"
    )
    compare.add_argument(
        "--param-cap",
        type=_positive_int,
        default=100_000,
        metavar="N",
        help="the parameter cap of the 'best under a cap' column (%(default)s)",
    )
    compare.add_argument("--data", metavar="PATH", help="dataset file, overrides [data] path")
    compare.add_argument(
        "--out", type=Path, metavar="DIR", help="comparison folder (default runs/compare-NAME)"
    )
    compare.add_argument(
        "--workers", type=_positive_int, metavar="N", help="parallel evaluations per run"
    )
    compare.set_defaults(command=_cmd_compare)

    status = commands.add_parser(
        "status",
        help="where a run stands: progress, failures, memory; how to resume it",
        description="Print a run's progress (finished, or where it stopped and how to resume), "
        "its failures by reason, and the peak resident memory of the driver and the workers "
        "at evaluation 10 and at the last evaluation.",
    )
    status.add_argument("run", type=Path, help="run directory")
    status.set_defaults(command=_cmd_status)

    data = commands.add_parser(
        "data",
        help="check a dataset file and print what it holds",
        description="Read a FER2013-layout CSV (plain or .gz) or 'builtin:faces'; print its rows, "
        "splits and class counts, or the one-line reason it cannot be used.",
    )
    data.add_argument("path", help="dataset file, or builtin:faces")
    data.set_defaults(command=_cmd_data)

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
        "--panel", type=_positive_int, default=24, help="architectures (default 24)"
    )
    fidelity.add_argument(
        "--epochs", type=_positive_int, default=10, help="epochs of each truth (default 10)"
    )
    fidelity.add_argument(
        "--second-seeds",
        type=_non_negative_int,
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
        "--signal-seeds", type=_positive_int, default=2, help="seeds per signal (default 2)"
    )
    fidelity.add_argument(
        "--max-flops",
        type=_non_negative_int,
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
    fidelity.add_argument("--workers", type=_positive_int, default=2, help="processes (default 2)")
    fidelity.add_argument(
        "--only",
        choices=("truths", "signals"),
        help="measure one kind only (two commands can share)",
    )
    fidelity.add_argument(
        "--max-jobs", type=_non_negative_int, default=0, help="stop after N measurements"
    )
    fidelity.add_argument(
        "--report",
        action="store_true",
        help="write the report from what was measured; train nothing",
    )
    fidelity.set_defaults(command=_cmd_fidelity)
    return parser


def _add_trial_choice(parser: argparse.ArgumentParser, *, default_rank: str) -> None:
    """``--rank K`` or ``--trial N``: which trial of the run a command takes."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--rank",
        type=_positive_int,
        metavar="K",
        help=f"K-th member of the front, best first objective first (default {default_rank})",
    )
    choice.add_argument(
        "--trial", type=int, metavar="N", help="trial number, as printed by 'nas pareto'"
    )


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _cmd_search(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from nas.analysis.plots import plot_front
    from nas.core.errors import ConfigError
    from nas.engine.experiment import load_experiment
    from nas.engine.migration import stored_experiment
    from nas.engine.search import resume_search, run_search
    from nas.storage.store import RunStore, connect_url, use_password

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
    console = _console()
    console.print(f"[bold]{experiment.name}[/]: {_describe_search(experiment)} -> {out_dir}")
    with _ProgressListener(console, experiment.objectives[0]) as listener, _resumable(out_dir):
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
    _print_front(console, store, summary.front)
    plot = plot_front(summary.front, out_dir / "pareto.png", title=experiment.name)
    console.print(
        f"{summary.evaluations} evaluations ({summary.failures} failed, {summary.reused} repeats not "
        f"retrained, {summary.restored} restored from the store) in {summary.wall_seconds:.0f} s; "
        f"stopped by {escape(str(_STOP_REASONS.get(summary.stopped or '', summary.stopped)))} after "
        f"{summary.search_seconds / 60:.1f} search minutes. Front plot: {plot}\n"
        f"Trials: optuna-dashboard {connect_url(store.info.storage, store.run_dir)}\n"
        f"Export the best: nas export {out_dir} --rank 1 --to exports/{experiment.name}"
    )
    if experiment.final.enabled:
        _final_of_search(store, experiment)
    return 0


def _final_of_search(store: RunStore, experiment) -> None:
    """The ``[final]`` section: train the chosen trial further into ``RUN/final``."""
    from nas.engine.final import FINAL_DIR, plan_final
    from nas.engine.migration import stored_experiment
    from nas.engine.race import run_race
    from nas.storage.selection import select_trial

    if experiment.final.race > 1 and not experiment.multitask:
        console = _console()
        console.print(
            f"Race: the front's best {experiment.final.race} train on, the better half "
            "each round, before the final training"
        )
        # the run's own experiment: the data path as the search read it (--data included)
        ran = stored_experiment(store.info.experiment, source=str(store.run_dir / "run.json"))
        record = run_race(ran, store.run_dir, echo=console.print)
        console.print(f"Race won by trial {record.number} ({record.description})")
    else:
        record = select_trial(store, rank=experiment.final.rank)
    plan = plan_final(store, record)
    _train_and_report(
        store,
        record,
        plan,
        store.run_dir / FINAL_DIR,
        experiment.final.restarts,
        resume_hint=f"nas search --resume {store.run_dir}",
    )


_STOP_REASONS = {
    "generations": "its generations",
    "max_evaluations": "[search] max_evaluations",
    "max_minutes": "[search] max_minutes",
}


def _describe_search(experiment) -> str:
    search, budget = experiment.search, experiment.budget
    limits = []
    if not (search.max_evaluations or search.max_minutes) or search.generations < 1000:
        limits.append(f"{search.generations + 1} generations of {search.population}")
    if search.max_evaluations:
        limits.append(f"{search.max_evaluations} evaluations")
    if search.max_minutes:
        limits.append(f"{search.max_minutes:g} minutes")
    training = (
        f"{budget.train_images:,} images" if budget.train_images else f"{budget.epochs} epoch(s)"
    )
    return (
        f"strategy {search.strategy}, space {experiment.space}, objectives "
        f"{', '.join(experiment.objectives)}, until {' or '.join(limits)}"
        f"{' (whichever first)' if len(limits) > 1 else ''}, "
        f"{training} per candidate, seed {experiment.seed}"
    )


@contextmanager
def _resumable(out_dir: Path) -> Iterator[None]:
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


def _cmd_pareto(args: argparse.Namespace) -> int:
    from nas.analysis.plots import plot_front
    from nas.storage.front import compute_front
    from nas.storage.store import RunStore

    store = RunStore.open(args.run)
    records = store.trials()
    front = compute_front(records, store.info.objectives, store.info.reference, store.info.chance)
    console = _console()
    _print_front(console, store, front)
    failed = sum(not r.ok for r in records)
    plot = plot_front(front, args.plot or args.run / "pareto.png", title=store.info.name)
    console.print(f"{len(records)} trials, {failed} failed. Plot: {plot}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from nas.core.errors import ConfigError
    from nas.storage.store import RunStore

    options = {"name": args.name, "onnx": args.onnx, "flip_average": args.flip_average}
    if (args.run / "model.keras").is_file() and not (args.run / "run.json").exists():
        if args.rank is not None or args.trial is not None:
            raise ConfigError(
                f"{args.run}: an export folder holds one model; drop --rank/--trial, or pass "
                "the run folder"
            )
        from nas.export.exporter import reexport

        result = reexport(args.run, args.to, **options)
        what = f"the model of {args.run}"
    else:
        store = RunStore.open(args.run)
        from nas.export.exporter import export_trial, select_trial

        record = select_trial(store, rank=args.rank, trial=args.trial)
        result = export_trial(store, record, args.to, **options)
        what = f"trial {record.number} ({record.description})"
    console = _console()
    console.print(
        f"Exported {escape(what)}{', flip-averaged' if args.flip_average else ''}\n"
        f"  Keras:       {result.keras_file}\n"
        f"  SavedModel:  {result.saved_model}  (TF Serving: --model_base_path={result.saved_model.parent.resolve()})\n"
        + "".join(
            f"  ONNX:        {path}\n" for path in sorted(result.folder.glob("**/model.onnx"))
        )
        + f"  genome:      {result.genome_file}\n"
        f"  model card:  {result.model_card}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from nas.analysis.report import write_report

    path = write_report(args.run, args.out)
    print(f"Report: {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from nas.analysis.assessment import assess, load_model_under_test
    from nas.kinds import output_kind

    subject = load_model_under_test(args.model, flip_average=args.flip_average)
    folder = args.model if args.model.is_dir() else args.model.parent
    kind = output_kind(subject.kind)
    split = args.split or kind.default_split
    out_dir = args.out or folder / f"evaluation-{split}{'-flip' if args.flip_average else ''}"
    result = assess(subject, args.data, split=args.split, out_dir=out_dir, json_file=args.json)
    report = result.report
    console = _console()
    console.print(
        f"{escape(str(subject.path))}: {subject.description}, on {report['images']:,} faces "
        f"of {escape(args.data)} ({report['split']})"
    )
    title, columns, rows = kind.report_table(report)
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    twins = report.get("training_twins")
    if twins and twins["images"]:
        console.print(
            f"{twins['images']:,} of these faces have a byte-identical Training image: accuracy "
            f"{twins['accuracy']:.4f} on them, {twins['unseen_accuracy']:.4f} on the other "
            f"{twins['unseen_images']:,} (a net trained with them has seen their answers)"
        )
    console.print(f"Metrics: {escape(str(result.json_file))}  Figure: {escape(str(result.figure))}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from nas.core.errors import ConfigError
    from nas.engine.final import plan_final
    from nas.engine.migration import stored_experiment
    from nas.storage.selection import select_trial
    from nas.storage.store import RunStore

    store = RunStore.open(args.run)
    experiment = stored_experiment(store.info.experiment, source=str(args.run / "run.json"))
    if experiment.multitask:
        raise ConfigError(
            f"{args.run}: a multi-task run; nas train trains one-task runs only so far. Export "
            f"a trial (nas export {args.run} --to DIR): each task alone is in DIR/tasks/"
        )
    rank = None if args.trial is not None else args.rank or experiment.final.rank
    record = select_trial(store, rank=rank, trial=args.trial)
    plan = plan_final(
        store,
        record,
        epochs=args.epochs,
        minutes=args.minutes,
        patience=args.patience,
        augment=False if args.no_augment else None,
        start="scratch" if args.scratch else None,
        name=args.name,
        precision=args.precision,
        threads=args.threads or 0,
        tensorboard=args.tensorboard,
    )
    _train_and_report(store, record, plan, args.out, experiment.final.restarts)
    return 0


def _train_and_report(
    store: RunStore, record: TrialRecord, plan, out: Path, restarts: int, resume_hint: str = ""
) -> None:
    """Run the final training ``plan`` into ``out`` and print where its export is."""
    from nas.engine.final import train_final

    console = _console()
    length = f"{plan.epochs} epochs" if plan.epochs else "as many epochs as fit"
    limit = f", at most {plan.minutes:g} minutes" if plan.minutes else ""
    console.print(
        f"Final training of trial {record.number} ({record.description}): {length}{limit}, "
        f"from {'the search weights' if plan.start == 'search' else 'scratch'} -> {out}"
    )
    try:
        outcome = train_final(plan, out, restarts=restarts)
    except KeyboardInterrupt:
        print(
            f"nas: interrupted; continue with {resume_hint or 'the same command'} "
            f"(it resumes from {out})",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    state = outcome.state
    metric = (
        "accuracy" if store.info.objectives[0] == "accuracy_curve" else store.info.objectives[0]
    )
    console.print(
        f"Best {metric} {state.best.get(metric, float('nan')):.4f} at epoch {state.best_epoch} "
        f"of {state.epochs_done} (search: {record.metrics.get(metric, float('nan')):.4f}); "
        f"{state.seconds / 60:.1f} minutes, stopped by {state.stopped}"
        + (f", {len(state.crashes)} crash(es) survived" if state.crashes else "")
        + f".\n  Keras: {out / 'model.keras'}\n  SavedModel: {out / plan.name / '1'}\n"
        f"  genome: {out / 'genome.json'}\n  model card: {out / 'MODEL_CARD.md'}"
    )


def _cmd_baseline(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.markup import escape

    from baselines import BASELINES, seed_space
    from nas.core.errors import ConfigError
    from nas.engine.experiment import changed, experiment_from_dict, load_experiment
    from nas.engine.search import run_baseline

    if args.name not in BASELINES and not args.name.endswith(".json"):
        raise ConfigError(
            f"unknown baseline {args.name!r} (known: {', '.join(BASELINES)}; or a genome .json file)"
        )
    space = seed_space(args.name, plugin=args.space)
    label = args.name if args.name in BASELINES else Path(args.name).stem
    if args.experiment:
        experiment = load_experiment(args.experiment)
        if args.task and (experiment.multitask or args.task != experiment.data.task):
            raise ConfigError(
                f"--task {args.task} contradicts {args.experiment}'s task(s) "
                f"{', '.join(repr(c.task) for c in experiment.task_configs)}"
            )
    else:
        from nas.tasks import load_task

        name = args.task or ("keypoints" if space == "resunet" else "emotion")
        try:
            objectives = list(load_task(name).default_objectives)
        except ConfigError as exc:
            raise ConfigError(f"--task {exc}") from None
        experiment = experiment_from_dict(
            {"name": "baseline", "objectives": objectives, "data": {"task": name}}
        )
    if args.data:
        if experiment.multitask:
            raise ConfigError(
                f"--data {args.data}: a multi-task experiment reads one file per task; set "
                f"each [[tasks]] path in {args.experiment}"
            )
        experiment = changed(experiment, data=dataclasses.replace(experiment.data, path=args.data))
    tasks = "multitask" if experiment.multitask else experiment.data.task
    experiment = changed(experiment, name=f"baseline-{label}-{tasks}", space=space)
    out_dir = args.out or Path("runs") / experiment.name
    console = _console()
    if args.name == "resnet50" and args.weights is None:
        console.print(
            "No --weights file: training ResNet50 from scratch (facenas never downloads weights)."
        )
    budget = experiment.budget
    data = " and ".join(f"{c.path} ({c.task})" for c in experiment.task_configs)
    console.print(
        f"Training baseline [bold]{escape(label)}[/] on {escape(data)}: "
        + (
            f"{budget.train_images:,} images"
            if budget.train_images
            else f"{budget.epochs} epoch(s) of {budget.max_train_images or 'all'} images"
        )
        + f", {budget.train_seconds:g} s cap"
    )
    from nas.storage.store import use_password

    use_password(args.storage)
    record = run_baseline(
        experiment,
        args.name,
        out_dir=out_dir,
        weights=args.weights,
        storage=args.storage,
        address=args.address,
        max_params=args.max_params,
    )
    if not record.ok:
        console.print(f"[red]failed[/]: {record.failure}: {record.detail}")
        return 1
    metrics = "  ".join(f"{k} {_metric(k, record)}" for k in (*experiment.objectives, "flops"))
    console.print(f"{escape(label)}: {metrics}  ({record.seconds:.0f} s). Run: {out_dir}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
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
    console = _console()
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

    with _ProgressListener(console, experiment.objectives[0]) as listener, _resumable(out_dir):
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


def _cmd_status(args: argparse.Namespace) -> int:
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
        print(f"stopped by {_STOP_REASONS.get(checkpoint.stopped, checkpoint.stopped)}")
    cut = sum(t.stopped_early for t in trials)
    if cut:
        print(_guard_note(cut, len(trials), store.info.experiment))
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


def _cmd_data(args: argparse.Namespace) -> int:
    from nas.data.datasets import summarize

    for line in summarize(args.path).lines():
        print(line)
    return 0


def _print_front(console: Console, store: RunStore, front: Front) -> None:
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
            *(_metric(name, record) for name in (*objectives, *extras)),
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
        console.print(_guard_note(cut, len(front.evaluated), store.info.experiment))
    baselines = [r for r in front.evaluated if r.baseline and r not in front.members]
    for record in baselines:
        console.print(
            f"  baseline {record.baseline} (trial {record.number}) is dominated: {_summary(record, objectives)}"
        )


def _guard_note(cut: int, total: int, experiment: dict) -> str:
    seconds = experiment.get("budget", {}).get("train_seconds", 0)
    return (
        f"⏱ {cut} of {total} candidates were cut by the train_seconds guard ({seconds:g} s) before "
        "their image budget: their figures depend on this machine's speed and load; raise "
        "[budget] train_seconds or lower the image budget"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def _metric(name: str, record: TrialRecord) -> str:
    value = record.metrics.get(name)
    if value is None:
        return "-"
    if name in ("params", "flops"):
        return f"{value:,.0f}"
    if name == "latency_ms":
        return f"{value:.2f}"
    return f"{value:.4f}"


def _summary(record: TrialRecord, objectives: Sequence[str]) -> str:
    return ", ".join(f"{name} {_metric(name, record)}" for name in objectives)


class _ProgressListener:
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

    def __enter__(self) -> _ProgressListener:
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


def _cmd_fidelity(args: argparse.Namespace) -> int:
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
    console = _console()
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
