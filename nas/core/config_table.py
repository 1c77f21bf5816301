"""An experiment from its TOML table: each section's keys checked against its
dataclass's fields and types (a key unknown, a value of the wrong type or not finite is
one :class:`~nas.core.errors.ConfigError` naming the file, the section and the key), then
the dataclasses built, which check their values."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from nas.core.config import Budget, DataConfig, Experiment, FinalConfig, SearchConfig
from nas.core.errors import ConfigError

__all__ = ["parse_experiment", "parse_section"]

_SECTIONS = {
    "data": DataConfig,
    "budget": Budget,
    "search": SearchConfig,
    "final": FinalConfig,
}


def parse_experiment(table: dict[str, Any], *, source: str = "experiment") -> Experiment:
    """Build an :class:`Experiment` from parsed TOML (or :meth:`Experiment.to_dict`): its
    values checked, its plugins (task, space, strategy, seeds) not loaded; for that, see
    :func:`nas.engine.experiment.experiment_from_dict`."""
    sections: dict[str, Any] = {}
    if "tasks" in table:
        if "data" in table:
            raise ConfigError(
                f"{source}: both [data] and [[tasks]]; give [data] for one task or a [[tasks]] "
                "table per task for several, not both"
            )
        entries = table["tasks"]
        if not isinstance(entries, list | tuple) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(
                f"{source}: tasks must be [[tasks]] tables (one per task, each with the keys "
                f"of [data]), got {_type_name(entries)}"
            )
        sections["tasks"] = tuple(
            _build(DataConfig, entry, f"{source}: [[tasks]] #{i}")
            for i, entry in enumerate(entries, start=1)
        )
    for key, cls in _SECTIONS.items():
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(
                f"{source}: [{key}] must be a table, got {_type_name(value)}; write a [{key}] "
                "section with its keys on the lines below it"
            )
        if cls is SearchConfig:  # the keys it does not know are strategies' own
            generic = {f.name for f in dataclasses.fields(SearchConfig)} - {"options"}
            options = {k: v for k, v in value.items() if k not in generic}
            value = {k: v for k, v in value.items() if k in generic} | {"options": options}
        sections[key] = _build(cls, value, f"{source}: [{key}]")
    top = {k: v for k, v in table.items() if k not in _SECTIONS and k != "tasks"}
    if "name" not in top:
        top.setdefault("name", Path(source).stem if source.endswith(".toml") else "")
    return _build(Experiment, top | sections, source, nested={*_SECTIONS, "tasks"})


def parse_section(cls: type, table: dict[str, Any], where: str) -> Any:
    """``cls`` (a keyword-only dataclass) built from a TOML table: a key it has no field
    for, a value of the wrong type or not finite, or a ``ValueError`` of its constructor
    is one :class:`ConfigError` that starts with ``where`` (e.g. ``exp.toml: [search]``)."""
    return _build(cls, table, where)


def _build(cls: type, table: dict[str, Any], where: str, nested: set[str] = frozenset()) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(names)})")
    values = {}
    for key, value in table.items():
        values[key] = value if key in nested else _coerce(value, hints[key], f"{where}: {key}")
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if hint is Any:  # checked by whoever reads it (a strategy's own keys)
        return value
    origin = typing.get_origin(hint)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {_type_name(value)}")
        return {
            _coerce(k, key_hint, where): _coerce(v, value_hint, f"{where}.{k}")
            for k, v in value.items()
        }
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {_type_name(value)}")
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} has the wrong type {_type_name(value)}")
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"{where} must be empty")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number, got {value}")
    if (hint is int and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{where} must be {hint.__name__}, got {_type_name(value)} {value!r}")
    return value


def _type_name(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
