from __future__ import annotations

from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.engine.experiment import experiment_from_dict, load_experiment
from nas.engine.migration import stored_experiment
from nas.strategies import strategy_options
from nas.strategies.nsga2 import Nsga2Settings

EXPERIMENTS = Path(__file__).resolve().parents[3] / "experiments"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_experiments_load(path: Path):
    experiment = load_experiment(path)
    assert experiment.name == path.stem
    assert experiment_from_dict(experiment.to_dict()) == experiment


def test_defaults_and_name_from_file(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text('objectives = ["accuracy", "flops"]\n[budget]\nepochs = 2\n')
    experiment = load_experiment(path)
    assert experiment.name == "mine"
    assert experiment.budget.epochs == 2
    assert experiment.objectives == ("accuracy", "flops")
    assert experiment.search == experiment_from_dict({"name": "x"}).search


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[budget]\nepoch = 2\n", "[budget]: unknown key 'epoch' (known: epochs"),
        ("[budget]\nepochs = '2'\n", "[budget]: epochs must be int, got a string '2'"),
        ("[budget]\nepochs = true\n", "epochs must be int, got a boolean"),
        ("[budget]\nepochs = 0\n", "epochs must be in 1..1000, got 0"),
        ("[search]\npopulation = 10\n", "population must be a multiple of 4"),
        ('objectives = ["accuracy", "size"]\n', "unknown objective 'size'"),
        ('objectives = ["accuracy"]\n', "at least two metrics"),
        ("data = 3\n", "[data] must be a table"),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("[budget\n", "not valid TOML"),
        (
            "[budget]\ntrain_seconds = 60\ntimeout_seconds = 30\n",
            "timeout_seconds (30.0) must exceed",
        ),
        ("[search]\nstrategy = 'cmaes'\n", "[search]: strategy must be one of 'nsga2', 'random'"),
        ("[search]\nmax_minutes = -1\n", "max_minutes must be >= 0 (0 = no limit), got -1.0"),
        ("[search]\nmax_evaluations = -3\n", "max_evaluations must be >= 0"),
        ("[budget]\ntrain_images = -1\n", "train_images must be >= 0"),
        ("[budget]\nmax_flops = -5\n", "max_flops must be >= 0 (0 = no limit), got -5"),
        ("reference_point = 3\n", "reference_point must be a table, got int"),
        ("reference_point = { flops = 1e9 }\n", "reference_point names 'flops', which is not an"),
        ("reference_point = { params = 'x' }\n", "reference_point.params must be float"),
        (
            "space = 'tests.nas.toy_space_without_suggest'\n[search]\nstrategy = 'optuna-tpe'\n",
            "strategy 'optuna-tpe' needs the space to provide suggest()",
        ),
        ("[search]\nprescreen = 0\n", "[search]: prescreen must be in 1..64"),
        ("[search]\nprescreen = 1.5\n", "[search]: prescreen must be int, got float 1.5"),
        (
            "objectives = ['accuracy', 'latency_ms']\n[search]\nprescreen = 4\n",
            "has neither; add 'params' or 'flops' to objectives, or set prescreen = 1",
        ),
        (
            "space = 'nas.testing.toy_space'\n[search]\nprescreen = 4\n",
            "needs the space to count a genome's cost before training (cost())",
        ),
        (
            "[budget]\nmax_params = 1000\n",
            "[budget] max_params (the params reference) is 1000, not worse than the "
            "objective's ideal 1000",
        ),
        (
            "reference_point = { accuracy = 1.0 }\n",
            "reference_point accuracy is 1, not worse than the objective's ideal 1, so the "
            "hypervolume would have no width there; choose a smaller value",
        ),
        (
            "[search]\nprescreen = 4\nprescreen_by = 'gut'\n",
            "[search]: prescreen_by must be one of 'size', 'surrogate', got 'gut'",
        ),
        (
            "objectives = ['accuracy_int8', 'params']\n[data]\ntask = 'keypoints'\n",
            "objective 'accuracy_int8' does not apply to the keypoints task (use flops, "
            "latency_litert_ms, latency_ms, params, rmse, rmse_int8)",
        ),
        (
            "objectives = ['accuracy', 'rmse', 'latency_litert_ms']\n"
            "[[tasks]]\ntask = 'emotion'\n[[tasks]]\ntask = 'keypoints'\n",
            "objectives latency_litert_ms: the int8 LiteRT metrics are measured for "
            "single-task experiments only",
        ),
        (
            "[search]\nprescreen_by = 'surrogate'\n",
            "prescreen_by = 'surrogate' chooses among prescreen x population children, "
            "and prescreen is 1; set prescreen = 4",
        ),
    ],
)
def test_bad_experiment_files_name_the_place(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_experiment(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_int8_litert_objectives_apply_to_the_tasks_whose_float_metric_they_twin(
    tmp_path: Path,
):
    emotion = experiment_from_dict(
        {"name": "x", "objectives": ["accuracy_int8", "latency_litert_ms", "params"]}
    )
    assert emotion.objectives == ("accuracy_int8", "latency_litert_ms", "params")
    keypoints = experiment_from_dict(
        {"name": "y", "objectives": ["rmse_int8", "params"], "data": {"task": "keypoints"}}
    )
    assert keypoints.objectives == ("rmse_int8", "params")


def test_missing_experiment_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such experiment file"):
        load_experiment(tmp_path / "absent.toml")


def test_the_hypervolume_reference_point_is_declared_or_derived():
    experiment = experiment_from_dict(
        {
            "name": "x",
            "objectives": ["accuracy", "params", "flops"],
            "reference_point": {"accuracy": 0.2},
            "budget": {"max_params": 300_000},
        }
    )
    assert experiment.hypervolume_reference() == {
        "accuracy": 0.2,
        "params": 300_000.0,
        "flops": 1e10,
    }


def test_prescreen_defaults_to_off_and_takes_a_factor(tmp_path: Path):
    assert experiment_from_dict({"name": "x"}).search.options["prescreen"] == 1
    path = tmp_path / "screened.toml"
    path.write_text('objectives = ["accuracy", "flops"]\n[search]\nprescreen = 4\n')
    experiment = load_experiment(path)
    assert experiment.search.options["prescreen"] == 4
    assert experiment_from_dict(experiment.to_dict()) == experiment
    # other strategies ignore it, so nas compare can run them on the same experiment
    path.write_text(
        'objectives = ["accuracy", "flops"]\n[search]\nstrategy = "random"\nprescreen = 4\n'
    )
    assert load_experiment(path).search.strategy == "random"


def test_each_strategy_reads_its_own_keys_and_run_json_records_the_chosen_ones():
    nsga2 = experiment_from_dict({"name": "x", "search": {"crossover_prob": 1}})
    # coerced as NSGA-II declares it, and its other settings written out at their defaults
    assert nsga2.search.options == {
        "crossover_prob": 1.0,
        "mutation_prob": 0.8,
        "prescreen": 1,
        "prescreen_by": "size",
        "low_fidelity_images": 0,
        "promote_fraction": 0.5,
        "select_by": "score",
    }
    assert nsga2.to_dict()["search"]["crossover_prob"] == 1.0
    assert "options" not in nsga2.to_dict()["search"]
    settings = strategy_options("nsga2", nsga2.search.options)
    assert isinstance(settings, Nsga2Settings) and settings.crossover_prob == 1.0
    # random takes no keys of its own; NSGA-II's are checked and kept, not read
    plain = experiment_from_dict({"name": "x", "search": {"strategy": "random"}})
    assert plain.search.options == {}
    assert strategy_options("random", {"prescreen": 4}) is None
    with pytest.raises(ConfigError, match=r"\[search\]: crossover_prob must be in \[0, 1\]"):
        experiment_from_dict({"name": "x", "search": {"strategy": "random", "crossover_prob": 2}})


def test_a_key_no_strategy_declares_names_the_chosen_strategys_own_keys():
    with pytest.raises(ConfigError) as error:
        experiment_from_dict({"name": "x", "search": {"strategy": "random", "crossover": 0.5}})
    message = str(error.value)
    assert "[search]: unknown key 'crossover'" in message
    assert "strategy 'random''s own: none" in message
    with pytest.raises(ConfigError, match="strategy 'nsga2''s own: crossover_prob, mutation_prob"):
        experiment_from_dict({"name": "x", "search": {"options": {}}})


def test_deduplicate_is_on_for_new_experiments_and_off_for_runs_stored_before_it():
    fresh = experiment_from_dict({"name": "e"})
    assert fresh.data.deduplicate is True
    stored = fresh.to_dict()
    assert stored_experiment(stored, source="run.json").data.deduplicate is True
    del stored["data"]["deduplicate"]  # a run.json written before the key existed
    assert stored_experiment(stored, source="run.json").data.deduplicate is False
    off = experiment_from_dict({"name": "e", "data": {"deduplicate": False}})
    assert stored_experiment(off.to_dict(), source="run.json").data.deduplicate is False
