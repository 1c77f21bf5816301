"""Weight inheritance: a child's model starts from its parents' trained weights.

As in LEMONADE (Elsken et al. 2019, "Efficient multi-objective neural architecture
search via Lamarckian evolution"), a genome made by crossover and mutation does not
train from scratch: every layer it shares with a parent starts from that parent's
trained weights, then the child trains with the normal budget. Runs inside a worker
(imports Keras); :mod:`nas.engine.search` sends the parents' genomes and weights with the
request when ``[search] inherit_weights`` is on.

Inheritance is Lamarckian: a child that differs from its parent only in training genes
(or in a layer without weights) inherits every weight, so its score includes its
ancestors' training, and the same genome trained from scratch (``nas baseline``, a final
training) does not reproduce it. Trials record how much they inherited
(:class:`nas.core.trial.Inherited`) so the two can be told apart.

How a child layer finds its weights:

* **Correspondence.** Layers are named by position in the decoders (``stem_conv``,
  ``stage2_block1_1_conv``, ``fc1``, ``predictions``, ...). A space may say which
  parent layer corresponds to each part of the child (``space.weight_sources(child,
  parent)``, :class:`nas.core.space.WeightSource`; TensorFlow-free): the CNN and ResUNet
  spaces align stages / levels as a diff aligns lines, so a stage inserted or removed by
  a mutation does not shift the stages behind it onto other weights, and they mark each
  part whose genes are identical in child and parent. Without it, a layer corresponds
  to the parent's layer of the same name.
* **Shapes.** A counterpart of the same layer class with exactly the same weight shapes
  is copied whole. One whose shapes differ only in the channel axes (the last two axes
  of a kernel, the only axis of a bias or a BatchNormalization vector: a widened or
  narrowed conv, Dense or BN, or one whose input channels changed) gets the overlapping
  slice; the rest keeps its fresh initialisation, so a widened layer keeps the old
  filters. Anything else (another kernel size, another layer type) is left fresh.
* **Which parent.** Parents come in order of preference (for a crossover child: the one
  whose first stages it has, first). For each child layer the candidates rank by: the part
  is identical in that parent (a crossover child takes each stage, the stem and the head
  from the parent that gave it), then a whole copy before a partial one, then the
  preference order. The genome part is the right unit, not the layer: two parents may
  both have a layer of the right shape, but only the one that gave the part has the
  weights trained with the rest of that part.
* **Near-identity for new residual blocks.** A residual block with an identity shortcut
  that inherited nothing (e.g. the block a depth mutation appended to a stage) gets a zero
  gamma in the last BatchNormalization of its branch (Goyal et al. 2017), so it starts as
  (nearly) the identity and the inherited function is kept. Only when something was
  inherited at all; ``identity_init=False`` turns it off.

Parent weights are read by building the parent from its genome (``space.build``) and
loading the ``.weights.h5`` bytes into it, then reading each layer's weights by name:
Keras 3 stores a ``.weights.h5`` by layer class and position (``layers/conv2d_3/vars/0``),
not by layer name, so reading the file directly would have to re-derive Keras' own
traversal; loading into the rebuilt model is what Keras guarantees to round-trip.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core.tensorflow_logs import import_tensorflow_quietly

# ruff: noqa: E402 (TensorFlow is imported, its start-up noise dropped, before Keras)
import_tensorflow_quietly()

import keras
import numpy as np

from nas.core.errors import one_line
from nas.core.space import SearchSpace, WeightSource
from nas.core.task import Task
from nas.core.trial import Inherited, ParentWeights

__all__ = ["InheritanceReport", "ParentModel", "inherit_weights", "load_parent", "transfer"]


@dataclass(frozen=True)
class InheritanceReport:
    """What :func:`inherit_weights` did to a child's layers with weights.

    ``whole``: copied whole; ``partial``: the overlapping slice copied; ``fresh``: left at
    their fresh initialisation (``identity`` of them got a zero BN gamma to start a new
    residual block near identity). ``sources`` maps each copied layer to (parent index,
    parent layer name). ``copied_values`` of the model's ``total_values`` weight values
    came from a parent. ``unusable``: one line per parent that could not be loaded.
    """

    whole: tuple[str, ...]
    partial: tuple[str, ...]
    fresh: tuple[str, ...]
    identity: tuple[str, ...] = ()
    sources: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    copied_values: int = 0
    total_values: int = 0
    unusable: tuple[str, ...] = ()

    @property
    def fraction(self) -> float:
        """The share of the model's weight values that came from a parent."""
        return self.copied_values / self.total_values if self.total_values else 0.0

    def summary(self) -> Inherited:
        """The counts that travel back to the driver and into the trial."""
        return Inherited(
            whole=len(self.whole),
            partial=len(self.partial),
            fresh=len(self.fresh),
            fraction=self.fraction,
        )


@dataclass(frozen=True)
class ParentModel:
    """A parent's trained weights by layer name (layer class name, arrays in the layer's
    ``weights`` order) and the correspondence of its layers to the child's parts."""

    layers: Mapping[str, tuple[str, tuple[np.ndarray, ...]]]
    sources: tuple[WeightSource, ...] = ()

    def counterpart(self, name: str) -> tuple[str | None, bool]:
        """The parent layer that corresponds to the child layer ``name`` (None: none),
        and whether the genome part it belongs to is identical in both."""
        best: WeightSource | None = None
        for source in self.sources:
            if name.startswith(source.child_prefix) and (
                best is None or len(source.child_prefix) > len(best.child_prefix)
            ):
                best = source
        if best is None:
            return name, False
        if best.parent_prefix is None:
            return None, False
        return best.parent_prefix + name[len(best.child_prefix) :], best.identical


