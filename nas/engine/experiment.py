"""An experiment loaded: its file read, its values checked (:mod:`nas.core.config`), and its
plugins (the task, the search space, the strategy, the seed genomes) loaded and checked
against each other and the objectives.

The dataclasses of :mod:`nas.core.config` hold and check values only; every check that needs
a plugin lives here, so the experiment stays plain data below the strategies, the tasks
and the spaces. Raises :class:`nas.core.errors.ConfigError` with one line.
"""

from __future__ import annotations

import dataclasses
import pkgutil
import tomllib
from pathlib import Path
from typing import Any

from nas.core.config import Experiment, SearchConfig, _require
from nas.core.config_table import parse_experiment
from nas.core.errors import ConfigError, NasError
from nas.core.objectives import COST_METRICS, DEPLOYED_METRICS, INT8_METRICS
from nas.core.space import SearchSpace, load_space
from nas.kinds import output_kind
from nas.strategies import (
    STRATEGIES,
    StrategyEntry,
    setting_names,
    strategy_entry,
    strategy_options,
)
from nas.tasks import BUILTIN_TASKS, FaceTask, load_task

__all__ = ["changed", "default_task", "experiment_from_dict", "load_experiment", "with_plugins"]


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; raise :class:`ConfigError` with one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such experiment file; pass the path of a .toml file (see experiments/)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path}: a folder, not an experiment file; pass the path of a .toml file "
            "(see experiments/)"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the experiment file ({exc.strerror or exc}); check its "
            "permissions"
        ) from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}; fix the syntax (see experiments/ for examples)"
        ) from None
    experiment = experiment_from_dict(table, source=str(path))
    _check_seeds(experiment, str(path))
    return experiment


def _check_seeds(experiment: Experiment, source: str) -> None:
    """Load every ``[search] seeds`` entry once, so a bad seed names the experiment file."""
    if not experiment.search.seeds:
        return
    from baselines import load_seed

    space = load_space(experiment.space)
    for spec in experiment.search.seeds:
        try:
            load_seed(spec, space)
        except NasError as exc:
            raise ConfigError(f"{source}: [search] {exc}") from None


def seed_genomes(experiment: Experiment, space: SearchSpace) -> list[tuple[str, Any]]:
    """Each ``[search] seeds`` entry with its genome in ``space``, in the file's order."""
    from baselines import load_seed

    return [(spec, load_seed(spec, space).genome) for spec in experiment.search.seeds]


def changed(experiment: Experiment, **changes: Any) -> Experiment:
    """A copy of a loaded experiment with top-level fields replaced, its values and its
    plugins checked again (:func:`with_plugins`); raises :class:`ConfigError`."""
    return with_plugins(experiment.replace(**changes))


def experiment_from_dict(table: dict[str, Any], *, source: str = "experiment") -> Experiment:
    """Build an :class:`Experiment` from parsed TOML (or :meth:`Experiment.to_dict`), its
    plugins loaded and checked (:func:`with_plugins`)."""
    return with_plugins(parse_experiment(table, source=source), source)


