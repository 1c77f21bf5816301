"""The pictures of ``nas evaluate``: a confusion matrix for emotions, a grid of faces with
predicted and true points for keypoints. Matplotlib only (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_confusion", "plot_keypoint_faces"]


def plot_confusion(report: dict, path: Path, *, title: str) -> Path:
    """The confusion matrix of a :func:`nas.core.scoring.classification_report`: each row (true
    class) as shares of its faces, coloured, with the counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(report["confusion"], dtype=float)
    names = report["class_names"]
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = 1.1 * len(names) + 2.0
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[i, j] > 0.55 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(
        range(len(names)), [f"{n} ({int(r)})" for n, r in zip(names, rows[:, 0], strict=True)]
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (faces)")
    ax.set_title(f"{title}\naccuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_keypoint_faces(
    images: np.ndarray,
    targets: np.ndarray,
    predicted: np.ndarray,
    path: Path,
    *,
    title: str,
    columns: int = 6,
    rows: int = 4,
) -> Path:
    """A grid of faces: true points as green circles, predicted ones as red crosses, each
    face titled with its own RMSE. The faces shown are spread evenly over the split's
    errors, from the best to the worst, so the grid shows what typical and bad look like."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    error = np.sqrt(np.nanmean((predicted - targets) ** 2, axis=(1, 2)))
    order = np.argsort(np.where(np.isfinite(error), error, np.inf))
    count = min(len(order), columns * rows)
    picked = order[np.linspace(0, len(order) - 1, count).round().astype(int)] if count else []
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.1 + 0.6))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, index in zip(np.ravel(axes)[:count], picked, strict=True):
        ax.imshow(images[index, :, :, 0], cmap="gray", vmin=0, vmax=255)
        ax.scatter(*targets[index].T, s=14, facecolors="none", edgecolors="lime", linewidths=1)
        ax.scatter(*predicted[index].T, s=14, c="red", marker="x", linewidths=1)
        ax.set_title(f"#{index}: {error[index]:.2f} px", fontsize=8)
    fig.suptitle(f"{title}\ngreen o: true, red x: predicted (best to worst)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
