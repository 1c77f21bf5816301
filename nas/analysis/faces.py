"""Faces in ordinary photographs: found with OpenCV's face detector and cropped to a
model's input. TensorFlow-free; imports OpenCV (``facenas[deploy]``).

The detector is OpenCV's frontal-face Haar cascade (Viola-Jones), whose file ships inside
the ``opencv-python-headless`` wheel: nothing is downloaded, it runs on any CPU in
milliseconds, and it finds upright, roughly frontal faces, which is what FER2013's and the
keypoint set's faces are. A face is cropped square around its box with a margin (the
training faces show the whole head's outline), padded by repeating the photo's edge where
the square leaves the photo, then resized to the model's input (grey or colour).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import ConfigError, DataError

__all__ = ["Face", "crop_face", "find_faces", "read_photo"]

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class Face:
    """A face found in a photo: its square crop's place in photo pixels."""

    left: int
    top: int
    size: int
    """Side of the square crop (the detector's box and the margin), in photo pixels."""
    box: tuple[int, int, int, int]
    """The detector's own box: x, y, width, height."""

    def to_photo(self, points: np.ndarray, side: int) -> np.ndarray:
        """Pixel ``(x, y)`` points of the model's ``side``-pixel input -> photo pixels."""
        scale = self.size / side
        return np.stack(
            [
                self.left + (points[..., 0] + 0.5) * scale - 0.5,
                self.top + (points[..., 1] + 0.5) * scale - 0.5,
            ],
            axis=-1,
        )


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ConfigError(
            "nas predict needs OpenCV's face detector; install it with pip install 'facenas[deploy]'"
        ) from None
    return cv2


@functools.cache
def _detector() -> Any:
    """OpenCV's frontal-face cascade, read once per process."""
    cv2 = _cv2()
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    detector = cv2.CascadeClassifier(str(Path(folder) / CASCADE)) if folder else None
    if detector is None or detector.empty():
        raise ConfigError(
            f"this OpenCV has no {CASCADE} (it ships in the opencv-python-headless wheel); "
            "install it with pip install 'facenas[deploy]'"
        )
    return detector


def read_photo(path: Path) -> np.ndarray:
    """The photo at ``path`` as RGB ``uint8`` (grey photos made RGB); one line when it is
    not an image OpenCV can read (JPEG, PNG, BMP, TIFF, WebP...)."""
    cv2 = _cv2()
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass photos (JPEG, PNG, BMP...)")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot read it ({exc.strerror or exc}); check its permissions"
        ) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(
            f"{path}: not an image OpenCV can read (JPEG, PNG, BMP, TIFF, WebP); remove it"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def find_faces(photo: np.ndarray, *, margin: float = 0.15, min_size: int = 24) -> list[Face]:
    """The faces of an RGB ``photo``, largest first; each crop is the detector's box grown
    by ``margin`` of its side on every side."""
    cv2 = _cv2()
    detector = _detector()
    grey = cv2.equalizeHist(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    smallest = max(min_size, min(photo.shape[:2]) // 40)
    boxes = detector.detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    faces = []
    for x, y, width, height in sorted(
        (tuple(int(v) for v in b) for b in boxes), key=lambda b: -b[2] * b[3]
    ):
        side = max(1, round(max(width, height) * (1 + 2 * margin)))
        faces.append(
            Face(
                left=round(x + width / 2 - side / 2),
                top=round(y + height / 2 - side / 2),
                size=side,
                box=(x, y, width, height),
            )
        )
    return faces


def crop_face(photo: np.ndarray, face: Face, shape: tuple[int, int, int]) -> np.ndarray:
    """``face``'s square crop of the RGB ``photo`` as a model's input: ``shape`` is its
    (height, width, channels), grey for 1 channel; float32 pixels in 0..255."""
    cv2 = _cv2()
    height, width, channels = shape
    left, top, side = face.left, face.top, face.size
    pad = max(0, -left, -top, left + side - photo.shape[1], top + side - photo.shape[0])
    padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else photo
    square = padded[top + pad : top + pad + side, left + pad : left + pad + side]
    resized = cv2.resize(square, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)[..., None]
    return resized.astype(np.float32)
