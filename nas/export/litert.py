"""LiteRT files of an export (``nas export --litert`` / ``--int8``) and the model card's
"Formats" table: each format's file, size, latency and score. Imports TensorFlow.

``model.tflite`` is the float32 model; ``model_int8.tflite`` the full-integer one,
calibrated on training faces (:mod:`nas.training.litert`). Each format written is timed
on one face (the median of 50 runs; LiteRT and onnxruntime, for an ONNX file written beside,
on one thread, Keras through one traced TensorFlow function on TensorFlow's threads) and scored on the faces given (the run's validation split), so the card says
what quantising cost and bought.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np

from nas.export.files import ONNX_FILE
from nas.export.onnx import ONNX_INPUT
from nas.kinds import output_kind
from nas.training.core import inference_function, latency_ms, median_ms, predict
from nas.training.litert import (
    LITERT_FILE,
    LITERT_INT8_FILE,
    LiteRTModel,
    float32_model,
    runtime_name,
    to_litert,
)

__all__ = ["DeploymentFaces", "FormatFigures", "formats_section", "write_litert_files"]


@dataclass(frozen=True)
class DeploymentFaces:
    """Faces for the int8 calibration and for each format's score."""

    calibration: np.ndarray
    """Training faces (float32 pixels): the int8 file's activation ranges."""
    images: np.ndarray
    """The faces each format is scored on (float32 pixels)."""
    targets: np.ndarray
    split: str
    """What ``images`` are, for the card (e.g. ``the run's validation split``)."""


@dataclass(frozen=True)
class FormatFigures:
    """One format of an export as the card's table shows it."""

    format: str
    file: str
    size_bytes: int
    latency_ms: float
    score: float | None
    metric: str
    kernels: str = ""
    """What ran it (LiteRT: ``XNNPACK``, or the built-in kernels and why)."""


def write_litert_files(
    model: keras.Model,
    folder: Path,
    *,
    kind: str,
    labels: Sequence[str],
    int8: bool,
    faces: DeploymentFaces | None,
) -> tuple[list[FormatFigures], LiteRTModel | None]:
    """Write ``model.tflite`` (and with ``int8`` ``model_int8.tflite``, which needs
    ``faces``) into ``folder``; time and score the Keras model and each file. Returns the
    figures and the int8 model (for its scales), None without ``int8``.

    Raises :class:`nas.training.litert.LiteRTError` naming the op a conversion lacks."""
    image = (
        faces.images[:1]
        if faces is not None
        else np.zeros((1, *model.inputs[0].shape[1:]), np.float32)
    )
    metric = _metric(kind)
    plain = float32_model(model)
    infer = inference_function(plain, tuple(int(d) for d in plain.inputs[0].shape[1:]))
    keras_file = folder / "model.keras"
    rows = [
        FormatFigures(
            "Keras (TensorFlow)",
            keras_file.name,
            keras_file.stat().st_size if keras_file.exists() else 0,
            latency_ms(infer, np.asarray(image, np.float32), repeats=50),
            _score(kind, labels, faces, predict(infer, faces.images)) if faces else None,
            metric,
        )
    ]
    files = [("LiteRT float32", LITERT_FILE, to_litert(plain))]
    if int8:
        assert faces is not None, "an int8 export calibrates on training faces"
        files.append(
            (
                "LiteRT int8",
                LITERT_INT8_FILE,
                to_litert(plain, int8=True, representative=faces.calibration),
            )
        )
    onnx_file = folder / ONNX_FILE
    if onnx_file.exists():
        rows.append(_onnx_figures(onnx_file, image, kind, labels, faces, metric))
    quantised = None
    for name, file, content in files:
        (folder / file).write_bytes(content)
        runtime = LiteRTModel(content, threads=1, source=str(folder / file))
        if runtime.int8:
            quantised = runtime
        rows.append(
            FormatFigures(
                name,
                file,
                len(content),
                runtime.latency_ms(image),
                _score(kind, labels, faces, runtime.predict(faces.images)) if faces else None,
                metric,
                runtime.kernels,
            )
        )
    return rows, quantised


