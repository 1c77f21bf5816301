"""The results table of docs/results.md (and the README's summary of it), from real runs: baselines and evolved nets trained with `nas train`.

    python experiments/results.py run --fer FER2013.csv --keypoints training.csv [--runs DIR] [--only KEY ...]
    python experiments/results.py table [--runs DIR] [--markdown FILE]

`run` runs each line's commands in order (searches, `nas baseline`, `nas train`) and skips
every step whose output is already there, so a stopped run continues where it stopped and
a finished line is never trained twice. `table` reads what the lines left in RUNS (the
export's genome.json and the training's state.json; no TensorFlow) and prints the table.

A line is one net on one task: the hand-designed baselines (`vgg`, `resnet50`, `resunet`)
trained alone and then on with `nas train`, and the best nets of the shipped searches,
trained on with `nas train` too. The evolved seven-class net is the 60-minute search's
winner (evolved on five classes) moved to seven with `nas baseline GENOME.json`. Budgets
are epochs, so the figures do not depend on the machine's load; the times do, and are
reported with the threads each training had. Every `nas train` here runs on one thread
so that two lines can share a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nas.core.space import load_space  # noqa: E402
from nas.core.task import Task  # noqa: E402

EXPERIMENTS = ROOT / "experiments"


@dataclass(frozen=True)
class Step:
    """One command of a line, and the file whose presence means it is done."""

    argv: tuple[str, ...]
    done_when: str


@dataclass(frozen=True)
class Line:
    """One row of the table: how the net was made, and where its export lands."""

    key: str
    net: str
    task: str  # "5 classes", "7 classes" or "keypoints"
    origin: str
    steps: tuple[Step, ...]
    export: str  # folder (relative to RUNS) holding genome.json and training/state.json
    search: str | None = None  # run folder of the search that evolved it, if any


def _search(experiment: str, data: str, out: str) -> Step:
    return Step(
        ("nas", "search", str(EXPERIMENTS / experiment), "--data", data, "--out", out),
        f"{out}/final/genome.json",
    )


def _baseline(spec: str, experiment: str, data: str, out: str) -> Step:
    argv = ("nas", "baseline", spec, "--experiment", str(EXPERIMENTS / experiment))
    return Step((*argv, "--data", data, "--out", out), f"{out}/checkpoint.json")


def _train(run: str, epochs: int, out: str) -> Step:
    argv = ("nas", "train", run, "--epochs", str(epochs), "--threads", "1", "--out", out)
    return Step(argv, f"{out}/genome.json")


def lines() -> list[Line]:
    """Every line of the table, in its order; paths use {runs}, {fer} and {keypoints}."""
    s35, s60, skp = (
        "{runs}/search-emotion_35min",
        "{runs}/search-emotion_60min",
        "{runs}/search-keypoints",
    )
    fer, kp = "{fer}", "{keypoints}"
    return [
        Line(
            "vgg-5",
            "vgg",
            "5 classes",
            "hand-designed (baselines/vgg.py)",
            (
                _baseline("vgg", "emotion_35min.toml", fer, "{runs}/vgg-5"),
                _train("{runs}/vgg-5", 12, "{runs}/vgg-5/final"),
            ),
            "vgg-5/final",
        ),
        Line(
            "resnet50-5",
            "resnet50",
            "5 classes",
            "hand-designed, from scratch (no local ImageNet weights)",
            (
                _baseline("resnet50", "emotion_35min.toml", fer, "{runs}/resnet50-5"),
                _train("{runs}/resnet50-5", 2, "{runs}/resnet50-5/final"),
            ),
            "resnet50-5/final",
        ),
        Line(
            "evolved-5",
            "evolved (emotion_35min)",
            "5 classes",
            "emotion_35min search's winner",
            (_search("emotion_35min_nsga2.toml", fer, s35), _train(s35, 80, "{runs}/evolved-5")),
            "evolved-5",
            search=s35,
        ),
        Line(
            "vgg-7",
            "vgg",
            "7 classes",
            "hand-designed (baselines/vgg.py)",
            (
                _baseline("vgg", "emotion7_35min.toml", fer, "{runs}/vgg-7"),
                _train("{runs}/vgg-7", 12, "{runs}/vgg-7/final"),
            ),
            "vgg-7/final",
        ),
        Line(
            "evolved-7",
            "evolved (emotion_60min)",
            "7 classes",
            "emotion_60min search's winner (evolved on 5 classes)",
            (
                _search("emotion_60min.toml", fer, s60),
                _baseline(
                    f"{s60}/final/genome.json", "emotion7_35min.toml", fer, "{runs}/evolved-7"
                ),
                _train("{runs}/evolved-7", 45, "{runs}/evolved-7/final"),
            ),
            "evolved-7/final",
            search=s60,
        ),
        Line(
            "resnet50-7",
            "resnet50",
            "7 classes",
            "hand-designed, from scratch (no local ImageNet weights)",
            (
                _baseline("resnet50", "emotion7_35min.toml", fer, "{runs}/resnet50-7"),
                _train("{runs}/resnet50-7", 2, "{runs}/resnet50-7/final"),
            ),
            "resnet50-7/final",
        ),
        Line(
            "resunet-kp",
            "resunet",
            "keypoints",
            "hand-designed (baselines/resunet.py)",
            (
                _baseline("resunet", "keypoints.toml", kp, "{runs}/resunet-kp"),
                _train("{runs}/resunet-kp", 3, "{runs}/resunet-kp/final"),
            ),
            "resunet-kp/final",
        ),
        Line(
            "evolved-kp",
            "evolved (keypoints)",
            "keypoints",
            "keypoints search's winner, its [final] training",
            (_search("keypoints.toml", kp, skp),),
            "search-keypoints/final",
            search=skp,
        ),
    ]


def evaluation_steps(line: Line) -> tuple[Step, Step]:
    """`nas evaluate` of the line's export on its validation split (PublicTest for
    emotions, which also scores apart the faces with a byte-identical Training twin),
    as it is and flip-averaged."""
    export = f"{{runs}}/{line.export}"
    data = "{keypoints}" if line.task == "keypoints" else "{fer}"
    steps = []
    for suffix, extra in (("", ()), ("-flip", ("--flip-average",))):
        argv = ("nas", "evaluate", export, "--data", data, "--out", f"{export}/evaluation{suffix}")
        json_file = f"{export}/evaluation{suffix}.json"
        steps.append(Step((*argv, "--json", json_file, *extra), json_file))
    return steps[0], steps[1]


def run_lines(selected: Sequence[Line], values: dict[str, str]) -> int:
    """Run each step whose output is missing, then score the export with `nas evaluate`;
    stop at the first failing command."""
    for line in selected:
        for step in (*line.steps, *evaluation_steps(line)):
            done = Path(step.done_when.format(**values))
            if done.exists():
                print(f"[{line.key}] done already: {done}", flush=True)
                continue
            argv = [sys.executable, "-m", *(a.format(**values) for a in step.argv)]
            print(f"[{line.key}] {shlex.join(argv[1:])}", flush=True)
            code = subprocess.run(argv, cwd=ROOT, check=False).returncode
            if code != 0:
                print(f"[{line.key}] failed with exit code {code}; run again to continue")
                return code
    return 0


def _task(document: dict[str, Any], state: dict[str, Any]) -> Task:
    info = document.get("task")
    if info is not None:
        shape = tuple(info["input_shape"])
        if info["kind"] == "keypoints":
            return Task(kind="keypoints", input_shape=shape, num_keypoints=len(info["labels"]))
        return Task(kind="classification", input_shape=shape, num_classes=len(info["labels"]))
    # Exports older than genome_document() name no task: it is in the run's run.json.
    run = json.loads(Path(state["run_dir"], "run.json").read_text())["task"]
    shape = tuple(run["input_shape"])
    return Task(
        kind=run["kind"],
        input_shape=shape,
        num_classes=run["num_classes"],
        num_keypoints=run["num_keypoints"],
    )


def line_result(line: Line, runs: Path) -> dict[str, Any] | None:
    """The figures of a finished line, or None while its export is missing."""
    export = runs / line.export
    if not (export / "genome.json").is_file():
        return None
    document = json.loads((export / "genome.json").read_text())
    state = json.loads((export / "training" / "state.json").read_text())
    plan = json.loads((export / "training" / "plan.json").read_text())
    space = load_space(document["space"])
    genome = space.from_json(document["genome"])
    cost = space.cost(genome, _task(document, plan))
    search_minutes = None
    if line.search is not None:
        checkpoint = Path(line.search.format(runs=runs), "checkpoint.json")
        search_minutes = json.loads(checkpoint.read_text())["seconds"] / 60
    return {
        "key": line.key,
        "net": line.net,
        "task": line.task,
        "origin": line.origin,
        "architecture": space.describe(genome),
        "params": cost.params,
        "flops": cost.flops,
        "metric": "rmse" if line.task == "keypoints" else "accuracy",
        # the float32 export as `nas evaluate` scores it; else the training's best epoch
        # (in bf16 when it trained so)
        "value": _evaluated(export / "evaluation.json", line)
        or state["best"]["rmse" if line.task == "keypoints" else "accuracy"],
        "training_value": state["best"]["rmse" if line.task == "keypoints" else "accuracy"],
        "epochs": state["epochs_done"],
        "best_epoch": state["best_epoch"],
        "images": state["images"],
        "train_minutes": state["seconds"] / 60,
        "threads": plan.get("threads") or "all",
        "precision": plan.get("precision", "float32"),
        "stopped": state["stopped"],
        "search_minutes": search_minutes,
        "unseen_accuracy": _unseen_accuracy(export / "evaluation.json"),
        "flip_averaged": _evaluated(export / "evaluation-flip.json", line),
        "flip_averaged_unseen_accuracy": _unseen_accuracy(export / "evaluation-flip.json"),
    }


def _evaluation(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _evaluated(path: Path, line: Line) -> float | None:
    """The metric `nas evaluate` wrote to ``path``, if it ran."""
    return _evaluation(path).get("rmse" if line.task == "keypoints" else "accuracy")


def _unseen_accuracy(path: Path) -> float | None:
    """PublicTest accuracy on the faces without a byte-identical Training twin."""
    return (_evaluation(path).get("training_twins") or {}).get("unseen_accuracy")


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The results table (docs/results.md)."""
    rows = [
        "| net | task | parameters | MFLOPs | PublicTest accuracy (without Training twins) "
        "/ validation RMSE | flip-averaged | `nas train` | training minutes (threads) | "
        "search minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        value = _value(r["metric"], r["value"], r["unseen_accuracy"])
        flipped = _value(r["metric"], r["flip_averaged"], r["flip_averaged_unseen_accuracy"])
        search = f"{r['search_minutes']:.0f}" if r["search_minutes"] is not None else "–"
        rows.append(
            f"| {r['net']} | {r['task']} | {r['params']:,} | {r['flops'] / 1e6:,.1f} | {value} | "
            f"{flipped} | {r['epochs']} epochs, {r['images']:,} images, {r['precision']} | "
            f"{r['train_minutes']:.1f} ({r['threads']}) | {search} |"
        )
    return "\n".join(rows) + "\n"


def _value(metric: str, value: float | None, unseen: float | None) -> str:
    if value is None:
        return "–"
    if metric == "rmse":
        return f"{value:.3f} px"
    return f"{value:.4f}" + (f" ({unseen:.4f})" if unseen is not None else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every line whose output is missing")
    run.add_argument("--fer", required=True, help="FER2013 csv (Kaggle's fer2013.csv, .gz too)")
    run.add_argument("--keypoints", required=True, help="Kaggle facial keypoints training.csv")
    run.add_argument("--only", nargs="+", metavar="KEY", help="these lines only")
    table = commands.add_parser("table", help="print the table of the finished lines")
    table.add_argument("--markdown", type=Path, metavar="FILE", help="also write it here")
    table.add_argument("--json", type=Path, metavar="FILE", help="every figure, as JSON")
    for sub in (run, table):
        sub.add_argument("--runs", type=Path, default=ROOT / "runs" / "results", help="run folders")
    args = parser.parse_args(argv)
    known = {line.key: line for line in lines()}
    if args.command == "run":
        unknown = sorted(set(args.only or ()) - set(known))
        if unknown:
            parser.error(f"unknown line(s) {', '.join(unknown)} (known: {', '.join(known)})")
        selected = [known[k] for k in args.only] if args.only else list(known.values())
        values = {
            "runs": str(args.runs.resolve()),
            "fer": str(Path(args.fer).resolve()),
            "keypoints": str(Path(args.keypoints).resolve()),
        }
        return run_lines(selected, values)
    results = [r for line in known.values() if (r := line_result(line, args.runs)) is not None]
    missing = [key for key in known if key not in {r["key"] for r in results}]
    text = markdown(results)
    print(text, end="")
    if missing:
        print(f"\nnot run yet: {', '.join(missing)}")
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
