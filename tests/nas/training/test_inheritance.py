"""Weight inheritance (nas/training/inheritance.py): which layers a child takes from which parent.

The unit tests build tiny CNNs (24x24 inputs) and compare weights layer by layer with the
parents' and with a fresh build of the child at the same seed; the last test runs a tiny
search with ``inherit_weights = true``.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nas.core.space import WeightSource, load_space
from nas.core.task import Task
from search_spaces.cnn import CnnGenome, Head, Stage, Stem

TASK = Task(kind="classification", input_shape=(24, 24, 1), num_classes=3)
CNN = load_space("cnn")

PARENT = CnnGenome(
    stem=Stem(width=8),
    stages=(
        Stage(block="basic", depth=1, width=8),
        Stage(block="basic", depth=1, width=16, stride=2),
        Stage(block="plain", depth=1, width=16),
    ),
    head=Head(dense=(32,)),
)


# --- correspondence (no TensorFlow) -----------------------------------------------------


def _by_prefix(sources: tuple[WeightSource, ...]) -> dict[str, tuple[str | None, bool]]:
    return {s.child_prefix: (s.parent_prefix, s.identical) for s in sources}


def test_an_inserted_stage_is_new_and_the_stages_behind_it_keep_their_counterparts():
    extra = Stage(block="basic", depth=2, width=12)
    child = replace(PARENT, stages=(PARENT.stages[0], extra, *PARENT.stages[1:]))
    sources = _by_prefix(CNN.weight_sources(child, PARENT))
    assert sources["stem_"] == ("stem_", True)
    assert sources["stage1_"] == ("stage1_", True)
    assert sources["stage2_"] == (None, False)
    assert sources["stage3_"] == ("stage2_", True)
    assert sources["stage4_"] == ("stage3_", True)
    assert sources["fc1"] == ("fc1", True)
    assert sources["predictions"] == ("predictions", True)


def test_a_removed_stage_shifts_the_stages_behind_it_back():
    child = replace(PARENT, stages=(PARENT.stages[0], PARENT.stages[2]))
    sources = _by_prefix(CNN.weight_sources(child, PARENT))
    assert sources["stage1_"] == ("stage1_", True)
    assert sources["stage2_"] == ("stage3_", True)


def test_a_mutated_stage_corresponds_to_its_old_self_but_is_not_identical():
    wider = replace(PARENT.stages[1], width=24)
    child = replace(PARENT, stages=(PARENT.stages[0], wider, PARENT.stages[2]))
    sources = _by_prefix(CNN.weight_sources(child, PARENT))
    assert sources["stage2_"] == ("stage2_", False)
    assert sources["stage3_"] == ("stage3_", True)


def test_resunet_levels_align_as_encoder_decoder_pairs():
    space = load_space("resunet")
    parent = space.sample(np.random.default_rng(4))
    for seed in range(20):
        child = space.mutate(parent, np.random.default_rng(seed))
        sources = _by_prefix(space.weight_sources(child, parent))
        assert {"stem_", "bottleneck_", "heatmaps"} <= set(sources)
        for level in range(1, len(child.encoder) + 1):
            assert f"enc{level}_" in sources
    same = _by_prefix(space.weight_sources(parent, parent))
    assert all(identical for _, identical in same.values())
    assert all(prefix == mine for mine, (prefix, _) in same.items())


# --- copying weights ----------------------------------------------------------------------


def _build(genome: CnnGenome, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    return CNN.build(genome, TASK)


def _trained(genome: CnnGenome, seed: int):
    """A parent model whose weights differ from any fresh initialisation, and its
    ``.weights.h5`` bytes."""
    model = _build(genome, seed)
    rng = np.random.default_rng(seed)
    model.set_weights(
        [w + rng.normal(1.0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "parent.weights.h5"
        model.save_weights(path)
        return model, path.read_bytes()


def _weights(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def _inherit(child: CnnGenome, parents, seed: int = 11, **options):
    from nas.core.trial import ParentWeights
    from nas.training.inheritance import inherit_weights

    model = _build(child, seed)
    report = inherit_weights(
        model,
        child,
        [ParentWeights(CNN.to_json(g), weights) for g, weights in parents],
        space=CNN,
        task=TASK,
        **options,
    )
    return model, report


@pytest.mark.slow
def test_a_widened_stage_keeps_its_old_filters_and_everything_else_is_copied():
    parent_model, parent_bytes = _trained(PARENT, seed=1)
    wider = replace(PARENT.stages[1], width=24)
    child = replace(PARENT, stages=(PARENT.stages[0], wider, PARENT.stages[2]))
    model, report = _inherit(child, [(PARENT, parent_bytes)])
    fresh = _weights(_build(child, 11))
    parent = _weights(parent_model)
    got = _weights(model)

    widened = {f"stage2_block1_{k}_{kind}" for k in (0, 1, 2) for kind in ("conv", "bn")}
    widened.add("stage3_block1_1_conv")  # its input channels grew
    assert set(report.partial) == widened
    assert report.fresh == () and report.identity == ()
    assert set(report.whole) == set(got) - widened
    for name, arrays in got.items():
        left_fresh = 0
        for value, old, new in zip(arrays, parent[name], fresh[name], strict=True):
            if name not in widened:
                np.testing.assert_array_equal(value, old, err_msg=name)
                continue
            overlap = tuple(
                slice(0, min(a, b)) for a, b in zip(value.shape, old.shape, strict=True)
            )
            np.testing.assert_array_equal(value[overlap], old[overlap], err_msg=name)
            rest = np.ones(value.shape, dtype=bool)
            rest[overlap] = False
            np.testing.assert_array_equal(value[rest], new[rest], err_msg=name)
            left_fresh += int(rest.sum())
        assert (left_fresh > 0) == (name in widened), name
    copied = sum(
        int(np.prod([min(a, b) for a, b in zip(v.shape, o.shape, strict=True)]))
        for name in got
        for v, o in zip(got[name], parent[name], strict=True)
    )
    total = sum(v.size for arrays in got.values() for v in arrays)
    assert report.copied_values == copied and report.total_values == total
    assert 0.5 < report.fraction < 1.0
    summary = report.summary()
    assert (summary.whole, summary.partial, summary.fresh) == (len(got) - 7, 7, 0)


@pytest.mark.slow
def test_a_crossover_child_takes_each_part_from_the_parent_that_gave_it():
    """Both parents have the same shapes everywhere (they differ in activations, pooling
    and dropout only), so only the genome parts can tell which parent a layer is from."""
    a = PARENT
    b = replace(
        PARENT,
        stem=replace(PARENT.stem, pool=True),
        stages=tuple(replace(s, activation="swish") for s in PARENT.stages),
        head=replace(PARENT.head, dropout=0.2),
    )
    a_model, a_bytes = _trained(a, seed=1)
    b_model, b_bytes = _trained(b, seed=2)
    child = CnnGenome(
        stem=b.stem,
        stages=(a.stages[0], b.stages[1], a.stages[2]),
        head=b.head,
        training=a.training,
    )
    model, report = _inherit(child, [(a, a_bytes), (b, b_bytes)])
    expected = {"stem_": 1, "stage1_": 0, "stage2_": 1, "stage3_": 0, "fc1": 1, "predictions": 1}
    weights = {0: _weights(a_model), 1: _weights(b_model)}
    got = _weights(model)
    assert set(report.whole) == set(got) and not report.partial and not report.fresh
    for name, arrays in got.items():
        (source,) = [index for prefix, index in expected.items() if name.startswith(prefix)]
        assert report.sources[name] == (source, name)
        for value, inherited in zip(arrays, weights[source][name], strict=True):
            np.testing.assert_array_equal(value, inherited, err_msg=name)
    assert report.fraction == 1.0


@pytest.mark.slow
def test_a_block_added_by_a_depth_mutation_starts_near_identity():
    _, parent_bytes = _trained(PARENT, seed=1)
    deeper = replace(PARENT.stages[0], depth=2)
    child = replace(PARENT, stages=(deeper, *PARENT.stages[1:]))
    new = {f"stage1_block2_{k}_{kind}" for k in (1, 2) for kind in ("conv", "bn")}
    model, report = _inherit(child, [(PARENT, parent_bytes)])
    assert set(report.fresh) == new
    assert report.identity == ("stage1_block2_2_bn",)
    assert not model.get_layer("stage1_block2_2_bn").get_weights()[0].any()
    fresh = _weights(_build(child, 11))
    for name in new - {"stage1_block2_2_bn"}:
        for value, expected in zip(model.get_layer(name).get_weights(), fresh[name], strict=True):
            np.testing.assert_array_equal(value, expected)

    plain, report = _inherit(child, [(PARENT, parent_bytes)], identity_init=False)
    assert report.identity == ()
    np.testing.assert_array_equal(
        plain.get_layer("stage1_block2_2_bn").get_weights()[0], fresh["stage1_block2_2_bn"][0]
    )


@pytest.mark.slow
def test_a_parent_that_cannot_be_loaded_contributes_nothing():
    model, report = _inherit(PARENT, [(PARENT, b"not hdf5")])
    assert len(report.unusable) == 1 and report.unusable[0].startswith("parent 0:")
    assert not report.whole and not report.partial and report.fraction == 0.0
    for name, arrays in _weights(_build(PARENT, 11)).items():
        for value, expected in zip(model.get_layer(name).get_weights(), arrays, strict=True):
            np.testing.assert_array_equal(value, expected)


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_search_with_inherit_weights_records_what_generation_1_inherited(
    tmp_path: Path, faces_csv: Path
):
    from nas.engine.experiment import experiment_from_dict
    from nas.engine.parallel import SerialEvaluator
    from nas.engine.search import run_search
    from nas.storage.store import RunStore

    experiment = experiment_from_dict(
        {
            "name": "tiny-inherit",
            "seed": 3,
            "objectives": ["accuracy", "params"],
            "data": {"path": str(faces_csv)},
            "budget": {
                "epochs": 1,
                "max_train_images": 64,
                "max_validation_images": 32,
                "max_params": 200_000,
            },
            "search": {
                "population": 4,
                "generations": 1,
                "workers": 1,
                "inherit_weights": True,
            },
        }
    )
    run_search(experiment, out_dir=tmp_path / "run", make_evaluator=SerialEvaluator)
    trials = RunStore.open(tmp_path / "run").trials()
    assert all(t.inherited is None for t in trials if t.generation == 0)
    children = [t for t in trials if t.generation == 1 and t.ok]
    inherited = [t.inherited for t in children if t.inherited is not None]
    assert inherited, "no generation-1 child inherited anything"
    assert any(i["fraction"] > 0 and i["whole"] > 0 for i in inherited)
    for summary in inherited:
        assert set(summary) == {"whole", "partial", "fresh", "fraction"}
        assert 0.0 <= summary["fraction"] <= 1.0
