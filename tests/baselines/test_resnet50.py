from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baselines.resnet50 import RESNET50, load_imagenet_weights
from nas.cli import main
from nas.core.task import Task
from nas.engine.experiment import experiment_from_dict
from nas.engine.parallel import SerialEvaluator
from nas.engine.search import run_baseline
from nas.storage.store import RunStore


@pytest.fixture(scope="module")
def keras_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A weights file of keras.applications.ResNet50 (random, standing in for ImageNet's)."""
    import keras

    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(48, 48, 3)
    )
    path = tmp_path_factory.mktemp("weights") / "resnet50_notop.weights.h5"
    reference.save_weights(path)
    return path, reference


def test_pretrained_weights_load_by_name_with_grey_first_kernel(keras_weights):
    from search_spaces.cnn import SPACE

    path, reference = keras_weights
    model = SPACE.build(
        RESNET50, Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)
    )
    assert load_imagenet_weights(model, path) == 106  # 53 convolutions + 53 batch norms
    rgb = reference.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_allclose(
        model.get_layer("stem_conv").get_weights()[0], rgb.sum(axis=2, keepdims=True), rtol=1e-6
    )
    for ours, theirs in [
        ("stage3_block6_3_conv", "conv4_block6_3_conv"),
        ("stage4_block1_0_bn", "conv5_block1_0_bn"),
    ]:
        for a, b in zip(
            model.get_layer(ours).get_weights(),
            reference.get_layer(theirs).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_baseline_trains_alone_into_a_run_that_export_reads(
    tmp_path: Path, faces_csv: Path, keras_weights, capsys
):
    experiment = experiment_from_dict(
        {
            "name": "b",
            "data": {"path": str(faces_csv)},
            "budget": {
                "epochs": 1,
                "max_train_images": 32,
                "max_validation_images": 32,
                "max_params": 30_000_000,
            },
        }
    )
    record = run_baseline(
        experiment,
        "resnet50",
        out_dir=tmp_path / "run",
        weights=keras_weights[0],
        make_evaluator=SerialEvaluator,
    )
    assert record.ok and record.baseline == "resnet50"
    # Keras ResNet50 notop 23,587,712 - 2x7x7x64 (grey stem kernel) + 2,048x5 + 5 (5-class head)
    assert record.metrics["params"] == 23_591_685
    (trial,) = RunStore.open(tmp_path / "run").trials()
    assert trial.genome_hash == record.genome_hash
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "finished: baseline resnet50 trained alone" in capsys.readouterr().out


def test_baseline_command_errors(tmp_path: Path, capsys):
    assert main(["baseline", "vgg16", "--out", str(tmp_path / "a")]) == 2
    assert "unknown baseline 'vgg16'" in capsys.readouterr().err
    assert (
        main(
            [
                "baseline",
                "resnet50",
                "--weights",
                str(tmp_path / "absent.h5"),
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 2
    )
    assert "absent.h5: no such file" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
