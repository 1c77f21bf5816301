"""Benchmark (not a test): how fast facenas trains, and where its evaluator spends time.

    .venv/bin/python tests/benchmarks/speed.py [--data PATH] [--sections abcd] [sizes...]

a. ``nas.training.evaluate.evaluate`` against a plain ``model.compile(); model.fit(x, y, ...)`` of
   the same genome on the same FER images, batch size, epochs and threads, in this
   process, alternating, ``--repeats`` times; prints the median training time of both,
   their ratio (goal <= 1.05x), the parts of ``evaluate`` outside training (build, FLOP
   count, predicting the validation split, latency, weights...) and the whole
   ``evaluate`` against the plain build + compile + fit.
b. this machine's matrix-multiply peak (float32 and bfloat16 ``tf.linalg.matmul`` with
   the same threads) and the training FLOP/s the model reaches (``count_flops`` per image
   x 3 for forward and backward x images per second), as a share of the peak.
c. loading FER2013 with ``nas.data.datasets.load_emotions``: the first call (a parse when the
   cache is empty), a second, cached call, and a cached call in a fresh process.
d. evaluations per hour on Ray (``nas.engine.parallel.RayEvaluator``) with 1 worker x 2 threads
   and 2 workers x 1 thread, on the same sampled genomes and a small FER budget.

The default run took 10-12 minutes on 2 cores shared with other work (less when idle).
The machine's busy cores and load average are printed with each section: other work on
the machine slows everything and makes wall times noisy (the fits' CPU seconds are
printed too).
By default the FER cache is a fresh temporary folder (so the first load parses); pass
``--cache-dir`` to use another one (e.g. ``~/.cache/facenas``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"

#: A small ResNet-like genome of the cnn space (3 stages of 2 basic blocks, 16-32-64).
FIXED_GENOME: dict[str, Any] = {
    "stem": {"width": 16, "kernel": 3, "stride": 1, "pool": False},
    "stages": [
        {"block": "basic", "depth": 2, "width": w, "kernel": 3, "stride": s, "expansion": 1}
        | {"se": False, "activation": "relu"}
        for w, s in ((16, 1), (32, 2), (64, 2))
    ],
    "head": {"pooling": "avg", "dense": [], "dropout": 0.0},
    "training": {"learning_rate": 1e-3, "batch_size": 64, "optimizer": "adam", "weight_decay": 0.0},
}


# --- measuring the machine --------------------------------------------------------------


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class Section:
    """Times a section and how busy the machine was meanwhile (all processes, and ours)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.load_start = _loadavg()
        self.load_end = ""
        self.jiffies = _cpu_jiffies()
        self.own = time.process_time()
        self.wall = time.perf_counter()
        self.busy_cores = self.own_cores = 0.0
        print(f"\n== {name}   (load average at start: {self.load_start})", flush=True)

    def end(self) -> None:
        busy, total = _cpu_jiffies()
        cores = os.cpu_count() or 1
        wall = time.perf_counter() - self.wall
        self.busy_cores = (busy - self.jiffies[0]) / max(1, total - self.jiffies[1]) * cores
        self.own_cores = (time.process_time() - self.own) / max(wall, 1e-9)
        self.load_end = _loadavg()
        print(
            f"   [{self.name}: {wall:.0f} s; machine busy {self.busy_cores:.2f} of {cores} "
            f"cores, this process {self.own_cores:.2f}; load average at end {self.load_end}]",
            flush=True,
        )


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- data -------------------------------------------------------------------------------


def _experiment(data: Path, budget: dict[str, Any]) -> Any:
    from nas.engine.experiment import experiment_from_dict

    return experiment_from_dict(
        {
            "name": "speed",
            "seed": 0,
            "space": "cnn",
            "data": {"task": "emotion", "path": str(data), "classes": 5},
            "budget": budget,
        }
    )


def _load_task_data(experiment: Any) -> Any:
    """The images every candidate sees: ``nas.engine.task_data.load_task_data``, the product's path."""
    from nas.engine.task_data import load_task_data

    return load_task_data(experiment).eval_data


