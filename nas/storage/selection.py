"""Which trial of a run to export or train further: by rank on the front, or by number."""

from __future__ import annotations

from nas.core.errors import ConfigError
from nas.storage.front import compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore

__all__ = ["select_trial"]


def select_trial(
    store: RunStore, *, rank: int | None = None, trial: int | None = None
) -> TrialRecord:
    """The trial to export: ``rank`` K of the front (1 = best first objective) or trial ``trial``."""
    records = store.trials()
    if trial is not None:
        matches = [r for r in records if r.number == trial]
        if not matches:
            held = f"trials 0..{len(records) - 1}" if records else "no trials"
            raise ConfigError(
                f"--trial {trial}: no such trial in {store.run_dir} (it holds {held}); "
                f"nas pareto {store.run_dir} lists them"
            )
        record = matches[0]
        if not record.ok:
            raise ConfigError(
                f"--trial {trial} failed ({record.failure}: {record.detail}); pick a completed trial"
            )
        return record
    front = compute_front(records, store.info.objectives, chance=store.info.chance)
    rank = rank or 1
    if not front.members:
        raise ConfigError(
            f"{store.run_dir}: no trial completed, so there is nothing to export; run the "
            "search again (failed trials hold their reason, see nas pareto)"
        )
    if not 1 <= rank <= len(front.members):
        raise ConfigError(
            f"--rank {rank}: the front of {store.run_dir} has {len(front.members)} members; "
            f"pick --rank 1..{len(front.members)}"
        )
    return front.members[rank - 1]
