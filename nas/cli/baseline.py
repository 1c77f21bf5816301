"""``nas baseline``: train a hand-designed baseline, or any genome file, alone with
an experiment's data and budget.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.arguments import positive_int
from nas.cli.output import make_console, metric_text


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas baseline`` and its flags."""
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
        type=positive_int,
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
    baseline.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas baseline`` as ``args`` say; the exit code."""
    import dataclasses

    from rich.markup import escape

    from baselines import BASELINES, seed_space
    from nas.core.errors import ConfigError
    from nas.engine.experiment import (
        changed,
        default_task,
        experiment_from_dict,
        load_experiment,
    )
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

        name = args.task or default_task(space)
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
    console = make_console()
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
    from nas.storage.urls import use_password

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
    metrics = "  ".join(f"{k} {metric_text(k, record)}" for k in (*experiment.objectives, "flops"))
    console.print(f"{escape(label)}: {metrics}  ({record.seconds:.0f} s). Run: {out_dir}")
    return 0
