"""``nas predict``: an export's answers for the faces in ordinary photos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nas.cli.output import make_console


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas predict`` and its flags."""
    predict = commands.add_parser(
        "predict",
        help="find the faces in photos and draw the export's emotions and keypoints on them",
        description="Find the faces in ordinary photos (any size, colour or grey; OpenCV's "
        "frontal-face detector), crop each as the model takes it, and run the export on it: an "
        "emotion model, a keypoint model, or a multi-task export for both. Writes a copy of "
        "each photo with boxes, labels, probabilities and keypoints to --out, and with --json "
        "every face's box, label, probabilities and keypoints in photo pixels. The export is an "
        "export folder (model.keras or its SavedModel), a .keras or a .tflite file. Needs "
        "pip install 'facenas[deploy]'.",
    )
    predict.add_argument("model", type=Path, help="export folder, .keras or .tflite file")
    predict.add_argument("photos", type=Path, nargs="+", metavar="PHOTO", help="photos")
    predict.add_argument(
        "--out",
        type=Path,
        default=Path("predictions"),
        metavar="DIR",
        help="where the drawn photos go, as STEM.png (default: ./predictions)",
    )
    predict.add_argument(
        "--json", type=Path, metavar="FILE", help="write every face's answers here"
    )
    predict.add_argument(
        "--margin",
        type=float,
        default=0.15,
        metavar="F",
        help="grow each detected box by F of its side on every side before cropping (0.15)",
    )
    predict.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas predict`` as ``args`` say; the exit code."""
    from rich.markup import escape

    from nas.analysis.predict import load_heads, predict_photos
    from nas.core.errors import ConfigError
    from nas.core.files import write_atomically

    if not 0.0 <= args.margin <= 1.0:
        raise ConfigError(f"--margin {args.margin:g}: must be in 0..1 (a share of the box's side)")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: is a file, not a folder; choose another --out")
    heads = load_heads(args.model)
    results = predict_photos(heads, args.photos, args.out, margin=args.margin)
    console = make_console()
    for result in results:
        if not result.faces:
            console.print(f"{escape(str(result.photo))}: no face found")
            continue
        console.print(
            f"{escape(str(result.photo))}: {len(result.faces)} face(s), drawn in {escape(str(result.drawn))}"
        )
        for number, face in enumerate(result.faces, start=1):
            x, y, width, height = face["box"]
            parts = [f"  #{number} at ({x}, {y}) {width}x{height}"]
            for name, value in face.items():
                if isinstance(value, dict) and "label" in value:
                    parts.append(f"{name}: {value['label']} {value['probability']:.2f}")
                elif isinstance(value, dict):
                    parts.append(f"{name}: {len(value)} points")
            console.print(escape(", ".join(parts)))
    if args.json is not None:
        document = {"model": str(args.model), "photos": [r.as_json() for r in results]}
        try:
            write_atomically(args.json, (json.dumps(document, indent=2) + "\n").encode())
        except OSError as exc:
            raise ConfigError(
                f"--json {args.json}: cannot write it ({exc.strerror or exc}); choose another"
            ) from None
        console.print(f"JSON: {escape(str(args.json))}")
    return 0
