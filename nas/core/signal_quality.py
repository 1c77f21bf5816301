"""How well a run's signal ranks trained nets, in one sentence, from its experiment's panel.

The fidelity benchmark (``nas fidelity``, :mod:`nas.analysis.fidelity_report`) writes
``fidelity.json``; the benchmarks shipped with the source live in
``experiments/fidelity/<experiment>/``. The report and the model card quote the row of
the run's own signal (its ``[budget] recipe`` at its ``train_images``), and, where the
winner was chosen by score and FLOPs (``[final] choose_by``), that combination's row, so a
reader knows how far to trust the search's ranking. Reads JSON only: no TensorFlow, no other module
of the benchmark.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "signal_quality"]

BENCHMARKS = Path(__file__).resolve().parents[1] / "experiments" / "fidelity"
"""The benchmarks shipped with the source (``experiments/fidelity/<experiment>/``)."""


def signal_quality(experiment: dict[str, Any], folder: Path | None = None) -> str:
    """One sentence on how well the run's signal ranked trained nets on its experiment's
    panel (``experiments/fidelity/<name>/fidelity.json``, or ``folder``): tau, top-5
    overlap and regret for its recipe at its images; "" when no panel measured it."""
    name = str(experiment.get("name", ""))
    budget = experiment.get("budget", {}) or {}
    signal, images = str(budget.get("recipe", "genome")), int(budget.get("train_images", 0) or 0)
    path = (folder or BENCHMARKS / name) / "fidelity.json"
    try:
        rows = json.loads(path.read_text())["signals"]
        row = next(r for r in rows if r["signal"] == signal and r["images"] == images)
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return ""
    tau = row.get("tau")
    if not _number(tau):
        return ""
    sentence = (
        f"The search's signal ({signal} recipe, {images:,} images) ranked the {row['members']} "
        f"trained nets of the {name} fidelity panel with Kendall's tau {tau:.2f} "
        f"(top-5 overlap {row['top5_overlap']}, regret {row['regret']:.4f}; nas fidelity)."
    )
    if (experiment.get("final", {}) or {}).get("choose_by") == "score+flops":
        ranked = next(
            (r for r in rows if r.get("signal") == f"{signal}+flops" and r.get("images") == images),
            None,
        )
        if ranked is not None and _number(ranked.get("tau")) and _number(ranked.get("regret")):
            sentence += (
                f" The winner was chosen by that score and the FLOPs ranked together, which "
                f"ranked them with tau {ranked['tau']:.2f} (regret {ranked['regret']:.4f})."
            )
    return sentence


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)
