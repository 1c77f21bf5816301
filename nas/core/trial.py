"""What travels between the driver and a worker: plain, picklable data, no TensorFlow."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.core.config import Budget
from nas.core.errors import FailureReason
from nas.core.task import Task

__all__ = [
    "EvalData",
    "EvalRequest",
    "EvalResult",
    "Inherited",
    "MultiEvalData",
    "ParentWeights",
    "derive_seed",
]


@dataclass(frozen=True, kw_only=True)
class EvalData:
    """The images every candidate trains and is scored on (put in Ray's object store once).

    Images are ``uint8`` (N, H, W, C); the model scales them itself. Targets are class ids
    ``(N,)`` for classification and pixel coordinates ``(N, K, 2)``, NaN where missing,
    for keypoints. ``flip_permutation``, when given, turns on random horizontal flips in
    training, with keypoint ``i`` becoming keypoint ``flip_permutation[i]``.
    ``class_weights``, when given, weighs each training image's loss by its class's
    weight (``[budget] class_weight``).
    """

    task: Task
    train_images: np.ndarray
    train_targets: np.ndarray
    validation_images: np.ndarray
    validation_targets: np.ndarray
    flip_permutation: tuple[int, ...] | None = None
    class_weights: tuple[float, ...] | None = None

    def sample_weights(self, targets: np.ndarray) -> np.ndarray | None:
        """Each image's loss weight, from its class (None: unweighted)."""
        if self.class_weights is None:
            return None
        return np.asarray(self.class_weights, dtype=np.float32)[np.asarray(targets, np.int64)]


@dataclass(frozen=True)
class MultiEvalData:
    """The data of every task of a multi-task experiment, in the experiment's order, and
    the tasks' names (which prefix the multi-task model's inputs, layers and outputs)."""

    parts: tuple[EvalData, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class ParentWeights:
    """A parent of the candidate, to inherit weights from: its genome JSON and its trained
    weights, the bytes of a Keras ``.weights.h5`` file as ``model.save_weights`` writes it."""

    genome: dict[str, Any]
    weights: bytes = field(repr=False)


@dataclass(frozen=True)
class Inherited:
    """How much of a candidate's model started from its parents' weights
    (:func:`nas.training.inheritance.inherit_weights`): layers with weights copied whole, copied in
    part (the overlap of a widened or narrowed layer) and left fresh, and the share of all
    the model's weight values that were copied."""

    whole: int
    partial: int
    fresh: int
    fraction: float

    def to_json(self) -> dict[str, float]:
        """Plain data for the trial's user attributes."""
        return {
            "whole": self.whole,
            "partial": self.partial,
            "fresh": self.fresh,
            "fraction": round(self.fraction, 4),
        }


@dataclass(frozen=True, kw_only=True)
class EvalRequest:
    """One candidate to train and score.

    ``parents`` (weight inheritance, ``[search] inherit_weights``): the genomes the
    candidate was made from with their trained weights, in order of preference; the model
    starts from them instead of from scratch.
    """

    space: str
    genome: dict[str, Any]
    genome_hash: str
    seed: int
    budget: Budget
    threads: int = 1
    pretrained: tuple[str, str] | None = None  # (baseline name, local weights file)
    parents: tuple[ParentWeights, ...] = ()
    score_at: tuple[int, ...] = ()
    """Image counts at which to score the validation split during the training too (a
    learning curve): the metrics then hold ``accuracy@N`` for each."""
    deployed: bool = False
    """Also measure the trained model as the int8 LiteRT file a device would run
    (:data:`nas.core.objectives.DEPLOYED_METRICS`): set when an objective names one."""


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """The outcome of one evaluation: ``metrics`` when it worked, ``failure`` when not."""

    genome_hash: str
    metrics: dict[str, float] | None = None
    failure: FailureReason | None = None
    detail: str = ""
    seconds: float = 0.0
    pid: int = 0
    host: str = ""
    stopped_early: bool = False  # cut by the train_seconds guard
    train_steps: int = 0  # optimizer steps taken
    images_seen: int = 0
    peak_rss_mb: float = 0.0  # the worker process's peak resident memory so far
    weights: bytes | None = field(default=None, repr=False)
    inherited: Inherited | None = None  # None: trained from scratch (no parents given)
    node: str = ""  # the Ray node it ran on (its node id); "" outside Ray
    threads: int = 0  # TensorFlow's threads in the worker (its CPUs from Ray)
    device: str = ""  # what it trained on: "GPU" or "CPU" ("" outside Ray)
    device_note: str = ""  # why not the device Ray reserved (a GPU TensorFlow cannot see)
    restarts: int = 0  # workers that died under it before the attempt that answered

    @property
    def ok(self) -> bool:
        """True when the candidate was trained and scored."""
        return self.failure is None


def derive_seed(run_seed: int, genome_hash: str, rung: int = 0) -> int:
    """The training seed of a genome: a function of the run seed and the genome only.

    ``rung`` above 0 (multi-fidelity: a promoted genome's continued training) gives
    another seed, so the continuation draws its own shuffle of the training images
    instead of replaying the first rung's."""
    text = f"{run_seed}:{genome_hash}" + (f":rung{rung}" if rung else "")
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31 - 1)
