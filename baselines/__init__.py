"""Hand-designed architectures written as genomes of the search spaces.

A baseline is seeded into a search (``[search] seeds = ["resnet50"]``), trained alone
with ``nas baseline NAME``, mutated and exported like any other genome. A seed may also
be a genome JSON file, as written by ``nas export`` (``{"space": ..., "genome": ...}``).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError, GenomeError
from nas.core.space import SearchSpace

__all__ = [
    "BASELINES",
    "BUILT_IN_SPACES",
    "PRETRAINED",
    "Seed",
    "load_pretrained",
    "load_seed",
    "seed_space",
]

BASELINES: dict[str, tuple[str, str]] = {
    "resnet50": ("cnn", "baselines.resnet50:RESNET50"),
    "resunet": ("resunet", "baselines.resunet:RESUNET"),
    "vgg": ("cnn", "baselines.vgg:VGG"),
}
"""Baseline name -> (search space, ``module:attribute`` of its genome)."""

PRETRAINED: dict[str, str] = {"resnet50": "baselines.resnet50:load_imagenet_weights"}
"""Baseline name -> ``module:function(model, path)`` that loads local pre-trained weights."""


@dataclass(frozen=True)
class Seed:
    """A genome to place in generation 0, with the label tables and plots show."""

    label: str
    genome: Any


def load_seed(spec: str, space: SearchSpace) -> Seed:
    """A baseline by name, or a genome JSON file, as a genome of ``space``.

    Raises :class:`ConfigError` when the name is unknown, the file unreadable, or the
    genome belongs to another space; :class:`GenomeError` when the genome is invalid.
    """
    if spec in BASELINES:
        space_name, target = BASELINES[spec]
        if space_name != space.name:
            raise ConfigError(
                f"seed {spec!r} is a genome of the {space_name!r} space, but the experiment searches "
                f"the {space.name!r} space; seed it into a {space_name!r} experiment"
            )
        module, attribute = target.split(":")
        genome = getattr(importlib.import_module(module), attribute)
        space.validate(genome)
        return Seed(spec, genome)
    data = _read_genome_file(spec)
    if isinstance(data, dict) and "genome" in data:
        owner = data.get("space", space.name)
        if not isinstance(owner, str):
            raise ConfigError(
                f'seed {spec}: "space" must be the name of a search space, got {owner!r}; '
                f'write "space": {space.name!r}'
            )
        if owner != space.name:
            raise ConfigError(
                f"seed {spec}: a genome of the {owner!r} space, not {space.name!r}; seed it "
                f"into a {owner!r} experiment"
            )
        data = data["genome"]
    try:
        genome = space.from_json(data)
    except GenomeError as exc:
        raise GenomeError(f"seed {spec}: {exc}") from None
    return Seed(Path(spec).stem, genome)


BUILT_IN_SPACES: tuple[str, ...] = ("cnn", "resunet")
"""The spaces a genome file may name by itself."""


def seed_space(spec: str, *, plugin: str | None = None) -> str:
    """The search space of the baseline ``spec`` or of the genome JSON file it names.

    A file may only name a built-in space (:data:`BUILT_IN_SPACES`), or ``plugin``, the
    module the user named on the command line: a genome from anyone never chooses which
    code is imported."""
    if spec in BASELINES:
        return BASELINES[spec][0]
    data = _read_genome_file(spec)
    owner = data.get("space") if isinstance(data, dict) else None
    if not isinstance(owner, str):
        raise ConfigError(
            f'seed {spec}: no "space" names the genome\'s search space; export it again with '
            'nas export, or add "space": "cnn" (or "resunet")'
        )
    if owner not in BUILT_IN_SPACES and owner != plugin:
        shown = owner if len(owner) <= 60 else owner[:57] + "..."
        raise ConfigError(
            f'seed {spec}: "space" names {shown!r}, not a built-in space '
            f"({', '.join(BUILT_IN_SPACES)}); a genome file never chooses code to import: if "
            f"you trust that module, pass --space {shown}"
        )
    return owner


def _read_genome_file(spec: str) -> Any:
    """The parsed JSON of the genome file ``spec``, or one :class:`ConfigError` line."""
    path = Path(spec)
    if path.suffix != ".json":
        raise ConfigError(
            f"seed {spec!r}: not a baseline ({', '.join(BASELINES)}) nor a genome .json file; "
            "name a baseline or the path of a genome JSON (as nas export writes it)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"seed {spec}: no such genome file; give its path relative to the working "
            "directory, or export one with nas export"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"seed {spec}: a folder, not a genome file; pass the .json file"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"seed {spec}: not UTF-8 text (byte {exc.start}: {exc.reason}); pass a genome "
            "JSON as nas export writes it"
        ) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"seed {spec}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix the file or export the genome again with nas export"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"seed {spec}: cannot read the genome file ({exc.strerror or exc}); check its "
            "permissions"
        ) from None
    return data


def load_pretrained(name: str, model: Any, path: str) -> int:
    """Load the local pre-trained weights file ``path`` into ``name``'s decoded ``model``."""
    module, function = PRETRAINED[name].split(":")
    return getattr(importlib.import_module(module), function)(model, path)