def _request(space: Any, genome: Any, budget: Any, threads: int) -> Any:
    """An EvalRequest built as ``nas.engine.search`` builds them."""
    from nas.core.space import genome_hash
    from nas.core.trial import EvalRequest, derive_seed

    key = genome_hash(space, genome)
    return EvalRequest(
        space="cnn",
        genome=space.to_json(genome),
        genome_hash=key,
        seed=derive_seed(0, key),
        budget=budget,
        threads=threads,
    )


# --- c: loading FER ---------------------------------------------------------------------

_FRESH_LOAD = """
import sys, time
t = time.perf_counter()
from nas.data.datasets import load_emotions
imported = time.perf_counter() - t
t = time.perf_counter()
load_emotions(sys.argv[1], classes=5)
print(imported, time.perf_counter() - t)
"""


def section_c(data: Path, cache_dir: Path) -> dict[str, Any]:
    from nas.data.datasets import load_emotions

    section = Section("c. FER2013 load (nas.data.datasets.load_emotions, 5 classes)")
    cached_before = any(cache_dir.glob("parsed-*.npz"))
    started = time.perf_counter()
    emotions = load_emotions(data, classes=5)
    first = time.perf_counter() - started
    started = time.perf_counter()
    load_emotions(data, classes=5)
    second = time.perf_counter() - started
    fresh = subprocess.run(
        [sys.executable, "-c", _FRESH_LOAD, str(data)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"NAS_CACHE_DIR": str(cache_dir)},
        cwd=REPO,
    )
    fresh_import, fresh_load = (float(v) for v in fresh.stdout.split()[-2:])
    started = time.perf_counter()
    digest = hashlib.sha256()
    with data.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    hashing = time.perf_counter() - started
    cache_mb = sum(p.stat().st_size for p in cache_dir.glob("parsed-*.npz")) / 1e6
    print(
        f"   {data} ({data.stat().st_size / 1e6:.0f} MB): train {len(emotions.train)}, "
        f"validation {len(emotions.validation)} images; cache {cache_dir} ({cache_mb:.0f} MB)"
    )
    what = "cached" if cached_before else "parse + write cache"
    print(f"   first call ({what}):        {first:7.2f} s")
    print(f"   second call (cached):            {second:7.2f} s")
    print(
        f"   fresh process (cached):          {fresh_load:7.2f} s "
        f"(+ {fresh_import:.2f} s to import nas.data.datasets)"
    )
    print(f"   of a cached call, SHA-256 of the file alone: {hashing:.2f} s")
    section.end()
    return {
        "section": section,
        "first": first,
        "first_kind": what,
        "second": second,
        "fresh": fresh_load,
        "hash": hashing,
    }


# --- b: matrix-multiply peak ------------------------------------------------------------


def matmul_peak(size: int, dtype: str, seconds: float = 1.5) -> float:
    """Best GFLOP/s of a ``size`` x ``size`` matmul over a few timed bursts."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal((size, size), seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal((size, size), seed=[3, 4]), dtype)
    matmul = tf.function(tf.linalg.matmul)
    matmul(a, b).numpy()
    flops = 2.0 * size**3
    started = time.perf_counter()
    count = 0
    while time.perf_counter() - started < seconds / 5:
        matmul(a, b).numpy()
        count += 1
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(count):
            c = matmul(a, b)
        c.numpy()
        best = max(best, flops * count / (time.perf_counter() - t) / 1e9)
    return best


def section_b_peak(size: int, bf16: bool, threads: int) -> dict[str, Any]:
    section = Section(
        f"b. matrix-multiply peak ({size}x{size} tf.linalg.matmul, {threads} threads)"
    )
    peaks = {"float32": matmul_peak(size, "float32")}
    if bf16:
        peaks["bfloat16"] = matmul_peak(size, "bfloat16")
    for dtype, gflops in peaks.items():
        print(f"   {dtype:<9} {gflops:8.1f} GFLOP/s")
    section.end()
    return {"section": section, "peaks": peaks}


# --- a: evaluate() against a plain fit --------------------------------------------------

_EVALUATE_PARTS = (
    "build",
    "flops",
    "compile",
    "dataset",
    "fit",
    "predict",
    "latency",
    "weights",
    "cleanup",
)


def _epoch_timer() -> Any:
    """A Keras callback that times each epoch and the CPU seconds of the whole training.

    It has epoch hooks only, so a plain fit keeps Keras' asynchronous batch dispatch.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs: list[float] = []
            self.cpu = 0.0  # process CPU seconds (all threads) of the training loop
            self._start = 0.0

        def on_train_begin(self, logs=None) -> None:
            self.cpu = -time.process_time()

        def on_train_end(self, logs=None) -> None:
            self.cpu += time.process_time()

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.epochs.append(time.perf_counter() - self._start)

    return EpochTimer()


