"""Export a trial of a multi-task run: one model with a head per task, and each task
alone. Imports TensorFlow.

The export folder holds::

    model.keras            the whole model: an input and an output per task
    <name>/1/              one SavedModel, one signature per task (named after the task;
                           serving_default is the first task's), each taking uint8 images
                           of its task's size and returning named outputs
    genome.json            the architecture, and every task's outputs and split
    MODEL_CARD.md          metrics of every task, parameters, FLOPs, serving
    tasks/<task>/          each task alone, as `nas export` writes a one-task run
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras

from nas.export.files import (
    ONNX_FILE,
    SPLIT_KEYS,
    lineage_lines,
    metric_text,
    named_outputs,
    serving_lines,
    write_export_files,
)
from nas.storage.records import RunInfo, TaskOutputs, TrialRecord
from nas.storage.store import RunStore
from nas.training.multitask import task_models

__all__ = ["write_multitask_export"]


def write_multitask_export(
    store: RunStore, record: TrialRecord, model: keras.Model, folder: Path, *, name: str, onnx: bool
) -> None:
    """Write everything above into ``folder`` (which exists and is empty)."""
    info = store.info
    heads = task_models(model)
    model.save(folder / "model.keras")
    _write_saved_model(model, heads, info.tasks, folder / name / "1")
    tasks_data = _tasks_data(info)
    document = {
        "space": info.space,
        "genome": record.genome,
        "tasks": [{**_task_entry(task), **tasks_data.get(task.name, {})} for task in info.tasks],
    }
    (folder / "genome.json").write_text(json.dumps(document, indent=2) + "\n")
    for task, head in zip(info.tasks, heads, strict=True):
        alone = folder / "tasks" / task.name
        alone.mkdir(parents=True)
        single = {
            "space": info.space,
            "genome": record.genome,
            "task": {**_task_entry(task), **tasks_data.get(task.name, {})},
            "multitask": [t.name for t in info.tasks],
        }
        one = RunInfo(**{**_fields(info), "task": task.task, "output_names": task.output_names})
        card = "\n".join(
            [
                f"# {task.name}",
                "",
                f"The {task.name} head of the multi-task model in `../..` (trial {record.number} "
                f"of `{store.run_dir}`), alone: the shared backbone and this task's head.",
                "",
                *serving_lines(one, task.name),
            ]
        )
        write_export_files(head, alone, name=task.name, genome_doc=single, card=card)
        if onnx:
            from nas.export.onnx import export_onnx

            export_onnx(head, alone / ONNX_FILE)
    (folder / "MODEL_CARD.md").write_text(_card(store, record, name, model))


def _fields(info: RunInfo) -> dict[str, Any]:
    return {f: getattr(info, f) for f in info.__dataclass_fields__ if f != "tasks"}


def _task_entry(task: TaskOutputs) -> dict[str, Any]:
    return {
        "name": task.name,
        "kind": task.task.kind,
        "input_shape": list(task.task.input_shape),
        "labels": list(task.output_names),
    }


def _tasks_data(info: RunInfo) -> dict[str, dict[str, Any]]:
    """How the run split each task's data (what ``nas evaluate`` needs)."""
    seed = info.experiment.get("seed", 0)
    found = {}
    for entry in info.experiment.get("tasks", []):
        found[_task_name(entry["task"])] = {
            "seed": seed,
            **{k: entry[k] for k in SPLIT_KEYS if k in entry},
        }
    return found


def _task_name(spec: str) -> str:
    from nas.tasks import load_task

    return load_task(spec).name


def _write_saved_model(
    model: keras.Model, heads: list[keras.Model], tasks: tuple[TaskOutputs, ...], path: Path
) -> None:
    """One SavedModel; per task a signature named after it on uint8 images of its size."""
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    for i, (head, task) in enumerate(zip(heads, tasks, strict=True)):
        named = named_outputs(head, task.task.kind, task.output_names)
        spec = [tf.TensorSpec((None, *task.task.input_shape), tf.uint8, name="images")]
        archive.add_endpoint(task.name, named, input_signature=spec)
        if i == 0:
            archive.add_endpoint("serving_default", named, input_signature=spec)
    archive.write_out(str(path), verbose=False)


def _card(store: RunStore, record: TrialRecord, name: str, model: keras.Model) -> str:
    info = store.info
    lines = [
        f"# {name}",
        "",
        f"One model for {len(info.tasks)} tasks ({', '.join(t.name for t in info.tasks)}), "
        f"evolved by facenas: run `{store.run_dir}`, trial {record.number} (generation "
        f"{record.generation}), genome `{record.genome_hash}`.",
        "",
        f"Architecture ({info.space} space; the backbone is shared, each task has its head): "
        f"`{record.description}`",
        "",
        *lineage_lines(store, record),
        "## Metrics (each task's validation split)",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {metric_text(v)} |" for k, v in record.metrics.items()),
        "",
        f"Parameters: {model.count_params():,} (the backbone counted once). FLOPs: "
        f"{int(record.metrics.get('flops', 0)):,} for one image of each task.",
        "",
        "## Serving",
        "",
        "One SavedModel, one signature per task, each on uint8 grey images of its task's "
        "size: "
        + "; ".join(f"`{t.name}` ({'x'.join(map(str, t.task.input_shape))})" for t in info.tasks)
        + f". `serving_default` is `{info.tasks[0].name}`'s. Each task alone, with its own "
        "SavedModel, is in `tasks/<task>/`.",
        "",
    ]
    return "\n".join(lines)
