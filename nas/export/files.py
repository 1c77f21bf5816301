"""What every export writes, one task or several: ``model.keras``, the SavedModel for
TF Serving with its named outputs, ``genome.json``, and the model card's shared lines
(serving, lineage). Imports TensorFlow (Keras).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras

from nas.kinds import output_kind
from nas.storage.records import RunInfo, TrialRecord, ancestors
from nas.storage.store import RunStore

__all__ = [
    "ONNX_FILE",
    "ExportResult",
    "genome_document",
    "lineage_lines",
    "metric_text",
    "named_outputs",
    "serving_lines",
    "write_export_files",
    "write_saved_model",
]


ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class ExportResult:
    """Where an export was written."""

    folder: Path
    keras_file: Path
    saved_model: Path
    genome_file: Path
    model_card: Path

    @classmethod
    def of(cls, folder: Path, name: str) -> ExportResult:
        """Where an export named ``name`` lies in ``folder``."""
        return cls(
            folder=folder,
            keras_file=folder / "model.keras",
            saved_model=folder / name / "1",
            genome_file=folder / "genome.json",
            model_card=folder / "MODEL_CARD.md",
        )


SPLIT_KEYS = (
    "classes",
    "validation_fraction",
    "deduplicate",
    "validation_split",
    "skip_unreadable",
    "image_size",
    "channels",
)
"""The ``[data]`` keys ``genome.json`` keeps, so ``nas evaluate`` draws the run's split again."""


def genome_document(info: RunInfo, record: TrialRecord) -> dict[str, Any]:
    """What ``genome.json`` holds: the space and genome, and what ``nas evaluate`` needs to
    score the model again on the run's split: the task, its labels (class or keypoint
    names, in output order) and how the run split its data (``seed``,
    ``validation_fraction``, ``classes``)."""
    data = info.experiment.get("data", {})
    return {
        "space": info.space,
        "genome": record.genome,
        "task": {
            **({"name": str(data["task"])} if data.get("task") else {}),
            "kind": info.task.kind,
            "input_shape": list(info.task.input_shape),
            "labels": list(info.output_names),
            "seed": info.experiment.get("seed", 0),
            **{k: data[k] for k in SPLIT_KEYS if k in data},
        },
    }


def write_export_files(
    model: keras.Model, folder: Path, *, name: str, genome_doc: dict, card: str
) -> ExportResult:
    """Write ``model.keras``, the SavedModel ``NAME/1/``, ``genome.json`` and ``MODEL_CARD.md``
    into ``folder`` (which exists); the card last."""
    result = ExportResult.of(folder, name)
    model.save(result.keras_file)
    task = genome_doc["task"]  # genome_document(): what the signatures are named after
    write_saved_model(model, result.saved_model, kind=task["kind"], labels=task["labels"])
    result.genome_file.write_text(json.dumps(genome_doc, indent=2) + "\n")
    result.model_card.write_text(card)
    return result


def write_saved_model(model: keras.Model, path: Path, *, kind: str, labels: Sequence[str]) -> None:
    """The SavedModel TF Serving loads, with two signatures:

    * ``serving_default``: what a client sends, ``images`` as ``uint8`` ``(batch, H, W, 1)``
      grey pixels; named outputs: ``probabilities`` ``(batch, C)``, ``label`` (the most
      likely class's name) and ``label_names`` ``(batch, C)`` for emotions, ``keypoints``
      ``(batch, K, 2)`` pixel ``(x, y)`` and ``keypoint_names`` ``(batch, K)`` for keypoints;
    * ``serve``: the Keras model itself on ``float32`` pixels in 0..255 (as before).
    """
    import tensorflow as tf

    height, width, channels = (int(d) for d in model.inputs[0].shape[1:])
    archive = keras.export.ExportArchive()
    archive.track(model)
    named = named_outputs(model, kind, labels)
    shape = (None, height, width, channels)
    archive.add_endpoint(
        "serving_default", named, input_signature=[tf.TensorSpec(shape, tf.uint8, name="images")]
    )
    archive.add_endpoint(
        "serve",
        lambda pixels: model(pixels, training=False),
        input_signature=[tf.TensorSpec(shape, tf.float32, name="pixels")],
    )
    archive.write_out(str(path), verbose=False)


def named_outputs(model: keras.Model, kind: str, labels: Sequence[str]):
    """The ``serving_default`` function: uint8 ``images`` -> the model's named outputs
    (``probabilities``, ``label``, ``label_names``; or ``keypoints``, ``keypoint_names``)."""
    import tensorflow as tf

    names = tf.constant(list(labels))

    of_kind = output_kind(kind)

    def named(images: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(tf.cast(images, tf.float32), training=False)
        return of_kind.named_outputs(outputs, tf.tile(names[tf.newaxis], [tf.shape(outputs)[0], 1]))

    return named


def serving_lines(info: RunInfo, name: str) -> list[str]:
    """The model card's "Serving" section: signatures, inputs, outputs and a TF Serving
    REST example."""
    height, width, channels = info.task.input_shape
    kind = output_kind(info.task.kind)
    outputs = kind.serving_text()
    return [
        "## Serving",
        "",
        f"Signature `serving_default`: input `images`, uint8 grey pixels, shape (batch, {height}, "
        f"{width}, {channels}); outputs {outputs}. Signature `serve`: the same model on float32 "
        "pixels in 0..255 (the model scales them itself), returning the bare output.",
        kind.output_line(info.task, info.output_names),
        "",
        "```",
        f"docker run -p 8501:8501 -v $PWD/{name}:/models/{name} -e MODEL_NAME={name} tensorflow/serving",
        f"curl -d '{{\"instances\": [<{height}x{width}x{channels} nested list of 0..255 integers>]}}' "
        f"localhost:8501/v1/models/{name}:predict",
        "```",
        "",
    ]


def lineage_lines(store: RunStore, record: TrialRecord) -> list[str]:
    """Where the architecture came from: its ancestors' count and the seeded baselines
    among them (nothing for a genome drawn without parents)."""
    found = ancestors(store.trials(), record.genome_hash)
    if not found:
        return []
    seeds = sorted({t.baseline for t in found if t.baseline})
    return [
        f"Lineage: {len(found)} recorded ancestor(s), the oldest from generation "
        f"{min(t.generation for t in found)}"
        + (f"; it descends from the seeded baseline(s) {', '.join(seeds)}" if seeds else "")
        + ".",
        "",
    ]


def metric_text(value: float) -> str:
    """A metric as a model card shows it: thousands separated, else 4 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
