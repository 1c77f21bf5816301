"""What a measurement ran on: the kind of processor, recorded beside timed figures.

CPU-seconds and wall times are comparable only between rows of the same kind of
machine (an AVX512 core trains this project's nets up to twice as fast as an AVX2 one).
"""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

__all__ = ["machine_kind", "machine_summary"]


def _cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def machine_kind() -> str:
    """The processor's architecture and widest vector unit, e.g. ``"x86_64 avx512"``."""
    flags = _cpu_flags()
    widest = next((f for f in ("avx512f", "avx2", "neon") if f in flags), "")
    return f"{platform.machine()} {widest.removesuffix('f')}".strip()


def machine_summary() -> dict[str, object]:
    """The kind, the cores this process may use, and whether bf16 runs natively."""
    flags = _cpu_flags()
    return {
        "machine": machine_kind(),
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags),
    }
