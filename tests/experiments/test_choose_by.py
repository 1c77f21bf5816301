"""experiments/choose_by.py: the search it runs is the shipped one, with [final] off."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

from nas.engine.experiment import experiment_from_dict

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "choose_by.py"


def test_the_search_is_the_shipped_experiment_with_its_seed_and_no_final():
    spec = importlib.util.spec_from_file_location("choose_by_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    shipped = tomllib.loads(module.EXPERIMENT.read_text())
    table = tomllib.loads(module.search_only(5))
    assert table["seed"] == 5 and table["search"] == shipped["search"]
    assert table["budget"] == shipped["budget"]
    assert table["final"]["epochs"] == 0 and table["final"]["race"] == 0
    assert shipped["final"]["epochs"] > 0 and shipped["final"]["race"] > 1
    experiment = experiment_from_dict(table, source="choose_by")
    assert not experiment.final.enabled and experiment.final.choose_by == "score+flops"
    assert module.RULES == ("score", "score+flops")
