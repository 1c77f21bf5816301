"""One search, both ways of choosing its winner: `[final] choose_by` side by side.

    python experiments/choose_by.py --data FER2013.csv --out DIR [--seed 0] [--epochs 24]

Runs `experiments/emotion_35min_nsga2.toml` (NSGA-II, as `emotion_35min.toml` shipped then) with its `[final]` off (the search alone, with the
given seed), then, on a copy of the run for each rule (`score`, `score+flops`), the race
of 4 that `[final]` would run, trains each rule's winner for `--epochs` with `nas train`
(the shipped final training's recipe, from the search's weights) and scores it on
PublicTest with `nas evaluate`. The search is shared, so the two delivered models differ
only by the rule that chose them. Every step is kept in DIR and skipped when done, so the
same command continues; `DIR/choose_by.json` has the result. Run it with the machine to
itself: the candidates' time guards are wall-clock.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXPERIMENT = ROOT / "experiments" / "emotion_35min_nsga2.toml"
RULES = ("score", "score+flops")


def _nas(*argv: str) -> None:
    command = [str(Path(sys.executable).parent / "nas"), *argv]
    print("$", " ".join(command), flush=True)
    if subprocess.call(command) != 0:
        raise SystemExit(f"choose_by: {' '.join(argv[:2])} failed")


def search_only(seed: int) -> str:
    """The shipped experiment with the given seed and its `[final]` off."""
    lines = []
    for line in EXPERIMENT.read_text().splitlines():
        if line.startswith("seed = "):
            line = f"seed = {seed}"
        elif line.startswith("epochs = 24"):
            line = "epochs = 0"
        elif line.startswith("race = "):
            line = "race = 0"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="FER2013 CSV (Kaggle's layout)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=24)
    args = parser.parse_args()

    from nas.engine.experiment import changed
    from nas.engine.migration import stored_experiment
    from nas.engine.race import run_race
    from nas.storage.store import RunStore

    args.out.mkdir(parents=True, exist_ok=True)
    experiment_file = args.out / "search_only.toml"
    experiment_file.write_text(search_only(args.seed))
    run = args.out / "run"
    _nas("search", str(experiment_file), "--data", args.data, "--out", str(run))
    result = {"seed": args.seed, "epochs": args.epochs, "rules": {}}
    for rule in RULES:
        name = rule.replace("+", "-")
        copy = args.out / f"run-{name}"
        if not copy.exists():
            shutil.copytree(run, copy)
        store = RunStore.open(copy)
        ran = stored_experiment(store.info.experiment, source=str(copy / "run.json"))
        final = dataclasses.replace(ran.final, race=4, choose_by=rule)
        winner = run_race(changed(ran, final=final), copy, echo=print)
        export = args.out / f"final-{name}"
        _nas("train", str(copy), "--trial", str(winner.number), "--epochs", str(args.epochs),
             "--out", str(export))  # fmt: skip
        metrics = args.out / f"publictest-{name}.json"
        _nas("evaluate", str(export), "--data", args.data, "--json", str(metrics))
        report = json.loads(metrics.read_text())
        result["rules"][rule] = {
            "winner": winner.number,
            "description": winner.description,
            "params": winner.metrics.get("params"),
            "flops": winner.metrics.get("flops"),
            "accuracy": report["accuracy"],
            "macro_f1": report.get("macro_f1"),
        }
    (args.out / "choose_by.json").write_text(json.dumps(result, indent=1) + "\n")
    for rule, row in result["rules"].items():
        print(f"{rule:12s} trial {row['winner']:3d}  {row['accuracy']:.4f}  {row['description']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
