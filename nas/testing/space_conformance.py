"""A conformance suite every search space must pass, written against nas.core.space only.

Two ways to use it:

* subclass :class:`SearchSpaceConformance` in a test module, setting ``space`` and
  ``task`` (a task of a kind the space builds: classification or keypoints); pytest
  collects its ``test_*`` methods::

      class TestMySpace(SearchSpaceConformance):
          space = SPACE
          task = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)

* or call :func:`check_space` (every check in one go) or one ``check_*`` function.

It checks the protocol, the JSON round trip and the genome hash, the operators
(``sample`` / ``mutate`` / ``crossover`` always give valid genomes, ``mutate`` always
changes something, a seed fixes every sequence and no operator touches the global
``random`` / ``numpy.random`` state), the rejection of malformed JSON with a
:class:`~nas.core.errors.GenomeError` naming the field, and that a few genomes decode to models
mapping a batch of images to the task's output: class probabilities for a classification
task, pixel coordinates ``(x, y)`` of each keypoint for a keypoints task. Only the last
check imports Keras.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from nas.core.errors import GenomeError
from nas.core.space import SearchSpace, TrainingRecipe, canonical_json, genome_hash
from nas.core.task import OutputHead, Task
from nas.kinds import output_kind

__all__ = [
    "SearchSpaceConformance",
    "check_builds",
    "check_determinism",
    "check_hash_identity",
    "check_json_round_trip",
    "check_operators",
    "check_output",
    "check_protocol",
    "check_recipe_and_describe",
    "check_rejects_malformed_json",
    "check_space",
    "sample_genomes",
]

UNKNOWN_FIELD = "__not_a_gene__"


def sample_genomes(space: SearchSpace, n: int, seed: int = 0) -> list[Any]:
    """``n`` sampled genomes and, to reach off-sample states, a mutant of each."""
    rng = np.random.default_rng(seed)
    genomes = []
    for _ in range(n):
        genome = space.sample(rng)
        genomes += [genome, space.mutate(genome, rng)]
    return genomes


def check_protocol(space: SearchSpace) -> None:
    """``space`` follows :class:`nas.core.space.SearchSpace` and has a name."""
    assert isinstance(space, SearchSpace)
    assert isinstance(space.name, str) and space.name


def check_json_round_trip(space: SearchSpace, genomes: list[Any]) -> None:
    """``from_json(to_json(g)) == g``, directly and through JSON text, with a stable hash."""
    for genome in genomes:
        data = space.to_json(genome)
        text = json.dumps(data)  # JSON-ready: no numpy scalars, no tuples needed
        assert space.from_json(data) == genome
        again = space.from_json(json.loads(text))
        assert again == genome
        assert genome_hash(space, again) == genome_hash(space, genome)
        assert canonical_json(space, again) == canonical_json(space, genome)
        assert space.to_json(genome) == data, "to_json must be deterministic"


def check_hash_identity(space: SearchSpace, genomes: list[Any]) -> None:
    """Equal genomes hash equal, different genomes hash differently."""
    hashes = [genome_hash(space, g) for g in genomes]
    assert all(len(h) == 16 for h in hashes)
    for i, (a, ha) in enumerate(zip(genomes, hashes, strict=True)):
        for b, hb in zip(genomes[i + 1 :], hashes[i + 1 :], strict=True):
            assert (a == b) == (ha == hb), f"{space.describe(a)} vs {space.describe(b)}"
    assert len(set(hashes)) > len(genomes) // 2, "sampling should rarely repeat a genome"


def _valid(space: SearchSpace, genome: Any, what: str) -> None:
    try:
        space.validate(genome)
    except GenomeError as exc:  # pragma: no cover - reported as a failure
        pytest.fail(f"{what} gave an invalid genome: {exc}")
    assert space.from_json(json.loads(json.dumps(space.to_json(genome)))) == genome


def check_operators(space: SearchSpace, *, n: int = 1000, seed: int = 0) -> None:
    """``n`` rounds of sample, mutate (also of mutants) and crossover: every result is
    valid and round-trips through JSON, every mutant differs from its parent, and the
    parents are left untouched."""
    rng = np.random.default_rng(seed)
    pool: list[Any] = []
    for i in range(n):
        fresh = space.sample(rng)
        _valid(space, fresh, "sample")
        parent = pool[int(rng.integers(len(pool)))] if pool and i % 2 else fresh
        before = canonical_json(space, parent)
        child = space.mutate(parent, rng)
        _valid(space, child, "mutate")
        assert child != parent, f"mutate returned its input {space.describe(parent)}"
        assert genome_hash(space, child) != genome_hash(space, parent)
        partner = pool[int(rng.integers(len(pool)))] if pool else fresh
        kids = space.crossover(child if i % 3 else partner, partner, rng)
        assert isinstance(kids, tuple) and len(kids) == 2
        for kid in kids:
            _valid(space, kid, "crossover")
        assert canonical_json(space, parent) == before, "an operator changed its input"
        pool = [*pool[-63:], fresh, child, *kids]


def _trace(space: SearchSpace, seed: int, steps: int = 30) -> list[str]:
    rng = np.random.default_rng(seed)
    out: list[str] = []
    genome = space.sample(rng)
    for _ in range(steps):
        other = space.sample(rng)
        genome = space.mutate(genome, rng)
        kids = space.crossover(genome, other, rng)
        out += [canonical_json(space, g) for g in (other, genome, *kids)]
        genome = kids[0]
    return out


def check_determinism(space: SearchSpace, *, seed: int = 0) -> None:
    """The same seed gives the same genomes whatever the global RNGs, another seed
    gives others, and the global ``random`` / ``numpy.random`` states are not used
    (they are restored afterwards)."""
    saved = random.getstate(), np.random.get_state()
    try:
        random.seed(1)
        np.random.seed(1)
        py_state, np_state = random.getstate(), np.random.get_state()
        first = _trace(space, seed)
        assert random.getstate() == py_state, "an operator drew from the global random"
        after = np.random.get_state()
        assert all(
            np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y
            for x, y in zip(after, np_state, strict=True)
        ), "an operator drew from the global numpy.random"
        random.seed(2)
        np.random.seed(2)
        assert _trace(space, seed) == first
        assert _trace(space, seed + 1) != first
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])


def _fields(node: Any, name: str | None = None) -> Iterator[tuple[Any, Any, str]]:
    """(container, index, nearest field name) for every field and list item, deepest first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _fields(value, key)
            yield node, key, key
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _fields(value, name)
            if name is not None:
                yield node, i, name


