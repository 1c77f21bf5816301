"""The race before the final training: the front's best train on, the better half each round."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.engine.experiment import changed, experiment_from_dict
from nas.engine.migration import stored_experiment
from nas.engine.race import RACE_FILE, race_images, run_race
from nas.storage.front import compute_front
from nas.storage.store import RunStore


def test_race_settings_are_checked_and_the_first_round_defaults_to_the_budget():
    with pytest.raises(ConfigError, match=r"race must be in 0\.\.32"):
        experiment_from_dict({"name": "x", "final": {"race": -1}})
    experiment = experiment_from_dict({"name": "x", "budget": {"train_images": 6000}})
    assert race_images(experiment, 19_000) == 6000
    by_epochs = experiment_from_dict({"name": "x", "budget": {"epochs": 2}})
    assert race_images(by_epochs, 96) == 192
    chosen = experiment_from_dict({"name": "x", "final": {"race_images": 500}})
    assert race_images(chosen, 96) == 500


@pytest.mark.slow
def test_the_race_trains_the_best_of_the_front_on_and_records_every_round(
    tiny_search: Path, tmp_path: Path
):
    run = tmp_path / "run"
    shutil.copytree(tiny_search, run)
    store = RunStore.open(run)
    experiment = stored_experiment(store.info.experiment, source="run.json")
    experiment = changed(experiment, final=dataclasses.replace(experiment.final, race=3))
    front = compute_front(
        store.trials(), store.info.objectives, store.info.reference, store.info.chance
    )
    entrants = [r.number for r in front.members if r.weights][:3]
    lines: list[str] = []
    winner = run_race(experiment, run, echo=lines.append)
    document = json.loads((run / RACE_FILE).read_text())
    assert document["entrants"] == entrants and winner.number in entrants
    rounds = document["rounds"]
    if len(entrants) == 1:
        assert rounds == []
    else:
        assert [len(r["scores"]) for r in rounds] == [len(entrants), 2][: len(rounds)]
        assert rounds[0]["images"] == 96  # one epoch over the 96 training faces
        assert all(0.0 <= s <= 1.0 for r in rounds for s in r["scores"].values())
        last = rounds[-1]["scores"]
        assert max(last, key=last.get) == str(winner.number)
        assert len(lines) == len(rounds)
    again = run_race(experiment, run, echo=lines.append)  # finished: no training
    assert again.number == winner.number and len(lines) == len(rounds)
    (run / RACE_FILE).write_text("{")
    with pytest.raises(ConfigError, match="unreadable"):
        run_race(experiment, run)
