"""The objectives known before training, as the driver hands them to strategies."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from baselines.resnet50 import RESNET50
from nas.core.config import Experiment
from nas.core.objectives import free_objectives, normalise
from nas.core.task import Task
from nas.testing.toy_space import SPACE as TOY
from search_spaces import cnn

TASK = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)
OBJECTIVES = ("accuracy", "params", "flops")
REFERENCE = Experiment(name="x", objectives=OBJECTIVES).hypervolume_reference()


def test_free_objectives_are_the_cost_on_the_hypervolume_scale():
    values = free_objectives(cnn.SPACE, OBJECTIVES, TASK, REFERENCE)
    genome = cnn.SPACE.sample(np.random.default_rng(0))
    params, flops = cnn.SPACE.cost(genome, TASK)
    expected = normalise([[0.5, params, flops]], OBJECTIVES, REFERENCE)[0]
    accuracy, *free = values(genome)
    assert accuracy is None
    assert free == list(expected[1:])
    assert all(0.0 < v < 1.0 for v in free)


def test_larger_than_the_reference_is_below_zero_and_unbuildable_is_worst():
    values = free_objectives(cnn.SPACE, OBJECTIVES, TASK, REFERENCE)
    assert values(RESNET50)[1] < 0.0  # 23.6 M parameters > max_params 5 M
    not_square = Task(kind="keypoints", input_shape=(48, 40, 1), num_keypoints=15)
    objectives, reference = ("rmse", "params"), {"rmse": 24.0, "params": 5e6}
    unbuildable = free_objectives(cnn.SPACE, objectives, not_square, reference)
    worst = normalise([[1e6, 1e12]], objectives, reference)[0]  # what a failure records
    assert unbuildable(RESNET50) == (None, worst[1])


def test_no_free_objective_or_no_cost_gives_none():
    assert free_objectives(cnn.SPACE, ("accuracy", "latency_ms"), TASK, REFERENCE) is None
    assert free_objectives(TOY, OBJECTIVES, TASK, REFERENCE) is None


def test_the_driver_computes_them_without_tensorflow():
    code = (
        "import sys, numpy as np; from nas.core.objectives import free_objectives; "
        "from nas.core.task import Task; from search_spaces import cnn; "
        "t = Task(kind='classification', input_shape=(48, 48, 1), num_classes=5); "
        "f = free_objectives(cnn.SPACE, ('accuracy', 'params'), t, {'accuracy': 0, 'params': 5e6}); "
        "f(cnn.SPACE.sample(np.random.default_rng(0))); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_int8_models_accuracy_has_the_chance_level_of_accuracy():
    from nas.core.objectives import at_chance

    chance = {"accuracy": 0.36}
    assert at_chance("accuracy_int8", 0.365, chance)
    assert not at_chance("accuracy_int8", 0.40, chance)
    assert not at_chance("rmse_int8", 30.0, chance)  # no chance level known
    assert not at_chance("latency_litert_ms", 1e6, chance)


def test_a_genome_past_a_limit_gets_the_worst_free_values():
    genome = cnn.SPACE.sample(np.random.default_rng(0))
    flops = cnn.SPACE.cost(genome, TASK).flops
    within = free_objectives(cnn.SPACE, OBJECTIVES, TASK, REFERENCE, limits={"flops": flops})
    past = free_objectives(cnn.SPACE, OBJECTIVES, TASK, REFERENCE, limits={"flops": flops - 1})
    unlimited = free_objectives(cnn.SPACE, OBJECTIVES, TASK, REFERENCE, limits={"flops": 0})
    assert within(genome) == unlimited(genome)
    assert all(value < 0 for value in past(genome)[1:])  # past the reference: no hypervolume
