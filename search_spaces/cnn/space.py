"""The CNN search space's operators: sampling, mutation, crossover, weight sources,
and decoding and costing through :mod:`.build` and :mod:`.cost`."""

from __future__ import annotations

import math
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
from search_spaces._cost import CostCounter, Tensor
from search_spaces._genes import (
    align,
    dump,
    is_valid,
    other,
    pick,
    step,
)
from search_spaces.cnn.build import apply_backbone, apply_head, backbone, check_square
from search_spaces.cnn.cost import backbone_cost
from search_spaces.cnn.genome import (
    ACTIVATIONS,
    BLOCKS,
    DENSE_WIDTHS,
    DROPOUTS,
    EXPANSIONS,
    FIRST_STAGE_WIDTHS,
    GENOME_JSON,
    MAX_DENSE,
    MAX_DOWNSAMPLING,
    MAX_STAGES,
    POOLINGS,
    SE_PROBABILITY,
    STAGE_DEPTHS,
    STAGE_KERNELS,
    STAGE_WIDTHS,
    STEM_KERNELS,
    STEM_WIDTHS,
    CnnGenome,
    Head,
    Stage,
    Stem,
    Training,
    describe_training,
    downsampling,
    draw_training,
    mutate_training,
    training_recipe,
    validate_genome,
)

if TYPE_CHECKING:
    import keras

    from nas.core.task import Task


