"""``nas train``: train a run's chosen trial further and export it; the final
training's console lines, shared with ``nas search``'s ``[final]``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nas.cli.arguments import add_trial_choice, non_negative_int, positive_float, positive_int
from nas.cli.output import make_console

if TYPE_CHECKING:
    from nas.storage.records import TrialRecord
    from nas.storage.store import RunStore


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas train`` and its flags."""
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
    add_trial_choice(train, default_rank="[final] rank, 1")
    train.add_argument(
        "--epochs", type=positive_int, metavar="E", help="epochs over the whole training split"
    )
    train.add_argument(
        "--minutes",
        type=positive_float,
        metavar="M",
        help="stop at M minutes (alone: as many epochs as fit, from the first epoch's speed)",
    )
    train.add_argument(
        "--patience",
        type=non_negative_int,
        metavar="P",
        help="stop after P epochs without improvement (0: never)",
    )
    train.add_argument(
        "--scratch", action="store_true", help="start from fresh weights, not the search's"
    )
    train.add_argument("--no-augment", action="store_true", help="no flips, shifts or zooms")
    train.add_argument(
        "--threads",
        type=positive_int,
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
    train.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas train`` as ``args`` say; the exit code."""
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
    train_and_report(store, record, plan, args.out, experiment.final.restarts)
    return 0


def train_and_report(
    store: RunStore, record: TrialRecord, plan, out: Path, restarts: int, resume_hint: str = ""
) -> None:
    """Run the final training ``plan`` into ``out`` and print where its export is."""
    from nas.engine.final import train_final

    console = make_console()
    length = f"{plan.epochs} epochs" if plan.epochs else "as many epochs as fit"
    limit = f", at most {plan.minutes:g} minutes" if plan.minutes else ""
    console.print(
        f"Final training of trial {record.number} ({record.description}): {length}{limit}, "
        f"from {'the search weights' if plan.start == 'search' else 'scratch'} -> {out}"
    )
    try:
        outcome = train_final(plan, out, restarts=restarts)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (TrainingStopped)
        print(
            f"nas: interrupted; continue with {resume_hint or 'the same command'} "
            f"(it resumes from {out})",
            file=sys.stderr,
        )
        raise SystemExit(128 + getattr(stop, "signum", signal.SIGINT)) from None
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
