"""Failpoints: named places where a test can kill this process for real.

``NAS_FAILPOINTS="generation:asked@2,write:checkpoint.json@3"`` makes the process send
itself SIGKILL the 2nd time it passes ``failpoint("generation:asked")`` and the 3rd time
it passes ``failpoint("write:checkpoint.json")``. Names are matched with shell wildcards
(``write:*.weights.h5@1``). ``@2+`` fires at the 2nd hit and every later one, and
``=SIGINT`` (any signal's name) sends that signal instead of SIGKILL: ``ray:ready@1=SIGINT``
is a Ctrl-C that lands just as a Ray result comes in; ``=raise`` raises ``RuntimeError``
there instead (a bug, not a death). Without the variable a failpoint
costs one dictionary lookup.

The fault-injection tests use them to crash the driver at exact points of a search (in
the middle of a checkpoint write, between two evaluations, ...) and then resume it; a
SIGKILL leaves no chance to clean up, like a power cut or the kernel's OOM killer.
"""

from __future__ import annotations

import fnmatch
import os
import signal
from collections import Counter
from collections.abc import Callable

__all__ = ["ENVIRONMENT_VARIABLE", "failpoint", "observer"]

ENVIRONMENT_VARIABLE = "NAS_FAILPOINTS"

_hits: Counter[str] = Counter()

observer: Callable[[str], None] | None = None
"""Called with every failpoint's name before the variable is read: an in-process test
sets it (e.g. to raise at the 3rd ``evaluation:recorded``) whichever module the
failpoint is in."""


def failpoint(name: str) -> None:
    """Signal this process (SIGKILL unless told) if ``NAS_FAILPOINTS`` arms ``name`` now."""
    if observer is not None:
        observer(name)
    spec = os.environ.get(ENVIRONMENT_VARIABLE)
    if not spec:
        return
    for item in spec.split(","):
        armed, _, action = item.strip().partition("=")
        pattern, _, count = armed.partition("@")
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        _hits[pattern] += 1
        first = int(count.removesuffix("+") or 1)
        if _hits[pattern] == first or (count.endswith("+") and _hits[pattern] > first):
            if action == "raise":
                raise RuntimeError(f"failpoint {name}")
            os.kill(os.getpid(), getattr(signal, action) if action else signal.SIGKILL)
