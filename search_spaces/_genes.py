"""Space-agnostic gene helpers shared by the search spaces (:mod:`search_spaces.cnn`,
:mod:`search_spaces.resunet`).

* :class:`GenomeChecks`: validation checks that raise a one-line
  :class:`~nas.core.errors.GenomeError` naming the gene, ``invalid {space} genome: {path} ...``,
  and :func:`is_valid`;
* :class:`GenomeJson`: parsing of frozen dataclasses from JSON objects with a table of
  field kinds, with errors ``{space} genome JSON: ...`` naming the field's path, and
  :func:`dump`, the inverse;
* grid moves that draw from an explicit :class:`numpy.random.Generator`: :func:`pick`,
  :func:`step`, :func:`other`;
* number formatting and normalisation: :func:`short`, :func:`as_float`;
* :func:`align`: which item of a parent's list (of stages, levels) each item of a
  child's list derives from, for weight inheritance.

Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

import numpy as np

from nas.core.errors import GenomeError

__all__ = [
    "FieldKind",
    "GenomeChecks",
    "GenomeJson",
    "align",
    "as_float",
    "dump",
    "is_valid",
    "other",
    "pick",
    "short",
    "step",
]

_T = TypeVar("_T")
_V = TypeVar("_V", int, float)

FieldKind = Literal["int", "float", "str", "bool", "ints"]
"""How :class:`GenomeJson` reads a field: an integer, a number (stored as a float), a
string, a boolean, or a list of integers (stored as a tuple)."""

_EXPECTED: dict[str, str] = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "ints": "a list of integers",
}


def as_float(value: Any) -> Any:
    """Integral numbers become floats and -0.0 becomes 0.0; anything else is left alone."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return float(value) + 0.0


def short(x: float) -> str:
    """``0.001`` -> ``1e-3``, ``0.00025`` -> ``2.5e-4``."""
    mantissa, exponent = f"{x:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


# --- validation -------------------------------------------------------------------------


@dataclass(frozen=True)
class GenomeChecks:
    """Checks of one gene each; a failing check raises
    ``GenomeError("invalid {space} genome: {path} {message}")``, where ``path`` names the
    gene (e.g. ``stages[1].width``)."""

    space: str
    """The space's name in messages, e.g. ``"CNN"``."""

    def fail(self, path: str, message: str) -> GenomeError:
        """The error (to raise) for the gene at ``path``."""
        return GenomeError(f"invalid {self.space} genome: {path} {message}")

    def check_int(self, path: str, value: Any, low: int, high: int) -> None:
        """``value`` is an integer (not a bool) in ``low..high``."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise self.fail(path, f"= {value} is out of range; allowed {low}..{high}")

    def check_choice(self, path: str, value: Any, choices: Sequence[Any]) -> None:
        """``value`` is one of ``choices``; a bool matches only boolean choices and
        anything else only non-boolean ones (so ``True`` is not the choice ``1``)."""
        if isinstance(value, bool) != isinstance(choices[0], bool) or value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise self.fail(path, f"= {value!r} is not allowed; choose one of {allowed}")

    def check_bool(self, path: str, value: Any) -> None:
        """``value`` is ``True`` or ``False``."""
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")

    def check_float(
        self, path: str, value: Any, low: float, high: float, *, open_low: bool = False
    ) -> None:
        """``value`` is a number (not a bool, not NaN) in ``[low, high]``, or in
        ``(low, high]`` with ``open_low``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number, got {value!r}")
        inside = (low < value if open_low else low <= value) and value <= high
        if not inside:  # also catches NaN
            bracket = "(" if open_low else "["
            raise self.fail(
                path, f"= {value!r} is out of range; allowed {bracket}{low:g}, {high:g}]"
            )

    def check_type(self, path: str, value: Any, cls: type) -> None:
        """``value`` is an instance of ``cls``."""
        if not isinstance(value, cls):
            raise self.fail(path, f"must be a {cls.__name__}, got {type(value).__name__}")

    def check_tuple(self, path: str, value: Any, item: type) -> None:
        """``value`` is a tuple (its items, of type ``item``, are checked separately)."""
        if not isinstance(value, tuple):
            raise self.fail(path, f"must be a tuple of {item.__name__}, got {type(value).__name__}")


def is_valid(validate: Callable[[Any], None], genome: Any) -> bool:
    """Whether ``validate(genome)`` passes (raises no :class:`GenomeError`)."""
    try:
        validate(genome)
    except GenomeError:
        return False
    return True


