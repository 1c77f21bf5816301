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

    >>> Task(kind="classification", input_shape=(48, 48, 1), num_classes=5).num_classes
    5
    """

    kind: Literal["classification"]
    input_shape: tuple[int, int, int]
    num_classes: int

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(
                f"input_shape must be (height, width, channels), got {self.input_shape}"
            )
        if self.kind == "classification" and self.num_classes < 2:
            raise ValueError(
                f"a classification task needs at least 2 classes, got {self.num_classes}"
            )
