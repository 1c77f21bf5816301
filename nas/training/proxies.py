"""Zero-cost proxies: a score of an untrained net from a few gradients. Imports TensorFlow.

ZiCo (Li et al., ICLR 2023): for every weight, the mean absolute gradient over a few
batches divided by the gradients' standard deviation across them, summed per layer, and
the logarithms of the layers' sums added up. Nets whose gradients are large and
consistent across batches are predicted to train well. The fidelity benchmark measures it
against the trained truth beside the parameter count (which ZiCo's own paper found most
other proxies no better than).
"""

from __future__ import annotations

import math

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np
import tensorflow as tf

__all__ = ["zico"]


def zico(
    model: keras.Model,
    images: np.ndarray,
    labels: np.ndarray,
    loss,
    *,
    batches: int = 2,
    batch_size: int = 64,
) -> float:
    """ZiCo of ``model`` (untrained) on the first ``batches`` x ``batch_size`` images."""
    if batches < 2:
        raise ValueError("ZiCo needs at least two batches (a standard deviation across them)")
    kernels = [v for v in model.trainable_variables if "kernel" in v.path]
    gradients: list[list[np.ndarray]] = []
    for index in range(batches):
        part = slice(index * batch_size, (index + 1) * batch_size)
        x = tf.constant(images[part].astype(np.float32))
        y = tf.constant(labels[part])
        with tf.GradientTape() as tape:
            loss_value = tf.reduce_mean(loss(y, model(x, training=True)))
        gradients.append([np.asarray(g) for g in tape.gradient(loss_value, kernels)])
    score = 0.0
    for per_batch in zip(*gradients, strict=True):
        stack = np.stack(per_batch).astype(np.float64)
        spread = stack.std(axis=0)
        useful = spread > 0
        total = float((np.abs(stack).mean(axis=0)[useful] / spread[useful]).sum())
        if total > 0:
            score += math.log(total)
    return score
