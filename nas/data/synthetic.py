"""Synthetic grey faces with five emotions, drawn with numpy only.

Every face is an oval on a background with two eyes, two brows, a nose and a mouth.
The emotion is carried by geometry alone: the curve and opening of the mouth, the angle
and height of the brows and how open the eyes are. Each image also gets its own
expression intensity (weak expressions are ambiguous on purpose), independent noise on
every feature, jitter in face position and scale, hair, side lighting, contrast,
brightness and Gaussian pixel noise, so the task is learnable but not trivial.

Labels are FER2013 ids: 0 angry, 1 disgust, 3 happy, 4 sad, 5 surprise, so the
five-class mapping of :func:`nas.data.datasets.load_emotions` applies unchanged.

:func:`write_emotion_csv` writes faces as a FER2013 ``fer2013.csv``;
:func:`write_keypoint_csv` writes any 96x96 images and keypoints as a Kaggle Facial
Keypoints ``training.csv`` (read back by :func:`nas.data.datasets.load_keypoints`).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from nas.core.files import write_atomically

__all__ = [
    "EMOTION_IDS",
    "KEYPOINT_NAMES",
    "render_faces",
    "write_emotion_csv",
    "write_keypoint_csv",
]

#: The FER2013 ids of the five emotions that are drawn.
EMOTION_IDS: tuple[int, ...] = (0, 1, 3, 4, 5)

#: Kaggle's keypoint order ("left" is the subject's left, the image's right).
KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)

# Expression parameters as offsets from a neutral face, in face units (1 unit = 1 pixel
# of a face at scale 1 in a 48-pixel image). Columns:
#   eye openness factor, brow inner raise, brow outer raise, mouth half-width,
#   mouth curve (corners above the centre > 0), top lip, bottom lip, corner asymmetry
_NEUTRAL = np.array([1.0, 0.0, 0.0, 4.6, 0.0, 1.0, 1.1, 0.0], dtype=np.float64)
_DELTAS: dict[int, np.ndarray] = {
    0: np.array([-0.40, -2.4, 0.4, -0.6, -0.8, -0.35, -0.35, 0.0]),  # angry
    1: np.array([-0.50, -0.8, -0.3, -0.3, -0.9, 0.45, -0.1, 1.6]),  # disgust
    3: np.array([-0.20, 0.3, 0.2, 1.2, 3.0, -0.1, 1.1, 0.0]),  # happy
    4: np.array([-0.10, 2.3, -0.7, -0.4, -2.5, -0.1, 0.0, 0.0]),  # sad
    5: np.array([0.55, 2.2, 2.1, -1.8, 0.0, 1.4, 2.0, 0.0]),  # surprise
}
_PARAM_NOISE = np.array([0.10, 0.45, 0.45, 0.45, 0.45, 0.2, 0.25, 0.35])

_CHUNK = 256  # faces rendered at once (bounds memory at size 96)

_KEYPOINT_SIDE = 96  # Kaggle's facial keypoint images are 96x96
# Each grey value as text with a trailing space, right-aligned in 4 bytes, and which of
# those bytes to keep: the text of a row of pixels is then two table look-ups.
_PIXEL_TEXT = np.array([list(f"{v} ".rjust(4).encode()) for v in range(256)], dtype=np.uint8)
_PIXEL_KEEP = np.array([[True] * 4 for _ in range(256)])
_PIXEL_KEEP[:, :3] = _PIXEL_TEXT[:, :3] != ord(" ")


def render_faces(
    n: int, rng: np.random.Generator, *, size: int = 48
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` faces with balanced random emotions.

    Returns ``(images, labels, keypoints)``: ``uint8`` images of shape ``(n, size,
    size)``; ``int64`` FER2013 labels of shape ``(n,)`` (each of :data:`EMOTION_IDS`
    equally often, in random order); ``float32`` keypoints of shape ``(n, 15, 2)`` in
    pixel ``(x, y)`` coordinates (the centre of pixel ``[row, col]`` is ``(col, row)``),
    in Kaggle's order (:data:`KEYPOINT_NAMES`). The keypoints are exactly where the
    features were drawn: eye centres and the ends of each eye's opening, the ends of the
    brow strokes, the nose tip, the mouth corners and the top and bottom of the lips at
    the middle of the mouth. The same ``rng`` state gives the same faces.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if size < 24:
        raise ValueError(f"size must be at least 24 pixels, got {size}")
    unit = size / 48.0
    labels = rng.permutation(np.resize(np.array(EMOTION_IDS, dtype=np.int64), n))
    p = _sample_params(labels, rng, size, unit)
    keypoints = _keypoints(p)
    images = np.empty((n, size, size), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        chunk = {k: v[start:stop, None, None].astype(np.float32) for k, v in p.items()}
        images[start:stop] = _draw(chunk, stop - start, size, unit, rng)
    return images, labels, keypoints


def write_emotion_csv(
    path: Path, *, n: int = 3000, seed: int = 0, validation_fraction: float = 0.2
) -> None:
    """Write ``n`` synthetic faces as a Kaggle ``fer2013.csv`` (``emotion,pixels,Usage``).

    The first ``n - round(n * validation_fraction)`` rows are ``Training``, the rest
    ``PublicTest``. The file is gzipped if ``path`` ends with ``.gz`` (with a fixed
    header, so the same arguments give the same bytes) and written atomically: a
    temporary file in the same folder, then renamed.
    """
    path = Path(path)
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    n_val = min(n - 1, max(1, round(n * validation_fraction)))
    images, labels, _ = render_faces(n, np.random.default_rng(seed))
    lines = ["emotion,pixels,Usage\n"]
    for i in range(n):
        usage = "Training" if i < n - n_val else "PublicTest"
        pixels = " ".join(map(str, images[i].ravel().tolist()))
        lines.append(f"{labels[i]},{pixels},{usage}\n")
    _write_file(path, "".join(lines).encode("ascii"))


def write_keypoint_csv(path: Path | str, images: np.ndarray, keypoints: np.ndarray) -> None:
    """Write images and keypoints as a Kaggle Facial Keypoints ``training.csv``.

    ``images`` are ``uint8`` of shape ``(N, 96, 96)`` (or ``(N, 96, 96, 1)``);
    ``keypoints`` are ``(N, 15, 2)`` pixel ``(x, y)`` coordinates in Kaggle's order
    (:data:`KEYPOINT_NAMES`), NaN where a point is missing (both coordinates, never one).
    The header is the 30 columns ``left_eye_center_x, left_eye_center_y, ...,
    mouth_center_bottom_lip_y`` then ``Image`` (9,216 space-separated grey values, row
    by row); a missing coordinate is an empty cell, as in Kaggle's file. Coordinates are
    written as the shortest text that reads back to the same ``float32``. The file is
    gzipped if ``path`` ends with ``.gz`` (the same arguments give the same bytes) and
    written atomically: a temporary file in the same folder, then renamed.
    """
    path = Path(path)
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.dtype != np.uint8 or images.shape[1:] != (_KEYPOINT_SIDE, _KEYPOINT_SIDE):
        raise ValueError(
            f"images must be uint8 of shape (N, {_KEYPOINT_SIDE}, {_KEYPOINT_SIDE}), "
            f"got {images.dtype} {images.shape}"
        )
    points = np.asarray(keypoints, dtype=np.float32)
    if points.shape != (len(images), len(KEYPOINT_NAMES), 2):
        raise ValueError(
            f"keypoints must have shape ({len(images)}, {len(KEYPOINT_NAMES)}, 2) to match "
            f"the images, got {np.shape(keypoints)}"
        )
    missing = np.isnan(points)
    half = np.argwhere(missing[..., 0] != missing[..., 1])
    if len(half):
        row, point = half[0]
        raise ValueError(
            f"keypoints[{row}] has only one coordinate of {KEYPOINT_NAMES[point]}; "
            "a point needs both coordinates or neither (NaN)"
        )
    if np.isinf(points).any():
        raise ValueError("keypoints hold an infinite coordinate; use NaN for a missing point")

    columns = [f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in ("x", "y")]
    lines = [(",".join([*columns, "Image"]) + "\n").encode("ascii")]
    flat = points.reshape(len(points), -1)
    for image, row in zip(images.reshape(len(images), -1), flat, strict=True):
        coordinates = ",".join(
            "" if np.isnan(v) else np.format_float_positional(v, unique=True, trim="-") for v in row
        )
        pixels = _PIXEL_TEXT[image][_PIXEL_KEEP[image]].tobytes()[:-1]  # no trailing space
        lines.append(coordinates.encode("ascii") + b"," + pixels + b"\n")
    _write_file(path, b"".join(lines))


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` (gzipped, reproducibly, if ``path`` ends with ``.gz``) atomically."""
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=4, mtime=0)
    write_atomically(path, data)


