"""Score a trained model on a labelled file: ``nas evaluate``. Imports TensorFlow.

The model is a ``.keras`` file or a folder holding ``model.keras`` (an export of ``nas
export`` or ``nas train``, or a run's ``final/``), its SavedModel (``NAME/1``), or a
LiteRT ``.tflite`` file of ``nas export --litert`` / ``--int8`` (float32 or int8, run in
the LiteRT interpreter). What it is for comes from the model itself (``(batch, C)`` class
probabilities or ``(batch, K, 2)`` keypoints) and, when the export has one, from its
``genome.json`` (class or keypoint names, how the run split its data). The data is any file of the task's layout; emotions are scored on a ``Usage``
split (PublicTest by default), keypoints on the same seeded validation split the run
used (or all rows). Every check fails with one line that says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np

from nas.core.errors import ConfigError, DataError, one_line
from nas.data.datasets import load_emotions, load_image_classes, load_keypoints
from nas.data.duplicates import exact_twins
from nas.data.image_folders import is_image_folder
from nas.export.files import SPLIT_KEYS
from nas.export.flip_average import flip_averaged, is_flip_averaged
from nas.export.model_outputs import kind_and_names, output_kind_and_names
from nas.kinds import output_kind
from nas.training.core import inference_function, predict
from nas.training.litert import LiteRTError, LiteRTModel

__all__ = [
    "Assessment",
    "ModelUnderTest",
    "assess",
    "labelled_split",
    "load_model_under_test",
    "split_recorded",
]

RECORDED_SPLIT = ("seed", *SPLIT_KEYS)
"""What an export's genome.json says of how its run read and split the data."""

EMOTION_SPLITS = {
    "publictest": "validation",
    "validation": "validation",
    "privatetest": "test",
    "test": "test",
    "training": "train",
    "train": "train",
    "all": "all",
}
KEYPOINT_SPLITS = {"validation": "validation", "train": "train", "all": "all"}


@dataclass(frozen=True)
class ModelUnderTest:
    """A loaded model and what it is for."""

    path: Path
    model: Any
    kind: str
    """``classification`` or ``keypoints``."""
    input_shape: tuple[int, int, int]
    labels: tuple[str, ...]
    """Class names or keypoint names, in output order."""
    split: dict[str, Any] = field(default_factory=dict)
    """How the run read and split its data (:data:`RECORDED_SPLIT`: ``seed``,
    ``validation_fraction``, ``deduplicate``, an image folder's ``validation_split`` and
    ``skip_unreadable``...), when known; exports from before ``deduplicate`` existed did
    not de-duplicate."""
    flip_averaged: bool = False
    """Whether the model averages its answers for each face and its mirror image."""

    def predictions(self, images: np.ndarray) -> np.ndarray:
        """The model's answers for ``images`` (float32 pixels), as float32."""
        if isinstance(self.model, keras.Model):
            return predict(self._inference, images)
        return self.model.predict(images)  # a LiteRT file or a SavedModel's serve signature

    @cached_property
    def _inference(self) -> Any:
        """One traced function for every call (a face at a time, in nas predict)."""
        return inference_function(self.model, self.input_shape)

    @property
    def description(self) -> str:
        """E.g. ``an emotion classifier (5 classes, 48x48x1 images)``."""
        shape = "x".join(map(str, self.input_shape))
        averaged = ", flip-averaged" if self.flip_averaged else ""
        return output_kind(self.kind).describe(self.labels, shape) + f"{averaged})"


@dataclass(frozen=True)
class Assessment:
    """What ``nas evaluate`` measured and where it wrote it."""

    report: dict[str, Any]
    json_file: Path
    figure: Path


