"""A trained Keras model as LiteRT (TensorFlow Lite), float32 or full-integer int8, and
the LiteRT runtime that runs it. Imports TensorFlow.

The conversion follows Keras 3's own path (an ``ExportArchive`` SavedModel, then
TensorFlow's converter) with one difference: only LiteRT's built-in ops are allowed
(``TFLITE_BUILTINS``, or ``TFLITE_BUILTINS_INT8`` for int8), never the select TensorFlow
("Flex") ops Keras' exporter falls back to, so the LiteRT runtime alone runs the file,
as on a phone or a board. An op that has no such kernel is named in one line.

The int8 file is fully quantised: weights, activations, input and output are int8; the
input's scale and zero point map the model's 0..255 pixels to int8 (calibrated on a
representative set of training faces: about scale 1 and zero point -128 where they span
0..255), the output's map back to probabilities or keypoint pixels. :class:`LiteRTModel`
hides that: it takes and returns float32 like the Keras model.

The runtime is ``ai_edge_litert`` (``pip install ai-edge-litert``, the LiteRT
interpreter without TensorFlow) where it is installed, TensorFlow's bundled
``tf.lite.Interpreter`` otherwise; both run the same files with the same kernels.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly, stderr_captured

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np
import tensorflow as tf

from nas.training.core import median_ms
from nas.training.model_stats import leaf_layers

__all__ = [
    "LITERT_FILE",
    "LITERT_INT8_FILE",
    "LiteRTError",
    "LiteRTModel",
    "float32_model",
    "representative_faces",
    "runtime_name",
    "to_litert",
]

LITERT_FILE = "model.tflite"
"""The float32 LiteRT file of an export."""

LITERT_INT8_FILE = "model_int8.tflite"
"""The full-integer int8 LiteRT file of an export."""

REPRESENTATIVE_FACES = 128
"""Training faces the int8 conversion calibrates its activation ranges on."""


class LiteRTError(ValueError):
    """A model cannot be converted to (or run as) LiteRT; the message is one line that
    names the op or the file."""


def representative_faces(
    images: np.ndarray, rng: np.random.Generator, count: int = REPRESENTATIVE_FACES
) -> np.ndarray:
    """``count`` training faces drawn without replacement by ``rng``, as float32: the
    int8 conversion's calibration set."""
    chosen = rng.choice(len(images), size=min(count, len(images)), replace=False)
    return np.asarray(images[np.sort(chosen)], np.float32)


