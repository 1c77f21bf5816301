"""Benchmark (not a test): do ResUNet trainings crash the TensorFlow process, and when?

    .venv/bin/python tests/benchmarks/resunet_crashes.py --data KEYPOINTS.csv [--genomes 8]
        [--images 3000] [--threads 1] [--onednn 0|1|default] [--repeats 1] [--precision float32]

Each genome (the keypoints experiment's seeded `resunet` and draws of the experiment's
space, seed 0, or the trials of ``--run RUN``) is trained exactly as a search candidate
trains (`nas.training.evaluate.evaluate` at the experiment's budget, capped at ``--images``),
``--per-process K`` of them one after another in one Python process, as a Ray worker trains
the candidates it is given (with ``--inherit``, each starting from the weights of the one
before, as NSGA-II's children do); the table gives each process's exit: 0, a Python error,
or the signal that killed it (SIGSEGV, SIGABRT with glibc's message), and how many of its
trainings had finished. ``--gdb`` runs each attempt under gdb and prints the crashing thread's
backtrace, which names the TensorFlow kernel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import nas.training.core as core  # nas is a namespace package: ask a module of it
print("CODE", os.path.dirname(os.path.dirname(os.path.dirname(core.__file__))), flush=True)
batch = json.loads(open(sys.argv[1]).read())
from nas.engine.experiment import experiment_from_dict
from nas.engine.task_data import load_task_data
from nas.training.evaluate import evaluate
from nas.core.trial import EvalRequest, ParentWeights
import dataclasses
experiment = experiment_from_dict(batch["experiment"], source="crash benchmark")
data = load_task_data(experiment).eval_data
parent = None
for job in batch["jobs"]:
    budget = dataclasses.replace(experiment.budget, train_images=job["images"])
    parents = (parent,) if parent is not None and batch["inherit"] else ()
    request = EvalRequest(space=job["space"], genome=job["genome"], genome_hash=job["hash"],
                          seed=1, budget=budget, threads=job["threads"], parents=parents)
    result = evaluate(request, data)
    if result.weights is not None:
        parent = ParentWeights(job["genome"], result.weights)
    print("RESULT", json.dumps({"failure": result.failure, "detail": result.detail[:200],
                                "rmse": (result.metrics or {}).get("rmse")}), flush=True)
"""


def genomes(experiment, count: int, run: Path | None) -> list[tuple[str, str, dict]]:
    """(hash, description, genome JSON) of the seeded baseline and ``count - 1`` draws,
    or of the trials of ``run``."""
    import numpy as np

    from nas.core.space import genome_hash, load_space

    space = load_space(experiment.space)
    if run is not None:
        from nas.storage.store import RunStore

        return [(t.genome_hash, t.description, t.genome) for t in RunStore.open(run).trials()]
    from baselines import load_seed

    out = []
    for name in experiment.search.seeds:
        seeded = load_seed(name, space).genome
        out.append((genome_hash(space, seeded), space.describe(seeded), space.to_json(seeded)))
    rng = np.random.default_rng(0)
    while len(out) < count:
        genome = space.sample(rng)
        out.append((genome_hash(space, genome), space.describe(genome), space.to_json(genome)))
    return out


def attempt(job: dict, folder: Path, env: dict[str, str], use_gdb: bool) -> tuple[str, float, str]:
    """One fresh process training the jobs of ``job`` in turn: (how it ended, seconds,
    the last lines)."""
    job_file = folder / f"{job['jobs'][0]['hash']}.json"
    job_file.write_text(json.dumps(job))
    script = folder / "child.py"
    script.write_text(CHILD)
    command = [sys.executable, str(script), str(job_file)]
    if use_gdb:
        command = ["gdb", "-batch", "-ex", "run", "-ex", "bt 25", "--args", *command]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    results = [
        json.loads(line.split("RESULT", 1)[1])
        for line in done.stdout.splitlines()
        if "RESULT" in line
    ]
    finished = f"{len(results)}/{len(job['jobs'])} trained"
    code = next(
        (line.split(None, 1)[1] for line in done.stdout.splitlines() if line.startswith("CODE")),
        "?",
    )
    print(f"    (the code of {code})", flush=True)
    if len(results) == len(job["jobs"]) and "signal SIG" not in output:
        failures = [r["failure"] for r in results if r["failure"] is not None]
        how = "ok" if not failures else f"failed: {', '.join(failures)}"
    elif done.returncode < 0:
        how = f"killed by {signal.Signals(-done.returncode).name} ({finished})"
    elif "signal SIG" in output:
        how = "gdb: " + next(line for line in lines if "signal SIG" in line).strip()
    else:
        how = f"exit {done.returncode} ({finished})"
    return how, seconds, "\n".join(lines[-30:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--experiment", default=str(REPO / "experiments" / "keypoints.toml"))
    parser.add_argument("--run", type=Path)
    parser.add_argument("--genomes", type=int, default=8)
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--onednn", default="default", choices=("0", "1", "default"))
    parser.add_argument("--precision", default="")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--per-process", type=int, default=1, help="trainings per process")
    parser.add_argument("--inherit", action="store_true", help="each from the previous weights")
    parser.add_argument("--gdb", action="store_true")
    parser.add_argument("--only", default="", help="genome hashes, comma-separated")
    args = parser.parse_args()

    from nas.engine.experiment import load_experiment

    experiment = load_experiment(Path(args.experiment))
    table = experiment.to_dict()
    table["data"]["path"] = args.data
    if args.precision:
        table["budget"]["precision"] = args.precision
    if not table["budget"].get("max_flops"):  # at its default: left out for older checkouts
        table["budget"].pop("max_flops", None)
    env = dict(os.environ)
    if args.onednn != "default":
        env["TF_ENABLE_ONEDNN_OPTS"] = args.onednn
    chosen = genomes(experiment, args.genomes, args.run)
    if args.only:
        chosen = [g for g in chosen if g[0] in args.only.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="resunet-crashes-"))
    print(
        f"{len(chosen)} genomes x {args.repeats}, {args.images} images, {args.threads} "
        f"thread(s), oneDNN {args.onednn}, precision {table['budget'].get('precision', '?')}"
    )
    deaths = 0
    processes = [chosen[i : i + args.per_process] for i in range(0, len(chosen), args.per_process)]
    print(f"{args.per_process} training(s) per process, inherit {args.inherit}")
    try:
        for group in processes:
            for _ in range(args.repeats):
                jobs = [{"genome": genome, "hash": key, "space": experiment.space,
                         "images": args.images, "threads": args.threads}
                        for key, _, genome in group]  # fmt: skip
                batch = {"experiment": table, "jobs": jobs, "inherit": args.inherit}
                how, seconds, tail = attempt(batch, folder, env, args.gdb)
                deaths += not how.startswith(("ok", "failed"))
                names = "; ".join(description[:40] for _, description, _ in group)
                print(f"{group[0][0][:12]}  {how:<36} {seconds:6.0f} s  {names[:120]}", flush=True)
                if not how.startswith("ok"):
                    print("    " + tail.replace("\n", "\n    "), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"process deaths: {deaths} of {len(processes) * args.repeats} processes "
          f"({len(chosen) * args.repeats} trainings)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
