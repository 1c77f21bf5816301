from __future__ import annotations

import json
from pathlib import Path

import pytest

from baselines import load_seed
from baselines.resnet50 import RESNET50
from nas.core.errors import ConfigError, GenomeError
from nas.core.space import load_space


def test_baseline_by_name():
    seed = load_seed("resnet50", load_space("cnn"))
    assert seed.label == "resnet50" and seed.genome == RESNET50


def test_the_vgg_baseline_is_a_small_plain_net_under_400k_parameters():
    from baselines.vgg import VGG
    from nas.core.task import Task

    space = load_space("cnn")
    assert load_seed("vgg", space).genome == VGG
    cost = space.cost(VGG, Task(kind="classification", input_shape=(48, 48, 1), num_classes=5))
    assert cost.params == 305_381  # the figure its docstring states
    assert {stage.block for stage in VGG.stages} == {"plain"}


def test_genome_file_as_written_by_export_and_bare(tmp_path: Path):
    space = load_space("cnn")
    exported = tmp_path / "winner.json"
    exported.write_text(json.dumps({"space": "cnn", "genome": space.to_json(RESNET50)}))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(space.to_json(RESNET50)))
    assert load_seed(str(exported), space).genome == RESNET50
    assert load_seed(str(bare), space).label == "bare"


def test_seed_of_another_space_is_refused(tmp_path: Path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"space": "resunet", "genome": {}}))
    with pytest.raises(ConfigError, match="'resunet' space, not 'cnn'"):
        load_seed(str(path), load_space("cnn"))


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            "resnet51",
            ConfigError,
            "not a baseline (resnet50, resunet, vgg) nor a genome .json file",
        ),
        ("missing.json", ConfigError, "no such genome file"),
    ],
)
def test_bad_seeds(spec: str, error: type, message: str):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_seed(spec, load_space("cnn"))


def test_invalid_genome_file_names_the_field(tmp_path: Path):
    space = load_space("cnn")
    data = space.to_json(RESNET50)
    data["stages"][0]["width"] = "wide"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GenomeError, match=r"seed .*bad.json: .*stages\[0\]\.width"):
        load_seed(str(path), space)


def test_seed_space_of_names_and_genome_files(tmp_path: Path):
    from baselines import seed_space

    assert [seed_space(name) for name in ("resnet50", "vgg", "resunet")] == [
        "cnn",
        "cnn",
        "resunet",
    ]
    exported = tmp_path / "winner.json"
    exported.write_text(json.dumps({"space": "resunet", "genome": {}}))
    assert seed_space(str(exported)) == "resunet"
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(load_space("cnn").to_json(RESNET50)))
    with pytest.raises(ConfigError, match='no "space" names'):
        seed_space(str(bare))
    with pytest.raises(ConfigError, match="no such genome file"):
        seed_space(str(tmp_path / "absent.json"))
