"""The spaces' analytic costs equal the built models' ``count_params()`` and ``count_flops``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from baselines.resnet50 import RESNET50
from baselines.resunet import RESUNET
from nas.core.errors import GenomeError
from nas.core.space import ModelCost
from nas.core.task import Task
from nas.training.model_stats import count_flops
from search_spaces import cnn, resunet

SEEDS = range(30)

CNN_TASKS = (
    Task(kind="classification", input_shape=(48, 48, 1), num_classes=5),
    Task(kind="classification", input_shape=(45, 37, 3), num_classes=7),  # odd sides: ceil
    Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15),
)
RESUNET_TASKS = (
    Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15),
    Task(kind="keypoints", input_shape=(48, 64, 3), num_keypoints=4),
)


def _built(space, genome, task: Task) -> ModelCost:
    model = space.build(genome, task)
    return ModelCost(params=int(model.count_params()), flops=count_flops(model))


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def _genome(space, seed: int):
    """A sample for an even seed; for an odd one, an off-sample state: a mutant of a
    crossover child."""
    rng = np.random.default_rng(seed)
    genome = space.sample(rng)
    if seed % 2:
        child, _ = space.crossover(genome, space.sample(rng), rng)
        genome = space.mutate(child, rng)
    return genome


def test_cnn_cost_equals_the_built_model():
    mismatches = []
    for seed in SEEDS:
        task, genome = CNN_TASKS[seed % len(CNN_TASKS)], _genome(cnn.SPACE, seed)
        expected, counted = _built(cnn.SPACE, genome, task), cnn.SPACE.cost(genome, task)
        if counted != expected:
            mismatches.append((seed, cnn.SPACE.describe(genome), expected, counted))
    assert not mismatches


def test_cnn_cost_covers_every_block_and_head():
    genome = cnn.CnnGenome(
        stem=cnn.Stem(width=5, kernel=1, stride=2, pool=True),
        stages=(
            cnn.Stage(block="plain", depth=2, width=7, kernel=5, stride=2, se=True),
            cnn.Stage(block="basic", depth=2, width=7, kernel=7, se=True),
            cnn.Stage(block="bottleneck", depth=2, width=9, stride=2, expansion=8, se=True),
            cnn.Stage(block="basic", depth=1, width=80, kernel=1, stride=2),
        ),
        head=cnn.Head(pooling="max", dense=(33, 7), dropout=0.3),
    )
    for task in CNN_TASKS:
        assert cnn.SPACE.cost(genome, task) == _built(cnn.SPACE, genome, task)


def test_resnet50_cost_at_48x48():
    task = CNN_TASKS[0]
    cost = cnn.SPACE.cost(RESNET50, task)
    assert cost == _built(cnn.SPACE, RESNET50, task)
    # keras.applications.ResNet50's 23,587,712 with a grey (not RGB) first 7x7 kernel,
    # plus a 2048 x 5 softmax
    assert cost.params == 23_587_712 - 7 * 7 * 2 * 64 + 2048 * 5 + 5


def test_resunet_cost_equals_the_built_model():
    mismatches = []
    for seed in SEEDS:
        task, genome = RESUNET_TASKS[seed % len(RESUNET_TASKS)], _genome(resunet.SPACE, seed)
        expected, counted = _built(resunet.SPACE, genome, task), resunet.SPACE.cost(genome, task)
        if counted != expected:
            mismatches.append((seed, resunet.SPACE.describe(genome), expected, counted))
    assert not mismatches


def test_resunet_baseline_cost():
    task = RESUNET_TASKS[0]
    cost = resunet.SPACE.cost(RESUNET, task)
    assert cost == _built(resunet.SPACE, RESUNET, task)
    assert cost.params == 1_790_063


def test_cost_raises_where_build_does():
    square = Task(kind="keypoints", input_shape=(48, 40, 1), num_keypoints=15)
    with pytest.raises(ValueError, match="square"):
        cnn.SPACE.cost(RESNET50, square)
    classification = Task(kind="classification", input_shape=(96, 96, 1), num_classes=5)
    with pytest.raises(ValueError, match="image positions only"):
        resunet.SPACE.cost(RESUNET, classification)
    indivisible = Task(kind="keypoints", input_shape=(44, 44, 1), num_keypoints=15)
    with pytest.raises(ValueError, match="not divisible by 8"):
        resunet.SPACE.cost(RESUNET, indivisible)
    with pytest.raises(GenomeError, match="stages"):
        cnn.SPACE.cost(replace(RESNET50, stages=()), CNN_TASKS[0])


def test_cost_does_not_import_tensorflow():
    code = (
        "import sys; from nas.core.task import Task; "
        "from baselines.resnet50 import RESNET50; from baselines.resunet import RESUNET; "
        "from search_spaces import cnn, resunet; "
        "t = Task(kind='keypoints', input_shape=(96, 96, 1), num_keypoints=15); "
        "cnn.SPACE.cost(RESNET50, t); resunet.SPACE.cost(RESUNET, t); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cnn_multitask_cost_counts_the_shared_backbone_once():
    """``cost_multitask`` equals the multi-task model's parameters, and its FLOPs equal
    those of the one-task models (one image of each task) whose heads it joins."""
    tasks = (CNN_TASKS[0], CNN_TASKS[2])
    for seed in range(4):
        genome = _genome(cnn.SPACE, seed)
        model = cnn.SPACE.build_multitask(genome, tasks, ("emotion", "keypoints"))
        counted = cnn.SPACE.cost_multitask(genome, tasks)
        assert counted.params == model.count_params()
        assert counted.flops == sum(_built(cnn.SPACE, genome, task).flops for task in tasks)
        assert counted.params < sum(_built(cnn.SPACE, genome, task).params for task in tasks)


def test_resunet_multitask_cost_counts_the_shared_encoder_once():
    """The ResUNet's multi-task model: its encoder shared, the decoder drawing the
    keypoints and the pooled bottleneck classifying. ``cost_multitask`` equals its
    parameters, and its FLOPs those of the keypoint model plus the encoder and softmax
    on one emotion image."""
    import keras

    tasks = (CNN_TASKS[0], RESUNET_TASKS[0])
    for seed in range(3):
        genome = _genome(resunet.SPACE, seed)
        model = resunet.SPACE.build_multitask(genome, tasks, ("emotion", "keypoints"))
        assert [tuple(o.shape) for o in model.outputs] == [(None, 5), (None, 15, 2)]
        counted = resunet.SPACE.cost_multitask(genome, tasks)
        assert counted.params == model.count_params()
        pixels = keras.Input(shape=(48, 48, 1))
        bottom, _ = resunet.build.apply_encoder(genome, keras.layers.Rescaling(1 / 255)(pixels))
        pooled = keras.layers.GlobalAveragePooling2D()(bottom)
        emotion_alone = keras.Model(pixels, keras.layers.Dense(5)(pooled))
        keypoints_alone = _built(resunet.SPACE, genome, tasks[1])
        assert counted.flops == keypoints_alone.flops + count_flops(emotion_alone)
        assert counted.params < keypoints_alone.params + emotion_alone.count_params()
