"""The error taxonomy.

Two families, never mixed:

* :class:`NasError` and its subclasses are *fatal user errors* (bad experiment file,
  bad dataset, bad genome JSON, unreachable cluster). Their message is one line that
  names the place and the fix; the CLI prints it and exits with the error's
  :attr:`~NasError.exit_code`: 2, or 3 for a cluster lost mid-run (:class:`ClusterLost`).
* :class:`EvaluationFailure` is raised *inside* an evaluation (a candidate that cannot
  be built, is too large, diverges or runs out of time or memory). It is recorded as a
  failed trial with its :attr:`reason`, and the search goes on.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ClusterLost",
    "ConfigError",
    "DataError",
    "EvaluationFailure",
    "FailureReason",
    "GenomeError",
    "NasError",
    "StorageError",
    "one_line",
]


class NasError(Exception):
    """A fatal, user-facing error whose message is a single actionable line."""

    exit_code = 2


class ConfigError(NasError):
    """An experiment file or a command-line value is wrong."""


class DataError(NasError):
    """A dataset file is missing, empty or malformed."""


class GenomeError(NasError):
    """A genome is malformed (unknown field, wrong type) or not a valid architecture."""


class StorageError(NasError):
    """The trial storage cannot be opened or does not hold the expected run."""


class ClusterLost(NasError):
    """The Ray cluster's head node stopped answering mid-run. Not the user's input: exit
    code 3; what was recorded is kept and the run resumes on a new head."""

    exit_code = 3


FailureReason = Literal[
    "invalid",  # the genome does not describe a valid architecture
    "oversized",  # more parameters than the experiment allows
    "build_error",  # Keras refused to build the model
    "nan_loss",  # training diverged
    "timeout",  # the evaluation ran past its time limit
    "oom",  # out of memory
    "worker_died",  # the worker process was lost
    "unquantisable",  # no full-integer int8 LiteRT conversion (an int8 objective)
    "error",  # anything else, with the exception text
]


class EvaluationFailure(Exception):
    """A candidate failed; the search records ``reason`` and ``detail`` and goes on."""

    def __init__(self, reason: FailureReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: FailureReason = reason
        self.detail = detail


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, whitespace collapsed, cut to ``limit``
    characters: what a failed candidate's record and a CLI error line show."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
