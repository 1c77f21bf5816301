"""The ``nas`` command line: one module per command over the public API below it.

Every user error is one line on stderr and exit code 2; heavy modules (TensorFlow, Ray,
Optuna) are imported only by the commands that need them, so ``nas --help`` is instant.
A command module has ``add_to(commands)``, which declares the command and its flags, and
``run(args)``, which does it and returns the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nas.cli import (
    baseline,
    compare,
    data,
    evaluate,
    export,
    fidelity,
    pareto,
    predict,
    report,
    search,
    status,
    train,
)
from nas.cli.arguments import Parser
from nas.core.errors import NasError

__all__ = ["build_parser", "main"]

COMMANDS = (
    search,
    pareto,
    export,
    report,
    evaluate,
    predict,
    train,
    baseline,
    compare,
    status,
    data,
    fidelity,
)
"""In the order ``nas --help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        code = args.command(args)
        sys.stdout.flush()  # here, so that a closed pipe is caught below
        return code
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. nas pareto RUN | head: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The `nas` command line: every command, its flags and their help."""
    parser = Parser(
        prog="nas",
        description="Neuroevolution architecture search for face analysis: evolve Keras models "
        "with NSGA-II, train them on Ray workers, keep every trial in an Optuna storage.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(commands)
    return parser
