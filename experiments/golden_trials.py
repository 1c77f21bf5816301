"""The same trials before and after a change: small fixed-seed searches, recorded and compared.

    python experiments/golden_trials.py record OUT.json [--cases quickstart,multitask,...]
    python experiments/golden_trials.py compare BEFORE.json AFTER.json

A restructuring must not change what a search does. ``record`` runs each case (a
shrunken copy of a shipped experiment, one worker, its seed fixed) with the ``nas`` of
this checkout, or of the checkout ``PYTHONPATH`` puts first, and writes each trial's
number, generation, genome hash, genome, values and failure, read from the run's Optuna
study. ``compare`` prints the first trial that differs and exits 1, or says they are the
same. Values are compared exactly: record both files on one machine with nothing else
running and ``TF_ENABLE_ONEDNN_OPTS=0`` (the script sets it), since another CPU or
threading rounds differently.

The cases cover the parts a strategy or driver change touches: plain NSGA-II on the
built-in faces (``quickstart``), pre-screening and multi-fidelity (``nsga2-knobs``), the
random strategy given NSGA-II's keys, which it ignores (``random``), and the multi-task
quickstart (``multitask``). All four take about 6 minutes on 2 cores. Their budget is
small (800 images a candidate), so the candidates score near chance: the check is that
the genomes, their order and every value come out the same, not that they learn.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SMALL_BUDGET = {
    "train_images": 800,
    "max_train_images": 400,
    "max_validation_images": 200,
    "train_seconds": 3600,  # never the guard: a cut depends on the machine's load
    "timeout_seconds": 7200,
}
CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "quickstart": ("quickstart.toml", {"population": 4, "generations": 2}, {}),
    "nsga2-knobs": (
        "quickstart.toml",
        {
            "population": 4,
            "generations": 3,
            "prescreen": 4,
            "low_fidelity_images": 400,
            "promote_fraction": 0.5,
            "crossover_prob": 0.9,
        },
        {},
    ),
    "random": (
        "quickstart.toml",
        {"strategy": "random", "population": 4, "generations": 1, "prescreen": 4},
        {},
    ),
    "multitask": ("multitask_quickstart.toml", {"population": 4, "generations": 1}, {}),
}
VOLATILE = ("seconds", "started", "finished", "cpu", "host", "pid", "node", "worker", "time", "rss")
"""User attributes that name a time, a place or a memory size, not an outcome: left out
of the record (and of the comparison)."""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def case_experiment(name: str) -> str:
    """The case's experiment: the shipped file with its [search] and [budget] keys
    replaced (the keys it names) and one worker."""
    source, search, budget = CASES[name]
    changes = {
        "search": search | {"workers": 1},
        "budget": SMALL_BUDGET | budget,
    }
    lines: list[str] = []
    section = ""
    for line in (ROOT / "experiments" / source).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            lines.extend(_assignments(changes.pop(section, {})))
            section = stripped.strip("[]")
        key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
        if key and key in changes.get(section, {}):
            continue  # replaced below
        if stripped.startswith("name = "):
            line = f'name = "golden-{name}"'
        lines.append(line)
    lines.extend(_assignments(changes.pop(section, {})))
    for missing, keys in changes.items():  # a section the file lacks
        lines.extend([f"[{missing}]", *_assignments(keys)])
    return "\n".join(lines) + "\n"


def _assignments(keys: dict[str, Any]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in keys.items()]


def _trials(storage: str) -> list[dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = {
            key: value
            for key, value in sorted(trial.user_attrs.items())
            if not any(word in key for word in VOLATILE)
        }
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "values": trial.values,
                "params": dict(sorted(trial.params.items())),
                "attrs": attrs,
            }
        )
    return rows


def record(out: Path, cases: list[str]) -> None:
    """Run each case with this checkout's ``nas`` and write their trials to ``out``."""
    env = os.environ | {"TF_ENABLE_ONEDNN_OPTS": "0", "PYTHONHASHSEED": "0"}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="golden-") as work:
        for name in cases:
            path = Path(work) / f"{name}.toml"
            path.write_text(case_experiment(name))
            run_dir = Path(work) / name
            command = [
                sys.executable,
                "-c",
                "import sys; from nas.cli import main; sys.exit(main())",
                "search",
                str(path),
                "--out",
                str(run_dir),
                "--workers",
                "1",
            ]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"golden: case {name} failed ({done.returncode}): {done.stderr[-2000:]}")
            result[name] = _trials(f"sqlite:///{run_dir / 'study.db'}")
            print(f"{name}: {len(result[name])} trials", flush=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


def _outcomes(record: dict[str, Any]) -> dict[str, Any]:
    for rows in record.values():
        for row in rows:
            row["attrs"] = {
                k: v for k, v in row["attrs"].items() if not any(w in k for w in VOLATILE)
            }
            metrics = row["attrs"].get("metrics") or {}
            metrics.pop("latency_ms", None)  # a time, measured whatever the objectives
    return record


def compare(before: Path, after: Path) -> int:
    """0 when both records hold the same trials, else 1 after naming the first difference."""
    old, new = (_outcomes(json.loads(p.read_text())) for p in (before, after))
    if sorted(old) != sorted(new):
        print(f"different cases: {sorted(old)} and {sorted(new)}")
        return 1
    for name in old:
        if len(old[name]) != len(new[name]):
            print(f"{name}: {len(old[name])} trials before, {len(new[name])} after")
            return 1
        for a, b in zip(old[name], new[name], strict=True):
            if a != b:
                keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
                print(f"{name}: trial {a['number']} differs in {', '.join(keys)}")
                for key in keys:
                    print(f"  before {key}: {a.get(key)}\n  after  {key}: {b.get(key)}")
                return 1
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in old.items())
    print(f"the same trials ({counts})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--cases", default=",".join(CASES))
    cmp = commands.add_parser("compare")
    cmp.add_argument("before", type=Path)
    cmp.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        cases = [c for c in args.cases.split(",") if c]
        unknown = [c for c in cases if c not in CASES]
        if unknown:
            parser.error(f"unknown case {unknown[0]!r} (known: {', '.join(CASES)})")
        record(args.out, cases)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
