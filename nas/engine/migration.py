"""Runs stored by earlier versions, read as they were started.

A run keeps its experiment in ``run.json``; a key added since then takes the value that
keeps the run's behaviour, not today's default. Every such rule is here, so the store
and the dataclasses know nothing of history.
"""

from __future__ import annotations

from typing import Any

from nas.core.config import Experiment
from nas.engine.experiment import experiment_from_dict

__all__ = ["stored_experiment"]


def stored_experiment(table: dict[str, Any], *, source: str) -> Experiment:
    """The experiment a run stored (its ``run.json``), read so that the run keeps the
    behaviour it was started with where a key was added since: a run from before
    ``[data] deduplicate`` existed did not de-duplicate; one from before ``[final] recipe``
    trained its winner with the genome's own recipe."""
    data = table.get("data", {})
    if "tasks" not in table and isinstance(data, dict) and "deduplicate" not in data:
        table = {**table, "data": {**data, "deduplicate": False}}
    final = table.get("final", {})
    if isinstance(final, dict) and "recipe" not in final:
        table = {**table, "final": {**final, "recipe": "genome"}}
    return experiment_from_dict(table, source=source)
