"""Failpoints kill the process for real, at the armed hit only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

SCRIPT = """
import signal
from nas.core.faults import failpoint
signal.signal(signal.SIGUSR1, lambda *_: print("!", flush=True))
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
    ("spec", "printed", "returncode"),
    [
        (None, "12345", 0),
        ("write:study.db@3", "123", -signal.SIGKILL),
        ("write:*.weights.h5@2", "12", -signal.SIGKILL),
        ("write:*@3", "12", -signal.SIGKILL),  # one pattern counts the hits of every name
        ("nowhere@1,write:model.weights.h5", "1", -signal.SIGKILL),
        ("write:study.db@2=SIGTERM", "12", -signal.SIGTERM),  # another signal
        ("write:study.db@4+=SIGUSR1", "1234!5!", 0),  # the 4th hit and every later one
    ],
)
def test_failpoint_signals_at_the_armed_hit(spec: str | None, printed: str, returncode: int):
    result = _run(spec)
    assert "".join(result.stdout.split()) == printed
    assert result.returncode == returncode


def test_a_raise_action_raises_instead_of_killing(monkeypatch: pytest.MonkeyPatch):
    from nas.core import faults

    monkeypatch.setenv("NAS_FAILPOINTS", "final:epoch@2=raise")
    monkeypatch.setattr(faults, "_hits", faults.Counter())
    faults.failpoint("final:epoch")  # the first hit passes
    with pytest.raises(RuntimeError, match="failpoint final:epoch"):
        faults.failpoint("final:epoch")