def _sample_params(
    labels: np.ndarray, rng: np.random.Generator, size: int, unit: float
) -> dict[str, np.ndarray]:
    """Every random choice of every face, as arrays of shape (n,) in pixels."""
    n = len(labels)
    deltas = np.stack([_DELTAS[int(k)] for k in labels]) if n else np.zeros((0, 8))
    intensity = rng.uniform(0.4, 1.0, n)[:, None]
    expr = _NEUTRAL + intensity * deltas + rng.standard_normal((n, 8)) * _PARAM_NOISE
    # disgust lifts one random corner of the mouth
    expr[:, 7] *= rng.choice([-1.0, 1.0], n)

    s = rng.uniform(1.05, 1.3, n) * unit  # pixels per face unit
    p: dict[str, np.ndarray] = {}
    p["cx"] = size / 2 - 0.5 + np.clip(rng.normal(0, 1.5, n), -3, 3) * unit
    p["cy"] = size / 2 + 2.0 + np.clip(rng.normal(0, 1.5, n), -3, 3) * unit
    p["face_a"] = rng.uniform(14.0, 16.0, n) * s
    p["face_b"] = rng.uniform(18.0, 20.5, n) * s

    # eyes: centres, half-widths, half-heights (per side, for a little asymmetry)
    eye_dx = rng.uniform(6.0, 7.2, n) * s
    eye_y = p["cy"] + rng.uniform(-4.5, -3.0, n) * s
    open_ = np.clip(expr[:, 0], 0.3, 1.8)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        p[f"eye_{side}_x"] = p["cx"] + sign * eye_dx + rng.normal(0, 0.15, n) * s
        p[f"eye_{side}_y"] = eye_y + rng.normal(0, 0.2, n) * s
        p[f"eye_{side}_w"] = rng.uniform(2.5, 3.1, n) * s
        p[f"eye_{side}_h"] = np.clip(open_ * rng.uniform(1.3, 1.6, n), 0.45, 2.8) * s
        p[f"pupil_{side}_dx"] = rng.normal(0, 0.35, n) * s
    p["pupil_r"] = rng.uniform(1.0, 1.35, n) * s

    # brows: strokes above the eyes, from the inner end to the outer end
    brow_base = rng.uniform(3.4, 4.2, n)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        ex, ey = p[f"eye_{side}_x"], p[f"eye_{side}_y"]
        inner = brow_base + expr[:, 1] + rng.normal(0, 0.25, n)
        outer = brow_base - 0.3 + expr[:, 2] + rng.normal(0, 0.25, n)
        p[f"brow_{side}_ix"] = ex - sign * rng.uniform(2.2, 3.0, n) * s
        p[f"brow_{side}_iy"] = ey - np.maximum(inner, 1.6) * s
        p[f"brow_{side}_ox"] = ex + sign * rng.uniform(3.0, 3.8, n) * s
        p[f"brow_{side}_oy"] = ey - np.maximum(outer, 1.6) * s
    p["brow_t"] = rng.uniform(0.8, 1.1, n) * s

    # nose: a faint bridge and a tip with nostrils
    p["nose_x"] = p["cx"] + rng.normal(0, 0.3, n) * s
    p["nose_y"] = p["cy"] + rng.uniform(2.6, 3.8, n) * s
    p["nostril_dx"] = rng.uniform(1.2, 1.7, n) * s

    # mouth: corners, a curve through them and the two lips around that curve
    p["mouth_x"] = p["cx"] + rng.normal(0, 0.3, n) * s
    mouth_y = p["cy"] + rng.uniform(8.4, 9.4, n) * s
    curve = expr[:, 4] * s
    asym = expr[:, 7] * s / 2
    p["mouth_hw"] = np.clip(expr[:, 3], 2.0, 7.0) * s
    # the mouth's middle stays put; the corners move by the curve (up when > 0)
    p["mouth_ly"] = mouth_y - curve - asym  # subject's left corner (image right)
    p["mouth_ry"] = mouth_y - curve + asym
    p["mouth_mid"] = mouth_y
    p["lip_top"] = np.clip(expr[:, 5], 0.45, 3.5) * s
    p["lip_bot"] = np.clip(expr[:, 6], 0.5, 3.4) * s
    p["mouth_open"] = np.clip((expr[:, 5] + expr[:, 6] - 2.2) / 1.5, 0.0, 1.0)

    # appearance
    skin = rng.uniform(105, 215, n)
    bg = rng.uniform(10, 245, n)
    close = np.abs(bg - skin) < 35
    bg = np.where(close, np.where(skin > 128, skin - rng.uniform(35, 90, n), skin + 40), bg)
    p["skin"] = skin
    p["bg"] = np.clip(bg, 0, 255)
    p["ink"] = skin * rng.uniform(0.15, 0.45, n)
    p["white"] = np.minimum(255, skin * rng.uniform(1.05, 1.25, n))
    p["hair"] = np.where(rng.random(n) < 0.75, rng.uniform(10, 110, n), rng.uniform(150, 230, n))
    p["has_hair"] = (rng.random(n) < 0.8).astype(np.float64)
    p["hairline"] = p["cy"] + rng.uniform(-15.5, -12.5, n) * s
    p["light"] = rng.uniform(-0.45, 0.45, n) / size
    p["contrast"] = rng.uniform(0.65, 1.25, n)
    p["brightness"] = rng.normal(0, 15, n)
    p["noise"] = rng.uniform(2, 9, n)
    p["unit"] = s
    return p


