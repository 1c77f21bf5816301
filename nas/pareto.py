"""Pareto fronts and the front plot, from a run's stored trials (the hypervolume's
maths is :mod:`nas.objectives`')."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import moocore
import numpy as np

from nas.errors import ConfigError
from nas.objectives import METRICS, at_chance, hypervolume
from nas.store import TrialRecord

__all__ = ["Front", "compute_front", "plot_front"]


@dataclass(frozen=True)
class Front:
    """The non-dominated completed trials, best first by the first objective.

    ``evaluated``: the completed full-fidelity trials, one per genome (the front and the
    hypervolume come from them). ``low_fidelity``: with multi-fidelity, the completed
    low-fidelity (rung-0) trials of genomes that were never promoted: evaluated, but not
    comparable with full-fidelity values, so never on the front. ``at_chance``: completed
    trials whose first objective is within :data:`nas.objectives.CHANCE_MARGIN` of chance
    (they learnt nothing): never on the front nor in the hypervolume, nor in ``evaluated``.
    """

    objectives: tuple[str, ...]
    members: list[TrialRecord]
    evaluated: list[TrialRecord]
    hypervolume: float
    reference: dict[str, float]
    low_fidelity: list[TrialRecord] = field(default_factory=list)
    at_chance: list[TrialRecord] = field(default_factory=list)


def _to_minimise(points: np.ndarray, objectives: Sequence[str]) -> np.ndarray:
    signs = np.array([-METRICS[name].weight for name in objectives])
    return points * signs


def compute_front(
    records: Sequence[TrialRecord],
    objectives: Sequence[str],
    reference: Mapping[str, float] | None = None,
    chance: Mapping[str, float] | None = None,
) -> Front:
    """The Pareto front of the completed trials (one per genome) and its hypervolume.

    ``reference`` is the run's fixed reference point (``RunInfo.reference``); without it,
    each metric's default reference is used. Only full-fidelity trials count: a
    low-fidelity trial (multi-fidelity's rung 0) is never on the front nor in the
    hypervolume; those of genomes never promoted are listed in ``Front.low_fidelity``.
    ``chance`` (``RunInfo.chance``) sets trials at chance apart (``Front.at_chance``),
    unless every completed trial is at chance: then no candidate learnt anything, and the
    front is theirs (so a run that learnt nothing can still be inspected and exported).
    """
    objectives = tuple(objectives)
    reference = dict(reference or {name: METRICS[name].reference for name in objectives})
    unique: dict[str, TrialRecord] = {}
    low: dict[str, TrialRecord] = {}
    for record in records:
        if record.ok and record.values is not None:
            (low if record.low_fidelity else unique).setdefault(record.genome_hash, record)
    useless = [r for r in unique.values() if at_chance(objectives[0], r.values[0], chance or {})]
    if len(useless) == len(unique):  # nothing learnt: the front of them all, nothing apart
        useless = []
    evaluated = [r for r in unique.values() if r not in useless]
    low_fidelity = [r for key, r in low.items() if key not in unique]
    if not evaluated:
        return Front(objectives, [], [], 0.0, reference, low_fidelity, useless)
    points = np.array([r.values for r in evaluated], dtype=float)
    mask = moocore.is_nondominated(_to_minimise(points, objectives))
    members = [r for r, keep in zip(evaluated, mask, strict=True) if keep]
    first = METRICS[objectives[0]]
    members.sort(key=lambda r: -first.weight * r.values[0])
    return Front(
        objectives,
        members,
        evaluated,
        hypervolume(points, objectives, reference),
        reference,
        low_fidelity,
        useless,
    )


def plot_front(front: Front, path: Path, *, title: str = "") -> Path:
    """Scatter every evaluated candidate, highlight the front, label baselines; write a PNG.

    With two objectives, one panel: the first on the y axis, the front joined as a
    staircase. With three or more, one panel per pair of objectives, the front's members
    circled but not joined (a projection of a front in 3-D is no staircase). Candidates
    evaluated at low fidelity only (multi-fidelity, not promoted) are grey crosses, off
    the front; candidates at chance are grey triangles, off the front too.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(itertools.combinations(range(len(front.objectives)), 2))
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.0 * len(pairs), 4.5), squeeze=False)
    generations = np.array([r.generation for r in front.evaluated])
    for ax, (j, k) in zip(axes[0], pairs, strict=True):
        first, name = front.objectives[j], front.objectives[k]
        xs = np.array([r.values[k] for r in front.evaluated])
        ys = np.array([r.values[j] for r in front.evaluated])
        for apart, marker, label in (
            (front.low_fidelity, "x", "low fidelity, not promoted"),
            (front.at_chance, "v", "at chance (learnt nothing)"),
        ):
            if apart:
                ax.scatter(
                    [r.values[k] for r in apart],
                    [r.values[j] for r in apart],
                    marker=marker,
                    s=22,
                    color="grey",
                    alpha=0.6,
                    label=label,
                )
        points = ax.scatter(
            xs, ys, c=generations, cmap="viridis", s=28, alpha=0.75, label="evaluated"
        )
        fx = np.array([r.values[k] for r in front.members])
        fy = np.array([r.values[j] for r in front.members])
        if len(pairs) == 1:
            order = np.argsort(fx)
            ax.plot(fx[order], fy[order], "-", color="crimson", lw=1.2, drawstyle="steps-post")
        ax.scatter(
            fx, fy, s=80, facecolors="none", edgecolors="crimson", lw=1.6, label="Pareto front"
        )
        baselines = [r for r in front.evaluated if r.baseline]
        if baselines:
            bx = [r.values[k] for r in baselines]
            by = [r.values[j] for r in baselines]
            ax.scatter(
                bx,
                by,
                marker="D",
                s=90,
                facecolors="none",
                edgecolors="darkmagenta",
                lw=1.6,
                label="baseline",
            )
            for record, x, y in zip(baselines, bx, by, strict=True):
                ax.annotate(
                    record.baseline,
                    (x, y),
                    textcoords="offset points",
                    xytext=(-9, 7),
                    ha="right",
                    fontsize=9,
                    weight="bold",
                    color="darkmagenta",
                )
        if name in ("params", "flops") and xs.size and xs.min() > 0:
            ax.set_xscale("log")
        if first in ("params", "flops") and ys.size and ys.min() > 0:
            ax.set_yscale("log")
        ax.set_xlabel(f"{name} ({METRICS[name].direction[:3]}) — {METRICS[name].description}")
        ax.set_ylabel(f"{first} ({METRICS[first].direction[:3]})")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.colorbar(points, ax=axes[0].tolist(), label="generation")
    low = f", {len(front.low_fidelity)} at low fidelity only" if front.low_fidelity else ""
    low += f", {len(front.at_chance)} at chance" if front.at_chance else ""
    suffix = f"  (hypervolume {front.hypervolume:.4f}, {len(front.evaluated)} evaluated{low})"
    fig.suptitle((title or "Pareto front") + suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        plt.close(fig)
        raise ConfigError(
            f"--plot {path}: cannot write it ({exc.strerror or exc}); choose another path"
        ) from None
    plt.close(fig)
    return path