def inherit_weights(
    model: keras.Model,
    genome: Any,
    parents: Sequence[ParentWeights],
    *,
    space: SearchSpace,
    task: Task,
    identity_init: bool = True,
) -> InheritanceReport:
    """Copy into ``model`` (freshly built from ``genome``) what it shares with ``parents``.

    Each parent is rebuilt from its genome JSON and loaded with its weights (see
    :func:`load_parent`); one that cannot be (bad JSON, unreadable weights) contributes
    nothing and is named in the report's ``unusable``. See the module docstring for the
    rules; :func:`transfer` applies them.
    """
    loaded: list[ParentModel] = []
    unusable: list[str] = []
    for index, parent in enumerate(parents):
        try:
            loaded.append(load_parent(space, genome, parent, task))
        except Exception as exc:  # a bad parent must never fail the child
            unusable.append(f"parent {index}: {type(exc).__name__}: {one_line(exc, limit=200)}")
            loaded.append(ParentModel({}))
    report = transfer(model, loaded, identity_init=identity_init)
    return dataclasses.replace(report, unusable=tuple(unusable))


def load_parent(space: SearchSpace, child: Any, parent: ParentWeights, task: Task) -> ParentModel:
    """``parent``'s trained weights by layer name, with its correspondence to ``child``.

    The parent model is built from its genome, loaded with its ``.weights.h5`` bytes and
    dropped again; only the arrays are kept.
    """
    genome = space.from_json(parent.genome)
    model = space.build(genome, task)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "parent.weights.h5"
        path.write_bytes(parent.weights)
        model.load_weights(path)
    layers = {
        layer.name: (
            type(layer).__name__,
            tuple(keras.ops.convert_to_numpy(w) for w in layer.weights),
        )
        for layer in model.layers
        if layer.weights
    }
    del model
    sources = getattr(space, "weight_sources", None)
    return ParentModel(layers, tuple(sources(child, genome)) if callable(sources) else ())


def transfer(
    model: keras.Model, parents: Sequence[ParentModel], *, identity_init: bool = True
) -> InheritanceReport:
    """Copy each layer of ``model`` from its best counterpart among ``parents`` (in order
    of preference): whole when the shapes are equal, the overlapping slice when only the
    channel counts differ; start new residual blocks near identity."""
    whole: list[str] = []
    partial: list[str] = []
    fresh: list[str] = []
    sources: dict[str, tuple[int, str]] = {}
    copied = total = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        shapes = [tuple(w.shape) for w in layer.weights]
        total += sum(int(np.prod(s)) for s in shapes)
        best: tuple[tuple[bool, bool, int], int, str, tuple[np.ndarray, ...]] | None = None
        for index, parent in enumerate(parents):
            name, identical = parent.counterpart(layer.name)
            if name is None or name not in parent.layers:
                continue
            kind, arrays = parent.layers[name]
            fit = _fit(shapes, [a.shape for a in arrays])
            if kind != type(layer).__name__ or fit is None:
                continue
            rank = (not identical, fit == "partial", index)
            if best is None or rank < best[0]:
                best = (rank, index, name, arrays)
        if best is None:
            fresh.append(layer.name)
            continue
        _, index, name, arrays = best
        copied += _copy(layer, arrays)
        sources[layer.name] = (index, name)
        (partial if best[0][1] else whole).append(layer.name)
    identity: list[str] = []
    if identity_init and sources:
        identity = _start_new_blocks_near_identity(model, set(sources))
    return InheritanceReport(
        whole=tuple(whole),
        partial=tuple(partial),
        fresh=tuple(fresh),
        identity=tuple(identity),
        sources=sources,
        copied_values=copied,
        total_values=total,
    )


def _fit(child: Sequence[tuple[int, ...]], parent: Sequence[tuple[int, ...]]) -> str | None:
    """``"whole"``, ``"partial"`` (only channel axes differ: the last two of a kernel,
    the only one of a vector) or None (incompatible)."""
    if len(child) != len(parent):
        return None
    if all(c == p for c, p in zip(child, parent, strict=True)):
        return "whole"
    for c, p in zip(child, parent, strict=True):
        if len(c) != len(p) or c[:-2] != p[:-2]:
            return None
    return "partial"


def _copy(layer: keras.layers.Layer, arrays: Sequence[np.ndarray]) -> int:
    """Assign ``arrays`` (or their overlap) to ``layer``'s weights; the values copied."""
    copied = 0
    for variable, source in zip(layer.weights, arrays, strict=True):
        value = np.array(keras.ops.convert_to_numpy(variable))
        overlap = tuple(slice(0, min(c, p)) for c, p in zip(value.shape, source.shape, strict=True))
        value[overlap] = source[overlap]
        variable.assign(value)
        copied += int(np.prod([s.stop for s in overlap]))
    return copied


def _start_new_blocks_near_identity(model: keras.Model, inherited: set[str]) -> list[str]:
    """Zero the gamma of the last branch BN of every residual block (``{P}add`` with an
    identity shortcut, i.e. no ``{P}0_conv``) none of whose layers inherited anything."""
    names = {layer.name for layer in model.layers}
    zeroed = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Add) or not layer.name.endswith("_add"):
            continue
        prefix = layer.name[: -len("add")]
        if f"{prefix}0_conv" in names or any(n.startswith(prefix) for n in inherited):
            continue
        pattern = re.compile(rf"{re.escape(prefix)}(\d+)_bn")
        branch = [(int(m.group(1)), n) for n in names if (m := pattern.fullmatch(n))]
        if not branch:
            continue
        bn = model.get_layer(max(branch)[1])
        if getattr(bn, "gamma", None) is None:
            continue
        bn.gamma.assign(np.zeros(tuple(bn.gamma.shape), dtype="float32"))
        zeroed.append(bn.name)
    return zeroed
