"""A genome file from anyone (``nas baseline FILE``, ``[search] seeds``) is untrusted: it
cannot choose code to import, nor make a worker build a model past the size limit; each
bad file is one line, exit code 2, and nothing written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from baselines.vgg import VGG
from nas.cli import main
from search_spaces.cnn import SPACE

QUICKSTART = Path(__file__).resolve().parents[3] / "experiments" / "quickstart.toml"


def _vgg(**changes) -> dict:
    genome = SPACE.to_json(VGG)
    for path, value in changes.items():
        target = genome
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return {"space": "cnn", "genome": genome}


CASES = {
    "unknown space": ({"space": "nope", "genome": {}}, "not a built-in space"),
    "a plugin module": ({"space": "os", "genome": {}}, "never chooses code to import"),
    "a dotted module": (
        {"space": "nas.testing.toy_space", "genome": {"x": [0.5]}},
        "pass --space nas.testing.toy_space",
    ),
    "a long module name": ({"space": "a" * 500, "genome": {}}, "not a built-in space"),
    "oversized widths": (
        _vgg(**{"stages.2.width": 2048, "stages.2.depth": 8}),
        "past [budget] max_params",
    ),
    "oversized dense": (
        _vgg(**{"head.dense": [8192, 8192, 8192, 8192]}),
        "past [budget] max_params",
    ),
    "depth out of range": (_vgg(**{"stages.0.depth": 65}), "depth = 65 is out of range"),
    "too many dense layers": (_vgg(**{"head.dense": [8] * 5}), "head.dense"),
    "NaN dropout": (_vgg(**{"head.dropout": math.nan}), "dropout = nan is out of range"),
    "a string width": (_vgg(**{"stem.width": "16"}), "must be an integer, got '16'"),
    "a huge integer": (_vgg(**{"stem.width": 10**30}), "is out of range"),
    "a list for a genome": ({"space": "cnn", "genome": [1, 2]}, ""),
    "no space": ({"genome": {}}, 'no "space" names the genome'),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_genome_file_is_one_line_and_writes_nothing(tmp_path: Path, capsys, case: str):
    document, message = CASES[case]
    path = tmp_path / "genome.json"
    path.write_text(json.dumps(document))
    out = tmp_path / "run"
    code = main(["baseline", str(path), "--experiment", str(QUICKSTART), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_not_json_is_one_line(tmp_path: Path, capsys):
    path = tmp_path / "genome.json"
    path.write_text("{not json")
    assert main(["baseline", str(path), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "run").exists()
