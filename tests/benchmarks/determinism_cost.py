"""Benchmark (not a test): training time with TensorFlow op determinism on and off.

    python tests/benchmarks/determinism_cost.py on|off [GENOMES]

Trains GENOMES (default 4) sampled CNN genomes for 2 epochs on 800 built-in faces with
2 threads, in this process, and prints the seconds spent in ``evaluate`` and a digest of
the trained weights (equal digests across runs mean bit-identical training). Run it under
``farm-bench --vs`` to compare the two settings fairly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time

import numpy as np

from nas.core.space import genome_hash, load_space
from nas.core.trial import EvalRequest, derive_seed
from nas.engine.experiment import experiment_from_dict
from nas.engine.task_data import load_task_data


def main() -> None:
    deterministic = sys.argv[1] == "on"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    experiment = experiment_from_dict(
        {
            "name": "determinism",
            "budget": {"epochs": 2, "max_train_images": 800, "max_validation_images": 200},
        }
    )
    budget = dataclasses.replace(experiment.budget, deterministic=deterministic)
    data = load_task_data(experiment).eval_data
    space = load_space("cnn")
    rng = np.random.default_rng(1)
    from nas.training.evaluate import evaluate

    seconds, digest = 0.0, hashlib.sha256()
    for _ in range(count):
        genome = space.sample(rng)
        key = genome_hash(space, genome)
        request = EvalRequest(
            space="cnn",
            genome=space.to_json(genome),
            genome_hash=key,
            seed=derive_seed(0, key),
            budget=budget,
            threads=2,
        )
        started = time.perf_counter()
        result = evaluate(request, data)
        seconds += time.perf_counter() - started
        digest.update(result.weights or result.failure.encode())
    print(
        f"determinism {sys.argv[1]}: {seconds:.1f} s in evaluate, weights {digest.hexdigest()[:12]}"
    )


if __name__ == "__main__":
    main()
