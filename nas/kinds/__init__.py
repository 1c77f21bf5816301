"""What a model outputs, as objects: each kind owns its loss, its scores and report, its
metrics, the form of its head, its serving outputs, its flip rule and its model-card
lines, so that no module outside this folder switches on a kind's name.

The two built-in kinds are ``classification`` and ``keypoints``. A new kind is one module
anywhere, found by name as spaces and tasks are: it defines ``KIND``, an
:class:`OutputKind` whose ``name`` is the module's dotted name, and the tasks that use it
make :class:`nas.core.task.Task` objects carrying that name and the kind's
:class:`~nas.core.task.OutputHead` (``tests/nas/kinds/scalar.py`` is one). Each process
(a Ray worker too) imports it the first time a task names it.
"""

from __future__ import annotations

from nas.core.errors import ConfigError
from nas.core.plugins import import_plugin
from nas.kinds.base import OutputKind
from nas.kinds.classification import CLASSIFICATION
from nas.kinds.keypoints import KEYPOINTS

__all__ = ["KINDS", "OutputKind", "known_output_kind", "output_kind"]

KINDS: dict[str, OutputKind] = {kind.name: kind for kind in (CLASSIFICATION, KEYPOINTS)}
"""The output kinds this process knows by the name a :class:`nas.core.task.Task` carries:
the built-in ones, and the plugin kinds imported so far."""


def output_kind(name: str) -> OutputKind:
    """The kind named ``name`` (``Task.kind``): a built-in one, or the ``KIND`` of the
    importable module of that dotted name. Raises :class:`ConfigError` with one line."""
    known = f"use {' or '.join(map(repr, ('classification', 'keypoints')))}, or an importable module that defines KIND"
    if not isinstance(name, str) or not name:
        raise ConfigError(f"output kind must be a name, got {name!r}; {known}")
    kind = KINDS.get(name)
    if kind is not None:
        return kind
    if "." not in name:
        raise ConfigError(f"unknown output kind {name!r}; {known}")
    try:
        module = import_plugin(name)
    except ConfigError as exc:
        raise ConfigError(f"output kind {name!r} cannot be imported ({exc}); {known}") from None
    kind = getattr(module, "KIND", None)
    if not isinstance(kind, OutputKind) or kind.name != name:
        raise ConfigError(
            f"output kind {name!r}: module {name} defines no KIND that is a "
            f"nas.kinds.OutputKind named {name!r}; define one (see nas/kinds/keypoints.py)"
        )
    KINDS[name] = kind
    return kind


def known_output_kind(name: object, where: str) -> OutputKind:
    """The kind named ``name`` in an untrusted file (``where``: an export's
    ``genome.json``): a built-in kind or one this process has loaded already, never a
    module imported because a file names it. Raises :class:`ConfigError` with one line."""
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ConfigError(
            f"{where}: output kind {name!r} is not built in ({', '.join(map(repr, KINDS))}); "
            "a plugin kind's model is scored by its search"
        )
    return kind
