"""Strategies against each other on one experiment: ``nas compare``.

Each (contender, seed) pair is its own run under the comparison's folder, with the same
data, the same candidate budget and the same search budget (wall-clock minutes on the
search's own clock, or a number of evaluations), so the runs are resumable like any
search and a comparison that was stopped continues where it stopped. A contender is a
strategy, optionally with ``[search]`` settings of its own (:func:`parse_contender`:
``nsga2+inherit_weights=true+prescreen=4``), so NSGA-II's features can be measured one
by one against the same experiment. The summary reads
only the runs' stores: the hypervolume against the experiment's fixed reference point,
the best score, the best score under a parameter cap, the evaluations done and the share
of candidates that failed or learnt nothing (no better than the majority class).
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.core.config import Experiment, SearchConfig
from nas.core.errors import ConfigError
from nas.core.objectives import METRICS, at_chance, hypervolume
from nas.core.trial import EvalData
from nas.engine.evolve import SearchListener
from nas.engine.experiment import changed
from nas.engine.parallel import Evaluator
from nas.engine.search import SearchSummary, run_search
from nas.storage.front import compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RUN_FILE, RunStore
from nas.strategies import setting_names, strategy_entry

__all__ = [
    "Contender",
    "RunSummary",
    "StrategySummary",
    "parse_contender",
    "plot_hypervolume_over_time",
    "run_comparison",
    "summarize_comparison",
]


GENERIC_CONTENDER_KEYS = ("inherit_weights",)
"""The ``[search]`` settings any contender may set after its strategy's name; its
strategy's own keys (:func:`nas.strategies.setting_names`) as well."""


def contender_keys(strategy: str) -> tuple[str, ...]:
    """What ``STRATEGY+KEY=VALUE`` may set for ``strategy``: the generic keys and its own
    (NSGA-II's ``prescreen``, ``low_fidelity_images``, ...)."""
    return GENERIC_CONTENDER_KEYS + setting_names(strategy_entry(strategy))


@dataclass(frozen=True)
class Contender:
    """One column of a comparison: a strategy and the ``[search]`` settings it changes."""

    label: str
    """As written on the command line; names the contender's runs (``LABEL-seedK``)."""
    strategy: str
    settings: dict[str, bool | int | float | str]

    def search(self, experiment: Experiment) -> Experiment:
        """``experiment`` with this contender's strategy and settings (checked by the config)."""
        generic = {k: v for k, v in self.settings.items() if k in GENERIC_CONTENDER_KEYS}
        own = {k: v for k, v in self.settings.items() if k not in GENERIC_CONTENDER_KEYS}
        try:
            search = dataclasses.replace(
                experiment.search,
                strategy=self.strategy,
                options=experiment.search.options | own,
                **generic,
            )
            return changed(experiment, search=search)
        except (ConfigError, ValueError) as error:
            raise ConfigError(f"--strategies {self.label}: {error}") from None


def parse_contender(text: str) -> Contender:
    """Read ``STRATEGY[+KEY=VALUE...]``: a strategy and the ``[search]`` settings it changes.

    ``KEY`` is one of :func:`contender_keys`; a bare ``+inherit_weights`` means ``=true``.
    Settings not named stay as the experiment has them, so ``nsga2`` alone is NSGA-II as
    the experiment configures it and ``nsga2+prescreen=1`` the same without pre-screening.
    """
    name, *parts = text.strip().split("+")
    try:
        entry = strategy_entry(name)
    except ConfigError as exc:
        raise ConfigError(f"--strategies: {exc}") from None
    known = contender_keys(name)
    types = typing.get_type_hints(SearchConfig)
    if entry.settings is not None:
        types |= typing.get_type_hints(entry.settings)
    settings: dict[str, bool | int | float | str] = {}
    for part in parts:
        key, _, value = part.partition("=")
        if key not in known:
            raise ConfigError(
                f"--strategies {text}: unknown setting {key!r} after {name!r} "
                f"(known: {', '.join(known)}; e.g. nsga2+prescreen=4)"
            )
        settings[key] = _setting_value(text, key, value or "true", types[key])
    return Contender(label=text.strip(), strategy=name, settings=settings)


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number"}


def _setting_value(text: str, key: str, value: str, kind: type) -> bool | int | float | str:
    try:
        if kind is bool:
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        return kind(value)
    except ValueError:
        raise ConfigError(
            f"--strategies {text}: {key}={value} is not {_KIND_NAMES[kind]}"
        ) from None


@dataclass(frozen=True)
class RunSummary:
    """One run of a comparison, as read from its store."""

    strategy: str
    seed: int
    run_dir: Path
    evaluations: int
    failed: int
    chance_level: int
    hypervolume: float
    best: float | None
    best_under_cap: float | None
    search_minutes: float
    curve: list[tuple[float, float]]
    """(search minutes, hypervolume so far) after each completed evaluation."""


