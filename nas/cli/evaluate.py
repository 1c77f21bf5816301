"""``nas evaluate``: score an exported model on a labelled file of its task."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.output import make_console


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas evaluate`` and its flags."""
    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained model on a labelled file: metrics, per-class or per-point, a PNG",
        description="Score an exported model (a folder holding model.keras, e.g. RUN/final, a "
        ".keras file, or a .tflite file of nas export --litert/--int8) on a file of its task's layout. Emotions: accuracy, macro-F1, per-class "
        "precision and recall, and a confusion-matrix PNG. Keypoints: RMSE over the points "
        "present, per keypoint, and a PNG of faces with predicted and true points. Writes "
        "metrics.json and the PNG into --out.",
    )
    evaluate.add_argument("model", type=Path, help="export folder, .keras or .tflite file")
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
        help="where the report goes (default MODEL/evaluation-SPLIT for a folder, "
        "evaluation-STEM-SPLIT beside a model file)",
    )
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="write the metrics JSON here")
    evaluate.add_argument(
        "--flip-average",
        action="store_true",
        help="average each face's answer with its mirror image's (twice the inference FLOPs)",
    )
    evaluate.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas evaluate`` as ``args`` say; the exit code."""
    from rich.markup import escape
    from rich.table import Table

    from nas.analysis.assessment import assess, default_split, load_model_under_test
    from nas.kinds import output_kind

    subject = load_model_under_test(args.model, flip_average=args.flip_average)
    kind = output_kind(subject.kind)
    split = args.split or default_split(subject, args.data)
    out_dir = args.out or _default_out(args.model, split, args.flip_average)
    result = assess(subject, args.data, split=args.split, out_dir=out_dir, json_file=args.json)
    report = result.report
    console = make_console()
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


def _default_out(model: Path, split: str, flip_average: bool) -> Path:
    """``MODEL/evaluation-SPLIT`` for a folder; beside a model file, its stem in the name,
    so that the float and int8 files of one export keep their own reports."""
    suffix = f"{split}{'-flip' if flip_average else ''}"
    if model.is_dir():
        return model / f"evaluation-{suffix}"
    return model.parent / f"evaluation-{model.stem}-{suffix}"