def _keypoints(p: dict[str, np.ndarray]) -> np.ndarray:
    """The 15 Kaggle keypoints of each face, exactly where :func:`_draw` puts them."""
    mx, hw = p["mouth_x"], p["mouth_hw"]
    points = [
        (p["eye_l_x"], p["eye_l_y"]),
        (p["eye_r_x"], p["eye_r_y"]),
        (p["eye_l_x"] - p["eye_l_w"], p["eye_l_y"]),
        (p["eye_l_x"] + p["eye_l_w"], p["eye_l_y"]),
        (p["eye_r_x"] + p["eye_r_w"], p["eye_r_y"]),
        (p["eye_r_x"] - p["eye_r_w"], p["eye_r_y"]),
        (p["brow_l_ix"], p["brow_l_iy"]),
        (p["brow_l_ox"], p["brow_l_oy"]),
        (p["brow_r_ix"], p["brow_r_iy"]),
        (p["brow_r_ox"], p["brow_r_oy"]),
        (p["nose_x"], p["nose_y"]),
        (mx + hw, p["mouth_ly"]),
        (mx - hw, p["mouth_ry"]),
        (mx, p["mouth_mid"] - p["lip_top"]),
        (mx, p["mouth_mid"] + p["lip_bot"]),
    ]
    return np.stack([np.stack(xy, axis=-1) for xy in points], axis=1).astype(np.float32)