def load_model_under_test(path: Path, *, flip_average: bool = False) -> ModelUnderTest:
    """Load the model at ``path`` (a ``.keras`` file, or a folder holding ``model.keras``);
    with ``flip_average``, wrapped to average each face's answer with its mirror image's
    (:mod:`nas.export.flip_average`)."""
    if path.is_dir() and not (path / "model.keras").exists():
        saved = _saved_model_folder(path)
        if saved is not None:
            return _saved_model_under_test(saved, path)
    if path.suffix == ".tflite" and not path.is_dir():
        if flip_average:
            raise ConfigError(
                f"{path}: --flip-average wraps a Keras model; export it again with nas export "
                "--flip-average --litert and evaluate that file"
            )
        return _litert_under_test(path)
    keras_file = path / "model.keras" if path.is_dir() else path
    if path.is_dir() and not keras_file.exists():
        hint = (
            "a run folder: export a trial first (nas export RUN --to DIR) or pass RUN/final"
            if (path / "run.json").exists()
            else "pass an export folder of nas export or nas train, or a .keras file"
        )
        raise ConfigError(f"{path}: holds no model.keras; {hint}")
    if not keras_file.exists():
        raise ConfigError(f"{path}: no such file; pass a .keras file or an export folder")
    try:
        model = keras.models.load_model(keras_file, compile=False)
    except Exception as exc:  # Keras raises many kinds for a damaged or foreign file
        raise ConfigError(
            f"{keras_file}: cannot load it as a Keras model ({one_line(exc, 200)}); pass a model.keras "
            "written by nas export or nas train"
        ) from None
    document = _genome_document(keras_file.parent)
    task = document.get("task", {})
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if len(input_shape) != 3:
        raise ConfigError(f"{keras_file}: takes inputs of shape {input_shape}, not images")
    kind, labels = output_kind_and_names(model, document, keras_file)
    split = {k: task[k] for k in RECORDED_SPLIT if k in task}
    if flip_average:
        model = flip_averaged(model, kind, labels)
    return ModelUnderTest(
        keras_file,
        model,
        kind,
        input_shape,  # type: ignore[arg-type]
        labels,
        split,
        flip_averaged=is_flip_averaged(model),
    )


def _saved_model_folder(path: Path) -> Path | None:
    """The SavedModel version folder ``path`` is or holds (``NAME/1`` of an export)."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted(path.glob("*/saved_model.pb"), key=lambda p: p.parent.name)
    return versions[-1].parent if versions else None


class _ServeSignature:
    """A SavedModel of ``nas export`` through its ``serve`` signature (float32 pixels)."""

    def __init__(self, folder: Path) -> None:
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(folder))
            self.serve = loaded.signatures["serve"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{folder}: not a SavedModel of nas export with a 'serve' signature "
                f"({one_line(exc, 160)}); pass the export folder"
            ) from None
        self._loaded = loaded  # keeps the signature's variables alive
        (spec,) = self.serve.structured_input_signature[1].values()
        self.input_shape = tuple(int(d) for d in spec.shape[1:])
        self.output_shape = tuple(
            int(d) for d in next(iter(self.serve.structured_outputs.values())).shape[1:]
        )

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        import tensorflow as tf

        chunks = []
        for start in range(0, len(images), batch_size):
            batch = tf.constant(np.asarray(images[start : start + batch_size], np.float32))
            answers = self.serve(batch)
            chunks.append(np.asarray(next(iter(answers.values())), np.float32))
        return np.concatenate(chunks)


def _saved_model_under_test(folder: Path, given: Path) -> ModelUnderTest:
    """A SavedModel of an export (``EXPORT/NAME/1``): kind and names from the export's
    ``genome.json`` (two levels up)."""
    serve = _ServeSignature(folder)
    document = next(
        (
            _genome_document(place)
            for place in (folder, folder.parent, folder.parent.parent)
            if (place / "genome.json").is_file()
        ),
        {},
    )
    return _described(folder, given, serve, serve.input_shape, serve.output_shape, document)


def _litert_under_test(path: Path) -> ModelUnderTest:
    """A LiteRT file of an export, its kind and names from the ``genome.json`` beside it."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; pass a .tflite file of nas export --litert")
    try:
        model = LiteRTModel.from_file(path)
    except LiteRTError as exc:
        raise ConfigError(f"{exc}; pass a .tflite file of nas export --litert or --int8") from None
    document = _genome_document(path.parent)
    return _described(path, path, model, model.input_shape, model.output_shapes[0], document)


def _described(
    path: Path,
    given: Path,
    model: Any,
    input_shape: tuple[int, ...],
    output_shape: tuple[int, ...],
    document: dict[str, Any],
) -> ModelUnderTest:
    """A model that is not a Keras one (a SavedModel, a LiteRT file) with what its export's
    ``genome.json`` says it is for."""
    if len(input_shape) != 3:
        raise ConfigError(f"{given}: takes inputs of shape {input_shape}, not images")
    kind, labels = kind_and_names(output_shape, document, given)
    task = document.get("task", {})
    split = {k: task[k] for k in RECORDED_SPLIT if k in task}
    return ModelUnderTest(
        path,
        model,
        kind,
        input_shape,  # type: ignore[arg-type]
        labels,
        split,
        flip_averaged=bool(document.get("flip_average", False)),
    )


