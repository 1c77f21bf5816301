"""Benchmark (not a test): do ResUNet trainings crash the TensorFlow process, and when?

    .venv/bin/python tests/benchmarks/resunet_crashes.py --data KEYPOINTS.csv [--genomes 8]
        [--images 3000] [--threads 1] [--onednn 0|1|default] [--repeats 1] [--precision float32]

Each genome (the keypoints experiment's seeded `resunet` and draws of the `resunet`
space, seed 0, or the trials of ``--run RUN``) is trained exactly as a search candidate
trains (`nas.training.evaluate.evaluate` at the experiment's budget, capped at ``--images``), each
attempt in a fresh Python process, as a Ray worker would be; the table gives each
attempt's exit: 0, a Python error, or the signal that killed it (SIGSEGV, SIGABRT with
glibc's message). ``--gdb`` runs each attempt under gdb and prints the crashing thread's
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
job = json.loads(open(sys.argv[1]).read())
from nas.engine.experiment import experiment_from_dict
from nas.engine.task_data import load_task_data
from nas.training.evaluate import evaluate
from nas.core.trial import EvalRequest
import dataclasses
experiment = experiment_from_dict(job["experiment"], source="crash benchmark")
data = load_task_data(experiment).eval_data
budget = dataclasses.replace(experiment.budget, train_images=job["images"])
request = EvalRequest(space="resunet", genome=job["genome"], genome_hash=job["hash"],
                      seed=1, budget=budget, threads=job["threads"])
result = evaluate(request, data)
print("RESULT", json.dumps({"failure": result.failure, "detail": result.detail[:200],
                            "rmse": (result.metrics or {}).get("rmse")}), flush=True)
"""


def genomes(experiment, count: int, run: Path | None) -> list[tuple[str, str, dict]]:
    """(hash, description, genome JSON) of the seeded baseline and ``count - 1`` draws,
    or of the trials of ``run``."""
    import numpy as np

    from nas.core.space import genome_hash, load_space

    space = load_space("resunet")
    if run is not None:
        from nas.storage.store import RunStore

        return [(t.genome_hash, t.description, t.genome) for t in RunStore.open(run).trials()]
    from baselines import load_seed

    out = []
    seeded = load_seed("resunet", space).genome
    out.append((genome_hash(space, seeded), space.describe(seeded), space.to_json(seeded)))
    rng = np.random.default_rng(0)
    while len(out) < count:
        genome = space.sample(rng)
        out.append((genome_hash(space, genome), space.describe(genome), space.to_json(genome)))
    return out


def attempt(job: dict, folder: Path, env: dict[str, str], use_gdb: bool) -> tuple[str, float, str]:
    """One training in a fresh process: (how it ended, seconds, the last lines)."""
    job_file = folder / f"{job['hash']}.json"
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
    if "RESULT" in done.stdout and "signal SIG" not in output:
        result = json.loads(done.stdout.split("RESULT", 1)[1].splitlines()[0])
        how = "ok" if result["failure"] is None else f"failed: {result['failure']}"
    elif done.returncode < 0:
        how = f"killed by {signal.Signals(-done.returncode).name}"
    elif "signal SIG" in output:
        how = "gdb: " + next(line for line in lines if "signal SIG" in line).strip()
    else:
        how = f"exit {done.returncode}"
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
    parser.add_argument("--gdb", action="store_true")
    parser.add_argument("--only", default="", help="genome hashes, comma-separated")
    args = parser.parse_args()

    from nas.engine.experiment import load_experiment

    experiment = load_experiment(Path(args.experiment))
    table = experiment.to_dict()
    table["data"]["path"] = args.data
    if args.precision:
        table["budget"]["precision"] = args.precision
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
    try:
        for key, description, genome in chosen:
            for _ in range(args.repeats):
                job = {"experiment": table, "genome": genome, "hash": key,
                       "images": args.images, "threads": args.threads}  # fmt: skip
                how, seconds, tail = attempt(job, folder, env, args.gdb)
                deaths += not how.startswith(("ok", "failed"))
                print(f"{key[:12]}  {how:<28} {seconds:6.0f} s  {description[:80]}", flush=True)
                if not how.startswith("ok"):
                    print("    " + tail.replace("\n", "\n    "), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"process deaths: {deaths} of {len(chosen) * args.repeats} trainings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
