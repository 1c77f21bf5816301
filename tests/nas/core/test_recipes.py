"""Training recipes: the schedules, which recipe each setting picks, and old runs kept as they were."""

from __future__ import annotations

import math

import pytest

from nas.core.learning_curve import extrapolate
from nas.core.recipes import STANDARD_BRIEF, STANDARD_FINAL, brief_recipe, final_recipe
from nas.core.space import TrainingRecipe
from nas.engine.experiment import experiment_from_dict
from nas.engine.migration import stored_experiment

GENOME = TrainingRecipe(learning_rate=0.1, batch_size=128, optimizer="sgd", weight_decay=1e-3)


def test_the_genome_recipe_keeps_the_genes_and_a_constant_rate_in_the_search():
    recipe = brief_recipe("genome", GENOME)
    assert recipe.training == GENOME
    assert [recipe.rate_at(step, 47) for step in (0, 20, 46)] == [0.1, 0.1, 0.1]


def test_the_standard_recipe_ignores_the_genes_warms_up_and_ends_at_zero():
    recipe = brief_recipe("standard", GENOME)
    assert recipe is STANDARD_BRIEF and recipe.batch_size == 32 and recipe.optimizer == "adamw"
    total = 188  # 6,000 images at batch 32
    rates = [recipe.rate_at(step, total) for step in range(total + 1)]
    warmup = int(0.1 * total)
    assert rates[0] < rates[warmup // 2] < rates[warmup - 1] < recipe.learning_rate
    assert rates[warmup] == pytest.approx(recipe.learning_rate)
    assert all(a >= b for a, b in zip(rates[warmup:], rates[warmup + 1 :], strict=False))
    assert rates[total] == pytest.approx(0.0, abs=1e-12)


def test_the_final_genome_recipe_is_the_old_cosine_to_one_percent():
    recipe = final_recipe("genome", GENOME)
    assert recipe.training == GENOME and recipe.warmup_fraction == 0.0
    assert recipe.rate_at(0, 100) == pytest.approx(0.1)
    assert recipe.rate_at(50, 100) == pytest.approx(0.1 * (0.01 + 0.99 * 0.5))
    assert recipe.rate_at(100, 100) == pytest.approx(0.001)
    assert final_recipe("standard", GENOME) is STANDARD_FINAL


def test_new_experiments_train_their_winner_with_the_standard_recipe_and_old_runs_keep_theirs():
    fresh = experiment_from_dict({"name": "x"})
    assert fresh.final.recipe == "standard" and fresh.budget.recipe == "genome"
    old = stored_experiment({"name": "x", "final": {"epochs": 3}}, source="run.json")
    assert old.final.recipe == "genome"
    chosen = stored_experiment({"name": "x", "final": {"recipe": "standard"}}, source="run.json")
    assert chosen.final.recipe == "standard"


def test_auto_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path):
    import nas.training.core as training

    flags = tmp_path / "cpuinfo"
    real_path = training.Path
    monkeypatch.setattr(
        training, "Path", lambda text: flags if text == "/proc/cpuinfo" else real_path(text)
    )
    flags.write_text("flags : fpu sse avx2 avx512f\n")
    assert training.resolved_precision("auto") == "float32"
    flags.write_text("flags : fpu avx512f avx512_bf16\n")
    assert training.resolved_precision("auto") == "bf16"
    assert training.resolved_precision("float32") == "float32"


def test_a_learning_curve_extrapolates_to_its_asymptote_and_falls_back_to_its_last_score():
    # y = 0.7 - 0.2 n^-1 at n = 1, 2, 4 -> 0.5, 0.6, 0.65; at 1e9 images about 0.7
    assert extrapolate([(1, 0.5), (2, 0.6), (4, 0.65)], 1e9) == pytest.approx(0.7, abs=1e-6)
    assert extrapolate([(1, 0.5), (2, 0.6), (4, 0.65)], 8) == pytest.approx(0.675)
    assert extrapolate([(1500, 0.4), (3000, 0.35), (6000, 0.5)], 1e5) == 0.5  # not rising
    assert extrapolate([(1500, 0.4), (3000, 0.41), (6000, 0.5)], 1e5) == 0.5  # speeding up
    with pytest.raises(ValueError, match="one ratio"):
        extrapolate([(1, 0.1), (2, 0.2), (5, 0.3)], 10)
    assert not math.isnan(extrapolate([(1, 0.5), (2, 0.6), (4, 0.65)], 4))