def labelled_split(
    subject: ModelUnderTest, data_path: str, split: str | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The images and targets of ``split`` of ``data_path`` as ``subject``'s run drew it
    (the task's default split when None), and the split's name."""
    images, targets, name, _ = _load_split(subject, data_path, split)
    return images, targets, name


def assess(
    subject: ModelUnderTest,
    data_path: str,
    *,
    split: str | None,
    out_dir: Path,
    json_file: Path | None = None,
) -> Assessment:
    """Score ``subject`` on ``split`` of ``data_path``; write the report (JSON) and the
    figure (``confusion.png`` or ``keypoints.png``) into ``out_dir``."""
    images, targets, split_name, twins = _load_split(subject, data_path, split)
    predictions = subject.predictions(images)
    title = (
        f"{subject.path.parent.name or subject.path.name} on {Path(data_path).name} ({split_name})"
    )
    kind = output_kind(subject.kind)
    report = kind.report(targets, predictions, subject.labels)
    if twins is not None:
        report["training_twins"] = _twin_accuracy(targets, predictions, twins)
    figure = kind.figure(report, images, targets, predictions, out_dir, title=title)
    report = {
        "model": str(subject.path),
        "data": data_path,
        "split": split_name,
        "task": subject.kind,
        "flip_averaged": subject.flip_averaged,
        **report,
    }
    json_file = json_file or out_dir / "metrics.json"
    json_file.parent.mkdir(parents=True, exist_ok=True)
    json_file.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")
    return Assessment(report, json_file, figure)


def _twin_accuracy(labels: np.ndarray, probabilities: np.ndarray, twins: np.ndarray) -> dict:
    """Accuracy apart on the faces with a byte-identical Training image and on the rest."""
    correct = np.asarray(probabilities).argmax(axis=1) == labels
    return {
        "images": int(twins.sum()),
        "accuracy": float(correct[twins].mean()) if twins.any() else None,
        "unseen_images": int((~twins).sum()),
        "unseen_accuracy": float(correct[~twins].mean()) if (~twins).any() else None,
    }


def _load_split(
    subject: ModelUnderTest, data_path: str, split: str | None
) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
    """:func:`_read_split`, refused in one line when its images are not the shape
    ``subject`` takes."""
    images, targets, name, twins = _read_split(subject, data_path, split)
    if images.shape[1:] != subject.input_shape:
        height, width, channels = images.shape[1:]
        raise ConfigError(
            f"--data {data_path}: its images are {height}x{width}x{channels} but {subject.path} "
            f"takes {'x'.join(map(str, subject.input_shape))}; pass data of its task"
        )
    return images, targets, name, twins


def split_recorded(subject: ModelUnderTest) -> bool:
    """Whether ``subject``'s genome.json says how its run split the data (seed and
    validation fraction), so that its validation faces can be drawn again."""
    return all(key in subject.split for key in ("seed", "validation_fraction"))


def _read_split(
    subject: ModelUnderTest, data_path: str, split: str | None
) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
    """The images and targets of ``split`` (the task's default when None), its name, and
    for held-out emotion splits which faces have a byte-identical Training image.

    Emotions are read without de-duplication: the held-out splits are the same either
    way, and ``Training`` means every Training row of the file."""
    seed = int(subject.split.get("seed", 0))
    try:
        if _reads_folder(subject, data_path):
            return _load_folder_split(subject, data_path, split)
        if subject.kind == "classification":
            role = _role(
                split or "PublicTest", EMOTION_SPLITS, "PublicTest, PrivateTest, Training, all"
            )
            if len(subject.labels) not in (5, 7):
                raise ConfigError(
                    f"{subject.path}: {len(subject.labels)} classes; FER2013 files give 5 or 7"
                )
            data = load_emotions(
                data_path,
                classes=len(subject.labels),
                seed=seed,
                validation_fraction=float(subject.split.get("validation_fraction", 0.1)),
            )
            parts = {"train": data.train, "validation": data.validation, "test": data.test}
            if role == "test" and data.test is None:
                raise ConfigError(
                    f"--data {data_path}: has no PrivateTest rows; use --split PublicTest"
                )
            images, targets, twins = _chosen_parts(parts, role, data.train.images)
            name = {"train": "Training", "validation": "PublicTest", "test": "PrivateTest"}
            return images, targets, name.get(role, "all"), twins
        if subject.kind != "keypoints":
            raise ConfigError(
                f"{subject.path}: a model of output kind {subject.kind!r}; nas evaluate reads "
                "FER2013 and keypoint files only, so score it by its search's trial metrics"
            )
        role = _role(split or "validation", KEYPOINT_SPLITS, "validation, train, all")
        drawn = ("seed", "validation_fraction")
        if role != "all" and not all(key in subject.split for key in drawn):
            raise ConfigError(
                f"{subject.path}: the export does not say how its {role} split was drawn "
                "(genome.json beside it lacks the split's seed and validation_fraction), so "
                "it could hold training faces; score it with --split all, or export the run "
                "again with nas export"
            )
        data = load_keypoints(
            data_path,
            seed=seed,
            validation_fraction=float(subject.split.get("validation_fraction", 0.15)),
            deduplicate=bool(subject.split.get("deduplicate", False)),
        )
        chosen = [data.train, data.validation] if role == "all" else [getattr(data, role)]
        images = np.concatenate([p.images for p in chosen])
        targets = np.concatenate([p.keypoints for p in chosen])
        return images, targets, role, None
    except DataError as exc:
        raise DataError(f"{exc} (the model is {subject.description})") from None


FOLDER_SPLITS = {"validation": "validation", "train": "train", "test": "test", "all": "all"}


def default_split(subject: ModelUnderTest, data_path: str) -> str:
    """The split ``nas evaluate`` scores when none is given: ``validation`` of an image
    folder, else the output kind's own (PublicTest of a FER2013 CSV)."""
    return (
        "validation"
        if _reads_folder(subject, data_path)
        else output_kind(subject.kind).default_split
    )


def _reads_folder(subject: ModelUnderTest, data_path: str) -> bool:
    return subject.kind == "classification" and is_image_folder(data_path)


def _load_folder_split(
    subject: ModelUnderTest, data_path: str, split: str | None
) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
    """``split`` of an image folder or zip, decoded to the model's input, its classes the
    export's (by name: the folders it was trained on), split as the run split it."""
    role = _role(split or "validation", FOLDER_SPLITS, "validation, train, test, all")
    if role in ("validation", "train") and not split_recorded(subject):
        raise ConfigError(
            f"{subject.path}: the export does not say how its {role} split was drawn "
            "(genome.json beside it lacks the split's seed and validation_fraction), so it "
            "could hold training images; score it with --split all or test"
        )
    height, width, channels = subject.input_shape
    if channels not in (1, 3):
        raise ConfigError(
            f"{subject.path}: takes {channels}-channel images; an image folder is read as grey "
            "(1) or RGB (3)"
        )
    data = load_image_classes(
        data_path,
        classes=tuple(subject.labels),
        image_size=(height, width),
        channels=channels,
        validation_fraction=float(subject.split.get("validation_fraction", 0.1)),
        validation_split=str(subject.split.get("validation_split", "")),
        seed=int(subject.split.get("seed", 0)),
        skip_unreadable=bool(subject.split.get("skip_unreadable", False)),
    )
    parts = {"train": data.train, "validation": data.validation, "test": data.test}
    if role == "test" and data.test is None:
        raise ConfigError(
            f"--data {data_path}: has no held-out test images; use --split validation"
        )
    images, targets, twins = _chosen_parts(parts, role, data.train.images)
    return images, targets, role, twins


def _chosen_parts(
    parts: dict[str, Any], role: str, training: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The images and labels of ``role`` (a split, or ``all``) among ``parts``, and for a
    held-out split which images have a byte-identical training image."""
    chosen = [p for r, p in parts.items() if p is not None and role in (r, "all")]
    images = np.concatenate([p.images for p in chosen])
    targets = np.concatenate([p.labels for p in chosen])
    twins = exact_twins(images, training) if role in ("validation", "test") else None
    return images, targets, twins


def _role(split: str, known: dict[str, str], names: str) -> str:
    role = known.get(split.lower())
    if role is None:
        raise ConfigError(f"--split {split}: not a split of this model's task; use one of {names}")
    return role


def _genome_document(folder: Path) -> dict[str, Any]:
    """The export's ``genome.json`` beside the model; empty when absent or unreadable."""
    try:
        document = json.loads((folder / "genome.json").read_text())
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}