def _wrong_type(value: Any) -> Any:
    """A JSON value of another type than ``value``'s (``None`` when it has no wrong one)."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return f"{value}"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list | dict):
        return "not a container"
    return None


def _dicts(node: Any, path: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    if isinstance(node, dict):
        yield node, path
        for k, value in node.items():
            yield from _dicts(value, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _dicts(value, f"{path}[{i}]")


def _expect_rejected(space: SearchSpace, data: Any, name: str, what: str) -> None:
    with pytest.raises(GenomeError) as caught:
        space.from_json(data)
    assert name in str(caught.value), f"{what}: the error should name {name!r}: {caught.value}"
    assert "\n" not in str(caught.value), "a GenomeError is one line"


def check_rejects_malformed_json(space: SearchSpace, genome: Any) -> None:
    """``from_json`` rejects, with a one-line :class:`GenomeError` naming the field, an
    unknown field in any object, a missing field, and a wrong type in any field."""
    pristine = json.loads(json.dumps(space.to_json(genome)))
    with pytest.raises(GenomeError):
        space.from_json([])  # type: ignore[arg-type]

    data = json.loads(json.dumps(pristine))
    for node, path in list(_dicts(data)):
        node[UNKNOWN_FIELD] = 1
        _expect_rejected(space, data, UNKNOWN_FIELD, f"unknown field in {path or 'top level'}")
        del node[UNKNOWN_FIELD]
        for key in list(node):
            value = node.pop(key)
            _expect_rejected(space, data, key, f"missing field {key!r}")
            node[key] = value
    assert data == pristine

    checked = 0
    for container, index, name in list(_fields(data)):
        original = container[index]
        wrong = _wrong_type(original)
        if wrong is None:
            continue
        container[index] = wrong
        _expect_rejected(space, data, name, f"wrong type {wrong!r} in {name!r}")
        container[index] = original
        checked += 1
    assert checked > 0
    assert data == pristine
    assert space.from_json(data) == genome


def check_recipe_and_describe(space: SearchSpace, genomes: list[Any]) -> None:
    """Every genome has a training recipe and a one-line description."""
    for genome in genomes:
        recipe = space.recipe(genome)
        assert isinstance(recipe, TrainingRecipe)
        assert recipe.learning_rate > 0 and recipe.batch_size >= 1 and recipe.weight_decay >= 0
        assert recipe.optimizer in ("adam", "adamw", "sgd")
        text = space.describe(genome)
        assert isinstance(text, str) and text.strip() and "\n" not in text


def check_output(task: Task, output: np.ndarray, what: str = "") -> None:
    """``output`` (a batch of 2) is what ``task`` asks for, as its output kind says
    (:meth:`nas.kinds.base.OutputKind.output_problem`): e.g. ``(2, num_classes)``
    probabilities summing to 1, or ``(2, num_keypoints, 2)`` pixel coordinates within a
    pixel of the image."""
    problem = output_kind(task.kind).output_problem(task, np.asarray(output))
    assert problem is None, f"{problem}: {what}" if what else problem


def check_builds(space: SearchSpace, task: Task, genomes: list[Any], *, seed: int = 0) -> None:
    """Each genome decodes to a model mapping raw pixels of shape (2, *input_shape) to
    the task's output (see :func:`check_output`)."""
    import keras

    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, size=(2, *task.input_shape)).astype(np.float32)
    for genome in genomes:
        model = space.build(genome, task)
        assert isinstance(model, keras.Model)
        assert tuple(model.input_shape) == (None, *task.input_shape)
        output = keras.ops.convert_to_numpy(model(images, training=False))
        check_output(task, output, space.describe(genome))
        keras.backend.clear_session()