def with_plugins(experiment: Experiment, where: str = "") -> Experiment:
    """Load the experiment's task and search space (built-in or importable modules) and
    check that they fit each other and the objectives, and the strategies' own keys of
    ``[search]`` (each strategy checks its own);
    an empty ``[data] path`` becomes the task's built-in data. Plugins are loaded here,
    when an experiment is loaded, never in the config dataclasses' constructors.

    Raises :class:`ConfigError` with one line, prefixed with ``where`` when given."""

    prefix = f"{where}: " if where else ""
    search = experiment.search
    if "." not in search.strategy and search.strategy not in STRATEGIES:
        raise ConfigError(
            f"{prefix}[search]: strategy must be one of {', '.join(map(repr, STRATEGIES))}, "
            f"or an importable module's name that defines STRATEGY; got {search.strategy!r}"
        )
    try:
        strategy_entry(search.strategy)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}[search]: {exc}") from None
    options = _strategy_keys(experiment, prefix)
    section = "[[tasks]]" if experiment.multitask else "[data]"
    tasks = []
    for config in experiment.task_configs:
        try:
            tasks.append(load_task(config.task))
        except ConfigError as exc:
            raise ConfigError(f"{prefix}{section} {exc}") from None
    try:
        if experiment.multitask:
            _check_multitask(experiment, tasks)
        else:
            (task,) = tasks
            _require(
                experiment.budget.task_schedule == "alternating",
                "[budget] task_schedule applies to experiments with several [[tasks]]; remove it",
            )
            allowed = _metrics(task)
            for name in experiment.objectives:
                _require(
                    name in allowed,
                    f"objective {name!r} does not apply to the {task.name} task "
                    f"(use {', '.join(sorted(allowed))})",
                )
        for task in tasks:
            _check_space(experiment.space, task, multitask=experiment.multitask)
        _check_strategy(experiment.search.strategy, experiment.space)
        for entry, settings in options.values():
            if entry.check is not None:
                entry.check(settings, experiment)
    except ValueError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    filled = tuple(
        config if config.path else dataclasses.replace(config, path=task.builtin_data)
        for config, task in zip(experiment.task_configs, tasks, strict=True)
    )
    # the strategies' keys as they read them: coerced, and the chosen strategy's defaults
    # written out, so run.json records every setting the run used
    written = dict(search.options)
    for name, (entry, settings) in options.items():
        if settings is not None:
            chosen = name == search.strategy
            written |= {
                key: getattr(settings, key)
                for key in setting_names(entry)
                if chosen or key in search.options
            }
    experiment = dataclasses.replace(
        experiment, search=dataclasses.replace(search, options=written)
    )
    if experiment.multitask:
        return dataclasses.replace(experiment, tasks=filled)
    return dataclasses.replace(experiment, data=filled[0])


def _strategy_keys(experiment: Experiment, prefix: str) -> dict[str, tuple[StrategyEntry, Any]]:
    """Each strategy whose own ``[search]`` keys the experiment sets, and the chosen one,
    with its settings built from them (:func:`nas.strategies.strategy_options`). A key no
    strategy declares is an error; the keys of a built-in strategy other than the chosen
    one are checked too, and ignored by the search, so that one experiment can run under
    every strategy (``nas compare``)."""
    search = experiment.search
    owners = {search.strategy: strategy_entry(search.strategy)} | STRATEGIES
    unknown = set(search.options).difference(*(setting_names(e) for e in owners.values()))
    if unknown:
        generic = [f.name for f in dataclasses.fields(SearchConfig) if f.name != "options"]
        own = ", ".join(setting_names(owners[search.strategy])) or "none"
        raise ConfigError(
            f"{prefix}[search]: unknown key {sorted(unknown)[0]!r} (known: {', '.join(generic)}; "
            f"strategy {search.strategy!r}'s own: {own})"
        )
    found = {}
    for name, entry in owners.items():
        if name == search.strategy or set(setting_names(entry)) & set(search.options):
            settings = strategy_options(name, search.options, f"{prefix}[search]")
            found[name] = (entry, settings)
    return found


_NOT_FOR_MULTITASK = {
    "[search] inherit_weights": lambda e: e.search.inherit_weights,
    "[final] epochs, minutes or total_minutes": lambda e: e.final.enabled,
    '[budget] recipe = "standard"': lambda e: e.budget.recipe != "genome",
}


def _metrics(task: FaceTask) -> frozenset[str]:
    """The objectives that apply to ``task``: its output kind's metrics, their int8 LiteRT
    twins, and the costs."""
    own = output_kind(task.output_kind).metrics
    return own | {twin for twin, base in INT8_METRICS.items() if base in own} | COST_METRICS


