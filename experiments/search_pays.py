"""Does the search pay? NSGA-II's 35-minute search against random search and no search, at equal wall time.

    python experiments/search_pays.py run --data FER2013.csv --out DIR [--seeds 0,1,2] [--arms search,random,vgg] [--vgg-minutes M | --minutes M]
    python experiments/search_pays.py table --out DIR [--markdown FILE] [--json FILE]
    python experiments/search_pays.py collect --out DIR --to experiments/results/search_pays

Three arms per seed, each scored on PublicTest with `nas evaluate` (PrivateTest is never
read):

* ``search``: `nas search experiments/emotion_35min_nsga2.toml` (NSGA-II with inherited
  weights and pre-screening, as `emotion_35min.toml` shipped until 2026-12-07; its seed
  set to the arm's), whose `[final]` delivers the model;
* ``random``: the same experiment with `[search] strategy = "random"`, i.e.
  `experiments/emotion_35min.toml` as it ships now (NSGA-II's own keys are ignored);
* ``select_flops`` (only when asked for): the same with `[search] select_by =
  "score+flops"`, NSGA-II breeding by the rule the winner is chosen by;
* ``accuracy_f1`` (only when asked for): the same with `objectives = ["accuracy",
  "macro_f1"]` and no pre-screening by size: NSGA-II breeds on two brief scores, without
  the pull towards fewer parameters (on the fidelity panel, more parameters meant a
  higher 10-epoch accuracy: Kendall's tau +0.54);
* ``affordable`` (only when asked for, with ``--minutes``): ``select_flops`` with
  ``[final] breed_affordable = true``: a candidate of which 10 final epochs are estimated
  not to fit the final training's time is told to NSGA-II as failed, so that it breeds
  towards the largest nets the final training can afford, not past them (seed 2's
  ``select_flops`` grew to a median 65 MFLOPs and spent its search's time on them);
* ``balanced`` (only when asked for): ``search`` with ``[budget] class_weight =
  "balanced"`` (``experiments/emotion_35min_balanced.toml``'s one change): what weighing
  every class the same costs or gains in accuracy, macro-F1 and ``disgust`` recall;
* ``vgg``: no search: `nas baseline vgg` at the experiment's budget, then `nas train
  --scratch` for the rest of the wall time the same seed's ``search`` arm took (35
  minutes where it has not run), on every core.

With ``--minutes M`` every arm gets the same wall time instead: the ``search`` and
``random`` arms' final training takes what is left of M minutes after their search and
race (``[final] total_minutes = M``, its epochs fitted to that time instead of the
shipped count), and ``vgg`` trains for M minutes. The shipped file's counts give each arm
the time its winner costs (14 to 53 minutes in issue 20's sixth session), which compares
trainings of different lengths as much as searches.

An arm is a wall-time measurement, so it must run with the machine to itself, and it
cannot be resumed: `run` skips every arm with a ``result.json``, and starts an arm that
was stopped half-way again from nothing (saying so). Each result records the machine
it ran on. `table` reads the results (no TensorFlow) and prints each arm's accuracy per
seed, its median, and the search's margin over the other two; `collect` copies each
finished arm's small files (result, trials, PublicTest metrics, experiment; no weights)
to be committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nas.core.machine import machine_summary  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "emotion_35min_nsga2.toml"
ARMS = ("search", "random", "vgg", "select_flops", "accuracy_f1", "affordable", "balanced")
DEFAULT_ARMS = ("search", "random", "vgg")
DEFAULT_MINUTES = 35.0
RESULT = "result.json"


def arm_experiment(arm: str, seed: int, total_minutes: float | None = None) -> str:
    """The NSGA-II experiment's text with the arm's seed (and strategy, selection or
    objectives, for the arms that change them);
    with ``total_minutes``, its final training takes what is left of that wall time
    instead of its epochs."""
    if arm == "affordable" and not total_minutes:
        raise SystemExit("search_pays: the affordable arm needs --minutes (a time-bounded final)")
    lines = []
    section = ""
    for line in EXPERIMENT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip()
        if line.startswith("seed = "):
            line = f"seed = {seed}"
        if arm == "accuracy_f1" and line.startswith("objectives = "):
            line = 'objectives = ["accuracy", "macro_f1"]'
        if arm == "accuracy_f1" and section == "[search]" and line.startswith("prescreen = "):
            line = "prescreen = 1  # no objective is known before training"
        if total_minutes and section == "[final]" and line.startswith("epochs = "):
            line = f"total_minutes = {total_minutes:g}  # equal wall time: search_pays.py --minutes"
        lines.append(line)
        if arm == "random" and line.strip() == "[search]":
            lines.append('strategy = "random"')
        if arm in ("select_flops", "affordable") and line.strip() == "[search]":
            lines.append('select_by = "score+flops"')
        if arm == "balanced" and line.strip() == "[budget]":
            lines.append('class_weight = "balanced"  # every class weighs the same in the loss')
        if arm == "affordable" and line.strip() == "[final]":
            lines.append("breed_affordable = true  # breed from nets the final can afford")
    return "\n".join(lines) + "\n"


def _nas(*argv: str) -> list[str]:
    return [str(Path(sys.executable).parent / "nas"), *argv]


def _run(command: list[str], log: Path) -> None:
    print("$", " ".join(command), flush=True)
    with log.open("a") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"search_pays: {command[1]} failed with exit code {code}; see {log}")


def run_arm(
    arm: str,
    seed: int,
    data: str,
    out: Path,
    vgg_minutes: float | None = None,
    total_minutes: float | None = None,
) -> dict[str, Any]:
    """Run one arm from nothing and return its result (also written to its folder).

    ``vgg_minutes`` replaces the ``vgg`` arm's budget (the same seed's search wall time)
    where that wall time is known to be wrong, e.g. the search shared the machine.
    ``total_minutes`` gives every arm that wall time (the module's docstring)."""
    folder = out / f"{arm}-s{seed}"
    if folder.exists():
        print(f"[{folder.name}] stopped half-way before: starting it again", flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    experiment = folder / "experiment.toml"
    experiment.write_text(arm_experiment(arm, seed, total_minutes))
    log = folder / "log.txt"
    started = time.monotonic()
    budgets: dict[str, Any] = {"equal_minutes": total_minutes} if total_minutes else {}
    if arm != "vgg":
        _run(_nas("search", str(experiment), "--data", data, "--out", str(folder / "run")), log)
        export = folder / "run" / "final"
    else:
        if total_minutes:
            budget, source = total_minutes, "--minutes"
        elif vgg_minutes is None:
            budget, source = _vgg_minutes(out, seed), "the same seed's search wall time"
        else:
            budget, source = vgg_minutes, "--vgg-minutes"
        budgets |= {"budget_minutes": round(budget, 2), "budget_source": source}
        _run(
            _nas("baseline", "vgg", "--experiment", str(experiment), "--data", data,
                 "--out", str(folder / "run")),
            log,
        )  # fmt: skip
        left = budget - (time.monotonic() - started) / 60
        _run(
            _nas("train", str(folder / "run"), "--scratch", "--minutes", f"{left:.2f}",
                 "--out", str(folder / "run" / "final")),
            log,
        )  # fmt: skip
        export = folder / "run" / "final"
    wall = time.monotonic() - started
    metrics = folder / "publictest.json"
    _run(_nas("evaluate", str(export), "--data", data, "--json", str(metrics)), log)
    report = json.loads(metrics.read_text())
    result = {
        "arm": arm,
        "seed": seed,
        "accuracy": report["accuracy"],
        "macro_f1": report.get("macro_f1"),
        "params": export_params(export),
        "wall_seconds": wall,
        **budgets,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **machine_summary(),
    }
    (folder / "trials.json").write_text(json.dumps(_trials(folder / "run"), indent=1) + "\n")
    (folder / RESULT).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _trials(run: Path) -> list[dict[str, Any]]:
    """Every trial of the arm's run as stored (a `nas baseline` run has one)."""
    from nas.storage.store import RunStore

    return [
        {
            "number": t.number,
            "generation": t.generation,
            "genome_hash": t.genome_hash,
            "description": t.description,
            "values": t.values,
            "metrics": t.metrics,
            "failure": t.failure,
            "seconds": t.seconds,
            "baseline": t.baseline,
        }
        for t in RunStore.open(run).trials()
    ]


KEPT = (RESULT, "trials.json", "publictest.json", "experiment.toml")
"""What `collect` copies of each finished arm: small files, no weights."""


def collect(out: Path, to: Path) -> int:
    """Copy each finished arm's small files from ``out`` to ``to`` (to be committed)."""
    count = 0
    for result in sorted(out.glob(f"*/{RESULT}")):
        row = json.loads(result.read_text())
        if row.get("params") is None and (result.parent / "run" / "final").exists():
            row["params"] = export_params(result.parent / "run" / "final")
            result.write_text(json.dumps(row, indent=2) + "\n")
        target = to / result.parent.name
        target.mkdir(parents=True, exist_ok=True)
        trials = result.parent / "trials.json"
        if not trials.exists() and (result.parent / "run" / "run.json").exists():
            trials.write_text(json.dumps(_trials(result.parent / "run"), indent=1) + "\n")
        for name in KEPT:
            if (result.parent / name).exists():
                shutil.copy2(result.parent / name, target / name)
        race = result.parent / "run" / "race.json"  # the race's every round, when it ran
        if race.exists():
            shutil.copy2(race, target / "race.json")
        metrics = target / "publictest.json"
        if metrics.exists():
            portable = portable_paths(json.loads(metrics.read_text()), out)
            metrics.write_text(json.dumps(portable, indent=2) + "\n")
        count += 1
    return count


def portable_paths(metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    """``nas evaluate``'s metrics with no path of this machine in them: the model under
    ``out`` as ``RUNS/...``, the data relative to the repository (``../shared/...``)."""
    model, data = Path(metrics.get("model", "")), Path(metrics.get("data", ""))
    if model.is_absolute() and model.is_relative_to(out.resolve()):
        metrics["model"] = str(Path("RUNS") / model.relative_to(out.resolve()))
    if data.is_absolute():
        metrics["data"] = os.path.relpath(data, ROOT)
    return metrics


def export_params(export: Path) -> int | None:
    """The delivered net's parameters, counted from its genome (no TensorFlow)."""
    from nas.core.space import load_space
    from nas.core.task import Task

    document = json.loads((export / "genome.json").read_text())
    space = load_space(document["space"])
    genome = space.from_json(document["genome"])
    task = Task(
        kind="classification",
        input_shape=tuple(document["task"]["input_shape"]),
        num_classes=len(document["task"]["labels"]),
    )
    return int(space.cost(genome, task).params)


def _vgg_minutes(out: Path, seed: int) -> float:
    searched = out / f"search-s{seed}" / RESULT
    if searched.exists():
        return json.loads(searched.read_text())["wall_seconds"] / 60
    return DEFAULT_MINUTES


def results(out: Path) -> list[dict[str, Any]]:
    """Every finished arm's result under ``out``."""
    return [json.loads(path.read_text()) for path in sorted(out.glob(f"*/{RESULT}"))]


def table(rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The Markdown table (one line per arm: each seed, the median) and its figures."""
    seeds = sorted({r["seed"] for r in rows})
    by_arm = {arm: {r["seed"]: r for r in rows if r["arm"] == arm} for arm in ARMS}
    medians = {
        arm: statistics.median(r["accuracy"] for r in runs.values())
        for arm, runs in by_arm.items()
        if runs
    }
    head = "| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | median |"
    lines = [head, "|" + "---|" * (len(seeds) + 2)]
    for arm, runs in by_arm.items():
        if not runs:
            continue
        cells = [
            f"{runs[s]['accuracy']:.4f} ({runs[s]['wall_seconds'] / 60:.0f} min, "
            f"{runs[s]['params']:,} params)"
            if s in runs and runs[s].get("params")
            else (f"{runs[s]['accuracy']:.4f}" if s in runs else "—")
            for s in seeds
        ]
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {medians[arm]:.4f} |")
    margins, paired, per_seed = {}, {}, {}
    pairs = [("search", "random"), ("search", "vgg")]
    pairs += [(arm, other) for arm in ARMS[3:] for other in ("search", "random", "vgg")]
    for subject, other in pairs:
        common = sorted(set(by_arm[subject]) & set(by_arm[other]))
        if common:  # the seeds both arms ran: a seed one arm lacks would skew the medians
            mine = statistics.median(by_arm[subject][s]["accuracy"] for s in common)
            rival = statistics.median(by_arm[other][s]["accuracy"] for s in common)
            name = f"{subject}_minus_{other}"
            margins[name] = mine - rival
            paired[name] = common
            per_seed[name] = [
                by_arm[subject][s]["accuracy"] - by_arm[other][s]["accuracy"] for s in common
            ]
    for name, value in margins.items():
        seeds_text = ", ".join(map(str, paired[name]))
        each = ", ".join(f"{d * 100:+.2f}" for d in per_seed[name])
        lines.append(
            f"\n{name.replace('_', ' ')}: {value * 100:+.2f} points (medians of seeds {seeds_text}); "
            f"seed by seed {each}, median {statistics.median(per_seed[name]) * 100:+.2f}"
        )
    machines = sorted({r.get("machine", "?") for r in rows})
    lines.append(f"\nmachines: {', '.join(machines)}")
    return "\n".join(lines), {
        "medians": medians,
        "margins": margins,
        "margin_seeds": paired,
        "margins_per_seed": per_seed,
        "rows": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every arm and seed not yet finished")
    run.add_argument("--data", required=True, help="FER2013 CSV (Kaggle's layout)")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--seeds", default="0,1,2")
    run.add_argument("--arms", default=",".join(DEFAULT_ARMS))
    budget = run.add_mutually_exclusive_group()
    budget.add_argument(
        "--vgg-minutes",
        type=float,
        help="every vgg arm's budget instead of its seed's search wall time (recorded)",
    )
    budget.add_argument(
        "--minutes",
        type=float,
        help="every arm's wall time: the searches' final training gets what is left of it",
    )
    keep = commands.add_parser("collect", help="copy the finished arms' small files")
    keep.add_argument("--out", type=Path, required=True)
    keep.add_argument("--to", type=Path, required=True)
    show = commands.add_parser("table", help="print the results so far")
    show.add_argument("--out", type=Path, required=True)
    show.add_argument("--markdown", type=Path)
    show.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        unknown = [a for a in arms if a not in ARMS]
        if unknown:
            parser.error(f"--arms: unknown arm {unknown[0]!r} (known: {', '.join(ARMS)})")
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            parser.error(f"--seeds: expected whole numbers separated by commas, got {args.seeds!r}")
        for seed in seeds:
            for arm in arms:
                if (args.out / f"{arm}-s{seed}" / RESULT).exists():
                    print(f"[{arm}-s{seed}] done already", flush=True)
                    continue
                result = run_arm(arm, seed, args.data, args.out, args.vgg_minutes, args.minutes)
                print(f"[{arm}-s{seed}] {result['accuracy']:.4f} PublicTest in "
                      f"{result['wall_seconds'] / 60:.1f} min", flush=True)  # fmt: skip
    if args.command == "collect":
        print(f"{collect(args.out, args.to)} arms copied to {args.to}")
        args.out = args.to
    text, figures = table(results(args.out))
    print(text)
    if getattr(args, "markdown", None):
        args.markdown.write_text(text + "\n")
    if getattr(args, "json", None):
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
