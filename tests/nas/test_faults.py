"""Failpoints kill the process for real, at the armed hit only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

SCRIPT = """
from nas.faults import failpoint
for i in range(1, 6):
    print(i, flush=True)
    failpoint("write:study.db")
    failpoint("write:model.weights.h5")
"""


def _run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NAS_FAILPOINTS"}
    if spec is not None:
        env["NAS_FAILPOINTS"] = spec
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("spec", "printed"),
    [
        (None, "12345"),
        ("write:study.db@3", "123"),
        ("write:*.weights.h5@2", "12"),
        ("write:*@3", "12"),  # one pattern counts the hits of every name it matches
        ("nowhere@1,write:model.weights.h5", "1"),
    ],
)
def test_failpoint_kills_at_the_armed_hit(spec: str | None, printed: str):
    result = _run(spec)
    assert "".join(result.stdout.split()) == printed
    assert result.returncode == (0 if printed == "12345" else -signal.SIGKILL)