def _onnx_figures(
    path: Path,
    image: np.ndarray,
    kind: str,
    labels: Sequence[str],
    faces: DeploymentFaces | None,
    metric: str,
) -> FormatFigures:
    """The ONNX file's row: onnxruntime on one thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {ONNX_INPUT: images.astype(np.float32)})[0])

    latency = median_ms(lambda: run(image), runs=50, warmup=3)
    score = None
    if faces is not None:
        answers = np.concatenate(
            [run(faces.images[i : i + 256]) for i in range(0, len(faces.images), 256)]
        )
        score = _score(kind, labels, faces, answers)
    return FormatFigures(
        "ONNX (onnxruntime)",
        path.name,
        path.stat().st_size,
        latency,
        score,
        metric,
    )


def formats_section(
    rows: Sequence[FormatFigures], faces: DeploymentFaces | None, quantised: LiteRTModel | None
) -> str:
    """The model card's "Formats" section: one row per format written."""
    metric = rows[0].metric if rows else "score"
    scored_on = f"scored on {faces.split} ({len(faces.images):,} faces)" if faces else "not scored"
    onnx = " and ONNX in onnxruntime" if any(r.file == ONNX_FILE for r in rows) else ""
    lines = [
        "## Formats",
        "",
        f"Latency: the median of 50 runs on one face on the exporting machine, LiteRT in "
        f"{runtime_name()}{onnx} on one thread (LiteRT's XNNPACK kernels unless said "
        f"below), Keras in TensorFlow on its own threads. {_sentence_case(metric)} {scored_on}.",
        "",
        f"| format | file | bytes | latency (ms) | {metric} |",
        "|---|---|---|---|---|",
        *(
            f"| {r.format} | `{r.file}` | {r.size_bytes:,} | {r.latency_ms:.3f} | "
            + ("-" if r.score is None else f"{r.score:.4f}")
            + " |"
            for r in rows
        ),
        "",
        *(
            f"`{r.file}` ran on LiteRT's {r.kernels}.\n"
            for r in rows
            if r.kernels and r.kernels != "XNNPACK"
        ),
    ]
    if quantised is not None:
        (output,) = quantised.outputs[:1]
        lines += [
            f"`{LITERT_INT8_FILE}` is fully quantised: it takes int8 pixels, "
            f"q = round(p / {quantised.input.scale:.6g}) + ({quantised.input.zero_point}) for "
            f"pixels p in 0..255, and answers int8, value = (q - ({output.zero_point})) "
            f"x {output.scale:.6g}. Only LiteRT's built-in int8 kernels: the LiteRT runtime "
            "alone runs it (no TensorFlow, no Flex ops).",
            "",
        ]
        loss = quantisation_loss(rows)
        if loss:
            lines += [loss, ""]
    return "\n".join(lines)


QUANTISATION_TOLERANCE = {"accuracy": 0.01, "rmse": 0.10}
"""What int8 may lose before the card warns: 1 point of accuracy; 10% of the RMSE."""


def quantisation_loss(rows: Sequence[FormatFigures]) -> str:
    """A warning sentence when the int8 file scores clearly worse than the float32 one
    (past :data:`QUANTISATION_TOLERANCE`), else ``""``."""
    scored = {r.file: r for r in rows if r.score is not None}
    plain, int8 = scored.get(LITERT_FILE), scored.get(LITERT_INT8_FILE)
    if plain is None or int8 is None or plain.metric not in QUANTISATION_TOLERANCE:
        return ""
    tolerance = QUANTISATION_TOLERANCE[plain.metric]
    if plain.metric == "accuracy":
        worse = plain.score - int8.score > tolerance
    else:
        worse = int8.score > plain.score * (1 + tolerance)
    if not worse:
        return ""
    return (
        f"**int8 costs this model too much**: {plain.metric} {int8.score:.4f} against "
        f"{plain.score:.4f} in float32. Deploy `{LITERT_FILE}` where that matters."
    )


def _sentence_case(metric: str) -> str:
    return metric.upper() if metric == "rmse" else metric.capitalize()


def _metric(kind: str) -> str:
    """The metric the card scores each format by: accuracy, RMSE, or the kind's first."""
    of_kind = output_kind(kind)
    if of_kind.has_accuracy:
        return "accuracy"
    return "rmse" if "rmse" in of_kind.metrics else sorted(of_kind.metrics)[0]


def _score(
    kind: str, labels: Sequence[str], faces: DeploymentFaces, predictions: np.ndarray
) -> float | None:
    report = output_kind(kind).report(faces.targets, predictions, labels)
    value = report.get(_metric(kind))
    return None if value is None else float(value)
