"""``nas predict``: an export pointed at ordinary photos. Imports TensorFlow and OpenCV.

For each photo: the faces are found (:mod:`nas.analysis.faces`), each is cropped as the
model takes it (grey or colour, its size), and every model of the export answers for it:
an emotion model with its label and the probability of each class, a keypoint model with
its points mapped back to photo pixels, a multi-task export with both (its
``tasks/<task>/`` models, each on a crop of its own size). A copy of each photo is drawn
with the boxes, labels and points (``OUT/<photo's stem>.png``), and everything is returned (and
written as JSON) per photo and face. A photo without a face is reported, not an error.

The export may be an export folder (``model.keras``, or its SavedModel ``NAME/1``), a
multi-task export folder, a ``.keras`` file or a ``.tflite`` file (float32 or int8).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.analysis.assessment import ModelUnderTest, load_model_under_test
from nas.analysis.faces import Face, crop_face, find_faces, read_photo
from nas.core.errors import ConfigError
from nas.core.files import write_atomically
from nas.kinds import output_kind

__all__ = ["PhotoResult", "drawing_names", "load_heads", "predict_photos"]


@dataclass(frozen=True)
class PhotoResult:
    """What was found in one photo."""

    photo: Path
    size: tuple[int, int]
    """Width and height in pixels."""
    faces: list[dict[str, Any]]
    drawn: Path | None

    def as_json(self) -> dict[str, Any]:
        """The photo's entry of ``--json``."""
        return {
            "photo": str(self.photo),
            "width": self.size[0],
            "height": self.size[1],
            "faces": self.faces,
            "drawn": None if self.drawn is None else str(self.drawn),
        }


def load_heads(path: Path) -> list[tuple[str, ModelUnderTest]]:
    """The models of the export at ``path``, each with the name its answers go under
    (the task's, as its ``genome.json`` names it, else its output kind's): one, or one
    per task of a multi-task export."""
    document = _document(path)
    tasks = document.get("tasks") if isinstance(document, dict) else None
    if path.is_dir() and isinstance(tasks, list) and (path / "tasks").is_dir():
        heads = []
        for entry in tasks:
            name = str(entry.get("name", "")) if isinstance(entry, dict) else ""
            folder = path / "tasks" / name
            if not name or not folder.is_dir():
                raise ConfigError(
                    f"{path / 'genome.json'}: names a task {name!r} with no folder tasks/{name}/; "
                    "export the run again"
                )
            heads.append((name, load_model_under_test(folder)))
        return heads
    subject = load_model_under_test(path)
    task = document.get("task") if isinstance(document, dict) else None
    name = task.get("name") if isinstance(task, dict) else None
    return [(str(name) if isinstance(name, str) and name else subject.kind, subject)]


def _document(path: Path) -> Any:
    file = (path if path.is_dir() else path.parent) / "genome.json"
    try:
        return json.loads(file.read_text()) if file.is_file() else {}
    except (OSError, ValueError):
        return {}


def predict_photos(
    heads: Sequence[tuple[str, ModelUnderTest]],
    photos: Sequence[Path],
    out: Path | None,
    *,
    margin: float = 0.15,
) -> list[PhotoResult]:
    """Find, crop and answer every face of ``photos`` with every head; with ``out``, draw
    each photo there as PNG (``OUT/<stem>.png``; ``<stem>-2.png``... where two photos
    share a stem). Every photo is decoded once before anything is written, so a file
    that is not an image stops the command with nothing written, and again when its
    turn comes, so that only one photo is held in memory at a time."""
    for path in photos:
        read_photo(path)
    drawings = drawing_names(photos, out) if out is not None else [None] * len(photos)
    results = []
    for path, drawn in zip(photos, drawings, strict=True):
        photo = read_photo(path)
        faces = find_faces(photo, margin=margin)
        answers = [_answers(heads, photo, face) for face in faces]
        if drawn is not None:
            _draw(photo, faces, answers, drawn)
        results.append(PhotoResult(path, (photo.shape[1], photo.shape[0]), answers, drawn))
    return results


def drawing_names(photos: Sequence[Path], out: Path) -> list[Path]:
    """Where each photo's drawing goes: ``out/<stem>.png``, numbered ``<stem>-2.png``...
    where that name is taken by an earlier photo's drawing or is one of the photos."""
    taken = {path.resolve() for path in photos}
    names = []
    for path in photos:
        drawn, number = out / f"{path.stem}.png", 1
        while drawn.resolve() in taken:
            number += 1
            drawn = out / f"{path.stem}-{number}.png"
        taken.add(drawn.resolve())
        names.append(drawn)
    return names


def _answers(
    heads: Sequence[tuple[str, ModelUnderTest]], photo: np.ndarray, face: Face
) -> dict[str, Any]:
    """One face's entry: its box and every head's answer."""
    entry: dict[str, Any] = {"box": list(face.box)}
    for name, subject in heads:
        crop = crop_face(photo, face, subject.input_shape)
        (output,) = subject.predictions(crop[None])
        kind = output_kind(subject.kind)
        if kind.has_accuracy:
            probabilities = {
                label: float(p) for label, p in zip(subject.labels, output, strict=True)
            }
            best = max(probabilities, key=probabilities.__getitem__)
            entry[name] = {
                "label": best,
                "probability": probabilities[best],
                "probabilities": probabilities,
            }
        elif kind.spatial_targets:
            side = subject.input_shape[1]
            points = face.to_photo(np.asarray(output, np.float32).reshape(-1, 2), side)
            entry[name] = {
                label: [round(float(x), 1), round(float(y), 1)]
                for label, (x, y) in zip(subject.labels, points, strict=True)
            }
        else:
            entry[name] = np.asarray(output, np.float64).round(4).tolist()
    return entry


COLOURS = ((255, 64, 64), (64, 200, 64), (64, 128, 255), (255, 180, 0), (200, 64, 255))


def _draw(photo: np.ndarray, faces: Sequence[Face], answers: Sequence[dict], path: Path) -> None:
    """The photo with each face's box, its labels and its points, as PNG."""
    import cv2

    canvas = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR).copy()
    thickness = max(1, round(min(photo.shape[:2]) / 300))
    for number, (face, entry) in enumerate(zip(faces, answers, strict=True)):
        colour = COLOURS[number % len(COLOURS)][::-1]
        x, y, width, height = face.box
        cv2.rectangle(canvas, (x, y), (x + width, y + height), colour, thickness)
        lines = [
            f"{value['label']} {value['probability']:.2f}"
            for value in entry.values()
            if isinstance(value, dict) and "label" in value
        ]
        scale = max(0.4, width / 220)
        for row, text in enumerate(lines):
            place = (x, max(12, y - 6 - row * round(22 * scale)))
            cv2.putText(
                canvas, text, place, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2
            )
            cv2.putText(canvas, text, place, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness)
        for value in entry.values():
            if isinstance(value, dict) and "label" not in value:
                for px, py in value.values():
                    cv2.circle(
                        canvas, (round(px), round(py)), max(2, width // 60), (0, 255, 255), -1
                    )
    ok, encoded = cv2.imencode(".png", canvas)
    if not ok:
        raise ConfigError(f"{path}: OpenCV could not encode the drawing")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, encoded.tobytes())
    except OSError as exc:
        raise ConfigError(
            f"--out {path.parent}: cannot write {path.name} there ({exc.strerror or exc}); "
            "choose a writable folder"
        ) from None
