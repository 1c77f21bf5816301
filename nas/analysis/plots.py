"""The front plot (``pareto.png``): every evaluated candidate, the front highlighted."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from nas.core.errors import ConfigError
from nas.core.objectives import METRICS
from nas.storage.front import Front

__all__ = ["plot_front"]


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
