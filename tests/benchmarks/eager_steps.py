"""Benchmark (not a test): a tiny candidate's evaluation traced or eager, by its steps.

    python tests/benchmarks/eager_steps.py traced|eager [CANDIDATES] [IMAGES]

Evaluates CANDIDATES (default 6) ``cnn`` genomes drawn with seed 1 on IMAGES (default 96)
built-in faces each (one epoch, 48 validation faces, one thread, oneDNN off as in the
test suite), in this process, and prints each evaluation's seconds, its steps and their
median. ``traced`` forces the train step into a ``tf.function`` whatever the steps;
``eager`` runs every step eagerly. ``nas.training.core.EAGER_MAX_STEPS`` was set from
its output (docs/development.md). Run both modes in fresh processes, one at a time, on an
idle machine: the first candidate of a process also pays one-time costs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np


def main() -> None:
    mode = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    images = int(sys.argv[3]) if len(sys.argv) > 3 else 96
    if mode not in ("traced", "eager"):
        sys.exit("eager_steps.py: the mode is traced or eager")

    import nas.training.core as core
    import nas.training.evaluate as evaluate_module
    from nas.core.space import genome_hash, load_space
    from nas.core.trial import EvalRequest
    from nas.data.synthetic import write_emotion_csv
    from nas.engine.experiment import experiment_from_dict
    from nas.engine.task_data import load_task_data

    forced = 0 if mode == "eager" else None  # 0 steps: eager; None: traced
    original = core.compile_for_training

    def compile_forced(model, optimizer, loss, *, steps=None):
        original(model, optimizer, loss, steps=forced)

    evaluate_module.compile_for_training = compile_forced

    folder = Path(tempfile.mkdtemp())
    os.environ["NAS_CACHE_DIR"] = str(folder / "cache")
    write_emotion_csv(folder / "faces.csv.gz", n=max(400, 2 * images), seed=7)
    experiment = experiment_from_dict(
        {
            "name": "eager",
            "seed": 3,
            "data": {"path": str(folder / "faces.csv.gz")},
            "budget": {
                "epochs": 1,
                "max_train_images": images,
                "max_validation_images": 48,
                "max_params": 200_000,
                "train_seconds": 120,
            },
        }
    )
    data = load_task_data(experiment).eval_data
    space = load_space("cnn")
    rng = np.random.default_rng(1)
    seconds = []
    for _ in range(count):
        genome = space.sample(rng)
        request = EvalRequest(
            space="cnn",
            genome=space.to_json(genome),
            genome_hash=genome_hash(space, genome),
            seed=3,
            budget=experiment.budget,
        )
        start = time.perf_counter()
        result = evaluate_module.evaluate(request, data)
        if not result.ok:
            print(f"{mode} {images}: {result.failure}, not counted", flush=True)
            continue
        seconds.append(time.perf_counter() - start)
        print(f"{mode} {images}: {seconds[-1]:.2f} s, {result.train_steps} steps", flush=True)
    print(f"{mode} {images}: median {np.median(seconds):.2f} s of {len(seconds)} candidates")


if __name__ == "__main__":
    main()