class CnnSpace:
    """The ResNet-style CNN search space (see the module docstring for its conventions).

    ``max_downsampling`` bounds how much sampled genomes shrink the input (16: a 48x48
    face ends at no less than 3x3); mutation and crossover keep children within it, or
    within their parents' downsampling when a parent already exceeds it (e.g. ResNet50's
    32). It bounds the operators only; ``validate`` accepts any downsampling.
    """

    name = "cnn"
    head_forms: tuple[str, ...] = ("vector", "points")
    """The forms of task output (:class:`~nas.core.task.OutputHead`) it builds models for:
    any, computed from the pooled features (checked when an experiment is loaded)."""

    def __init__(self, *, max_downsampling: int = MAX_DOWNSAMPLING) -> None:
        self.max_downsampling = max_downsampling

    # -- sampling ------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> CnnGenome:
        """Draw a small random genome from the sampling grids."""
        return self.draw(RandomDecisions(rng))

    def suggest(self, trial: Any) -> CnnGenome:
        """The same draw as :meth:`sample`, each decision a parameter of an Optuna trial."""
        return self.draw(TrialDecisions(trial))

    def draw(self, decide: Decisions) -> CnnGenome:
        """A genome from named decisions: :meth:`sample` and :meth:`suggest` in one."""
        activation = decide.choice("activation", ACTIVATIONS)
        budget = int(math.log2(self.max_downsampling))
        stem_stride = decide.choice("stem.stride", (1, 2)) if budget >= 1 else 1
        budget -= stem_stride - 1
        pool = budget >= 1 and decide.flag("stem.pool", 0.5)
        budget -= int(pool)
        stem = Stem(
            width=decide.choice("stem.width", STEM_WIDTHS),
            kernel=decide.choice("stem.kernel", STEM_KERNELS),
            stride=stem_stride,
            pool=pool,
        )
        n_stages = decide.integer("stages", 1, MAX_STAGES)
        # a pyramid: the first stage is 8..32 wide; a later stage is as wide as the one
        # before or ~1.5x wider, and ~1.5x or 2x wider when it halves the resolution
        index = decide.integer("stage0.width_index", 0, FIRST_STAGE_WIDTHS - 1)
        stages = []
        for i in range(n_stages):
            stride = 2 if budget >= 1 and decide.flag(f"stage{i}.halves", 0.5) else 1
            budget -= stride - 1
            if i > 0:
                index += decide.integer(f"stage{i}.wider", 0, 1) + (stride - 1)
            width = STAGE_WIDTHS[min(index, len(STAGE_WIDTHS) - 1)]
            stages.append(
                self._draw_stage(
                    decide, f"stage{i}", width=width, stride=stride, activation=activation
                )
            )
        return CnnGenome(
            stem=stem,
            stages=tuple(stages),
            head=self._draw_head(decide),
            training=draw_training(decide),
        )

    def _sample_stage(
        self, rng: np.random.Generator, *, width: int, stride: int, activation: str
    ) -> Stage:
        return self._draw_stage(
            RandomDecisions(rng), "stage", width=width, stride=stride, activation=activation
        )

    def _draw_stage(
        self, decide: Decisions, name: str, *, width: int, stride: int, activation: str
    ) -> Stage:
        block = decide.choice(f"{name}.block", BLOCKS)
        return Stage(
            block=block,  # type: ignore[arg-type]
            depth=decide.choice(f"{name}.depth", STAGE_DEPTHS),
            width=width,
            kernel=decide.choice(f"{name}.kernel", STAGE_KERNELS),
            stride=stride,
            expansion=decide.choice(f"{name}.expansion", EXPANSIONS)
            if block == "bottleneck"
            else 1,
            se=decide.flag(f"{name}.se", SE_PROBABILITY),
            activation=activation,  # type: ignore[arg-type]
        )

    def _draw_head(self, decide: Decisions) -> Head:
        n_dense = decide.integer("head.dense_layers", 0, MAX_DENSE)
        widths = [decide.choice(f"head.dense{i}", DENSE_WIDTHS) for i in range(n_dense)]
        return Head(
            pooling=decide.choice("head.pooling", POOLINGS),  # type: ignore[arg-type]
            dense=tuple(sorted(widths, reverse=True)),
            dropout=decide.choice("head.dropout", DROPOUTS),
        )

    # -- variation -----------------------------------------------------------------------

    def mutate(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        """Change one randomly chosen gene group; the result is valid and differs.

        Groups (with their weights): one gene of one stage (0.5), add a sampled stage at
        a random position (0.08, up to 4 stages), remove a stage (0.08, down to 1), one
        stem gene (0.1), one head gene (0.1), one training gene (0.14). Raises
        :class:`GenomeError` if ``genome`` itself is invalid.
        """
        self.validate(genome)
        cap = max(self.max_downsampling, downsampling(genome))
        for _ in range(200):
            child = self._mutate_once(genome, rng)
            if child != genome and downsampling(child) <= cap and is_valid(validate_genome, child):
                return child
        raise RuntimeError(f"could not mutate {self.describe(genome)}")  # pragma: no cover

    def _mutate_once(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        n = len(genome.stages)
        groups: list[tuple[float, Callable[[], CnnGenome]]] = [
            (0.5, lambda: self._mutate_stage(genome, rng)),
            (0.08 if n < MAX_STAGES else 0.0, lambda: self._add_stage(genome, rng)),
            (0.08 if n > 1 else 0.0, lambda: self._remove_stage(genome, rng)),
            (0.1, lambda: replace(genome, stem=self._mutate_stem(genome.stem, rng))),
            (0.1, lambda: replace(genome, head=self._mutate_head(genome.head, rng))),
            (0.14, lambda: replace(genome, training=mutate_training(genome.training, rng))),
        ]
        weights = np.array([w for w, _ in groups])
        chosen = int(rng.choice(len(groups), p=weights / weights.sum()))
        return groups[chosen][1]()

    def _mutate_stage(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        i = int(rng.integers(len(genome.stages)))
        stage = genome.stages[i]
        genes = ["width", "depth", "kernel", "stride", "block", "se", "activation"]
        if stage.block == "bottleneck":
            genes.append("expansion")
        gene = pick(rng, genes)
        if gene == "width":
            new = replace(stage, width=step(stage.width, STAGE_WIDTHS, rng))
        elif gene == "depth":
            new = replace(stage, depth=step(stage.depth, STAGE_DEPTHS, rng))
        elif gene == "kernel":
            new = replace(stage, kernel=step(stage.kernel, STAGE_KERNELS, rng))
        elif gene == "stride":
            new = replace(stage, stride=3 - stage.stride)
        elif gene == "block":
            block = other(stage.block, BLOCKS, rng)
            expansion = pick(rng, EXPANSIONS) if block == "bottleneck" else 1
            new = replace(stage, block=block, expansion=expansion)
        elif gene == "se":
            new = replace(stage, se=not stage.se)
        elif gene == "activation":
            new = replace(stage, activation=other(stage.activation, ACTIVATIONS, rng))
        else:
            new = replace(stage, expansion=step(stage.expansion, EXPANSIONS, rng))
        stages = (*genome.stages[:i], new, *genome.stages[i + 1 :])
        return replace(genome, stages=stages)

    def _add_stage(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        position = int(rng.integers(len(genome.stages) + 1))
        neighbour = genome.stages[min(position, len(genome.stages) - 1)]
        stride = pick(rng, (1, 2))
        stage = self._sample_stage(
            rng, width=pick(rng, STAGE_WIDTHS), stride=stride, activation=neighbour.activation
        )
        stages = (*genome.stages[:position], stage, *genome.stages[position:])
        return replace(genome, stages=stages)

    def _remove_stage(self, genome: CnnGenome, rng: np.random.Generator) -> CnnGenome:
        i = int(rng.integers(len(genome.stages)))
        return replace(genome, stages=genome.stages[:i] + genome.stages[i + 1 :])

    def _mutate_stem(self, stem: Stem, rng: np.random.Generator) -> Stem:
        gene = pick(rng, ("width", "kernel", "stride", "pool"))
        if gene == "width":
            return replace(stem, width=step(stem.width, STEM_WIDTHS, rng))
        if gene == "kernel":
            return replace(stem, kernel=step(stem.kernel, STEM_KERNELS, rng))
        if gene == "stride":
            return replace(stem, stride=3 - stem.stride)
        return replace(stem, pool=not stem.pool)

    def _mutate_head(self, head: Head, rng: np.random.Generator) -> Head:
        gene = pick(rng, ("pooling", "dense", "dropout"))
        if gene == "pooling":
            return replace(head, pooling=other(head.pooling, POOLINGS, rng))
        if gene == "dropout":
            return replace(head, dropout=step(head.dropout, DROPOUTS, rng))
        moves = []
        if len(head.dense) < MAX_DENSE:
            moves.append("add")
        if head.dense:
            moves += ["remove", "resize"]
        move = pick(rng, moves)
        dense = list(head.dense)
        if move == "add":
            dense.insert(int(rng.integers(len(dense) + 1)), pick(rng, DENSE_WIDTHS))
        elif move == "remove":
            del dense[int(rng.integers(len(dense)))]
        else:
            i = int(rng.integers(len(dense)))
            dense[i] = step(dense[i], DENSE_WIDTHS, rng)
        return replace(head, dense=tuple(dense))

    def crossover(
        self, a: CnnGenome, b: CnnGenome, rng: np.random.Generator
    ) -> tuple[CnnGenome, CnnGenome]:
        """One-point crossover of the stage lists (aligned by index, so a child has as
        many stages as one of its parents or in between) plus a uniform exchange of stem,
        head and training. Both children are valid."""
        self.validate(a)
        self.validate(b)
        cap = max(self.max_downsampling, downsampling(a), downsampling(b))
        longest = max(len(a.stages), len(b.stages))
        children = (a, b)
        for _ in range(20):
            cut = int(rng.integers(1, longest)) if longest > 1 else 1
            stages_a = a.stages[:cut] + b.stages[cut:]
            stages_b = b.stages[:cut] + a.stages[cut:]
            swap = rng.random(3) < 0.5
            stem_a, stem_b = (b.stem, a.stem) if swap[0] else (a.stem, b.stem)
            head_a, head_b = (b.head, a.head) if swap[1] else (a.head, b.head)
            train_a, train_b = (b.training, a.training) if swap[2] else (a.training, b.training)
            children = (
                CnnGenome(stem=stem_a, stages=stages_a, head=head_a, training=train_a),
                CnnGenome(stem=stem_b, stages=stages_b, head=head_b, training=train_b),
            )
            if all(downsampling(c) <= cap for c in children):
                break
        return children

    def weight_sources(self, child: CnnGenome, parent: CnnGenome) -> tuple[WeightSource, ...]:
        """Which of ``parent``'s layers correspond to each part of ``child``'s model (no
        TensorFlow; see :class:`nas.core.space.WeightSource`).

        Parts: the stem (``stem_``), each stage (``stage{i}_``, its blocks by position
        within the stage) and each hidden Dense layer (``fc{i}``); stages and Dense layers
        are aligned as a diff aligns lines (:func:`search_spaces._genes.align`), so a stage
        inserted or removed by a mutation does not shift the ones behind it onto other
        weights. The head's output layer corresponds by name (the built-in kinds'
        ``predictions`` and ``keypoints_raw`` as part of the head). A part is ``identical`` when its genes are equal; the head's layers when
        the whole head is.
        """
        head = child.head == parent.head
        sources = [WeightSource("stem_", "stem_", child.stem == parent.stem)]
        for i, j in enumerate(align(parent.stages, child.stages)):
            same = j is not None and child.stages[i] == parent.stages[j]
            sources.append(
                WeightSource(f"stage{i + 1}_", None if j is None else f"stage{j + 1}_", same)
            )
        for i, j in enumerate(align(parent.head.dense, child.head.dense)):
            sources.append(WeightSource(f"fc{i + 1}", None if j is None else f"fc{j + 1}", head))
        sources += [WeightSource(name, name, head) for name in ("predictions", "keypoints_raw")]
        return tuple(sources)

    # -- validation and JSON -------------------------------------------------------------

    def validate(self, genome: Any) -> None:
        """Raise :class:`GenomeError` naming the first gene outside its validation range."""
        validate_genome(genome)

    def to_json(self, genome: CnnGenome) -> dict[str, Any]:
        """Nested plain dicts and lists: ``{"stem": {...}, "stages": [...], ...}``."""
        return {
            "stem": dump(genome.stem),
            "stages": [dump(s) for s in genome.stages],
            "head": dump(genome.head),
            "training": dump(genome.training),
        }

    def from_json(self, data: Mapping[str, Any]) -> CnnGenome:
        """Parse and validate; unknown, missing or mistyped fields raise
        :class:`GenomeError` naming their path, e.g. ``stages[1].width``."""
        GENOME_JSON.check_fields("", data, ("stem", "stages", "head", "training"))
        genome = CnnGenome(
            stem=GENOME_JSON.parse(Stem, "stem", data["stem"]),
            stages=GENOME_JSON.parse_list(Stage, "stages", data["stages"]),
            head=GENOME_JSON.parse(Head, "head", data["head"]),
            training=GENOME_JSON.parse(Training, "training", data["training"]),
        )
        validate_genome(genome)
        return genome

    # -- decoding and summaries ----------------------------------------------------------

    def build(self, genome: CnnGenome, task: Task) -> keras.Model:
        """Decode to an uncompiled Keras model: raw pixels -> Rescaling(1/255) ->
        backbone -> global pooling -> hidden Dense+activation -> Dropout -> output.

        The output is a softmax over the classes for classification, and for keypoints a
        linear Dense(2K) reshaped to (K, 2) and mapped from [-1, 1] to pixel coordinates
        (x, y) in [0, size - 1], so an untrained net starts at the image centre.
        """
        import keras

        check_square(task)
        self.validate(genome)
        inputs = keras.Input(shape=task.input_shape, dtype="float32", name="pixels")
        x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
        x = apply_backbone(genome, x)
        return keras.Model(inputs, apply_head(genome, x, task, prefix=""), name="cnn")

    def build_multitask(
        self, genome: CnnGenome, tasks: Sequence[Task], names: Sequence[str]
    ) -> keras.Model:
        """One model for several tasks: an input per task (``NAME_pixels``, at the task's
        own image size), the genome's backbone shared by all of them (one set of
        weights: the convolutions run on any size), and a head per task as :meth:`build`
        makes it, its layers prefixed ``NAME_`` (the output: ``NAME_predictions`` or
        ``NAME_keypoints``). Outputs are in the order of ``tasks``."""
        import keras

        channels = {task.input_shape[2] for task in tasks}
        if len(channels) != 1:
            raise ValueError(f"the tasks' images differ in channels {sorted(channels)}")
        for task in tasks:
            check_square(task)
        self.validate(genome)
        shared = backbone(genome, (None, None, channels.pop()))
        inputs, outputs = [], []
        for task, name in zip(tasks, names, strict=True):
            pixels = keras.Input(shape=task.input_shape, dtype="float32", name=f"{name}_pixels")
            x = keras.layers.Rescaling(1.0 / 255.0, name=f"{name}_rescale")(pixels)
            inputs.append(pixels)
            outputs.append(apply_head(genome, shared(x), task, prefix=f"{name}_"))
        return keras.Model(inputs, outputs, name="cnn_multitask")

    def cost_multitask(self, genome: CnnGenome, tasks: Sequence[Task]) -> ModelCost:
        """The parameters (the shared backbone once) and FLOPs (one image of each task)
        of :meth:`build_multitask`, without building it."""
        costs = [self.cost(genome, task) for task in tasks]
        counter = CostCounter()
        backbone_cost(counter, genome, Tensor(*tasks[0].input_shape))
        shared = counter.total().params
        return ModelCost(
            params=sum(c.params for c in costs) - (len(costs) - 1) * shared,
            flops=sum(c.flops for c in costs),
        )

    def cost(self, genome: CnnGenome, task: Task) -> ModelCost:
        """The parameters and FLOPs of ``build(genome, task)``, exactly, without building
        it (no TensorFlow): ``model.count_params()`` and
        :func:`nas.training.model_stats.count_flops`. Raises where :meth:`build` does."""
        height, width, channels = task.input_shape
        check_square(task)
        self.validate(genome)
        counter = CostCounter()
        x = backbone_cost(counter, genome, Tensor(height, width, channels))
        x = Tensor(1, 1, x.channels)  # global pooling
        for units in genome.head.dense:
            x = counter.dense(x, units)
        counter.dense(
            x, task.head.units
        )  # the output head's Dense (its reshape and scaling: no FLOPs)
        return counter.total()

    def recipe(self, genome: CnnGenome) -> TrainingRecipe:
        """The genome's training settings."""
        return training_recipe(genome.training)

    def describe(self, genome: CnnGenome) -> str:
        """One line, e.g. ``stem16k3 | basic2x32 | bottleneck3x64e4 s2 se | avg | adam lr1e-3 b64``."""
        return f"{self.describe_architecture(genome)} | {describe_training(genome.training)}"

    def describe_architecture(self, genome: CnnGenome) -> str:
        """:meth:`describe` without the training genes (for a search whose candidates all
        train with one recipe, ``[budget] recipe = "standard"``)."""
        stem = genome.stem
        parts = [
            f"stem{stem.width}k{stem.kernel}"
            + (" s2" if stem.stride == 2 else "")
            + (" pool" if stem.pool else "")
        ]
        for s in genome.stages:
            text = f"{s.block}{s.depth}x{s.width}"
            text += f"e{s.expansion}" if s.block == "bottleneck" else ""
            text += f"k{s.kernel}" if s.kernel != 3 else ""
            text += " s2" if s.stride == 2 else ""
            text += " se" if s.se else ""
            text += f" {s.activation}" if s.activation != "relu" else ""
            parts.append(text)
        head = genome.head
        text = head.pooling
        text += f" fc{'-'.join(str(u) for u in head.dense)}" if head.dense else ""
        text += f" drop{head.dropout:g}" if head.dropout else ""
        parts.append(text)
        return " | ".join(parts)


# --- decoder ----------------------------------------------------------------------------
