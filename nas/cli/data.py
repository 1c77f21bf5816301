"""``nas data``: check a dataset file and print what it holds."""

from __future__ import annotations

import argparse


def add_to(commands: argparse._SubParsersAction) -> None:
    """``nas data`` and its flags."""
    data = commands.add_parser(
        "data",
        help="check a dataset file and print what it holds",
        description="Read a FER2013-layout CSV (plain or .gz), a keypoint CSV, an image folder "
        "(ROOT/<class>/* or ROOT/<split>/<class>/*) or a .zip of one, or 'builtin:faces'; print "
        "its rows, splits and class counts, or the one-line reason it cannot be used.",
    )
    data.add_argument("path", help="dataset file, image folder or .zip, or builtin:faces")
    data.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    """Do ``nas data`` as ``args`` say; the exit code."""
    from nas.data.summary import summarize

    for line in summarize(args.path).lines():
        print(line)
    return 0
