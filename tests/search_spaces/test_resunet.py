"""The ResUNet space: conformance, canonical genomes, ranges, decoder, soft-argmax,
saving, and the hand-designed ResUNet baseline."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from baselines.resunet import RESUNET
from nas.core.errors import GenomeError
from nas.core.space import genome_hash, load_space
from nas.core.task import Task
from nas.testing.space_conformance import SearchSpaceConformance, check_output
from search_spaces import resunet
from search_spaces.resunet import (
    SPACE,
    Bottleneck,
    DecoderLevel,
    EncoderLevel,
    Head,
    ResUNetGenome,
    Stem,
    Training,
    soft_argmax,
    soft_argmax_layers,
)

TASK = Task(kind="keypoints", input_shape=(32, 32, 1), num_keypoints=15)
FACES = Task(kind="keypoints", input_shape=(96, 96, 1), num_keypoints=15)


class TestResUNetConformance(SearchSpaceConformance):
    space = SPACE
    task = TASK


def _genome(**changes) -> ResUNetGenome:
    base = ResUNetGenome(
        stem=Stem(width=8, kernel=3),
        encoder=(
            EncoderLevel(width=8, blocks=1, kernel=3, downsampling="maxpool"),
            EncoderLevel(width=16, blocks=2, kernel=5, downsampling="strided"),
        ),
        bottleneck=Bottleneck(width=24, blocks=1),
        decoder=(
            DecoderLevel(width=16, blocks=1, upsampling="transpose", join="add"),
            DecoderLevel(width=8, blocks=2, upsampling="bilinear", join="concat"),
        ),
        head=Head(heatmap_resolution="full"),
        activation="relu",
        training=Training(learning_rate=1e-3, batch_size=32, optimizer="adam", weight_decay=0.0),
    )
    return replace(base, **changes)


def _half(genome: ResUNetGenome) -> ResUNetGenome:
    return replace(genome, decoder=genome.decoder[:-1], head=Head(heatmap_resolution="half"))


def _layer_counts(model) -> Counter:
    return Counter(type(layer).__name__ for layer in model.layers)


def _images(task: Task, n: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(n, *task.input_shape)).astype(np.float32)


def test_load_space_finds_it():
    assert load_space("resunet") is SPACE
    assert SPACE.name == "resunet"


def test_importing_the_space_does_not_import_tensorflow():
    code = (
        "import sys, search_spaces.resunet, baselines.resunet; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_describe_and_recipe():
    assert SPACE.describe(_genome()) == (
        "stem8 | enc mp:8 s2:16x2k5 | bott24 | dec tc:16+add up:8x2+cat | full relu"
        " | adam lr1e-3 b32"
    )
    assert SPACE.describe(RESUNET) == (
        "stem16 | enc s2:32 s2:64 s2:128 | bott256 | dec up:128+cat up:64+cat up:32+cat"
        " | full relu | adam lr1e-3 b32"
    )
    one = ResUNetGenome(
        stem=Stem(width=8, kernel=5),
        encoder=(EncoderLevel(width=8),),
        bottleneck=Bottleneck(width=8, blocks=2),
        decoder=(),
        head=Head(heatmap_resolution="half"),
        activation="gelu",
    )
    assert (
        SPACE.describe(one)
        == "stem8k5 | enc mp:8 | bott8x2 | dec none | half gelu | adam lr1e-3 b64"
    )
    recipe = SPACE.recipe(RESUNET)
    assert (recipe.learning_rate, recipe.batch_size, recipe.optimizer, recipe.weight_decay) == (
        1e-3,
        32,
        "adam",
        0.0,
    )


# --- canonical genomes ----------------------------------------------------------------


def test_genomes_are_canonical():
    a = _genome()
    b = _genome(encoder=list(a.encoder), decoder=list(a.decoder))  # lists become tuples
    assert a == b and hash(a) == hash(b)
    assert genome_hash(SPACE, a) == genome_hash(SPACE, b)
    # the shared Training canonicalises: integral floats, adamw without decay is adam
    adamw = Training(learning_rate=1, batch_size=32, optimizer="adamw", weight_decay=-0.0)
    assert adamw == Training(learning_rate=1.0, batch_size=32, optimizer="adam", weight_decay=0.0)
    assert genome_hash(SPACE, _genome(training=adamw)) == genome_hash(
        SPACE, _genome(training=Training(learning_rate=1.0, batch_size=32))
    )
    # JSON integers for float genes parse to the same genome
    data = SPACE.to_json(a)
    data["training"]["weight_decay"] = 0
    assert SPACE.from_json(data) == a
    # a half-resolution genome has no unused decoder level to differ in
    half = _half(a)
    SPACE.validate(half)
    assert len(half.decoder) == len(half.encoder) - 1
    assert json.loads(json.dumps(SPACE.to_json(half)))["decoder"] == [
        SPACE.to_json(a)["decoder"][0]
    ]


# --- ranges ------------------------------------------------------------------------------


def test_sampling_stays_on_the_small_grids():
    rng = np.random.default_rng(5)
    halves = 0
    for _ in range(300):
        g = SPACE.sample(rng)
        assert 1 <= len(g.encoder) <= resunet.genome.MAX_LEVELS
        assert 96 % resunet.downsampling(g) == 0 and 48 % resunet.downsampling(g) == 0
        assert g.stem.width in resunet.genome.STEM_WIDTHS
        assert g.stem.kernel in resunet.genome.SAMPLED_STEM_KERNELS
        for e in g.encoder:
            assert e.width in resunet.genome.WIDTHS and e.width <= resunet.genome.MAX_SAMPLED_WIDTH
            assert e.blocks in resunet.genome.BLOCKS and e.kernel in resunet.genome.KERNELS
        widths = [e.width for e in g.encoder]
        assert widths == sorted(widths), "a pyramid"
        assert g.bottleneck.width <= resunet.genome.MAX_SAMPLED_WIDTH
        assert g.bottleneck.blocks in resunet.genome.SAMPLED_BOTTLENECK_BLOCKS
        for d in g.decoder:
            assert (
                d.width in resunet.genome.WIDTHS
                and d.blocks in resunet.genome.SAMPLED_DECODER_BLOCKS
            )
        halves += g.head.heatmap_resolution == "half"
        assert g.training.batch_size in resunet.genome.SAMPLED_BATCH_SIZES
    assert 30 < halves < 150


def test_mutation_and_crossover_keep_the_net_mirrored_and_shallow():
    rng = np.random.default_rng(6)
    genomes = [SPACE.sample(rng) for _ in range(40)]
    for _ in range(400):
        a, b = genomes[int(rng.integers(40))], genomes[int(rng.integers(40))]
        child = SPACE.mutate(a, rng)
        kids = SPACE.crossover(a, b, rng)
        for kid in (child, *kids):
            SPACE.validate(kid)  # the decoder mirrors the encoder
            assert len(kid.encoder) <= resunet.genome.MAX_LEVELS
        lengths = sorted((len(a.encoder), len(b.encoder)))
        assert all(lengths[0] <= len(k.encoder) <= lengths[1] for k in kids)
        # every encoder level of a child comes with a decoder level of the same parent
        pairs = [pair for g in (a, b) for pair in resunet.genome.level_pairs(g)]
        for kid in kids:
            for e, d in resunet.genome.level_pairs(kid)[1:]:
                assert any(e is pe and d is pd for pe, pd in pairs)
        genomes[int(rng.integers(40))] = child


@pytest.mark.parametrize(
    ("change", "path", "allowed"),
    [
        ({"stem": Stem(width=0)}, "stem.width", "1..1024"),
        ({"stem": Stem(width=8, kernel=4)}, "stem.kernel", "1, 3, 5, 7, 9, 11"),
        ({"encoder": (), "decoder": ()}, "encoder", "1..8"),
        (
            {"encoder": (EncoderLevel(width=8), EncoderLevel(width=4096))},
            "encoder[1].width",
            "1..2048",
        ),
        (
            {"encoder": (EncoderLevel(width=8, blocks=0), EncoderLevel(width=8))},
            "encoder[0].blocks",
            "1..64",
        ),
        (
            {"encoder": (EncoderLevel(width=8, downsampling="avgpool"), EncoderLevel(width=8))},
            "encoder[0].downsampling",
            "'strided'",
        ),
        ({"bottleneck": Bottleneck(width=8, blocks=65)}, "bottleneck.blocks", "1..64"),
        ({"decoder": (DecoderLevel(width=8),)}, "decoder", "must mirror the 2 encoder levels"),
        (
            {"decoder": (DecoderLevel(width=8), DecoderLevel(width=8, join="mul"))},
            "decoder[1].join",
            "'add'",
        ),
        (
            {"decoder": (DecoderLevel(width=8, upsampling="nearest"), DecoderLevel(width=8))},
            "decoder[0].upsampling",
            "'bilinear'",
        ),
        ({"head": Head(heatmap_resolution="quarter")}, "head.heatmap_resolution", "'half'"),
        ({"head": Head(heatmap_resolution="half")}, "decoder", "with 1 (one fewer"),
        ({"activation": "tanh"}, "activation", "'gelu'"),
        ({"training": Training(learning_rate=0.0)}, "training.learning_rate", "(0, 1]"),
        ({"training": Training(batch_size=np.int64(32))}, "training.batch_size", "integer"),
    ],
)
def test_validate_names_the_gene_and_its_range(change, path, allowed):
    with pytest.raises(GenomeError) as caught:
        SPACE.validate(_genome(**change))
    assert path in str(caught.value) and allowed in str(caught.value)


def test_from_json_names_the_path():
    data = SPACE.to_json(_genome())
    data["decoder"][1]["join"] = 1
    with pytest.raises(GenomeError, match=r"decoder\[1\]\.join"):
        SPACE.from_json(data)
    data["decoder"][1]["join"] = "concat"
    data["encoder"][0]["widht"] = 3
    with pytest.raises(GenomeError, match=r"unknown field encoder\[0\]\.widht"):
        SPACE.from_json(data)
    del data["encoder"][0]["widht"]
    data["decoder"].pop()
    with pytest.raises(GenomeError, match=r"decoder has 1 levels"):
        SPACE.from_json(data)


def test_resunet_is_valid_and_mutates_back_towards_the_grid():
    SPACE.validate(RESUNET)
    assert RESUNET.bottleneck.width > resunet.genome.MAX_SAMPLED_WIDTH  # a seed, not a sample
    rng = np.random.default_rng(0)
    for _ in range(200):
        child = SPACE.mutate(RESUNET, rng)
        SPACE.validate(child)
        assert child != RESUNET and len(child.encoder) <= 4
        if child.bottleneck != RESUNET.bottleneck and child.bottleneck.width != 256:
            assert child.bottleneck.width == 128  # off the grid: the nearest value


# --- decoder -------------------------------------------------------------------------------


def test_build_rejects_other_tasks_and_indivisible_inputs():
    with pytest.raises(ValueError, match="image positions only"):
        SPACE.build(_genome(), Task(kind="classification", input_shape=(32, 32, 1), num_classes=5))
    with pytest.raises(ValueError, match="not divisible by 4"):
        SPACE.build(_genome(), Task(kind="keypoints", input_shape=(30, 32, 1), num_keypoints=3))
    with pytest.raises(ValueError, match="not divisible by 8"):
        SPACE.build(RESUNET, Task(kind="keypoints", input_shape=(36, 36, 1), num_keypoints=3))
    with pytest.raises(GenomeError):
        SPACE.build(_genome(stem=Stem(width=0)), TASK)


def test_resunet_baseline_structure():
    import keras

    from nas.training.model_stats import count_flops

    model = SPACE.build(RESUNET, FACES)
    counts = _layer_counts(model)
    names = [layer.name for layer in model.layers]
    adds = [n for n in names if n.endswith("_add") and "_block" in n]
    assert sum(n.startswith("enc") for n in adds) == 3  # one residual block per level
    assert sum(n.startswith("bottleneck") for n in adds) == 1
    assert sum(n.startswith("dec") for n in adds) == 3
    # the decoder's three joins, and the soft-argmax's (x, y)
    assert counts["Concatenate"] == 3 + 1 and counts["UpSampling2D"] == 3
    assert counts["MaxPooling2D"] == 0 and counts["Conv2DTranspose"] == 0
    assert counts["Rescaling"] == 1 + 4  # the input's, and two each for the soft-argmax's x, y
    # strided levels: each halves the side; the decoder mirrors them back to 96x96
    for i, side, width in ((1, 48, 32), (2, 24, 64), (3, 12, 128)):
        assert model.get_layer(f"enc{i}_block1_1_conv").strides == (2, 2)
        assert tuple(model.get_layer(f"enc{i}_block1_out").output.shape) == (
            None,
            side,
            side,
            width,
        )
    assert tuple(model.get_layer("bottleneck_block1_out").output.shape) == (None, 12, 12, 256)
    for i, side, joined in ((3, 24, 128 + 64), (2, 48, 64 + 32), (1, 96, 32 + 16)):
        assert tuple(model.get_layer(f"dec{i}_concat").output.shape) == (None, side, side, joined)
    assert tuple(model.get_layer("heatmaps").output.shape) == (None, 96, 96, 15)
    assert model.output_shape == (None, 15, 2)
    assert model.count_params() == 1_790_063
    assert count_flops(model) == 1_946_124_288
    output = keras.ops.convert_to_numpy(model(_images(FACES), training=False))
    check_output(FACES, output)
    keras.backend.clear_session()


def test_decoder_structure_and_half_resolution():
    import keras

    model = SPACE.build(_genome(), TASK)
    counts = _layer_counts(model)
    assert counts["MaxPooling2D"] == 1 and counts["Conv2DTranspose"] == 1
    assert counts["UpSampling2D"] == 1 and counts["Concatenate"] == 1 + 1  # + soft-argmax
    # the add join projects the 8-channel skip to the decoder's 16 channels
    assert model.get_layer("dec2_skip_conv").kernel_size == (1, 1)
    assert tuple(model.get_layer("dec2_add").output.shape) == (None, 16, 16, 16)
    assert tuple(model.get_layer("heatmaps").output.shape) == (None, 32, 32, 15)
    assert _stride_of(model) == 1

    half = SPACE.build(_half(_genome()), TASK)
    assert "dec1_concat" not in [layer.name for layer in half.layers]
    assert tuple(half.get_layer("heatmaps").output.shape) == (None, 16, 16, 15)
    assert _stride_of(half) == 2
    check_output(TASK, keras.ops.convert_to_numpy(half(_images(TASK), training=False)))
    keras.backend.clear_session()


def test_soft_argmax_finds_the_peak_exactly():
    from keras import ops

    heatmaps = np.zeros((2, 6, 8, 3), dtype=np.float32)
    peaks = [[(0, 0), (5, 7), (2, 3)], [(4, 1), (1, 6), (3, 3)]]  # (row, col)
    for b, per_image in enumerate(peaks):
        for k, (row, col) in enumerate(per_image):
            heatmaps[b, row, col, k] = 1e4  # softmax is one-hot in float32
    for stride in (1, 2, 4):
        got = ops.convert_to_numpy(soft_argmax(heatmaps, stride=stride))
        offset = (stride - 1) / 2
        want = np.array(
            [[(stride * c + offset, stride * r + offset) for r, c in im] for im in peaks],
            dtype=np.float32,
        )
        np.testing.assert_array_equal(got, want)
    # a flat heatmap gives the centre of the image
    flat = ops.convert_to_numpy(soft_argmax(np.zeros((1, 6, 8, 1), np.float32), stride=2))
    np.testing.assert_allclose(flat, [[[7.5, 5.5]]], atol=1e-5)  # (16 - 1) / 2, (12 - 1) / 2


def test_soft_argmax_is_differentiable():
    import keras
    import tensorflow as tf

    model = SPACE.build(_half(_genome()), TASK)
    target = np.full((2, 15, 2), 10.0, dtype=np.float32)
    with tf.GradientTape() as tape:
        loss = keras.ops.mean((model(_images(TASK), training=True) - target) ** 2)
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0
    keras.backend.clear_session()


def test_saves_loads_and_exports(tmp_path):
    import keras
    import tensorflow as tf

    model = SPACE.build(_genome(), TASK)
    images = _images(TASK, n=3)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # Keras' own layers: no custom_objects
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(images)), expected)
    assert _stride_of(loaded) == 1

    model.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))  # keep it: it owns the variables
    served = reloaded.serve(tf.constant(images))
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-4)

    # a fresh process that never imports this project loads it with plain Keras
    np.save(tmp_path / "images.npy", images)
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import keras
        model = keras.models.load_model({str(path)!r})
        np.save({str(tmp_path / "out.npy")!r}, keras.ops.convert_to_numpy(
            model(np.load({str(tmp_path / "images.npy")!r}))))
        assert not any(m.split(".")[0] in ("nas", "search_spaces", "baselines") for m in sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    keras.backend.clear_session()


def _stride_of(model) -> int:
    """The input pixels per heatmap cell, read back from the soft-argmax's cell centres."""
    offsets = model.get_layer("keypoint_x_offsets").get_config()["scale"]["config"]["value"]
    xs = np.asarray(offsets).ravel()
    return round(float(xs[1] - xs[0]))


def test_the_soft_argmax_layers_find_the_peak_as_the_function_does():
    import keras

    heatmaps = np.zeros((2, 6, 8, 3), dtype=np.float32)
    heatmaps[0, 5, 7, 0] = heatmaps[1, 2, 3, 2] = 1e4
    heatmaps[0, 1, 2, 1] = heatmaps[0, 1, 3, 1] = 1e4  # two peaks: half-way between them
    for stride in (1, 2, 4):
        inputs = keras.Input((6, 8, 3))
        model = keras.Model(inputs, soft_argmax_layers(inputs, stride=stride))
        got = keras.ops.convert_to_numpy(model(heatmaps))
        want = keras.ops.convert_to_numpy(soft_argmax(heatmaps, stride=stride))
        np.testing.assert_allclose(got, want, atol=1e-3 * stride)
        offset = (stride - 1) / 2
        np.testing.assert_allclose(
            got[0, 0], (7 * stride + offset, 5 * stride + offset), atol=1e-3 * stride
        )
        np.testing.assert_allclose(
            got[0, 1], (2.5 * stride + offset, stride + offset), atol=1e-3 * stride
        )
    assert model.count_params() == 0
    keras.backend.clear_session()
