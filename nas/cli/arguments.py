"""The argument parser with the product's error line, and the argument types and
groups several commands share.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse with the product's error format: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        from nas.core.errors import ConfigError

        raise ConfigError(f"{self.prog}: {message}; see {self.prog} --help")


def add_trial_choice(parser: argparse.ArgumentParser, *, default_rank: str) -> None:
    """``--rank K`` or ``--trial N``: which trial of the run a command takes."""
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--rank",
        type=positive_int,
        metavar="K",
        help=f"K-th member of the front, best first objective first (default {default_rank})",
    )
    choice.add_argument(
        "--trial", type=int, metavar="N", help="trial number, as printed by 'nas pareto'"
    )


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value