@contextlib.contextmanager
def _timed_evaluate_parts(times: dict[str, float], timer: Any) -> Iterator[None]:
    """Wrap the pieces of ``nas.training.evaluate`` in timers (and add ``timer`` to its fit)."""
    import keras

    import nas.training.evaluate as ev
    from search_spaces.cnn import CnnSpace

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] = times.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    fit = keras.Model.fit

    def fit_with_timer(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), timer]
        return fit(self, *args, **kwargs)

    patches = [
        (CnnSpace, "build", timed("build", CnnSpace.build)),
        (ev, "count_flops", timed("flops", ev.count_flops)),
        (keras.Model, "compile", timed("compile", keras.Model.compile)),
        (ev, "_training_batches", timed("dataset", ev._training_batches)),
        (keras.Model, "fit", timed("fit", fit_with_timer)),
        (keras.Model, "predict", timed("predict", keras.Model.predict)),
        (ev, "_latency_ms", timed("latency", ev._latency_ms)),
        (ev, "_weights_bytes", timed("weights", ev._weights_bytes)),
        (keras.backend, "clear_session", timed("cleanup", keras.backend.clear_session)),
        (ev, "gc", types.SimpleNamespace(collect=timed("cleanup", gc.collect))),
    ]
    missing = object()
    saved = [(owner, name, vars(owner).get(name, missing)) for owner, name, _ in patches]
    try:
        for owner, name, wrapper in patches:
            setattr(owner, name, wrapper)
        yield
    finally:
        for owner, name, original in saved:
            if original is missing:
                delattr(owner, name)  # it was inherited
            else:
                setattr(owner, name, original)


def run_evaluate(request: Any, data: Any) -> dict[str, Any]:
    from nas.training.evaluate import evaluate

    times: dict[str, float] = {}
    timer = _epoch_timer()
    with _timed_evaluate_parts(times, timer):
        started = time.perf_counter()
        result = evaluate(request, data)
        total = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"evaluate() failed: {result.failure}: {result.detail}")
    times["other"] = total - sum(times.values())
    return {
        "total": total,
        "parts": times,
        "epochs": timer.epochs,
        "cpu": timer.cpu,
        "metrics": result.metrics,
    }


def run_plain(request: Any, data: Any, images: int | None = None, epochs: int = 0) -> dict:
    """Build, compile and fit the genome with Keras alone (same seed, batch size, epochs)."""
    import keras

    from nas.core.space import load_space
    from nas.training.core import make_optimizer

    space = load_space(request.space)
    genome = space.from_json(request.genome)
    recipe = space.recipe(genome)
    x = data.train_images[:images].astype(np.float32)
    y = data.train_targets[:images]
    timer = _epoch_timer()
    started = time.perf_counter()
    keras.utils.set_random_seed(request.seed)  # evaluate() seeds here too
    model = space.build(genome, data.task)
    model.compile(optimizer=make_optimizer(recipe), loss="sparse_categorical_crossentropy")
    built = time.perf_counter()
    model.fit(
        x,
        y,
        batch_size=recipe.batch_size,
        epochs=epochs or request.budget.epochs,
        verbose=0,
        callbacks=[timer],
    )
    done = time.perf_counter()
    keras.backend.clear_session()
    gc.collect()
    return {
        "total": done - started,
        "build": built - started,
        "fit": done - built,
        "cleanup": time.perf_counter() - done,
        "epochs": timer.epochs,
        "cpu": timer.cpu,
    }


