"""nas.core.machine: the processor kind recorded beside timed figures."""

from __future__ import annotations

import platform

from nas.core import machine


def test_the_kind_names_the_architecture_and_the_widest_vector_unit(monkeypatch):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: {"sse2", "avx2", "avx512f", "fma"})
    assert machine.machine_kind() == f"{platform.machine()} avx512"
    monkeypatch.setattr(machine, "_cpu_flags", lambda: {"sse2", "avx2"})
    assert machine.machine_kind() == f"{platform.machine()} avx2"
    monkeypatch.setattr(machine, "_cpu_flags", set)
    assert machine.machine_kind() == platform.machine()


def test_the_summary_counts_this_process_cores_and_native_bf16(monkeypatch):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    summary = machine.machine_summary()
    assert summary["native_bf16"] is True and summary["cores"] >= 1
    assert summary["machine"].endswith("avx512")