def _cover(signed_distance: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance in pixels."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def _ellipse_sd(x: np.ndarray, y: np.ndarray, cx, cy, ax, ay) -> np.ndarray:
    """First-order signed distance to an axis-aligned ellipse."""
    dx, dy = (x - cx) / ax, (y - cy) / ay
    q = dx * dx + dy * dy - 1.0
    grad = 2.0 * np.sqrt((dx / ax) ** 2 + (dy / ay) ** 2) + 1e-6
    return q / grad


def _segment_dist(x: np.ndarray, y: np.ndarray, x0, y0, x1, y1) -> np.ndarray:
    """Distance to the segment from (x0, y0) to (x1, y1)."""
    vx, vy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * vx + (y - y0) * vy) / (vx * vx + vy * vy + 1e-9), 0.0, 1.0)
    return np.hypot(x - x0 - t * vx, y - y0 - t * vy)


def _paint(img: np.ndarray, cover: np.ndarray, value) -> np.ndarray:
    return img + (value - img) * cover


def _draw(
    p: dict[str, np.ndarray], n: int, size: int, unit: float, rng: np.random.Generator
) -> np.ndarray:
    """Render one chunk of faces; every parameter has shape (n, 1, 1)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = x[None], y[None]
    s = p["unit"]
    img = np.broadcast_to(p["bg"], (n, size, size)).astype(np.float32)

    face = _cover(_ellipse_sd(x, y, p["cx"], p["cy"], p["face_a"], p["face_b"]))
    img = _paint(img, face, p["skin"])
    # hair: the part of a slightly larger oval above the hairline
    hair_shape = _cover(
        np.maximum(
            _ellipse_sd(x, y, p["cx"], p["cy"] - 0.5 * s, p["face_a"] + s, p["face_b"] + s),
            y - p["hairline"] - 1.5 * s * np.cos((x - p["cx"]) / (p["face_a"] + s) * 1.4),
        )
    )
    img = _paint(img, hair_shape * p["has_hair"], p["hair"])

    for side in ("l", "r"):
        ex, ey = p[f"eye_{side}_x"], p[f"eye_{side}_y"]
        ew, eh = p[f"eye_{side}_w"], p[f"eye_{side}_h"]
        lid = _cover(_ellipse_sd(x, y, ex, ey, ew + 0.55 * s, eh + 0.55 * s))
        img = _paint(img, lid, p["ink"])
        white = _cover(_ellipse_sd(x, y, ex, ey, ew, eh))
        img = _paint(img, white, p["white"])
        pupil = _cover(np.hypot(x - ex - p[f"pupil_{side}_dx"], y - ey) - p["pupil_r"])
        img = _paint(img, pupil * white, p["ink"] * 0.6)
        brow = _segment_dist(
            x,
            y,
            p[f"brow_{side}_ix"],
            p[f"brow_{side}_iy"],
            p[f"brow_{side}_ox"],
            p[f"brow_{side}_oy"],
        )
        img = _paint(img, _cover(brow - p["brow_t"]), p["ink"])

    # nose: a faint bridge ending in the tip, a shadow under it and two nostrils
    bridge = _segment_dist(x, y, p["cx"], p["eye_l_y"] + 1.0 * s, p["nose_x"], p["nose_y"])
    img = _paint(img, 0.35 * _cover(bridge - 0.45 * s), p["ink"])
    for sign in (-1.0, 1.0):
        nostril = np.hypot(x - p["nose_x"] - sign * p["nostril_dx"], y - p["nose_y"] - 0.4 * s)
        img = _paint(img, 0.8 * _cover(nostril - 0.65 * s), p["ink"])

    # mouth: the region between two parabolas through the corners
    mx, hw = p["mouth_x"], p["mouth_hw"]
    u = np.clip((x - mx) / hw, -1.0, 1.0)
    bulge = 1.0 - u * u
    corners = p["mouth_ry"] + (p["mouth_ly"] - p["mouth_ry"]) * (u + 1.0) / 2.0
    mid = corners + (p["mouth_mid"] - (p["mouth_ly"] + p["mouth_ry"]) / 2.0) * bulge
    top = mid - p["lip_top"] * bulge
    bot = mid + p["lip_bot"] * bulge
    slope = np.abs(np.gradient(mid, axis=2)) + 1.0
    inside = np.maximum(np.maximum(top - y, y - bot) / slope, np.abs(x - mx) - hw)
    lips = _cover(inside)
    img = _paint(img, lips, p["ink"] * (1.25 - 0.45 * p["mouth_open"]))
    slit = _cover(np.maximum(np.abs(y - mid) / slope - 0.35 * s, np.abs(x - mx) - hw))
    img = _paint(img, slit, p["ink"] * 0.5)

    # lighting, contrast, brightness and sensor noise
    img = img * (1.0 + p["light"] * (x - p["cx"]))
    img = (img - 128.0) * p["contrast"] + 128.0 + p["brightness"]
    img = img + rng.standard_normal((n, size, size), dtype=np.float32) * p["noise"]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
