"""experiments/emotion_folders.toml: the 35-minute experiment, on the FER2013 zip."""

from __future__ import annotations

import tomllib
from pathlib import Path

from nas.engine.experiment import experiment_from_dict

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_the_zip_experiment_is_the_shipped_35_minute_one_but_for_its_data():
    """Its results are compared with the CSV search's (docs/tasks.md), so it must not drift
    from `emotion_35min.toml` (it once kept NSGA-II after that file moved to random search)."""
    shipped = tomllib.loads((EXPERIMENTS / "emotion_35min.toml").read_text())
    folders = tomllib.loads((EXPERIMENTS / "emotion_folders.toml").read_text())
    assert shipped.pop("name") == "emotion_35min" and folders.pop("name") == "emotion_folders"
    csv, zipped = shipped.pop("data"), folders.pop("data")
    assert folders == shipped
    assert zipped["path"].endswith(".zip") and csv["path"].endswith(".csv")
    # FER2013's five classes by folder name, in the CSV's label order
    assert zipped["classes"] == ["angry", "disgust", "sad", "happy", "surprise"]
    assert csv["classes"] == 5
    experiment = experiment_from_dict(folders | {"name": "x", "data": zipped}, source="zip")
    assert experiment.search.strategy == "random"
