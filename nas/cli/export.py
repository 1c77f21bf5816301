"""``nas export``: a trial of a run (or an export folder again) as model.keras, a
SavedModel, genome.json and a model card; ``--onnx``, ``--flip-average``, ``--litert``,
``--int8`` (with ``--data`` where the run's data is not where it was).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from nas.cli.arguments import add_trial_choice
from nas.cli.output import make_console

if TYPE_CHECKING:
    from nas.export.litert import DeploymentFaces
    from nas.storage.store import RunStore


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
    export.add_argument(
        "--litert",
        action="store_true",
        help="also write model.tflite (LiteRT float32, built-in ops only) and time and score "
        "each format in the model card",
    )
    export.add_argument(
        "--int8",
        action="store_true",
        help="also write model_int8.tflite: full-integer int8 (input and output too), "
        "calibrated on training faces; implies --litert",
    )
    export.add_argument(
        "--data",
        metavar="FILE",
        help="the training data, for --int8's calibration and the card's scores (default: "
        "the run's [data] path; needed when exporting an export folder with --int8)",
    )
    export.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas export`` as ``args`` say; the exit code."""
    from rich.markup import escape

    from nas.core.errors import ConfigError
    from nas.storage.store import RunStore

    options = {
        "name": args.name,
        "onnx": args.onnx,
        "flip_average": args.flip_average,
        "litert": args.litert or args.int8,
        "int8": args.int8,
    }
    if args.data is not None and not (args.litert or args.int8):
        raise ConfigError("--data: only --litert and --int8 read data; add one or drop --data")
    from nas.export.exporter import check_target

    check_target(args.to)  # before the data and the model are read
    if (args.run / "model.keras").is_file() and not (args.run / "run.json").exists():
        if args.rank is not None or args.trial is not None:
            raise ConfigError(
                f"{args.run}: an export folder holds one model; drop --rank/--trial, or pass "
                "the run folder"
            )
        from nas.export.exporter import reexport

        faces = _export_folder_faces(args.run, args.data, args.int8) if options["litert"] else None
        result = reexport(args.run, args.to, faces=faces, **options)
        what = f"the model of {args.run}"
    else:
        store = RunStore.open(args.run)
        from nas.export.exporter import export_trial, select_trial

        record = select_trial(store, rank=args.rank, trial=args.trial)
        faces = _run_faces(store, args.data) if options["litert"] and not store.info.tasks else None
        result = export_trial(store, record, args.to, faces=faces, **options)
        what = f"trial {record.number} ({record.description})"
    console = make_console()
    console.print(
        f"Exported {escape(what)}{', flip-averaged' if args.flip_average else ''}\n"
        f"  Keras:       {result.keras_file}\n"
        f"  SavedModel:  {result.saved_model}  (TF Serving: --model_base_path={result.saved_model.parent.resolve()})\n"
        + "".join(
            f"  ONNX:        {path}\n" for path in sorted(result.folder.glob("**/model.onnx"))
        )
        + "".join(f"  LiteRT:      {path}\n" for path in sorted(result.folder.glob("*.tflite")))
        + f"  genome:      {result.genome_file}\n"
        f"  model card:  {result.model_card}"
    )
    return 0


def _run_faces(store: RunStore, data: str | None) -> DeploymentFaces:
    """The run's training faces (int8 calibration) and validation split (the card's
    scores), as its candidates saw them; ``data`` replaces the run's ``[data] path``."""
    import dataclasses

    import numpy as np

    from nas.core.errors import ConfigError, DataError
    from nas.engine.migration import stored_experiment
    from nas.engine.task_data import load_task_data
    from nas.export.litert import DeploymentFaces
    from nas.training.litert import representative_faces

    experiment = stored_experiment(store.info.experiment, source=str(store.run_dir))
    if data is not None:
        experiment = dataclasses.replace(
            experiment, data=dataclasses.replace(experiment.data, path=data)
        )
    try:
        loaded = load_task_data(experiment).eval_data
    except (DataError, ConfigError) as exc:
        raise type(exc)(
            f"{exc} (the run's data, for --litert/--int8: pass --data FILE where it is now)"
        ) from None
    rng = np.random.default_rng(experiment.seed)
    return DeploymentFaces(
        calibration=representative_faces(loaded.train_images, rng),
        images=loaded.validation_images.astype(np.float32),
        targets=loaded.validation_targets,
        split="the run's validation split",
    )


def _export_folder_faces(folder: Path, data: str | None, int8: bool) -> DeploymentFaces | None:
    """An export folder's training faces and default split of ``data``, drawn as its run
    drew them (its genome.json); None without ``data`` (then --litert scores nothing)."""
    import numpy as np

    from nas.analysis.assessment import labelled_split, load_model_under_test, split_recorded
    from nas.core.errors import ConfigError
    from nas.export.litert import DeploymentFaces
    from nas.training.litert import representative_faces

    if data is None:
        if int8:
            raise ConfigError(
                f"--int8: {folder} is an export folder, which does not say where its training "
                "data is; pass --data FILE (the run's data) for the calibration"
            )
        return None
    subject = load_model_under_test(folder)
    try:
        train, _, _ = labelled_split(subject, data, "train")
        images, targets, name = labelled_split(subject, data, None)
    except ConfigError:
        if split_recorded(subject):
            raise
        raise ConfigError(
            f"{folder / 'genome.json'}: does not say how its run split the data, so "
            "--litert/--int8 cannot tell its validation faces from its training faces; "
            "export from the run folder instead"
        ) from None
    rng = np.random.default_rng(int(subject.split.get("seed", 0)))
    return DeploymentFaces(
        calibration=representative_faces(train, rng),
        images=images.astype(np.float32),
        targets=targets,
        split=f"{name} of {Path(data).name}",
    )
