"""What a model is built for: the input it takes and the output it must produce."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["HeadForm", "OutputHead", "Task"]

HeadForm = Literal["vector", "points"]
"""``vector``: values computed from the pooled features; ``points``: ``(x, y)``
positions in the input image, one row per named point (a space may draw them, as the
ResUNet's heatmaps do, instead of computing them from pooled features)."""


@dataclass(frozen=True, kw_only=True)
class OutputHead:
    """The end of a model, as plain data, so that a search space builds and counts any
    kind's output without knowing the kind.

    One float32 ``Dense`` layer of ``prod(shape)`` units with ``activation``; reshaped to
    ``shape`` when that has more than one axis; then ``x * scale + offset`` when that is
    not the identity. The last layer is called ``name``: the Dense itself when it is the
    only layer, else ``{name}_raw`` (the Dense) and ``{name}_xy`` or ``{name}_shape``
    (the reshape, for ``points`` or other heads).

    >>> OutputHead(name="score", shape=(1,), activation="sigmoid").units
    1
    """

    name: str
    shape: tuple[int, ...]
    activation: str = "linear"
    scale: float = 1.0
    offset: float = 0.0
    form: HeadForm = "vector"

    def __post_init__(self) -> None:
        if not all(type(size) is int for size in self.shape) or not self.shape:
            raise ValueError(f"an output head's shape must be whole numbers, got {self.shape}")
        if not all(type(v) in (int, float) for v in (self.scale, self.offset)):
            raise ValueError(f"an output head's scale and offset must be numbers, got {self}")
        if self.form not in ("vector", "points"):
            raise ValueError(f"an output head's form is 'vector' or 'points', got {self.form!r}")
        if min(self.shape) < 1:
            raise ValueError(f"an output head's shape must be positive sizes, got {self.shape}")
        if self.form == "points" and (len(self.shape) != 2 or self.shape[1] != 2):
            raise ValueError(f"a points head has shape (points, 2), got {self.shape}")
        if not self.name.isidentifier():
            raise ValueError(f"an output head's name must be an identifier, got {self.name!r}")

    @property
    def units(self) -> int:
        """The output Dense layer's units."""
        return math.prod(self.shape)

    @property
    def rescaled(self) -> bool:
        """Whether a scaling layer follows the Dense (and the reshape)."""
        return self.scale != 1.0 or self.offset != 0.0

    @property
    def dense_name(self) -> str:
        """The output Dense layer's name (without a multi-task prefix)."""
        return f"{self.name}_raw" if len(self.shape) > 1 or self.rescaled else self.name

    @property
    def reshape_name(self) -> str:
        """The reshape layer's name, where there is one."""
        return f"{self.name}_xy" if self.form == "points" else f"{self.name}_shape"


@dataclass(frozen=True, kw_only=True)
class Task:
    """The contract between a dataset and a decoder.

    ``input_shape`` is (height, width, channels) of the raw ``uint8`` images; decoders
    put the scaling to [0, 1] inside the model, so a served model takes raw pixels.

    The two built-in kinds derive their :class:`OutputHead` from their counts:

    * ``classification``: the model outputs ``(batch, num_classes)`` probabilities.
    * ``keypoints``: the model outputs ``(batch, num_keypoints, 2)`` pixel coordinates
      ``(x, y)`` in the input image, in the dataset's keypoint order.

    Any other kind (an output kind's module, found by name: :func:`nas.kinds.output_kind`)
    gives its ``head``.

    >>> Task(kind="classification", input_shape=(48, 48, 1), num_classes=5).outputs
    5
    >>> Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15).outputs
    30
    """

    kind: str
    input_shape: tuple[int, int, int]
    num_classes: int = 0
    num_keypoints: int = 0
    head: OutputHead = None  # type: ignore[assignment]  # set by __post_init__ for built-in kinds

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(
                f"input_shape must be (height, width, channels), got {self.input_shape}"
            )
        if self.head is None:
            object.__setattr__(self, "head", self._builtin_head())
        elif not isinstance(self.head, OutputHead):
            raise ValueError(f"head must be an OutputHead, got {self.head!r}")

    def _builtin_head(self) -> OutputHead:
        if self.kind == "classification":
            if self.num_classes < 2:
                raise ValueError(
                    f"a classification task needs at least 2 classes, got {self.num_classes}"
                )
            return OutputHead(name="predictions", shape=(self.num_classes,), activation="softmax")
        if self.kind == "keypoints":
            if self.num_keypoints < 1:
                raise ValueError(
                    f"a keypoint task needs at least 1 keypoint, got {self.num_keypoints}"
                )
            half = (self.input_shape[1] - 1) / 2.0  # [-1, 1] to pixels 0 .. width - 1
            return OutputHead(
                name="keypoints",
                shape=(self.num_keypoints, 2),
                scale=half,
                offset=half,
                form="points",
            )
        raise ValueError(
            f"task kind {self.kind!r} is not built in (classification, keypoints): give its head"
        )

    @property
    def outputs(self) -> int:
        """Number of output values per image."""
        return self.head.units