@dataclass(frozen=True)
class StrategySummary:
    """The runs of one strategy over the seeds."""

    strategy: str
    runs: list[RunSummary]

    def median(self, field: str) -> float | None:
        values = [getattr(r, field) for r in self.runs if getattr(r, field) is not None]
        return float(statistics.median(values)) if values else None

    def spread(self, field: str) -> tuple[float, float] | None:
        values = [getattr(r, field) for r in self.runs if getattr(r, field) is not None]
        return (float(min(values)), float(max(values))) if values else None

    @property
    def weak_share(self) -> float:
        """Failed or chance-level candidates over all evaluations."""
        total = sum(r.evaluations for r in self.runs)
        weak = sum(r.failed + r.chance_level for r in self.runs)
        return weak / total if total else 0.0


def run_comparison(
    experiment: Experiment,
    *,
    strategies: Sequence[str | Contender],
    seeds: int,
    out_dir: Path,
    minutes: float | None = None,
    evaluations: int | None = None,
    data_path: str | None = None,
    workers: int | None = None,
    listener: Callable[[str, int], SearchListener | None] | None = None,
    announce: Callable[[str, int, Path], None] | None = None,
    make_evaluator: Callable[[EvalData], Evaluator] | None = None,
) -> list[SearchSummary]:
    """Run (or continue) every strategy on ``seeds`` seeds, one run each under ``out_dir``.

    A strategy is a name or a :class:`Contender` (a name with ``[search]`` settings,
    :func:`parse_contender`); each run goes to ``out_dir / "LABEL-seedK"``. ``minutes`` gives every run the same wall time on the search's clock, ``evaluations``
    the same number of evaluations; without either, the experiment's own budget holds.
    The seeds are the experiment's seed, its seed + 1, ... Runs already finished are only
    read; stopped ones are resumed. ``make_evaluator`` replaces Ray (tests).
    """
    contenders = [c if isinstance(c, Contender) else parse_contender(c) for c in strategies]
    for contender in contenders:
        contender.search(experiment)  # every setting checked before the first run
    summaries = []
    for k in range(seeds):  # seed by seed, so a change of machine load hits every strategy
        for contender in contenders:
            name = contender.label
            run_experiment = comparison_experiment(
                contender.search(experiment),
                contender.strategy,
                experiment.seed + k,
                minutes=minutes,
                evaluations=evaluations,
                label=name,
            )
            run_dir = out_dir / f"{name}-seed{run_experiment.seed}"
            if announce:
                announce(name, run_experiment.seed, run_dir)
            summaries.append(
                run_search(
                    run_experiment,
                    out_dir=run_dir,
                    data_path=data_path,
                    workers=workers,
                    listener=listener(name, run_experiment.seed) if listener else None,
                    make_evaluator=make_evaluator,
                )
            )
    return summaries


def comparison_experiment(
    experiment: Experiment,
    strategy: str,
    seed: int,
    *,
    minutes: float | None,
    evaluations: int | None,
    label: str | None = None,
) -> Experiment:
    """The experiment of one run of a comparison: its strategy, seed and search budget.

    With a budget in minutes or evaluations, generations are no limit: the budget is.
    """
    search = dataclasses.replace(experiment.search, strategy=strategy)
    if minutes:
        search = dataclasses.replace(search, max_minutes=float(minutes), generations=10_000)
    if evaluations:
        search = dataclasses.replace(search, max_evaluations=evaluations, generations=10_000)
    return changed(
        experiment,
        name=re.sub(r"[^A-Za-z0-9_.-]", "_", f"{experiment.name}-{label or strategy}-seed{seed}")[
            :64
        ],
        seed=seed,
        search=search,
    )


def summarize_comparison(out_dir: Path, *, param_cap: float) -> list[StrategySummary]:
    """Read every run under ``out_dir`` and group them by strategy (in the order first seen)."""
    runs = []
    for run_file in sorted(out_dir.glob(f"*/{RUN_FILE}")):
        runs.append(_summarize_run(run_file.parent, param_cap))
    if not runs:
        raise ConfigError(f"{out_dir}: no runs of a comparison here; run nas compare first")
    groups: dict[str, list[RunSummary]] = {}
    for run in runs:
        groups.setdefault(run.strategy, []).append(run)
    return [
        StrategySummary(name, sorted(group, key=lambda r: r.seed)) for name, group in groups.items()
    ]


