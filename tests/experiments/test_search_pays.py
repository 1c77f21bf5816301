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
    for arm, strategy in (("search", "nsga2"), ("random", "random"), ("select_flops", "nsga2")):
        table = tomllib.loads(pays.arm_experiment(arm, 2))
        experiment = experiment_from_dict(table, source=arm)
        assert experiment.seed == 2 and experiment.search.strategy == strategy
        selects = experiment.search.options.get("select_by", "score")
        assert selects == ("score+flops" if arm == "select_flops" else "score")
        assert table["budget"] == shipped["budget"] and table["final"] == shipped["final"]
        assert table["search"]["max_evaluations"] == shipped["search"]["max_evaluations"]
        assert experiment.objectives == tuple(shipped["objectives"])


def test_the_random_arm_is_the_shipped_35_minute_experiment(pays: ModuleType):
    shipped = tomllib.loads((SCRIPT.parent / "emotion_35min.toml").read_text())
    arm = tomllib.loads(pays.arm_experiment("random", shipped["seed"]))
    nsga2_only = ("inherit_weights", "prescreen")  # checked and ignored by random search
    arm["search"] = {k: v for k, v in arm["search"].items() if k not in nsga2_only}
    assert arm.pop("name") == "emotion_35min_nsga2" and shipped.pop("name") == "emotion_35min"
    assert arm == shipped
    experiment = experiment_from_dict(shipped | {"name": "x"}, source="emotion_35min.toml")
    assert experiment.search.strategy == "random"


def test_the_accuracy_f1_arm_breeds_on_scores_alone(pays: ModuleType):
    shipped = tomllib.loads(pays.EXPERIMENT.read_text())
    table = tomllib.loads(pays.arm_experiment("accuracy_f1", 1))
    experiment = experiment_from_dict(table, source="accuracy_f1")
    assert (
        experiment.objectives == ("accuracy", "macro_f1") and experiment.search.strategy == "nsga2"
    )
    assert table["search"]["prescreen"] == 1 and experiment.seed == 1
    assert table["budget"] == shipped["budget"] and table["final"] == shipped["final"]


def test_the_affordable_arm_breeds_by_score_and_flops_within_the_final_time(pays: ModuleType):
    table = tomllib.loads(pays.arm_experiment("affordable", 2, total_minutes=35))
    experiment = experiment_from_dict(table, source="affordable")
    assert experiment.final.breed_affordable and experiment.final.known_seconds == 1050.0
    assert experiment.search.options["select_by"] == "score+flops"
    assert table["search"] == tomllib.loads(pays.arm_experiment("select_flops", 2))["search"]
    with pytest.raises(SystemExit, match="needs --minutes"):
        pays.arm_experiment("affordable", 2)


def test_the_balanced_arm_is_the_shipped_search_with_every_class_weighing_the_same(
    pays: ModuleType,
):
    table = tomllib.loads(pays.arm_experiment("balanced", 2, total_minutes=35))
    search = tomllib.loads(pays.arm_experiment("search", 2, total_minutes=35))
    assert experiment_from_dict(table, source="balanced").budget.class_weight == "balanced"
    assert table["budget"].pop("class_weight") == "balanced"
    assert table == search


def test_equal_minutes_give_the_final_training_what_is_left_of_the_run(pays: ModuleType):
    table = tomllib.loads(pays.arm_experiment("random", 0, total_minutes=35))
    final = experiment_from_dict(table, source="random").final
    assert final.total_minutes == 35 and final.epochs == 0 and final.enabled
    assert table["search"] == tomllib.loads(pays.arm_experiment("random", 0))["search"]


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
    # margins over the seeds both arms ran: random only seed 0 (0.76 - 0.73)
    assert numbers["margins"]["search_minus_random"] == pytest.approx(0.03)
    assert numbers["margin_seeds"]["search_minus_random"] == [0]
    assert numbers["margins"]["search_minus_vgg"] == pytest.approx(0.015)
    assert numbers["margins_per_seed"]["search_minus_vgg"] == pytest.approx([-0.01, 0.04])
    assert "seed by seed -1.00, +4.00, median +1.50" in text
    assert "| vgg | 0.7700 (30 min, 1,000 params) | 0.7000 (30 min, 1,000 params) | — |" in text


def test_an_unknown_arm_is_one_line_and_exit_code_2(pays: ModuleType, capsys):
    with pytest.raises(SystemExit) as stopped:
        pays.main(["run", "--data", "x.csv", "--out", "out", "--arms", "search,grid"])
    assert stopped.value.code == 2
    assert "unknown arm 'grid'" in capsys.readouterr().err


def test_vgg_minutes_replaces_the_searchs_wall_time_and_is_recorded(
    pays: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    searched = tmp_path / "search-s1"
    searched.mkdir()
    (searched / pays.RESULT).write_text(json.dumps({"wall_seconds": 4200.0}))
    commands: list[list[str]] = []

    def run(command: list[str], log: Path) -> None:  # the nas commands, not run
        commands.append(command)
        if "evaluate" in command:
            Path(command[command.index("--json") + 1]).write_text('{"accuracy": 0.5}')

    monkeypatch.setattr(pays, "_run", run)
    monkeypatch.setattr(pays, "_trials", lambda run_dir: [])
    monkeypatch.setattr(pays, "export_params", lambda export: 1000)
    for minutes, expected, source in ((None, 70.0, "search wall time"), (56.6, 56.6, "--vgg")):
        result = pays.run_arm("vgg", 1, "faces.csv", tmp_path, vgg_minutes=minutes)
        train = next(c for c in commands if "train" in c)
        given = float(train[train.index("--minutes") + 1])
        assert expected - 0.1 <= given <= expected  # less what the baseline step took
        assert result["budget_minutes"] == expected and source in result["budget_source"]
        commands.clear()
    result = pays.run_arm("vgg", 1, "faces.csv", tmp_path, total_minutes=35.0)
    assert result["budget_minutes"] == 35.0 and result["equal_minutes"] == 35.0


def test_collected_files_name_no_path_of_the_machine_they_ran_on_and_keep_the_race(
    pays: ModuleType, tmp_path: Path
):
    out, to = tmp_path / "out", tmp_path / "kept"
    arm = out / "vgg-s1"
    arm.mkdir(parents=True)
    (arm / pays.RESULT).write_text(json.dumps({"arm": "vgg", "seed": 1, "params": 10}))
    (arm / "trials.json").write_text("[]")
    data = pays.ROOT.parent / "shared" / "data" / "fer2013.csv.gz"
    metrics = {"model": str(arm / "run" / "final" / "model.keras"), "data": str(data)}
    (arm / "publictest.json").write_text(json.dumps({**metrics, "accuracy": 0.5}))
    (arm / "run").mkdir()
    (arm / "run" / "race.json").write_text('{"winner": 3}')
    assert pays.collect(out, to) == 1
    assert json.loads((to / "vgg-s1" / "race.json").read_text()) == {"winner": 3}
    kept = json.loads((to / "vgg-s1" / "publictest.json").read_text())
    assert kept["model"] == "RUNS/vgg-s1/run/final/model.keras"
    assert kept["data"] == "../shared/data/fer2013.csv.gz" and kept["accuracy"] == 0.5
    assert str(tmp_path) not in (to / "vgg-s1" / "publictest.json").read_text()
