"""Seeded validation splits: stratified by class, or by whole groups of near-identical
frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.core.errors import DataError


def group_split(
    groups: np.ndarray, n_val: int, rng: np.random.Generator, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) rows: whole groups, in a seeded random order, until the
    validation split holds about ``n_val`` rows (never every group)."""
    ids, sizes = np.unique(groups, return_counts=True)
    if len(ids) < 2:
        raise DataError(
            f"{path}: every row is a near-identical frame of the others, so no validation "
            "split can hold other faces; add rows of other faces, or set [data] "
            "deduplicate = false"
        )
    order = rng.permutation(len(ids))
    filled = np.cumsum(sizes[order])
    # The groups whose running total gets closest to n_val; at least one, never all.
    take = int(np.clip(np.argmin(np.abs(filled - n_val)) + 1, 1, len(ids) - 1))
    validation = np.isin(groups, ids[order[:take]])
    return np.flatnonzero(validation), np.flatnonzero(~validation)


def stratified_split(
    rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (train, validation), ``fraction`` of each class to validation."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for label in np.unique(labels[rows]):
        members = rows[labels[rows] == label]
        members = members[rng.permutation(len(members))]
        n_val = round(len(members) * fraction)
        validation.append(members[:n_val])
        train.append(members[n_val:])
    if not train:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))