# --- JSON -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenomeJson:
    """Reads a space's frozen dataclasses from JSON objects.

    ``kinds`` maps each dataclass to its fields, in order, and their :data:`FieldKind`;
    an object must have exactly those fields. Errors read
    ``GenomeError("{space} genome JSON: {message}")`` and name the field's path, e.g.
    ``unknown field stages[1].depht``.
    """

    space: str
    """The space's name in messages, e.g. ``"CNN"``."""
    kinds: Mapping[type, Mapping[str, FieldKind]]

    def error(self, message: str) -> GenomeError:
        """The error (to raise) with ``message``."""
        return GenomeError(f"{self.space} genome JSON: {message}")

    def check_fields(self, path: str, data: Any, names: Sequence[str]) -> None:
        """``data`` is an object with exactly the fields ``names`` (``path`` is ``""``
        for the genome itself)."""
        where = path or "genome"
        if not isinstance(data, Mapping):
            raise self.error(f"{where} must be an object, got {type(data).__name__}")
        prefix = f"{path}." if path else ""
        for key in data:
            if key not in names:
                raise self.error(f"unknown field {prefix}{key}; allowed: {', '.join(names)}")
        for name in names:
            if name not in data:
                raise self.error(
                    f"missing field {prefix}{name}; every field is required (nas export "
                    "writes them all)"
                )

    def parse_value(self, path: str, value: Any, kind: FieldKind) -> Any:
        """``value`` read as ``kind`` (an integral number as a float for ``"float"``, a
        list as a tuple for ``"ints"``)."""
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if kind == "int" and is_int:
            return value
        if kind == "float" and (is_int or isinstance(value, float)):
            return float(value)
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "ints" and isinstance(value, list | tuple):
            return tuple(self.parse_value(f"{path}[{i}]", v, "int") for i, v in enumerate(value))
        raise self.error(f"{path} must be {_EXPECTED[kind]}, got {value!r}")

    def parse(self, cls: type[_T], path: str, data: Any) -> _T:
        """A ``cls`` from the object ``data`` at ``path`` (its values are not validated)."""
        kinds = self.kinds[cls]
        self.check_fields(path, data, list(kinds))
        values = {
            name: self.parse_value(f"{path}.{name}", data[name], kind)
            for name, kind in kinds.items()
        }
        return cls(**values)

    def parse_list(self, cls: type[_T], path: str, data: Any) -> tuple[_T, ...]:
        """A tuple of ``cls`` from the list ``data`` at ``path`` (items at ``path[i]``)."""
        if not isinstance(data, list | tuple):
            raise self.error(f"{path} must be a list, got {data!r}")
        return tuple(self.parse(cls, f"{path}[{i}]", item) for i, item in enumerate(data))


def dump(part: Any) -> dict[str, Any]:
    """A dataclass instance as a plain dict of its fields, tuples as lists."""
    out: dict[str, Any] = {}
    for f in fields(part):
        value = getattr(part, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


# --- grid moves -------------------------------------------------------------------------


def pick(rng: np.random.Generator, options: Sequence[_T]) -> _T:
    """One of ``options``, uniformly (one ``rng.integers`` draw)."""
    return options[int(rng.integers(len(options)))]


def step(value: _V, grid: Sequence[_V], rng: np.random.Generator) -> _V:
    """A neighbour of ``value`` on the ascending ``grid``: the nearest grid value below or
    above it (a value off the grid moves to the grid value on either side of it)."""
    below = [v for v in grid if v < value]
    above = [v for v in grid if v > value]
    options = ([below[-1]] if below else []) + ([above[0]] if above else [])
    return pick(rng, options) if options else value


def other(value: _T, choices: Sequence[_T], rng: np.random.Generator) -> _T:
    """One of ``choices`` other than ``value``, uniformly (``value`` if there is none)."""
    options = [c for c in choices if c != value]
    return pick(rng, options) if options else value


def align(parent: Sequence[Hashable], child: Sequence[Hashable]) -> list[int | None]:
    """For each item of ``child``, the index of the ``parent`` item it derives from, or None.

    The two lists are aligned as a diff aligns lines (:class:`difflib.SequenceMatcher`):
    equal runs correspond item by item, a replaced run corresponds position by position
    (a mutated stage; the surplus of a longer run is new), an inserted item is new and a
    deleted one has no counterpart. So after a stage is inserted or removed, the stages
    behind it still find their own counterparts.

    >>> align("ABC", "AXBC")
    [0, None, 1, 2]
    >>> align("ABC", "AYC")
    [0, 1, 2]
    """
    matcher = difflib.SequenceMatcher(a=list(parent), b=list(child), autojunk=False)
    sources: list[int | None] = [None] * len(child)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            for k in range(min(i2 - i1, j2 - j1)):
                sources[j1 + k] = i1 + k
    return sources