UNKNOWN_HEADS = {
    "vector": OutputHead(
        name="conformance", shape=(3, 2), activation="tanh", scale=2.0, offset=1.0
    ),
    "points": OutputHead(name="conformance", shape=(3, 2), form="points"),
}
"""Heads of a kind no space was written for, one per form: a space builds a task's head
from ``task.head`` and never from the kind's name."""


def check_builds_unknown_heads(space: SearchSpace, task: Task, *, seed: int = 0) -> None:
    """For each head form the space says it builds (``head_forms``; both when it does not
    say), a sampled genome decodes, for a task of an unknown kind with that form, to a model
    whose output has the head's shape (and, for ``vector``, its range: ``tanh`` scaled by 2
    and offset by 1 lies in [-1, 3]); where the space has ``cost``, its parameters are the
    model's."""
    import keras

    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, size=(2, *task.input_shape)).astype(np.float32)
    for form in getattr(space, "head_forms", None) or tuple(UNKNOWN_HEADS):
        head = UNKNOWN_HEADS[form]
        unknown = Task(kind="conformance.unknown", input_shape=task.input_shape, head=head)
        genome = space.sample(rng)
        model = space.build(genome, unknown)
        output = keras.ops.convert_to_numpy(model(images, training=False))
        assert output.shape == (2, *head.shape), f"{form} head: output {output.shape}"
        assert np.all(np.isfinite(output)), f"{form} head: output not finite"
        if form == "vector":
            assert output.min() >= -1 - 1e-5 and output.max() <= 3 + 1e-5, f"{form} head"
        cost = getattr(space, "cost", None)
        if callable(cost):
            assert cost(genome, unknown).params == model.count_params(), f"{form} head's cost"
        keras.backend.clear_session()


def check_space(space: SearchSpace, task: Task, *, n: int = 1000, builds: int = 5) -> None:
    """Every check above on ``space``; decodes ``builds`` sampled genomes for ``task``."""
    genomes = sample_genomes(space, 30)
    check_protocol(space)
    check_json_round_trip(space, genomes)
    check_hash_identity(space, genomes)
    check_operators(space, n=n)
    check_determinism(space)
    for genome in genomes[:6]:
        check_rejects_malformed_json(space, genome)
    check_recipe_and_describe(space, genomes)
    rng = np.random.default_rng(1)
    check_builds(space, task, [space.sample(rng) for _ in range(builds)])
    check_builds_unknown_heads(space, task)


class SearchSpaceConformance:
    """Subclass with ``space`` and ``task`` set (and a name starting with ``Test``)."""

    space: ClassVar[SearchSpace]
    task: ClassVar[Task]
    operator_rounds: ClassVar[int] = 1000
    builds: ClassVar[int] = 5

    def _genomes(self) -> list[Any]:
        return sample_genomes(self.space, 30)

    def test_protocol(self) -> None:
        check_protocol(self.space)

    def test_json_round_trip(self) -> None:
        check_json_round_trip(self.space, self._genomes())

    def test_hash_identity(self) -> None:
        check_hash_identity(self.space, self._genomes())

    def test_operators_give_valid_genomes(self) -> None:
        check_operators(self.space, n=self.operator_rounds)

    def test_seed_fixes_the_sequence(self) -> None:
        check_determinism(self.space)

    def test_from_json_rejects_malformed(self) -> None:
        for genome in self._genomes()[:6]:
            check_rejects_malformed_json(self.space, genome)

    def test_recipe_and_describe(self) -> None:
        check_recipe_and_describe(self.space, self._genomes())

    def test_builds(self) -> None:
        rng = np.random.default_rng(1)
        check_builds(self.space, self.task, [self.space.sample(rng) for _ in range(self.builds)])

    def test_builds_the_head_of_a_kind_it_was_not_written_for(self) -> None:
        check_builds_unknown_heads(self.space, self.task)
