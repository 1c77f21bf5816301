"""TensorFlow's log settings, in one place.

``TF_CPP_MIN_LOG_LEVEL=2`` keeps TensorFlow's info and warning lines off the terminal, but
TensorFlow 2.21 prints two lines at import that ignore it: absl's "All log messages before
absl::InitializeLog() is called are written to STDERR" and oneDNN's "custom operations are
on", each once for each of its two native libraries, so four lines in every process that
trains. :func:`import_tensorflow_quietly` imports TensorFlow with those lines dropped; every
other line, a real warning or error, still reaches stderr. Every module that imports
TensorFlow or Keras calls it first; nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

__all__ = [
    "ENVIRONMENT",
    "NOISE",
    "import_tensorflow_quietly",
    "quiet_lines",
    "set_log_level",
    "stderr_captured",
]

#: What every process that may import TensorFlow gets (Ray workers get it in their runtime env).
ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}

#: Lines TensorFlow prints at import whatever its log level: dropped.
NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)


def set_log_level() -> None:
    """Set TensorFlow's log level for this process unless the user set one."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def quiet_lines(text: str) -> str:
    """``text`` without the lines of :data:`NOISE`."""
    return "".join(
        line for line in text.splitlines(keepends=True) if not any(n in line for n in NOISE)
    )


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and so Keras' backend) once, its start-up noise dropped.

    The native libraries write to file descriptor 2 directly, so it is pointed at a
    temporary file for the import, then restored and the kept lines written back. Where
    descriptor 2 cannot be duplicated, TensorFlow is imported as it is."""
    set_log_level()
    if "tensorflow" in sys.modules:
        return
    text = ""
    try:
        with stderr_captured() as captured:
            try:
                import tensorflow  # noqa: F401
            finally:
                text = captured()
    finally:
        kept = quiet_lines(text)
        if kept:
            sys.stderr.write(kept)
            sys.stderr.flush()


@contextlib.contextmanager
def stderr_captured() -> Iterator[Callable[[], str]]:
    """File descriptor 2, where native libraries (TensorFlow, its converter, LiteRT) write
    directly, into a temporary file while the block runs; yields a function that returns
    what was written so far. Where descriptor 2 cannot be duplicated, nothing is captured
    (the function returns "")."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)

        def text() -> str:
            captured.seek(0)
            return captured.read().decode("utf-8", errors="replace")

        try:
            yield text
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
