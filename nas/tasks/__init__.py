"""Face tasks as objects: what is specific to learning one thing from one kind of file.

A task (:class:`FaceTask`) owns its dataset layout (reading and checking it, the split
between training and validation), the kind of output its models produce (``Task.kind``:
``classification``, ``keypoints`` or a plugin kind, which carries the loss and the
metrics; the head is the ``Task``'s :class:`~nas.core.task.OutputHead`),
the names of its outputs, its horizontal-flip rule for augmentation, its built-in data
and its default objectives. The engine asks the task instead of switching on its name.

Built-in tasks are ``emotion`` (FER2013 layout) and ``keypoints`` (Kaggle Facial
Keypoints layout); ``[data] task`` may also name an importable module that defines
``TASK``, a :class:`FaceTask`, which is loaded when the experiment is loaded.
"""

from __future__ import annotations

from nas.core.errors import ConfigError
from nas.core.plugins import import_plugin
from nas.tasks.base import FaceTask, TaskSplits

__all__ = ["BUILTIN_TASKS", "FaceTask", "TaskSplits", "load_task"]

BUILTIN_TASKS: dict[str, str] = {
    "emotion": "nas.tasks.emotion",
    "keypoints": "nas.tasks.keypoints",
}
"""Built-in task name -> the module that defines its ``TASK``."""


def load_task(name: str) -> FaceTask:
    """The task named ``name``: a built-in one, or an importable module defining ``TASK``.

    Raises :class:`ConfigError` with one line naming what is wrong."""
    known = (
        f"use {' or '.join(map(repr, BUILTIN_TASKS))}, or an importable module that defines TASK"
    )
    if not isinstance(name, str) or not name:
        raise ConfigError(f"task must be a task name, got {name!r}; {known}")
    module_name = BUILTIN_TASKS.get(name)
    if module_name is None:
        if "." not in name:
            raise ConfigError(f"unknown task {name!r}; {known}")
        module_name = name
    try:
        module = import_plugin(module_name)
    except ConfigError as exc:
        raise ConfigError(f"task {name!r} cannot be imported ({exc}); {known}") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, FaceTask):
        raise ConfigError(
            f"task {name!r}: module {module_name} defines no TASK that is a nas.tasks.FaceTask; "
            "define one (see nas/tasks/emotion.py)"
        )
    return task