def section_a(request: Any, data: Any, repeats: int) -> dict[str, Any]:
    section = Section(
        f"a. evaluate() vs plain model.fit ({len(data.train_targets)} train / "
        f"{len(data.validation_targets)} validation images, {request.budget.epochs} epochs, "
        f"{request.threads} threads, {repeats} repeats alternating)"
    )
    print("   warm-up: a short plain fit (discarded)", flush=True)
    run_plain(request, data, images=256, epochs=1)
    runs: dict[str, list[dict[str, Any]]] = {"evaluate": [], "plain": []}
    for r in range(repeats):
        order = ("evaluate", "plain") if r % 2 == 0 else ("plain", "evaluate")
        for kind in order:
            run = run_evaluate(request, data) if kind == "evaluate" else run_plain(request, data)
            runs[kind].append(run)
            fit = run["parts"]["fit"] if kind == "evaluate" else run["fit"]
            epochs = " ".join(f"{e:.1f}" for e in run["epochs"])
            print(
                f"   repeat {r + 1} {kind:<8}: total {run['total']:6.1f} s, fit {fit:6.1f} s "
                f"(epochs {epochs} s; CPU {run['cpu']:.1f} s)",
                flush=True,
            )
    ev, plain = runs["evaluate"], runs["plain"]
    med = statistics.median
    parts = {p: med(run["parts"].get(p, 0.0) for run in ev) for p in (*_EVALUATE_PARTS, "other")}
    out = {
        "section": section,
        "train_images": len(data.train_targets),
        "epochs": request.budget.epochs,
        "fit_evaluate": parts["fit"],
        "fit_plain": med(run["fit"] for run in plain),
        "cpu_evaluate": med(run["cpu"] for run in ev),
        "cpu_plain": med(run["cpu"] for run in plain),
        "last_epoch_evaluate": med(run["epochs"][-1] for run in ev),
        "last_epoch_plain": med(run["epochs"][-1] for run in plain),
        "total_evaluate": med(run["total"] for run in ev),
        "total_plain": med(run["total"] for run in plain),
        "build_plain": med(run["build"] for run in plain),
        "cleanup_plain": med(run["cleanup"] for run in plain),
        "parts": parts,
        "flops": ev[0]["metrics"]["flops"],
        "params": ev[0]["metrics"]["params"],
        "accuracy": med(run["metrics"]["accuracy"] for run in ev),
        "spread": (
            min(e["parts"]["fit"] / p["fit"] for e, p in zip(ev, plain, strict=True)),
            max(e["parts"]["fit"] / p["fit"] for e, p in zip(ev, plain, strict=True)),
        ),
    }
    print(
        f"   medians: evaluate fit {out['fit_evaluate']:.1f} s, plain fit {out['fit_plain']:.1f} s"
    )
    print("   evaluate() parts (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    section.end()
    return out


# --- d: evaluations per hour on Ray -----------------------------------------------------


def pick_genomes(count: int, seed: int, max_mflops: float, task: Any) -> list[Any]:
    """The first ``count`` genomes sampled from ``seed`` at or under ``max_mflops``."""
    import keras

    from nas.training.model_stats import count_flops
    from search_spaces.cnn import SPACE

    rng = np.random.default_rng(seed)
    chosen = []
    for _ in range(200):
        genome = SPACE.sample(rng)
        model = SPACE.build(genome, task)
        mflops = count_flops(model) / 1e6
        del model
        if mflops <= max_mflops:
            chosen.append((genome, mflops))
            if len(chosen) == count:
                break
    keras.backend.clear_session()
    return chosen


def section_d(data: Any, budget: Any, genomes: list[Any]) -> dict[str, Any]:
    from nas.engine.parallel import RayEvaluator
    from search_spaces.cnn import SPACE

    cores = os.cpu_count() or 1
    section = Section(
        f"d. evaluations per hour on Ray ({len(genomes)} genomes, {budget.epochs} epoch, "
        f"{len(data.train_targets)} train / {len(data.validation_targets)} validation images)"
    )
    for genome, mflops in genomes:
        print(f"   {mflops:7.1f} MFLOP  {SPACE.describe(genome)}")
    rates = {}
    for workers in (1, 2):
        threads = max(1, cores // workers)
        requests = [_request(SPACE, g, budget, threads) for g, _ in genomes]
        started = time.perf_counter()
        evaluator = RayEvaluator(
            data, workers=workers, threads=threads, timeout_seconds=budget.timeout_seconds
        )
        try:
            ready = time.perf_counter()
            results = list(evaluator.map(requests))
            done = time.perf_counter()
        finally:
            evaluator.close()
        failed = [f"{r.failure}: {r.detail[:80]}" for r in results if not r.ok]
        per_eval = statistics.median(r.seconds for r in results)
        rate = len(results) / (done - ready) * 3600
        rate_all = len(results) / (done - started) * 3600
        rates[workers] = {
            "threads": threads,
            "rate": rate,
            "rate_with_start": rate_all,
            "start": ready - started,
            "map": done - ready,
            "per_eval": per_eval,
            "failed": len(failed),
        }
        print(
            f"   {workers} worker(s) x {threads} thread(s): {len(results)} evaluations in "
            f"{done - ready:.0f} s (+ {ready - started:.0f} s starting Ray) -> {rate:.0f} / hour "
            f"({rate_all:.0f} with the start); median {per_eval:.1f} s in a worker; "
            f"{len(failed)} failed",
            flush=True,
        )
        for line in failed:
            print(f"      failed: {line}")
    section.end()
    return {"section": section, "rates": rates}


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FER2013 csv(.gz)")
    parser.add_argument("--cache-dir", type=Path, help="parsed-data cache (default: a temp dir)")
    parser.add_argument("--sections", default="abcd", help="which of a, b, c, d to run")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--train-images", type=int, default=768, help="a: train images")
    parser.add_argument("--validation-images", type=int, default=1000, help="a: validation")
    parser.add_argument("--epochs", type=int, default=2, help="a: epochs")
    parser.add_argument("--repeats", type=int, default=3, help="a: repeats of each path")
    parser.add_argument("--sample-genome", type=int, help="a: sample the genome with this seed")
    parser.add_argument("--matmul-size", type=int, default=2048, help="b: matrix side")
    parser.add_argument("--no-bf16", action="store_true", help="b: skip the bfloat16 peak")
    parser.add_argument("--ray-genomes", type=int, default=6, help="d: genomes")
    parser.add_argument("--ray-seed", type=int, default=0, help="d: sampling seed")
    parser.add_argument("--ray-max-mflops", type=float, default=150.0, help="d: skip larger")
    parser.add_argument("--ray-train-images", type=int, default=2000)
    parser.add_argument("--ray-validation-images", type=int, default=1000)
    parser.add_argument("--ray-epochs", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file (FER2013 fer2013.csv or .csv.gz)")

    own_cache = args.cache_dir is None
    cache_dir = Path(tempfile.mkdtemp(prefix="speed-cache-")) if own_cache else args.cache_dir
    os.environ["NAS_CACHE_DIR"] = str(cache_dir)  # every load below shares it
    print(
        f"speed benchmark: {os.cpu_count()} cores, {args.threads} TensorFlow threads, "
        f"load average {_loadavg()}"
    )
    results: dict[str, Any] = {}
    try:
        if "c" in args.sections:
            results["c"] = section_c(args.data, cache_dir)
        if {"a", "b", "d"} & set(args.sections):
            from nas.training.core import configure_process

            # before TensorFlow's first op: fixes the thread pools, as a worker does
            configure_process(args.threads, deterministic=True)
        if "b" in args.sections:
            results["b"] = section_b_peak(args.matmul_size, not args.no_bf16, args.threads)
        if "a" in args.sections:
            results["a"] = _run_a(args)
        if "d" in args.sections:
            budget = {
                "epochs": args.ray_epochs,
                "max_train_images": args.ray_train_images,
                "max_validation_images": args.ray_validation_images,
            }
            experiment = _experiment(args.data, budget)
            data = _load_task_data(experiment)
            genomes = pick_genomes(args.ray_genomes, args.ray_seed, args.ray_max_mflops, data.task)
            results["d"] = section_d(data, experiment.budget, genomes)
    finally:
        if own_cache:
            shutil.rmtree(cache_dir, ignore_errors=True)
    print_table(results)


def _run_a(args: argparse.Namespace) -> dict[str, Any]:
    from search_spaces.cnn import SPACE

    budget = {
        "epochs": args.epochs,
        "max_train_images": args.train_images,
        "max_validation_images": args.validation_images,
    }
    experiment = _experiment(args.data, budget)
    data = _load_task_data(experiment)
    if args.sample_genome is None:
        genome = SPACE.from_json(FIXED_GENOME)
    else:
        genome = SPACE.sample(np.random.default_rng(args.sample_genome))
    print(f"   genome: {SPACE.describe(genome)}")
    request = _request(SPACE, genome, experiment.budget, args.threads)
    return section_a(request, data, args.repeats)


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = []
    if "a" in results:
        a = results["a"]
        rows += [
            ("a  model", f"{a['params']:,.0f} params, {a['flops'] / 1e6:.1f} MFLOP/image forward"),
            (
                "a  fit in evaluate() / plain fit",
                f"{a['fit_evaluate'] / a['fit_plain']:.3f}x  ({a['fit_evaluate']:.1f} / "
                f"{a['fit_plain']:.1f} s; per-repeat {a['spread'][0]:.2f}-{a['spread'][1]:.2f}; "
                "goal <= 1.05x)",
            ),
            (
                "a  fit CPU time, evaluate() / plain",
                f"{a['cpu_evaluate'] / a['cpu_plain']:.3f}x  ({a['cpu_evaluate']:.1f} / "
                f"{a['cpu_plain']:.1f} CPU s; less sensitive to other load than wall time)",
            ),
            (
                "a  last epoch, evaluate() / plain",
                f"{a['last_epoch_evaluate'] / a['last_epoch_plain']:.3f}x  "
                f"({a['last_epoch_evaluate']:.1f} / {a['last_epoch_plain']:.1f} s)",
            ),
            (
                "a  whole evaluate() / plain build+fit",
                f"{a['total_evaluate'] / a['total_plain']:.3f}x  ({a['total_evaluate']:.1f} / "
                f"{a['total_plain']:.1f} s; plain's clear_session + gc, not counted: "
                f"{a['cleanup_plain']:.2f} s)",
            ),
            (
                "a  evaluate() outside fit (s)",
                ", ".join(f"{k} {v:.2f}" for k, v in a["parts"].items() if k != "fit"),
            ),
        ]
    if "b" in results:
        peaks = results["b"]["peaks"]
        rows.append(("b  matmul peak", ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())))
        if "a" in results:
            a = results["a"]
            for label, seconds in (
                ("plain fit, last epoch", a["last_epoch_plain"]),
                ("evaluate() fit, last epoch", a["last_epoch_evaluate"]),
                ("evaluate() fit, all epochs", a["fit_evaluate"] / a["epochs"]),
            ):
                gflops = 3 * a["flops"] * a["train_images"] / seconds / 1e9
                rows.append(
                    (
                        f"b  training, {label}",
                        f"{a['train_images'] / seconds:.0f} images/s = {gflops:.1f} GFLOP/s = "
                        f"{gflops / peaks['float32']:.0%} of the float32 peak",
                    )
                )
    if "c" in results:
        c = results["c"]
        rows += [
            (f"c  FER load, first ({c['first_kind']})", f"{c['first']:.2f} s"),
            (
                "c  FER load, cached",
                f"{c['second']:.2f} s (fresh process {c['fresh']:.2f} s; SHA-256 {c['hash']:.2f} s)",
            ),
        ]
    if "d" in results:
        for workers, r in results["d"]["rates"].items():
            rows.append(
                (
                    f"d  evaluations/hour, {workers} x {r['threads']} threads",
                    f"{r['rate']:.0f} ({r['rate_with_start']:.0f} with Ray's start; "
                    f"{r['failed']} failed)",
                )
            )
    for key in "cbad":
        if key in results:
            s = results[key]["section"]
            rows.append(
                (
                    f"{key}  machine during the section",
                    f"busy {s.busy_cores:.2f} cores (this process {s.own_cores:.2f}), "
                    f"load {s.load_start} -> {s.load_end}",
                )
            )
    width = max(len(k) for k, _ in rows)
    print("\n== summary")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
