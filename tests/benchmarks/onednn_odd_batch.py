"""Benchmark (not a test): TensorFlow's oneDNN weight gradient of a strided 1x1 convolution
on an odd batch, the cause of the ResUNet final training's deaths.

    .venv/bin/python tests/benchmarks/onednn_odd_batch.py [--processes 3] [--steps 200]

Each case runs ``--processes`` fresh processes, each training one ``Conv2D(24, 1,
strides=2)`` on a (batch, 48, 48, 12) tensor for ``--steps`` steps (the shortcut
projection of the keypoint run's strided encoder level, whose shape oneDNN's verbose log
named last before a death), and counts the processes that died. Cases: the batch size
(63 is the keypoint final training's last batch: 2,943 faces in batches of 64), the
stride, the bias, TensorFlow's threads, and oneDNN on or off (``TF_ENABLE_ONEDNN_OPTS``).
``nas.training.core.full_batches`` is the fix: facenas trains full, even batches only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

CHILD = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
import keras
batch, stride, bias, threads, steps = (int(a) for a in sys.argv[1:6])
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
images = keras.Input((48, 48, 12))
model = keras.Model(images, keras.layers.Conv2D(24, 1, strides=stride, use_bias=bool(bias))(images))
variables = model.trainable_variables
optimizer = keras.optimizers.SGD(0.01)
data = tf.constant(np.random.default_rng(0).normal(size=(batch, 48, 48, 12)).astype("float32"))

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x)))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

for _ in range(steps):
    step(data)
print("OK", flush=True)
"""

CASES = (
    # batch, stride, bias, threads, oneDNN
    (63, 2, 1, 2, "1"),
    (64, 2, 1, 2, "1"),
    (33, 2, 1, 2, "1"),
    (1, 2, 1, 2, "1"),
    (62, 2, 1, 2, "1"),
    (63, 2, 0, 2, "1"),
    (63, 1, 1, 2, "1"),
    (63, 2, 1, 1, "1"),
    (63, 2, 1, 2, "0"),
)


def ending(batch: int, stride: int, bias: int, threads: int, onednn: str, steps: int) -> str:
    """How one fresh process ended: ``ok``, or the signal or exit code that ended it."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn)
    args = [str(v) for v in (batch, stride, bias, threads, steps)]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env
    )
    if done.returncode == 0 and "OK" in done.stdout:
        return "ok"
    if done.returncode < 0:
        return signal.Signals(-done.returncode).name
    return f"exit {done.returncode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    print(f"Conv2D(24, 1) on (batch, 48, 48, 12), {args.steps} steps, {args.processes} processes")
    print("batch  stride  bias  threads  oneDNN  deaths")
    for batch, stride, bias, threads, onednn in CASES:
        ends = [
            ending(batch, stride, bias, threads, onednn, args.steps) for _ in range(args.processes)
        ]
        deaths = [end for end in ends if end != "ok"]
        how = f" ({', '.join(sorted(set(deaths)))})" if deaths else ""
        print(
            f"{batch:>5}  {stride:>6}  {bias:>4}  {threads:>7}  {'on' if onednn == '1' else 'off':>6}"
            f"  {len(deaths)}/{len(ends)}{how}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
