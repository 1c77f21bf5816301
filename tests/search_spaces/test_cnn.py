"""The CNN search space: conformance, canonical genomes, ranges, decoder and ResNet50."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from baselines.resnet50 import RESNET50
from nas.core.errors import GenomeError
from nas.core.space import genome_hash, load_space
from nas.core.task import Task
from nas.testing.space_conformance import SearchSpaceConformance
from search_spaces import cnn
from search_spaces._genes import step
from search_spaces.cnn import SPACE, CnnGenome, Head, Stage, Stem, Training, backbone

TASK = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)


class TestCnnConformance(SearchSpaceConformance):
    space = SPACE
    task = TASK


def _genome(**changes) -> CnnGenome:
    base = CnnGenome(
        stem=Stem(width=16, kernel=3, stride=1, pool=False),
        stages=(
            Stage(block="basic", depth=2, width=32),
            Stage(block="bottleneck", depth=3, width=64, stride=2, expansion=4, se=True),
        ),
        head=Head(pooling="avg", dense=(), dropout=0.0),
        training=Training(learning_rate=1e-3, batch_size=64, optimizer="adam", weight_decay=0.0),
    )
    return replace(base, **changes)


def test_load_space_finds_it():
    assert load_space("cnn") is SPACE


def test_importing_the_space_does_not_import_tensorflow():
    code = (
        "import sys, search_spaces.cnn, baselines.resnet50, nas.training.model_stats; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_describe():
    assert (
        SPACE.describe(_genome())
        == "stem16k3 | basic2x32 | bottleneck3x64e4 s2 se | avg | adam lr1e-3 b64"
    )
    other = _genome(
        stem=Stem(width=8, kernel=5, stride=2, pool=True),
        head=Head(pooling="max", dense=(128, 64), dropout=0.3),
        training=Training(learning_rate=3e-4, batch_size=32, optimizer="adamw", weight_decay=1e-4),
    )
    assert SPACE.describe(other).startswith("stem8k5 s2 pool | ")
    assert SPACE.describe(other).endswith(" | max fc128-64 drop0.3 | adamw lr3e-4 b32 wd1e-4")


def test_recipe():
    recipe = SPACE.recipe(
        _genome(
            training=Training(learning_rate=0.01, batch_size=16, optimizer="sgd", weight_decay=1e-4)
        )
    )
    assert (recipe.learning_rate, recipe.batch_size, recipe.optimizer, recipe.weight_decay) == (
        0.01,
        16,
        "sgd",
        1e-4,
    )


# --- canonical genomes ----------------------------------------------------------------


def test_genes_that_do_not_matter_are_normalised():
    basic = Stage(block="basic", depth=2, width=32, expansion=4)
    assert basic == Stage(block="basic", depth=2, width=32, expansion=1)
    assert basic.expansion == 1
    a = _genome(stages=(basic,))
    b = _genome(stages=[Stage(block="basic", depth=2, width=32)])  # a list becomes a tuple
    assert a == b and hash(a) == hash(b)
    assert genome_hash(SPACE, a) == genome_hash(SPACE, b)
    # AdamW without weight decay is Adam; integral floats and -0.0 are plain floats
    adamw = Training(learning_rate=1, batch_size=64, optimizer="adamw", weight_decay=-0.0)
    assert adamw == Training(learning_rate=1.0, batch_size=64, optimizer="adam", weight_decay=0.0)
    assert SPACE.to_json(_genome(training=adamw))["training"]["optimizer"] == "adam"
    assert isinstance(Head(dropout=0).dropout, float)
    # the same architecture from JSON that carries an irrelevant gene hashes equal
    data = SPACE.to_json(a)
    data["stages"][0]["expansion"] = 4
    assert genome_hash(SPACE, SPACE.from_json(data)) == genome_hash(SPACE, a)


def test_a_bottleneck_expansion_matters():
    a = Stage(block="bottleneck", depth=1, width=32, expansion=2)
    assert a != replace(a, expansion=4)


# --- ranges ------------------------------------------------------------------------------


def test_sampling_stays_on_the_small_grids():
    rng = np.random.default_rng(5)
    for _ in range(300):
        g = SPACE.sample(rng)
        assert g.stem.width in cnn.genome.STEM_WIDTHS and g.stem.kernel in cnn.genome.STEM_KERNELS
        assert 1 <= len(g.stages) <= cnn.genome.MAX_STAGES
        assert cnn.downsampling(g) <= cnn.genome.MAX_DOWNSAMPLING
        for s in g.stages:
            assert s.depth in cnn.genome.STAGE_DEPTHS and s.width in cnn.genome.STAGE_WIDTHS
            assert s.kernel in cnn.genome.STAGE_KERNELS and s.expansion in cnn.genome.EXPANSIONS
        assert len(g.head.dense) <= cnn.genome.MAX_DENSE
        assert g.training.batch_size in cnn.genome.SAMPLED_BATCH_SIZES


def test_mutation_and_crossover_keep_the_downsampling_bound():
    rng = np.random.default_rng(6)
    genomes = [SPACE.sample(rng) for _ in range(50)]
    for _ in range(500):
        a, b = genomes[int(rng.integers(50))], genomes[int(rng.integers(50))]
        child = SPACE.mutate(a, rng)
        kids = SPACE.crossover(a, b, rng)
        for kid in (child, *kids):
            assert cnn.downsampling(kid) <= cnn.genome.MAX_DOWNSAMPLING
        lengths = sorted((len(a.stages), len(b.stages)))
        assert all(lengths[0] <= len(k.stages) <= lengths[1] for k in kids)
        genomes[int(rng.integers(50))] = child


@pytest.mark.parametrize(
    ("change", "path", "allowed"),
    [
        ({"stem": Stem(width=0)}, "stem.width", "1..1024"),
        ({"stem": Stem(width=8, kernel=4)}, "stem.kernel", "1, 3, 5, 7, 9, 11"),
        ({"stages": ()}, "stages", "1..8"),
        (
            {
                "stages": (
                    Stage(block="basic", depth=1, width=8),
                    Stage(block="basic", depth=1, width=4096),
                )
            },
            "stages[1].width",
            "1..2048",
        ),
        ({"stages": (Stage(block="dense", depth=1, width=8),)}, "stages[0].block", "'bottleneck'"),
        ({"stages": (Stage(block="basic", depth=65, width=8),)}, "stages[0].depth", "1..64"),
        (
            {"stages": (Stage(block="bottleneck", depth=1, width=8, expansion=9),)},
            "stages[0].expansion",
            "1..8",
        ),
        (
            {"stages": (Stage(block="basic", depth=1, width=8, activation="tanh"),)},
            "stages[0].activation",
            "'gelu'",
        ),
        ({"head": Head(dropout=0.95)}, "head.dropout", "[0, 0.9]"),
        ({"head": Head(dense=(64, 0))}, "head.dense[1]", "1..8192"),
        ({"training": Training(learning_rate=0.0)}, "training.learning_rate", "(0, 1]"),
        ({"training": Training(learning_rate=float("nan"))}, "training.learning_rate", "(0, 1]"),
        ({"training": Training(optimizer="rmsprop")}, "training.optimizer", "'sgd'"),
        ({"training": Training(batch_size=np.int64(32))}, "training.batch_size", "integer"),
    ],
)
def test_validate_names_the_gene_and_its_range(change, path, allowed):
    with pytest.raises(GenomeError) as caught:
        SPACE.validate(_genome(**change))
    assert path in str(caught.value) and allowed in str(caught.value)


def test_from_json_names_the_path():
    data = SPACE.to_json(_genome())
    data["stages"][1]["width"] = "64"
    with pytest.raises(GenomeError, match=r"stages\[1\]\.width"):
        SPACE.from_json(data)
    data["stages"][1]["width"] = 64
    data["stages"][1]["depht"] = 3
    with pytest.raises(GenomeError, match=r"unknown field stages\[1\]\.depht"):
        SPACE.from_json(data)
    del data["stages"][1]["depht"]
    data["training"]["weight_decay"] = 0  # an integral number is fine for a float gene
    assert SPACE.from_json(data) == _genome()


def test_resnet50_is_valid_and_mutates_back_towards_the_grid():
    SPACE.validate(RESNET50)
    rng = np.random.default_rng(0)
    assert step(512, cnn.genome.STAGE_WIDTHS, rng) == 128  # off the grid: the nearest value
    assert step(6, cnn.genome.STAGE_DEPTHS, rng) == 3
    assert {step(20, cnn.genome.STAGE_WIDTHS, rng) for _ in range(30)} == {16, 24}
    assert {step(32, cnn.genome.STAGE_WIDTHS, rng) for _ in range(30)} == {24, 48}
    for _ in range(200):
        child = SPACE.mutate(RESNET50, rng)
        SPACE.validate(child)
        assert child != RESNET50
        assert cnn.downsampling(child) <= cnn.downsampling(RESNET50)


# --- decoder -------------------------------------------------------------------------------


def _layer_counts(model) -> Counter:
    return Counter(type(layer).__name__ for layer in model.layers)


def test_resnet50_backbone_matches_keras_applications():
    import keras

    ours = backbone(RESNET50, (64, 64, 3))
    reference = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(64, 64, 3)
    )
    assert ours.count_params() == reference.count_params() == 23_587_712
    mine, theirs = _layer_counts(ours), _layer_counts(reference)
    for kind in ("Conv2D", "BatchNormalization", "Add", "Activation", "MaxPooling2D"):
        assert mine[kind] == theirs[kind], kind
    assert (mine["Conv2D"], mine["BatchNormalization"], mine["Add"]) == (53, 53, 16)
    shapes = sorted(tuple(w.shape) for w in ours.weights)
    assert shapes == sorted(tuple(w.shape) for w in reference.weights)
    assert tuple(ours.output_shape) == tuple(reference.output_shape) == (None, 2, 2, 2048)
    keras.backend.clear_session()


def test_decoder_structure():
    import keras

    genome = _genome(
        stages=(
            Stage(block="plain", depth=2, width=16, se=True, activation="gelu"),
            Stage(block="basic", depth=2, width=32, stride=2),
            Stage(block="bottleneck", depth=1, width=16, expansion=2, kernel=5, activation="swish"),
        ),
        head=Head(pooling="max", dense=(32,), dropout=0.2),
    )
    model = SPACE.build(genome, TASK)
    counts = _layer_counts(model)
    # stem 1 + plain 2 + basic (2 + 2 + projection 16 -> 32) + bottleneck 3 (32 -> 16x2: identity)
    assert counts["Conv2D"] == 1 + 2 + 5 + 3
    assert counts["Add"] == 3 and counts["Multiply"] == 2  # SE only on the plain blocks
    assert counts["Rescaling"] == 1 and counts["GlobalMaxPooling2D"] == 1
    assert counts["Dropout"] == 1 and counts["Dense"] == 2 * 2 + 2  # SE pairs + hidden + output
    assert model.get_layer("stem_act").activation.__name__ == "gelu"
    assert model.get_layer("fc1_act").activation.__name__ in ("swish", "silu")
    assert model.get_layer("stage1_block1_se_reduce").units == 4  # floor of 4 units
    assert model.output_shape == (None, TASK.num_classes)
    # the basic stage halves 48x48; its first block projects 16 -> 32 channels, the
    # strided 1x1 projection as a subsampling then a 1x1 conv of stride 1
    assert model.get_layer("stage2_block1_0_subsample").strides == (2, 2)
    assert model.get_layer("stage2_block1_0_conv").strides == (1, 1)
    assert model.get_layer("stage2_block1_1_conv").strides == (2, 2)
    assert counts["AveragePooling2D"] == 1
    assert tuple(model.get_layer("stage3_block1_out").output.shape) == (None, 24, 24, 32)
    keras.backend.clear_session()


def test_build_rejects_an_invalid_genome():
    with pytest.raises(GenomeError):
        SPACE.build(_genome(stem=Stem(width=0)), TASK)


def test_a_saved_model_loads_in_a_process_that_never_imports_the_project(tmp_path):
    import keras

    model = SPACE.build(_genome(), TASK)  # residual, bottleneck and squeeze-excitation blocks
    images = np.random.default_rng(0).integers(0, 256, (2, *TASK.input_shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    code = (
        "import sys, numpy as np, keras; "
        f"model = keras.models.load_model({str(tmp_path / 'model.keras')!r}); "
        f"np.save({str(tmp_path / 'out.npy')!r}, keras.ops.convert_to_numpy("
        f"model(np.load({str(tmp_path / 'images.npy')!r})))); "
        "assert not any(m.split('.')[0] in ('nas', 'search_spaces', 'baselines') "
        "for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)
    keras.backend.clear_session()