def _check_multitask(experiment: Experiment, tasks: list[FaceTask]) -> None:
    """Raise ``ValueError`` unless each objective is a cost or the metric of exactly one
    task, every task has an objective, and the space and settings allow several tasks."""
    kinds = [task.output_kind for task in tasks]
    for kind in set(kinds):
        same = [task.name for task in tasks if task.output_kind == kind]
        _require(
            len(same) == 1,
            f"[[tasks]] {' and '.join(same)} both output {kind}, so their metrics would share "
            "names; a multi-task experiment takes tasks of different output kinds",
        )
    deployed = sorted(DEPLOYED_METRICS & set(experiment.objectives))
    _require(
        not deployed,
        f"objectives {', '.join(deployed)}: the int8 LiteRT metrics are measured for "
        "single-task experiments only; remove them, or search each task on its own",
    )
    costs = COST_METRICS
    for name in experiment.objectives:
        _require(
            name in costs or any(name in _metrics(task) for task in tasks),
            f"objective {name!r} applies to none of the tasks "
            f"{', '.join(task.name for task in tasks)}",
        )
    for task in tasks:
        own = _metrics(task) - costs
        _require(
            any(name in own for name in experiment.objectives),
            f"task {task.name} has no objective; add one of {', '.join(sorted(own))} to objectives",
        )

    if not callable(getattr(load_space(experiment.space), "build_multitask", None)):
        raise ValueError(
            f"space {experiment.space!r} builds no multi-task models (build_multitask); "
            "use space = 'cnn'"
        )
    for setting, used in _NOT_FOR_MULTITASK.items():
        _require(not used(experiment), f"{setting} is not available for multi-task experiments yet")


def _builtin_spaces() -> list[str]:
    """The names of the search spaces shipped in ``search_spaces/`` (``cnn``, ...)."""
    import search_spaces

    return sorted(
        module.name
        for module in pkgutil.iter_modules(search_spaces.__path__)
        if not module.name.startswith("_")
    )


def _check_space(name: Any, task: FaceTask, *, multitask: bool = False) -> None:
    """Raise ``ValueError`` unless ``name`` loads a search space that can learn ``task``.

    A space may declare the forms of task output it builds models for as ``head_forms``
    (e.g. ``("points",)``: :class:`nas.core.task.OutputHead`), and those its multi-task
    models can have a head for as ``multitask_head_forms``; a space without them is
    assumed to build any.
    """

    builtin = _builtin_spaces()
    choices = (
        f"use one of {', '.join(map(repr, builtin))} or an importable module that defines SPACE"
    )
    if not isinstance(name, str) or not name:
        raise ValueError(f"space must be a search space name, got {name!r}; {choices}")
    if "." not in name and name not in builtin:
        raise ValueError(f"unknown space {name!r}; {choices}")
    try:
        space = load_space(name)
    except ConfigError as exc:
        raise ValueError(f"space {name!r} cannot be loaded: {exc}") from None
    forms = getattr(space, "head_forms", None)
    if multitask:
        forms = getattr(space, "multitask_head_forms", forms)
    form = output_kind(task.output_kind).head_form
    if forms is not None and form not in forms:
        tasks = [t for t in BUILTIN_TASKS if _head_form(t) in forms]
        fitting = [
            other
            for other in builtin
            if form in (getattr(load_space(other), "head_forms", None) or (form,))
        ]
        raise ValueError(
            f"space {name!r} builds models for the {' and '.join(tasks)} task only, not "
            f"{task.name}; set [data] task = {tasks[0]!r}, or use space = "
            f"{' or '.join(map(repr, fitting))} for {task.name}"
        )


def _head_form(task_name: str) -> str:
    return output_kind(load_task(task_name).output_kind).head_form


def default_task(space_name: str) -> str:
    """The first built-in task (``emotion``, then ``keypoints``) whose output the space
    ``space_name`` builds: what ``nas baseline`` trains a genome for without ``--task``."""
    forms = getattr(load_space(space_name), "head_forms", None)
    fitting = [t for t in BUILTIN_TASKS if forms is None or _head_form(t) in forms]
    return (fitting or list(BUILTIN_TASKS))[0]


def _check_strategy(name: str, space_name: str) -> None:
    """Raise ``ValueError`` when the strategy needs something the space does not provide."""

    space = load_space(space_name)
    needs = strategy_entry(name).space_needs
    missing = [need for need in needs if not callable(getattr(space, need, None))]
    if missing:
        raise ValueError(
            f"strategy {name!r} needs the space to provide {missing[0]}(), which space "
            f"{space_name!r} does not; use strategy 'nsga2' or 'random'"
        )