def _summarize_run(run_dir: Path, param_cap: float) -> RunSummary:
    from nas.storage.checkpoint import load_checkpoint

    store = RunStore.open(run_dir)
    info = store.info
    trials = store.trials()
    objectives = info.objectives
    front = compute_front(trials, objectives, info.reference, info.chance)
    first = METRICS[objectives[0]]
    better = max if first.direction == "maximize" else min
    full = [t for t in trials if not t.low_fidelity]  # multi-fidelity: rung 0 never competes
    scores = [t.metrics[first.name] for t in full if t.ok and first.name in t.metrics]
    capped = [
        t.metrics[first.name]
        for t in full
        if t.ok and first.name in t.metrics and t.metrics.get("params", 0) <= param_cap
    ]
    chance_level = sum(
        1
        for t in trials
        if t.ok
        and first.name in t.metrics
        and at_chance(first.name, t.metrics[first.name], info.chance)
    )
    checkpoint = load_checkpoint(run_dir)
    search = info.experiment.get("search", {})
    label, _, seed_text = run_dir.name.rpartition("-seed")
    return RunSummary(
        # the folder names the contender (nsga2+prescreen=4-seed0); older runs: the strategy
        strategy=label if label and seed_text.isdigit() else search.get("strategy", "nsga2"),
        seed=int(info.experiment.get("seed", 0)),
        run_dir=run_dir,
        evaluations=len(trials),
        failed=sum(not t.ok for t in trials),
        chance_level=chance_level,
        hypervolume=front.hypervolume,
        best=better(scores) if scores else None,
        best_under_cap=better(capped) if capped else None,
        search_minutes=(checkpoint.seconds if checkpoint else 0.0) / 60.0,
        curve=_hypervolume_curve(trials, objectives, info.reference),
    )


def _hypervolume_curve(
    trials: Sequence[TrialRecord], objectives: Sequence[str], reference: dict[str, float]
) -> list[tuple[float, float]]:
    done = sorted(
        (t for t in trials if t.ok and t.values is not None and not t.low_fidelity),
        key=lambda t: t.search_seconds,
    )
    curve = []
    for i, trial in enumerate(done, start=1):
        points = np.array([t.values for t in done[:i]], dtype=float)
        curve.append((trial.search_seconds / 60.0, hypervolume(points, objectives, reference)))
    return curve


def plot_hypervolume_over_time(
    groups: Sequence[StrategySummary], path: Path, *, title: str
) -> Path:
    """Hypervolume against search minutes: each strategy's median over seeds, with its range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max((r.search_minutes for g in groups for r in g.runs), default=1.0) or 1.0
    grid = np.linspace(0.0, end, 200)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for group in groups:
        curves = np.array([_step(run.curve, grid) for run in group.runs])
        median = np.median(curves, axis=0)
        (line,) = ax.plot(grid, median, lw=1.8, label=f"{group.strategy} (median of {len(curves)})")
        ax.fill_between(
            grid, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.15
        )
    ax.set_xlabel("search minutes (the search's own clock)")
    ax.set_ylabel("hypervolume (fixed reference point)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return path


def _step(curve: list[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """The hypervolume reached by each time of ``grid`` (a step function of the curve)."""
    if not curve:
        return np.zeros_like(grid)
    times = np.array([t for t, _ in curve])
    values = np.maximum.accumulate(np.array([v for _, v in curve]))
    index = np.searchsorted(times, grid, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], 0.0)


def comparison_table(
    groups: Sequence[StrategySummary], *, metric: str, param_cap: float
) -> list[dict[str, str]]:
    """The comparison as rows of text cells (the CLI prints them; the Markdown file too)."""
    rows = []
    for group in groups:
        rows.append(
            {
                "strategy": group.strategy,
                "runs": str(len(group.runs)),
                "evaluations": _median_text(group, "evaluations", "{:.0f}"),
                "hypervolume": _median_text(group, "hypervolume", "{:.4f}"),
                f"best {metric}": _median_text(group, "best", "{:.4f}"),
                f"best {metric}, params <= {param_cap:,.0f}": _median_text(
                    group, "best_under_cap", "{:.4f}"
                ),
                "failed or chance-level": f"{group.weak_share:.0%}",
                "minutes": _median_text(group, "search_minutes", "{:.1f}"),
            }
        )
    return rows


def _median_text(group: StrategySummary, field: str, fmt: str) -> str:
    median, spread = group.median(field), group.spread(field)
    if median is None or spread is None:
        return "-"
    if len(group.runs) == 1 or spread[0] == spread[1]:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(spread[0])}–{fmt.format(spread[1])})"


def write_markdown(rows: list[dict[str, str]], path: Path, *, header: str) -> Path:
    """The table as Markdown, with the comparison's settings above it."""
    columns = list(rows[0])
    lines = [
        header,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(row[c] for c in columns) + " |" for row in rows),
        "",
        "Cells: median over seeds (min–max).",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def write_json(groups: Sequence[StrategySummary], path: Path) -> Path:
    """Every run's figures, for scripts."""
    data = [
        dataclasses.asdict(run) | {"run_dir": str(run.run_dir)}
        for group in groups
        for run in group.runs
    ]
    path.write_text(json.dumps(data, indent=1))
    return path