def test_the_curve_objective_needs_its_images_and_a_budget_in_images():
    from nas.core.errors import ConfigError

    with pytest.raises(ConfigError, match="needs \\[budget\\] curve_images"):
        experiment_from_dict({"name": "x", "objectives": ["accuracy_curve", "params"]})
    with pytest.raises(ConfigError, match="curve_images needs train_images"):
        experiment_from_dict({"name": "x", "budget": {"curve_images": 100_000}})
    ok = experiment_from_dict(
        {
            "name": "x",
            "objectives": ["accuracy_curve", "params"],
            "budget": {"curve_images": 200_000, "train_images": 6000},
        }
    )
    assert ok.budget.curve_images == 200_000


@pytest.mark.slow
def test_a_candidate_scored_on_its_curve_reports_where_it_is_heading(faces_csv):
    import dataclasses

    from baselines.vgg import VGG
    from nas.core.space import genome_hash, load_space
    from nas.core.trial import EvalRequest
    from nas.engine.task_data import load_task_data
    from nas.training.evaluate import evaluate

    experiment = experiment_from_dict(
        {
            "name": "x",
            "objectives": ["accuracy_curve", "params"],
            "data": {"path": str(faces_csv)},
            "budget": {
                "curve_images": 100_000,
                "train_images": 256,
                "max_train_images": 128,
                "max_validation_images": 64,
            },
        }
    )
    space = load_space("cnn")
    small = dataclasses.replace(VGG, stages=VGG.stages[:1])
    data = load_task_data(experiment).eval_data
    request = EvalRequest(
        space="cnn",
        genome=space.to_json(small),
        genome_hash=genome_hash(space, small),
        seed=0,
        budget=experiment.budget,
    )
    result = evaluate(request, data)
    assert result.ok, result.detail
    metrics = result.metrics or {}
    assert {"accuracy@64", "accuracy@128"} <= set(metrics)
    assert 0.0 <= metrics["accuracy"] <= metrics["accuracy_curve"] <= 1.0
    twice = dataclasses.replace(request, budget=dataclasses.replace(request.budget, repeats=2))
    averaged = evaluate(twice, data)
    assert averaged.ok and averaged.metrics is not None
    assert averaged.metrics["params"] == metrics["params"]
    assert 0.0 <= averaged.metrics["accuracy"] <= 1.0


def test_repeats_average_the_quality_and_keep_the_costs():
    from nas.training.evaluate import _averaged

    first = {"accuracy": 0.4, "macro_f1": 0.2, "params": 1000.0, "accuracy@64": 0.3}
    second = {"accuracy": 0.6, "macro_f1": 0.4, "params": 1000.0, "accuracy@64": 0.5}
    both = _averaged(first, second, 1)
    assert both["accuracy"] == pytest.approx(0.5) and both["macro_f1"] == pytest.approx(0.3)
    assert both["params"] == 1000.0 and both["accuracy@64"] == 0.3
    third = _averaged(both, {"accuracy": 0.8, "macro_f1": 0.0}, 2)
    assert third["accuracy"] == pytest.approx(0.6)


def test_under_the_standard_recipe_a_trial_is_described_without_the_genes_it_ignores():
    import dataclasses

    from baselines.vgg import VGG
    from nas.core.space import describe_candidate, load_space

    space = load_space("cnn")
    own = describe_candidate(space, VGG, "genome")
    assert own == space.describe(VGG) and f"b{VGG.training.batch_size}" in own
    standard = describe_candidate(space, VGG, "standard")
    other_batch = dataclasses.replace(
        VGG, training=dataclasses.replace(VGG.training, batch_size=16)
    )
    assert standard == describe_candidate(space, other_batch, "standard")
    assert standard.endswith(" | standard recipe") and VGG.training.optimizer not in standard
    assert own.startswith(standard.removesuffix(" | standard recipe") + " | ")

    class Plain:  # a plugin space without describe_architecture keeps its own line
        def describe(self, genome: object) -> str:
            return "net | adam lr1e-3 b64"

    assert describe_candidate(Plain(), VGG, "standard") == "net | adam lr1e-3 b64"  # type: ignore[arg-type]
