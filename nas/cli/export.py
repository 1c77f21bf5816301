"""``nas export``: a trial of a run (or an export folder again) as model.keras, a
SavedModel, genome.json and a model card; ``--onnx``, ``--flip-average``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.arguments import add_trial_choice
from nas.cli.output import make_console


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas export`` and its flags."""
    export = commands.add_parser(
        "export",
        help="export a trained architecture: model.keras, SavedModel, genome.json, model card",
        description="Write the chosen trial's trained model as model.keras, a SavedModel in TF "
        "Serving's DIR/NAME/1/ layout, genome.json and MODEL_CARD.md. Given an export folder "
        "(of nas export or nas train) instead of a run, export its model again, e.g. with "
        "--flip-average or --onnx.",
    )
    export.add_argument("run", type=Path, help="run directory, or an export folder")
    add_trial_choice(export, default_rank="1")
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
    export.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas export`` as ``args`` say; the exit code."""
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
    console = make_console()
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
