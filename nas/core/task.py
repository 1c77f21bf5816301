"""What a model is built for: the input it takes and the output it must produce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Task"]


@dataclass(frozen=True, kw_only=True)
class Task:
    """The contract between a dataset and a decoder.

    ``input_shape`` is (height, width, channels) of the raw ``uint8`` images; decoders
    put the scaling to [0, 1] inside the model, so a served model takes raw pixels.

    * ``classification``: the model outputs ``(batch, num_classes)`` probabilities.
    * ``keypoints``: the model outputs ``(batch, num_keypoints, 2)`` pixel coordinates
      ``(x, y)`` in the input image, in the dataset's keypoint order.

    >>> Task(kind="classification", input_shape=(48, 48, 1), num_classes=5).outputs
    5
    >>> Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15).outputs
    30
    """

    kind: Literal["classification", "keypoints"]
    input_shape: tuple[int, int, int]
    num_classes: int = 0
    num_keypoints: int = 0

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(
                f"input_shape must be (height, width, channels), got {self.input_shape}"
            )
        if self.kind == "classification" and self.num_classes < 2:
            raise ValueError(
                f"a classification task needs at least 2 classes, got {self.num_classes}"
            )
        if self.kind == "keypoints" and self.num_keypoints < 1:
            raise ValueError(f"a keypoint task needs at least 1 keypoint, got {self.num_keypoints}")
        if self.kind not in ("classification", "keypoints"):
            raise ValueError(f"unknown task kind {self.kind!r}")

    @property
    def outputs(self) -> int:
        """Number of output values per image."""
        return self.num_classes if self.kind == "classification" else 2 * self.num_keypoints