def to_litert(
    model: keras.Model, *, int8: bool = False, representative: np.ndarray | None = None
) -> bytes:
    """``model`` as a LiteRT flatbuffer: float32, or with ``int8`` fully quantised
    (calibrated on ``representative``, float32 pixels in 0..255, at least one image).

    Raises :class:`LiteRTError` naming the op when a built-in LiteRT kernel (an int8 one,
    for ``int8``) is missing."""
    if int8 and (representative is None or len(representative) == 0):
        raise LiteRTError("an int8 conversion needs representative faces to calibrate on")
    model = float32_model(model)
    shape = (None, *(int(d) for d in model.inputs[0].shape[1:]))
    with tempfile.TemporaryDirectory() as folder, stderr_captured() as captured:
        try:
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint(
                "serve",
                lambda pixels: model(pixels, training=False),
                input_signature=[tf.TensorSpec(shape, tf.float32, name="pixels")],
            )
            archive.write_out(folder, verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serve"])
            if int8:
                assert representative is not None
                faces = np.asarray(representative, np.float32)
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: (
                    [faces[i : i + 1]] for i in range(len(faces))
                )
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
            else:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            return bytes(converter.convert())
        except Exception as exc:  # the export and the converter raise several kinds, with long logs
            raise LiteRTError(_conversion_reason(exc, captured(), int8=int8)) from None


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32, else a float32 copy with its weights
    (a model trained in mixed bfloat16: LiteRT has no bfloat16 kernels, and its int8
    conversion starts from float32)."""
    if all(layer.compute_dtype == "float32" for layer in leaf_layers(model)):
        return model

    def in_float32(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=in_float32)
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    # clone_model compiles the copy from the model's compile config, and a trained
    # candidate's loss (label smoothing's closure) does not deserialise: the copy only
    # exports, so it is cloned as from an uncompiled model
    compiled, model.compiled = model.compiled, False
    try:
        copy = keras.models.clone_model(model, clone_function=in_float32)
    finally:
        model.compiled = compiled
    copy.set_weights(model.get_weights())
    return copy


def _conversion_reason(exc: BaseException, log: str, *, int8: bool) -> str:
    """One line from a failed conversion: the ops that have no (int8) kernel, when the
    converter names them."""
    text = f"{exc}\n{log}"
    ops = sorted(
        set(re.findall(r"not yet supported for op: '([\w.]+)'", text))
        | set(re.findall(r"'([\w.]+)' op is neither a custom op nor a flex op", text))
    )
    what = "full-integer int8" if int8 else "LiteRT built-in ops"
    if ops:
        return f"cannot convert to {what}: no such kernel for {', '.join(ops)}"
    last = next(
        (line.strip() for line in reversed(text.splitlines()) if "error" in line.lower()), ""
    )
    return f"cannot convert to {what}: {(last or str(exc).strip())[:240]}"


def runtime_name() -> str:
    """Which LiteRT interpreter :class:`LiteRTModel` uses here."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return "tf.lite (TensorFlow's bundled interpreter)"
    return "ai_edge_litert"


def _interpreter(content: bytes, threads: int) -> tuple[Any, str]:
    """A LiteRT interpreter for ``content`` with its tensors allocated, and which kernels
    run it: XNNPACK (LiteRT's default CPU delegate) or, where XNNPACK refuses the graph
    (it has for an int8 net whose trained weights left an activation range empty), the
    built-in kernels alone, as the runtime on a device falls back to them."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    with stderr_captured():  # the runtime's "Created ... XNNPACK delegate" line
        try:
            interpreter = Interpreter(model_content=content, num_threads=threads)
            interpreter.allocate_tensors()
            return interpreter, "XNNPACK"
        except RuntimeError as exc:
            if "XNNPACK" not in str(exc) and "elegate" not in str(exc):
                raise
            reason = " ".join(str(exc).split())[:120]
        interpreter = Interpreter(
            model_content=content,
            num_threads=threads,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
        return interpreter, f"built-in kernels (XNNPACK refused it: {reason})"


@dataclass(frozen=True)
class Port:
    """One input or output of a LiteRT file: its signature name, its element type, and
    for an int8 port the scale and zero point that map int8 to real values."""

    name: str
    dtype: Any
    scale: float
    zero_point: int

    @property
    def quantised(self) -> bool:
        return self.dtype == np.int8


class LiteRTModel:
    """A LiteRT file ready to run: float32 pixels in, float32 outputs out, whether the
    file is float32 or int8 (quantised and dequantised here with the file's scales).
    ``kernels`` says what runs it: ``XNNPACK``, or LiteRT's built-in kernels where
    XNNPACK refused the graph (and why)."""

    def __init__(self, content: bytes, *, threads: int = 1, source: str = "LiteRT model") -> None:
        self.content = content
        self.source = source
        try:
            interpreter, self.kernels = _interpreter(content, threads)
            self._runner = interpreter.get_signature_runner("serve")
        except (ValueError, RuntimeError) as exc:
            raise LiteRTError(
                f"{source}: not a LiteRT model of nas export ({' '.join(str(exc).split())[:160]})"
            ) from None
        self._interpreter = interpreter
        inputs = self._runner.get_input_details()
        if len(inputs) != 1:
            raise LiteRTError(f"{source}: takes {len(inputs)} inputs, not one image batch")
        ((name, detail),) = inputs.items()
        self.input = _port(name, detail, source)
        self.input_shape = tuple(int(d) for d in detail["shape_signature"][1:])
        outputs = self._runner.get_output_details()
        # output_0, output_1, ...: the Keras model's outputs in order
        if not all(re.fullmatch(r"output_\d+", n) for n in outputs):
            raise LiteRTError(
                f"{source}: its outputs are named {', '.join(sorted(outputs))}, not output_0, "
                "output_1...; export it with nas export --litert"
            )
        self.outputs = [
            _port(n, outputs[n], source) for n in sorted(outputs, key=lambda n: int(n[7:]))
        ]
        self.output_shapes = [
            tuple(int(d) for d in outputs[p.name]["shape_signature"][1:]) for p in self.outputs
        ]

    @classmethod
    def from_file(cls, path: Path, *, threads: int = 1) -> LiteRTModel:
        """The LiteRT file at ``path``."""
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise LiteRTError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        return cls(content, threads=threads, source=str(path))

    @property
    def int8(self) -> bool:
        """Whether the file takes int8 input (a full-integer model)."""
        return self.input.quantised

    def predict_all(self, images: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
        """Every output of the model for ``images`` (float32 pixels in 0..255), float32."""
        chunks: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for start in range(0, len(images), batch_size):
            answers = self._run(np.asarray(images[start : start + batch_size], np.float32))
            for chunk, answer in zip(chunks, answers, strict=True):
                chunk.append(answer)
        return [
            np.concatenate(c) if c else np.zeros((0, *shape), np.float32)
            for c, shape in zip(chunks, self.output_shapes, strict=True)
        ]

    def predict(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """The (first) output for ``images``, like :func:`nas.training.core.predict`."""
        return self.predict_all(images, batch_size)[0]

    def latency_ms(self, image: np.ndarray, runs: int = 50) -> float:
        """Median time of one run on one image (float32 pixels, shape ``(1, H, W, C)``),
        the input already quantised, after three runs to warm up."""
        fed = {self.input.name: self._quantised(np.asarray(image, np.float32))}
        return median_ms(lambda: self._runner(**fed), runs=runs, warmup=3)

    def _quantised(self, images: np.ndarray) -> np.ndarray:
        port = self.input
        if not port.quantised:
            return images.astype(np.float32)
        return np.clip(np.round(images / port.scale + port.zero_point), -128, 127).astype(np.int8)

    def _run(self, images: np.ndarray) -> list[np.ndarray]:
        answers = self._runner(**{self.input.name: self._quantised(images)})
        out = []
        for port in self.outputs:
            value = np.asarray(answers[port.name])
            if port.quantised:
                value = (value.astype(np.float32) - port.zero_point) * port.scale
            out.append(value.astype(np.float32))
        return out


def _port(name: str, detail: dict[str, Any], source: str) -> Port:
    if detail["dtype"] not in (np.float32, np.int8):
        raise LiteRTError(
            f"{source}: has a {np.dtype(detail['dtype']).name} port {name!r}; nas reads "
            "float32 and int8 LiteRT files (nas export --litert / --int8)"
        )
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return Port(name, detail["dtype"], float(scale), int(zero_point))
