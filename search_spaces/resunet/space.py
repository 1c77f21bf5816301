"""The ResUNet search space's operators: sampling, mutation, crossover, weight
sources, and decoding and costing through :mod:`.build` and :mod:`.cost`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.core.space import (
    Decisions,
    ModelCost,
    RandomDecisions,
    TrainingRecipe,
    TrialDecisions,
    WeightSource,
)
from search_spaces import cnn
from search_spaces._cost import CostCounter, Tensor
from search_spaces._genes import (
    align,
    dump,
    is_valid,
    other,
    pick,
    step,
)
from search_spaces._head import apply_output_head
from search_spaces.cnn import Training
from search_spaces.resunet.build import (
    apply_decoder_and_heatmaps,
    apply_encoder,
)
from search_spaces.resunet.cost import (
    decoder_cost,
    encoder_cost,
)
from search_spaces.resunet.genome import (
    ACTIVATIONS,
    BATCH_SIZES,
    BLOCKS,
    DOWNSAMPLINGS,
    FIRST_LEVEL_WIDTHS,
    GENOME_JSON,
    HALF_PROBABILITY,
    JOINS,
    KERNELS,
    MAX_LEVELS,
    MAX_SAMPLED_WIDTH,
    SAMPLED_BATCH_SIZES,
    SAMPLED_BOTTLENECK_BLOCKS,
    SAMPLED_DECODER_BLOCKS,
    SAMPLED_STEM_KERNELS,
    STEM_KERNELS,
    STEM_WIDTHS,
    TOP_LEVEL,
    UPSAMPLINGS,
    WIDTHS,
    Bottleneck,
    DecoderLevel,
    EncoderLevel,
    Head,
    LevelPair,
    ResUNetGenome,
    Stem,
    downsampling,
    level_pairs,
    validate_genome,
    width_index,
    with_level_pairs,
)

if TYPE_CHECKING:
    import keras

    from nas.core.task import Task


# --- the space --------------------------------------------------------------------------


class ResUNetSpace:
    """The ResUNet keypoint search space (see the module docstring for its conventions).

    ``max_levels`` bounds the encoder depth of sampled genomes (4: a 96x96 or 48x48
    input shrinks by 16); mutation and crossover keep children within it, or within
    their parents' depth when a parent already exceeds it. ``validate`` accepts 1..8.
    """

    name = "resunet"
    head_forms: tuple[str, ...] = ("points",)
    """The forms of task output (:class:`~nas.core.task.OutputHead`) it builds models
    for: image positions, drawn as heatmaps (checked when an experiment is loaded)."""
    multitask_head_forms: tuple[str, ...] = ("points", "vector")
    """The heads a multi-task model can have: the decoder's positions, and any vector
    output (classes, ...) from the pooled bottleneck (:meth:`build_multitask`)."""

    def __init__(self, *, max_levels: int = MAX_LEVELS) -> None:
        self.max_levels = max_levels

    # -- sampling ------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> ResUNetGenome:
        """Draw a small random genome from the sampling grids.

        The encoder is a pyramid: the first level is 8..24 wide, each deeper level ~1.5x
        or 2x wider (up to 64); the bottleneck is as wide as the last level or one grid
        step wider; each decoder level is as wide as its mirrored encoder level or one
        grid step narrower.
        """
        return self.draw(RandomDecisions(rng))

    def suggest(self, trial: Any) -> ResUNetGenome:
        """The same draw as :meth:`sample`, each decision a parameter of an Optuna trial."""
        return self.draw(TrialDecisions(trial))

    def draw(self, decide: Decisions) -> ResUNetGenome:
        """A genome from named decisions: :meth:`sample` and :meth:`suggest` in one."""
        activation = decide.choice("activation", ACTIVATIONS)
        stem = Stem(
            width=decide.choice("stem.width", STEM_WIDTHS),
            kernel=decide.choice("stem.kernel", SAMPLED_STEM_KERNELS),
        )
        n_levels = decide.integer("levels", 1, self.max_levels)
        top = WIDTHS.index(MAX_SAMPLED_WIDTH)
        index = WIDTHS.index(decide.choice("level0.width", FIRST_LEVEL_WIDTHS))
        pairs: list[LevelPair] = []
        for i in range(n_levels):
            if i > 0:
                index = min(index + 1 + decide.integer(f"level{i}.wider", 0, 1), top)
            pairs.append(
                (
                    self._draw_encoder_level(decide, f"level{i}.encoder", WIDTHS[index]),
                    self._draw_decoder(decide, f"level{i}.decoder", index),
                )
            )
        bottleneck = Bottleneck(
            width=WIDTHS[min(index + decide.integer("bottleneck.wider", 0, 1), top)],
            blocks=decide.choice("bottleneck.blocks", SAMPLED_BOTTLENECK_BLOCKS),
        )
        if n_levels > 1 and decide.flag("half_resolution", HALF_PROBABILITY):
            pairs[0] = (pairs[0][0], None)
        genome = ResUNetGenome(
            stem=stem,
            encoder=(),
            bottleneck=bottleneck,
            decoder=(),
            activation=activation,  # type: ignore[arg-type]
            training=cnn.draw_training(decide, SAMPLED_BATCH_SIZES),
        )
        return with_level_pairs(genome, pairs)

    def _sample_encoder_level(self, rng: np.random.Generator, width: int) -> EncoderLevel:
        return self._draw_encoder_level(RandomDecisions(rng), "encoder", width)

    def _draw_encoder_level(self, decide: Decisions, name: str, width: int) -> EncoderLevel:
        return EncoderLevel(
            width=width,
            blocks=decide.choice(f"{name}.blocks", BLOCKS),
            kernel=decide.choice(f"{name}.kernel", KERNELS),
            downsampling=decide.choice(f"{name}.downsampling", DOWNSAMPLINGS),  # type: ignore[arg-type]
        )

    def _sample_decoder(self, rng: np.random.Generator, mirror_index: int) -> DecoderLevel:
        return self._draw_decoder(RandomDecisions(rng), "decoder", mirror_index)

    def _draw_decoder(self, decide: Decisions, name: str, mirror_index: int) -> DecoderLevel:
        return DecoderLevel(
            width=WIDTHS[max(0, mirror_index - decide.integer(f"{name}.narrower", 0, 1))],
            blocks=decide.choice(f"{name}.blocks", SAMPLED_DECODER_BLOCKS),
            upsampling=decide.choice(f"{name}.upsampling", UPSAMPLINGS),  # type: ignore[arg-type]
            join=decide.choice(f"{name}.join", JOINS),  # type: ignore[arg-type]
        )

    # -- variation -----------------------------------------------------------------------

    def mutate(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        """Change one randomly chosen gene group; the result is valid and differs.

        Groups (with their weights): one gene of one level's encoder or decoder part
        (0.45), add a sampled level (encoder and mirrored decoder) at a random depth
        (0.07, up to ``max_levels``), remove a level (0.07, down to 1), one stem gene
        (0.08), one bottleneck gene (0.1), the heatmap resolution (0.05; going to full
        resolution adds a sampled decoder level), the activation (0.05), one training
        gene (0.13). Ordered genes step to a neighbouring grid value. Raises
        :class:`GenomeError` if ``genome`` itself is invalid.
        """
        self.validate(genome)
        cap = max(self.max_levels, len(genome.encoder))
        for _ in range(200):
            child = self._mutate_once(genome, rng)
            if child != genome and len(child.encoder) <= cap and is_valid(validate_genome, child):
                return child
        raise RuntimeError(f"could not mutate {self.describe(genome)}")  # pragma: no cover

    def _mutate_once(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        n = len(genome.encoder)
        groups: list[tuple[float, Callable[[], ResUNetGenome]]] = [
            (0.45, lambda: self._mutate_level(genome, rng)),
            (0.07 if n < self.max_levels else 0.0, lambda: self._add_level(genome, rng)),
            (0.07 if n > 1 else 0.0, lambda: self._remove_level(genome, rng)),
            (0.08, lambda: replace(genome, stem=self._mutate_stem(genome.stem, rng))),
            (0.1, lambda: replace(genome, bottleneck=self._mutate_bottleneck(genome, rng))),
            (0.05, lambda: self._flip_resolution(genome, rng)),
            (0.05, lambda: replace(genome, activation=other(genome.activation, ACTIVATIONS, rng))),
            (
                0.13,
                lambda: replace(
                    genome, training=cnn.mutate_training(genome.training, rng, BATCH_SIZES)
                ),
            ),
        ]
        weights = np.array([w for w, _ in groups])
        chosen = int(rng.choice(len(groups), p=weights / weights.sum()))
        return groups[chosen][1]()

    def _mutate_level(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = level_pairs(genome)
        i = int(rng.integers(len(pairs)))
        enc, dec = pairs[i]
        genes = ["enc.width", "enc.blocks", "enc.kernel", "enc.downsampling"]
        if dec is not None:
            genes += ["dec.width", "dec.blocks", "dec.upsampling", "dec.join"]
        gene = pick(rng, genes)
        if gene == "enc.width":
            enc = replace(enc, width=step(enc.width, WIDTHS, rng))
        elif gene == "enc.blocks":
            enc = replace(enc, blocks=step(enc.blocks, BLOCKS, rng))
        elif gene == "enc.kernel":
            enc = replace(enc, kernel=step(enc.kernel, KERNELS, rng))
        elif gene == "enc.downsampling":
            enc = replace(enc, downsampling=other(enc.downsampling, DOWNSAMPLINGS, rng))
        elif dec is not None:
            if gene == "dec.width":
                dec = replace(dec, width=step(dec.width, WIDTHS, rng))
            elif gene == "dec.blocks":
                dec = replace(dec, blocks=step(dec.blocks, BLOCKS, rng))
            elif gene == "dec.upsampling":
                dec = replace(dec, upsampling=other(dec.upsampling, UPSAMPLINGS, rng))
            else:
                dec = replace(dec, join=other(dec.join, JOINS, rng))
        pairs[i] = (enc, dec)
        return with_level_pairs(genome, pairs)

    def _add_level(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = level_pairs(genome)
        half = pairs[0][1] is None
        # the shallowest level of a half-resolution genome keeps its place (it has no
        # decoder level), so a new level goes below it
        position = int(rng.integers(1 if half else 0, len(pairs) + 1))
        neighbour = pairs[min(position, len(pairs) - 1)][0]
        index = width_index(neighbour.width)
        pairs.insert(
            position,
            (self._sample_encoder_level(rng, WIDTHS[index]), self._sample_decoder(rng, index)),
        )
        return with_level_pairs(genome, pairs)

    def _remove_level(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = level_pairs(genome)
        half = pairs[0][1] is None
        del pairs[int(rng.integers(1 if half else 0, len(pairs)))]
        return with_level_pairs(genome, pairs)

    def _flip_resolution(self, genome: ResUNetGenome, rng: np.random.Generator) -> ResUNetGenome:
        pairs = level_pairs(genome)
        enc, dec = pairs[0]
        if dec is None:
            pairs[0] = (enc, self._sample_decoder(rng, width_index(enc.width)))
        else:
            pairs[0] = (enc, None)
        return with_level_pairs(genome, pairs)

    def _mutate_stem(self, stem: Stem, rng: np.random.Generator) -> Stem:
        if rng.random() < 0.5:
            return replace(stem, width=step(stem.width, STEM_WIDTHS, rng))
        return replace(stem, kernel=step(stem.kernel, STEM_KERNELS, rng))

    def _mutate_bottleneck(self, genome: ResUNetGenome, rng: np.random.Generator) -> Bottleneck:
        b = genome.bottleneck
        if rng.random() < 0.5:
            return replace(b, width=step(b.width, WIDTHS, rng))
        return replace(b, blocks=step(b.blocks, BLOCKS, rng))

    def crossover(
        self, a: ResUNetGenome, b: ResUNetGenome, rng: np.random.Generator
    ) -> tuple[ResUNetGenome, ResUNetGenome]:
        """One-point crossover of the levels, each encoder level travelling with its
        mirrored decoder level (aligned by depth, so a child has as many levels as one of
        its parents or in between, and stays mirrored), plus a uniform exchange of stem,
        bottleneck, activation, training and head. The head travels with the shallowest
        decoder level (the one a half-resolution head lacks). Both children are valid."""
        self.validate(a)
        self.validate(b)
        pa, pb = level_pairs(a), level_pairs(b)
        longest = max(len(pa), len(pb))
        cut = int(rng.integers(1, longest)) if longest > 1 else 1
        kid_a, kid_b = pa[:cut] + pb[cut:], pb[:cut] + pa[cut:]
        swap = rng.random(5) < 0.5
        if swap[0]:  # exchange the heads with the shallowest decoder levels
            kid_a[0], kid_b[0] = (kid_a[0][0], kid_b[0][1]), (kid_b[0][0], kid_a[0][1])

        def exchange(i: int, x: Any, y: Any) -> tuple[Any, Any]:
            return (y, x) if swap[i] else (x, y)

        stem_a, stem_b = exchange(1, a.stem, b.stem)
        bott_a, bott_b = exchange(2, a.bottleneck, b.bottleneck)
        act_a, act_b = exchange(3, a.activation, b.activation)
        train_a, train_b = exchange(4, a.training, b.training)
        return (
            with_level_pairs(
                a, kid_a, stem=stem_a, bottleneck=bott_a, activation=act_a, training=train_a
            ),
            with_level_pairs(
                b, kid_b, stem=stem_b, bottleneck=bott_b, activation=act_b, training=train_b
            ),
        )

    def weight_sources(
        self, child: ResUNetGenome, parent: ResUNetGenome
    ) -> tuple[WeightSource, ...]:
        """Which of ``parent``'s layers correspond to each part of ``child``'s model (no
        TensorFlow; see :class:`nas.core.space.WeightSource`).

        Parts: the stem (``stem_``), each level (``enc{i}_`` and its mirrored ``dec{i}_``),
        the bottleneck (``bottleneck_``) and the heatmap conv (``heatmaps``). Levels are
        aligned as encoder / decoder pairs, as a diff aligns lines
        (:func:`search_spaces._genes.align`), so an inserted or removed level does not
        shift the others onto other weights. A part is ``identical`` when its own genes are
        equal (the net-wide activation is not compared: it has no weights).
        """
        mine, theirs = level_pairs(child), level_pairs(parent)
        sources = [
            WeightSource("stem_", "stem_", child.stem == parent.stem),
            WeightSource("bottleneck_", "bottleneck_", child.bottleneck == parent.bottleneck),
            WeightSource("heatmaps", "heatmaps", child.head == parent.head),
        ]
        for i, j in enumerate(align(theirs, mine)):
            (encoder, decoder), level = mine[i], i + 1
            source = None if j is None else j + 1
            sources.append(
                WeightSource(
                    f"enc{level}_",
                    None if source is None else f"enc{source}_",
                    j is not None and encoder == theirs[j][0],
                )
            )
            if decoder is not None:
                known = j is not None and theirs[j][1] is not None
                sources.append(
                    WeightSource(
                        f"dec{level}_",
                        f"dec{source}_" if known else None,
                        known and decoder == theirs[j][1],  # type: ignore[index]
                    )
                )
        return tuple(sources)

    # -- validation and JSON -------------------------------------------------------------

    def validate(self, genome: Any) -> None:
        """Raise :class:`GenomeError` naming the first gene outside its validation range."""
        validate_genome(genome)

    def to_json(self, genome: ResUNetGenome) -> dict[str, Any]:
        """Nested plain dicts and lists: ``{"stem": {...}, "encoder": [...], ...}``."""
        return {
            "stem": dump(genome.stem),
            "encoder": [dump(level) for level in genome.encoder],
            "bottleneck": dump(genome.bottleneck),
            "decoder": [dump(level) for level in genome.decoder],
            "head": dump(genome.head),
            "activation": genome.activation,
            "training": dump(genome.training),
        }

    def from_json(self, data: Mapping[str, Any]) -> ResUNetGenome:
        """Parse and validate; unknown, missing or mistyped fields raise
        :class:`GenomeError` naming their path, e.g. ``decoder[1].join``."""
        GENOME_JSON.check_fields("", data, TOP_LEVEL)
        genome = ResUNetGenome(
            stem=GENOME_JSON.parse(Stem, "stem", data["stem"]),
            encoder=GENOME_JSON.parse_list(EncoderLevel, "encoder", data["encoder"]),
            bottleneck=GENOME_JSON.parse(Bottleneck, "bottleneck", data["bottleneck"]),
            decoder=GENOME_JSON.parse_list(DecoderLevel, "decoder", data["decoder"]),
            head=GENOME_JSON.parse(Head, "head", data["head"]),
            activation=GENOME_JSON.parse_value("activation", data["activation"], "str"),
            training=GENOME_JSON.parse(Training, "training", data["training"]),
        )
        validate_genome(genome)
        return genome

    # -- decoding and summaries ----------------------------------------------------------

    def build(self, genome: ResUNetGenome, task: Task) -> keras.Model:
        """Decode to an uncompiled Keras model: raw pixels -> Rescaling(1/255) -> stem ->
        encoder -> bottleneck -> decoder -> ``heatmaps`` (1x1 conv, K channels) ->
        soft-argmax (:func:`soft_argmax_layers`) -> ``(batch, K, 2)`` input-pixel
        coordinates ``(x, y)``.

        Raises :class:`GenomeError` for an invalid genome and :class:`ValueError` for a
        classification task or an input whose height or width ``2**len(encoder)`` does
        not divide.
        """
        import keras

        self._check_buildable(genome, task)
        inputs = keras.Input(shape=task.input_shape, dtype="float32", name="pixels")
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        x, skips = apply_encoder(genome, x)
        outputs = apply_decoder_and_heatmaps(genome, x, skips, task, prefix="")
        return keras.Model(inputs, outputs, name="resunet")

    def build_multitask(
        self, genome: ResUNetGenome, tasks: Sequence[Task], names: Sequence[str]
    ) -> keras.Model:
        """One model for several tasks, as the original project's two nets in one: an
        input per task (``NAME_pixels``, at the task's own size), the genome's stem,
        encoder and bottleneck shared by all of them (one nested model, fully
        convolutional), then per task its own head: the decoder and heatmaps for a
        keypoint task (layers prefixed ``NAME_``, output ``NAME_keypoints``), global
        average pooling of the bottleneck and a softmax for a classification task
        (``NAME_predictions``). Outputs are in the order of ``tasks``."""
        import keras

        channels = {task.input_shape[2] for task in tasks}
        if len(channels) != 1:
            raise ValueError(f"the tasks' images differ in channels {sorted(channels)}")
        for task in tasks:
            self._check_sides(genome, task)
        image = keras.Input(shape=(None, None, channels.pop()), dtype="float32", name="image")
        bottom, skips = apply_encoder(genome, image)
        encoder = keras.Model(image, [*skips, bottom], name="resunet_encoder")
        inputs, outputs = [], []
        for task, name in zip(tasks, names, strict=True):
            pixels = keras.Input(shape=task.input_shape, dtype="float32", name=f"{name}_pixels")
            x = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(pixels)
            *task_skips, x = encoder(x)
            inputs.append(pixels)
            if task.head.form == "points":
                outputs.append(
                    apply_decoder_and_heatmaps(genome, x, task_skips, task, prefix=f"{name}_")
                )
            else:
                x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
                outputs.append(apply_output_head(task.head, x, prefix=f"{name}_"))
        return keras.Model(inputs, outputs, name="resunet_multitask")

    def _check_buildable(self, genome: ResUNetGenome, task: Task) -> None:
        """Raise ``ValueError`` (or :class:`GenomeError`) where :meth:`build` cannot build."""
        if task.head.form != "points":
            raise ValueError("the resunet space builds models whose output is image positions only")
        self._check_sides(genome, task)

    def _check_sides(self, genome: ResUNetGenome, task: Task) -> None:
        """Raise unless the genome is valid and its encoder can halve ``task``'s images."""
        self.validate(genome)
        factor = downsampling(genome)
        height, width, _ = task.input_shape
        if height % factor or width % factor:
            raise ValueError(
                f"the input {height}x{width} is not divisible by {factor}: a ResUNet with "
                f"{len(genome.encoder)} encoder levels needs sides that are multiples of "
                f"2**{len(genome.encoder)}"
            )

    def cost(self, genome: ResUNetGenome, task: Task) -> ModelCost:
        """The parameters and FLOPs of ``build(genome, task)``, exactly, without building
        it (no TensorFlow): ``model.count_params()`` and
        :func:`nas.training.model_stats.count_flops`. Raises where :meth:`build` does."""
        self._check_buildable(genome, task)
        counter = CostCounter()
        x, skips = encoder_cost(counter, genome, Tensor(*task.input_shape))
        decoder_cost(counter, genome, x, skips, task)
        return counter.total()

    def cost_multitask(self, genome: ResUNetGenome, tasks: Sequence[Task]) -> ModelCost:
        """The parameters (the shared encoder once) and FLOPs (one image of each task) of
        :meth:`build_multitask`, without building it."""
        counter = CostCounter()
        shared = 0
        for i, task in enumerate(tasks):
            self._check_sides(genome, task)
            before = counter.total().params
            x, skips = encoder_cost(counter, genome, Tensor(*task.input_shape))
            if i:  # the encoder's weights are counted once, its FLOPs per image
                shared += counter.total().params - before
            if task.head.form == "points":
                decoder_cost(counter, genome, x, skips, task)
            else:
                counter.dense(Tensor(1, 1, x.channels), task.head.units)  # after pooling
        total = counter.total()
        return ModelCost(params=total.params - shared, flops=total.flops)

    def recipe(self, genome: ResUNetGenome) -> TrainingRecipe:
        """The genome's training settings."""
        return cnn.training_recipe(genome.training)

    def describe(self, genome: ResUNetGenome) -> str:
        """One line, e.g. ``stem16 | enc s2:32 s2:64 s2:128 | bott256 | dec up:128+cat
        up:64+cat up:32+cat | full relu | adam lr1e-3 b32``.

        Encoder levels read ``{mp|s2}:{width}[x{blocks}][k{kernel}]`` (max-pool or
        strided), decoder levels ``{tc|up}:{width}[x{blocks}]+{cat|add}`` (transpose conv
        or bilinear upsampling); block counts of 1 and 3x3 kernels are left out.
        """
        return f"{self.describe_architecture(genome)} | {cnn.describe_training(genome.training)}"

    def describe_architecture(self, genome: ResUNetGenome) -> str:
        """:meth:`describe` without the training genes (for a search whose candidates all
        train with one recipe, ``[budget] recipe = "standard"``)."""
        stem = genome.stem
        parts = [f"stem{stem.width}" + (f"k{stem.kernel}" if stem.kernel != 3 else "")]
        enc = []
        for e in genome.encoder:
            text = f"{'mp' if e.downsampling == 'maxpool' else 's2'}:{e.width}"
            text += f"x{e.blocks}" if e.blocks != 1 else ""
            text += f"k{e.kernel}" if e.kernel != 3 else ""
            enc.append(text)
        parts.append("enc " + " ".join(enc))
        b = genome.bottleneck
        parts.append(f"bott{b.width}" + (f"x{b.blocks}" if b.blocks != 1 else ""))
        dec = []
        for d in genome.decoder:
            text = f"{'tc' if d.upsampling == 'transpose' else 'up'}:{d.width}"
            text += f"x{d.blocks}" if d.blocks != 1 else ""
            text += "+cat" if d.join == "concat" else "+add"
            dec.append(text)
        parts.append("dec " + " ".join(dec) if dec else "dec none")
        parts.append(f"{genome.head.heatmap_resolution} {genome.activation}")
        return " | ".join(parts)


"""The space ``load_space("resunet")`` returns."""
