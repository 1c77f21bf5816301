"""Failpoints: named places where a test can kill this process for real.

``NAS_FAILPOINTS="generation:asked@2,write:checkpoint.json@3"`` makes the process send
itself SIGKILL the 2nd time it passes ``failpoint("generation:asked")`` and the 3rd time
it passes ``failpoint("write:checkpoint.json")``. Names are matched with shell wildcards
(``write:*.weights.h5@1``). Without the variable a failpoint costs one dictionary lookup.

The fault-injection tests use them to crash the driver at exact points of a search (in
the middle of a checkpoint write, between two evaluations, ...) and then resume it; a
SIGKILL leaves no chance to clean up, like a power cut or the kernel's OOM killer.
"""

from __future__ import annotations

import fnmatch
import os
import signal
from collections import Counter

__all__ = ["ENVIRONMENT_VARIABLE", "failpoint"]

ENVIRONMENT_VARIABLE = "NAS_FAILPOINTS"

_hits: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL if ``NAS_FAILPOINTS`` arms ``name`` for this hit."""
    spec = os.environ.get(ENVIRONMENT_VARIABLE)
    if not spec:
        return
    for item in spec.split(","):
        pattern, _, count = item.strip().partition("@")
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        _hits[pattern] += 1
        if _hits[pattern] == int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)
