"""What a model outputs, as objects: each kind owns its loss, its scores and report, the
start of its head, its serving outputs, its flip rule and its model-card lines, so that
no module outside this folder switches on a kind's name. A new kind is one module here
and its entry in :data:`KINDS`.
"""

from __future__ import annotations

from nas.core.errors import ConfigError
from nas.kinds.base import OutputKind
from nas.kinds.classification import CLASSIFICATION
from nas.kinds.keypoints import KEYPOINTS

__all__ = ["KINDS", "OutputKind", "output_kind"]

KINDS: dict[str, OutputKind] = {kind.name: kind for kind in (CLASSIFICATION, KEYPOINTS)}
"""Every output kind by the name a :class:`nas.core.task.Task` carries."""


def output_kind(name: str) -> OutputKind:
    """The kind named ``name`` (``Task.kind``)."""
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown output kind {name!r}; use one of {', '.join(map(repr, KINDS))}"
        ) from None
