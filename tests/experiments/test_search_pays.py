"""experiments/search_pays.py: the arms' experiments, and the table read from results."""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from nas.engine.experiment import experiment_from_dict

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "search_pays.py"


@pytest.fixture(scope="module")
def pays() -> ModuleType:
    spec = importlib.util.spec_from_file_location("search_pays_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_each_arm_runs_the_shipped_experiment_with_its_seed_and_strategy(pays: ModuleType):
    shipped = tomllib.loads(pays.EXPERIMENT.read_text())
    for arm, strategy in (("search", "nsga2"), ("random", "random")):
        table = tomllib.loads(pays.arm_experiment(arm, 2))
        experiment = experiment_from_dict(table, source=arm)
        assert experiment.seed == 2 and experiment.search.strategy == strategy
        assert table["budget"] == shipped["budget"] and table["final"] == shipped["final"]
        assert table["search"]["max_evaluations"] == shipped["search"]["max_evaluations"]


def test_the_table_gives_each_arm_its_median_and_the_search_its_margins(
    pays: ModuleType, tmp_path: Path
):
    figures = {("search", 0): 0.76, ("search", 1): 0.74, ("search", 2): 0.75,
               ("random", 0): 0.73, ("vgg", 0): 0.77, ("vgg", 1): 0.70}  # fmt: skip
    for (arm, seed), accuracy in figures.items():
        folder = tmp_path / f"{arm}-s{seed}"
        folder.mkdir()
        row = {"arm": arm, "seed": seed, "accuracy": accuracy, "params": 1000,
               "wall_seconds": 1800.0, "machine": "x86_64 avx2"}  # fmt: skip
        (folder / pays.RESULT).write_text(json.dumps(row))
    (tmp_path / "vgg-s2").mkdir()  # stopped half-way: no result, not counted
    text, numbers = pays.table(pays.results(tmp_path))
    assert numbers["medians"] == {"search": 0.75, "random": 0.73, "vgg": pytest.approx(0.735)}
    assert numbers["margins"]["search_minus_random"] == pytest.approx(0.02)
    assert numbers["margins"]["search_minus_vgg"] == pytest.approx(0.015)
    assert "| vgg | 0.7700 (30 min, 1,000 params) | 0.7000 (30 min, 1,000 params) | — |" in text


def test_an_unknown_arm_is_one_line_and_exit_code_2(pays: ModuleType, capsys):
    with pytest.raises(SystemExit) as stopped:
        pays.main(["run", "--data", "x.csv", "--out", "out", "--arms", "search,grid"])
    assert stopped.value.code == 2
    assert "unknown arm 'grid'" in capsys.readouterr().err
