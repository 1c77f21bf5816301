"""The output-kind protocol: what a kind of model output must say and do."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.task import HeadForm, Task
from nas.data.augment import Augmentation

__all__ = ["OutputKind", "ReportTable"]

ReportTable = tuple[str, tuple[str, ...], list[tuple[str, ...]]]
"""What ``nas evaluate`` prints: a title, the column names, and the rows as text."""


class OutputKind(ABC):
    """One kind of model output (class probabilities, pixel coordinates, ...).

    TensorFlow is imported inside the methods that build tensors or layers (``loss``,
    ``prepare_head``, ``named_outputs``), so reading a kind's facts costs nothing."""

    name: str
    """As :attr:`nas.core.task.Task.kind` names it."""
    default_split: str
    """The split ``nas evaluate`` scores when none is given."""
    augmentation: Augmentation
    """How strongly the final training perturbs its images."""
    metrics: frozenset[str]
    """The quality metrics :meth:`score` returns, which an experiment may name as
    objectives (each a :data:`nas.core.objectives.METRICS` entry); the costs
    (:data:`nas.core.objectives.COST_METRICS`) apply to every kind."""
    head_form: HeadForm = "vector"
    """The form of its :class:`nas.core.task.OutputHead`, which says which spaces can
    build its models (their ``head_forms``)."""
    has_accuracy: bool = False
    """Whether the kind is scored by accuracy (``accuracy_curve``, ``nas fidelity``)."""
    spatial_targets: bool = False
    """Whether the targets are image positions, which move with a shifted or mirrored image."""

    @abstractmethod
    def loss(self, task: Task, label_smoothing: float = 0.0) -> Any:
        """The training loss (a Keras loss or its name)."""

    @abstractmethod
    def score(self, task: Task, targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
        """The quality metrics of ``predictions`` against ``targets``."""

    def signal_scores(
        self, task: Task, targets: np.ndarray, predictions: np.ndarray
    ) -> dict[str, float]:
        """Extra scores of a candidate's brief training that might rank nets better than its
        quality metrics (none by default): recorded with the trial's metrics and measured
        against trained nets by ``nas fidelity`` (``SIGNAL+loglik``); not objectives."""
        return {}

    def prepare_head(
        self, model: Any, train_targets: np.ndarray, task: Task, *, layer_prefix: str = ""
    ) -> None:
        """Set the output layer's starting weights from the training targets before a
        training from scratch (nothing by default)."""
        return None

    @abstractmethod
    def named_outputs(self, outputs: Any, names: Any) -> dict[str, Any]:
        """The SavedModel's ``serving_default`` outputs from the model's ``outputs`` and
        the output names tiled per image (``names``, ``(batch, N)`` strings)."""

    @abstractmethod
    def output_problem(self, task: Task, output: np.ndarray) -> str | None:
        """What is wrong with ``output``, a model's answer for a batch of 2 images, as a
        sentence; None when it is what ``task`` asks for (the space conformance suite's
        check of every decoded genome)."""

    @abstractmethod
    def serving_text(self) -> str:
        """The model card's sentence on the ``serving_default`` outputs."""

    @abstractmethod
    def output_line(self, task: Task, names: Sequence[str]) -> str:
        """The model card's line on the bare model's output."""

    def mirror_map(self, names: Sequence[str], width: int) -> tuple[np.ndarray, np.ndarray] | None:
        """For flip averaging: the affine map (kernel, bias) of the flattened outputs that
        turns the answer for a mirrored image into the answer for the image; None when
        the answer does not change with mirroring (class probabilities)."""
        return None

    @abstractmethod
    def describe(self, labels: Sequence[str], shape: str) -> str:
        """E.g. ``an emotion classifier (5 classes, 48x48x1 images``, without the
        closing parenthesis, which the caller writes after its own notes."""

    @abstractmethod
    def report(self, targets: np.ndarray, predictions: np.ndarray, labels: Sequence[str]) -> dict:
        """``nas evaluate``'s full report (JSON-ready)."""

    @abstractmethod
    def report_table(self, report: dict) -> ReportTable:
        """``nas evaluate``'s printed table of a :meth:`report`."""

    @abstractmethod
    def figure(
        self,
        report: dict,
        images: np.ndarray,
        targets: np.ndarray,
        predictions: np.ndarray,
        folder: Path,
        *,
        title: str,
    ) -> Path:
        """``nas evaluate``'s picture of a :meth:`report`, written into ``folder``."""

    def __repr__(self) -> str:
        return f"<output kind {self.name!r}>"
