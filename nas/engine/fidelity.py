"""The fidelity benchmark (``nas fidelity``): does the search's signal predict the trained model?

A search ranks its candidates by a brief training (the *signal*) and trains only its
winner properly. This module measures how well that ranking predicts what each net
scores once trained (the *truth*), on a fixed panel of architectures:

* the **panel** (``panel.json``): the experiment's seeds (``vgg``), genomes drawn from the
  space and spread evenly over log-parameters within the budget's ``max_params``, and,
  with ``--include RUN``, the front members of real runs;
* the **truth** (``truths.jsonl``): each member trained from scratch with the final
  training's standard recipe (:data:`nas.core.recipes.STANDARD_FINAL`) on the whole training
  split for a fixed number of epochs, scored on the validation split after its last
  epoch; some members with a second seed, to know the truth's own noise. Budgeted in
  epochs, so machine load changes its time, never its value;
* the **signals** (``signals.jsonl``): each member briefly trained as a search candidate
  (:func:`nas.training.evaluate.evaluate`, the very function a search runs) under each signal
  definition of :data:`SIGNALS`, at several fidelities (images), two seeds each, with the
  CPU-seconds it took.

Every finished measurement is appended to its file at once, and an interrupted training
of a truth resumes from its last epoch (:func:`nas.engine.final_training.train_architecture`), so
the same command continues the benchmark where it stopped. ``fidelity.json`` and
``fidelity.png`` (:mod:`nas.analysis.fidelity_report`) are written from whatever has been measured.
The files are small and meant to be committed: later changes of the signal are scored
against the same truths without training them again. Bulky checkpoints go to ``checkpoints/``.

This module is TensorFlow-free; the measurements run in worker processes
(:mod:`nas.engine.fidelity_worker`), one TensorFlow thread each.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.config import Experiment
from nas.core.errors import ConfigError
from nas.core.files import write_atomically
from nas.core.space import SearchSpace, genome_hash, load_space
from nas.core.task import Task

__all__ = [
    "FIDELITIES",
    "SIGNALS",
    "BenchmarkPlan",
    "PanelMember",
    "SignalDefinition",
    "build_panel",
    "load_measurements",
    "load_panel",
    "panel_chance",
    "plan_jobs",
    "run_benchmark",
]

PANEL_FILE = "panel.json"
TRUTHS_FILE = "truths.jsonl"
SIGNALS_FILE = "signals.jsonl"
WORK_DIR = "checkpoints"

FIDELITIES: tuple[int, ...] = (1500, 3000, 6000, 12000, 24000)
"""Images per candidate at which the signals are measured by default."""


@dataclass(frozen=True, kw_only=True)
class SignalDefinition:
    """One way of scoring a candidate briefly: ``[budget]`` keys over the experiment's.

    ``one_run`` signals have a constant learning rate, so one training to the largest
    fidelity, scored on the way, measures every fidelity (the scores are those separate
    trainings would give: the same seeded stream of batches, the same steps).
    """

    name: str
    budget: dict[str, Any]
    description: str
    one_run: bool = False
    proxy_images: int = 0
    """A zero-cost proxy (``budget["proxy"]``) of the untrained net on this many images:
    one measurement per member and seed, no training."""

    @property
    def scheduled(self) -> bool:
        """Trained with a schedule that ends with its budget: one training per fidelity."""
        return not (self.one_run or self.proxy_images)


SIGNALS: dict[str, SignalDefinition] = {
    definition.name: definition
    for definition in (
        SignalDefinition(
            name="genome",
            budget={"recipe": "genome"},
            description="the genome's own training genes at a constant rate (facenas before "
            "issue 20)",
            one_run=True,
        ),
        SignalDefinition(
            name="standard",
            budget={"recipe": "standard"},
            description="one recipe for every architecture: AdamW, warm-up, cosine to the "
            "budget's end, label smoothing 0.1, batch 32",
        ),
        SignalDefinition(
            name="zico",
            budget={"proxy": "zico"},
            description="ZiCo (ICLR 2023), a zero-cost proxy of the untrained net from the "
            "gradients of two batches of 64",
            proxy_images=128,
        ),
    )
}
"""The signal definitions the benchmark knows, by name."""


@dataclass(frozen=True, kw_only=True)
class PanelMember:
    """One architecture of the panel, with where it came from."""

    id: str
    origin: str
    """``seed:NAME``, ``draw`` or ``run:PATH#TRIAL``."""
    genome: dict[str, Any]
    genome_hash: str
    params: int
    flops: int
    description: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``panel.json``."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class BenchmarkPlan:
    """What to measure: the panel size, the truth's length and seeds, the signals."""

    panel_size: int = 24
    truth_epochs: int = 10
    second_seeds: int = 8
    signals: tuple[str, ...] = ("genome", "standard")
    fidelities: tuple[int, ...] = FIDELITIES
    """Of signals measured in one run (a constant rate: every fidelity scored on the way)."""
    scheduled_fidelities: tuple[int, ...] = (3000, 6000)
    """Of signals whose schedule ends with the budget: one training per fidelity."""
    signal_seeds: int = 2
    max_flops: int = 0
    """Draws above this many FLOPs per image are not panel members (0: no limit)."""

    def __post_init__(self) -> None:
        if self.panel_size < 4:
            raise ConfigError(
                f"--panel must be at least 4 (tau needs pairs), got {self.panel_size}"
            )
        if not 1 <= self.truth_epochs <= 1000:
            raise ConfigError(f"--epochs must be in 1..1000, got {self.truth_epochs}")
        if not 0 <= self.second_seeds <= self.panel_size:
            raise ConfigError(
                f"--second-seeds must be in 0..{self.panel_size} (the panel), got {self.second_seeds}"
            )
        unknown = [name for name in self.signals if name not in SIGNALS]
        if unknown:
            raise ConfigError(
                f"--signals: unknown signal {unknown[0]!r} (known: {', '.join(SIGNALS)})"
            )
        for flag, counts in (
            ("--fidelities", self.fidelities),
            ("--scheduled-fidelities", self.scheduled_fidelities),
        ):
            if not counts or min(counts) < 1:
                raise ConfigError(f"{flag} must be positive image counts, got {list(counts)}")
        if not 1 <= self.signal_seeds <= 10:
            raise ConfigError(f"--signal-seeds must be in 1..10, got {self.signal_seeds}")


# -- the panel ----------------------------------------------------------------------------


def build_panel(
    experiment: Experiment,
    task: Task,
    size: int,
    *,
    max_flops: int = 0,
    extra: Sequence[tuple[str, Any]] = (),
    draws: int = 20_000,
) -> list[PanelMember]:
    """The panel: the experiment's seeds, then ``extra`` (origin, genome) pairs (front
    members of real runs), then genomes drawn from the space with the experiment's seed,
    one per log-parameter bin between the smallest draw (at least 5,000 parameters) and
    the budget's ``max_params``, until there are ``size`` members in all.

    Deterministic: the same experiment and size give the same panel. The space must
    provide ``cost`` (parameters and FLOPs without building).
    """
    from baselines import load_seed

    space = load_space(experiment.space)
    if not hasattr(space, "cost"):
        raise ConfigError(
            f"the {space.name!r} space has no cost(): the panel is spread by parameters "
            "known before training"
        )
    members: list[PanelMember] = []
    seen: set[str] = set()

    def add(origin: str, genome: Any) -> bool:
        key = genome_hash(space, genome)
        if key in seen:
            return False
        cost = space.cost(genome, task)
        seen.add(key)
        members.append(
            PanelMember(
                id=f"p{len(members):02d}",
                origin=origin,
                genome=space.to_json(genome),
                genome_hash=key,
                params=int(cost.params),
                flops=int(cost.flops),
                description=space.describe(genome),
            )
        )
        return True

    for name in experiment.search.seeds:
        add(f"seed:{name}", load_seed(name, space).genome)
    for origin, genome in extra:
        add(origin, genome)
    budget = experiment.budget.max_params
    rng = np.random.default_rng([experiment.seed, 20])
    pool: list[tuple[int, Any]] = []
    for _ in range(draws):
        genome = space.sample(rng)
        cost = space.cost(genome, task)
        if 5_000 <= cost.params <= budget and (not max_flops or cost.flops <= max_flops):
            pool.append((cost.params, genome))
    wanted = size - len(members)
    if wanted <= 0:
        return members[:size]
    if not pool:
        raise ConfigError(
            f"no draw of the {space.name!r} space has 5,000..{budget:,} parameters"
            + (f" and at most {max_flops:,} FLOPs" if max_flops else "")
        )
    low = math.log(min(p for p, _ in pool))
    high = math.log(max(p for p, _ in pool))
    bins: list[list[Any]] = [[] for _ in range(wanted)]
    for params, genome in pool:
        where = 0 if high == low else int((math.log(params) - low) / (high - low) * wanted)
        bins[min(wanted - 1, where)].append(genome)
    # one per bin, in draw order; bins left empty are filled from the fullest ones
    for candidates in bins:
        for genome in candidates:
            if add("draw", genome):
                break
    for candidates in sorted(bins, key=len, reverse=True):
        for genome in candidates:
            if len(members) >= size:
                break
            add("draw", genome)
    return members[:size]


def front_members(run_dir: Path, space: SearchSpace) -> list[tuple[str, Any]]:
    """The front of a finished run as (origin, genome) pairs, best first."""
    from nas.storage.front import compute_front
    from nas.storage.store import RunStore

    store = RunStore.open(run_dir)
    front = compute_front(
        store.trials(), store.info.objectives, store.info.reference, store.info.chance
    )
    out = []
    for record in front.members:
        out.append((f"run:{run_dir}#{record.number}", space.from_json(record.genome)))
    return out


def save_panel(
    folder: Path, experiment: Experiment, members: Sequence[PanelMember], chance: float
) -> None:
    """Write ``panel.json``; ``chance`` is the validation split's majority rate."""
    document = {
        "experiment": experiment.name,
        "space": experiment.space,
        "seed": experiment.seed,
        "chance": chance,
        "members": [m.to_json() for m in members],
    }
    write_atomically(folder / PANEL_FILE, (json.dumps(document, indent=1) + "\n").encode())


def panel_chance(folder: Path) -> float | None:
    """The majority rate ``panel.json`` records (None in a panel written before it did)."""
    try:
        value = json.loads((folder / PANEL_FILE).read_text()).get("chance")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def load_panel(folder: Path) -> list[PanelMember]:
    """The members of ``folder/panel.json``; one line naming the member and field when the
    file is not a panel (it may come from someone else)."""
    path = folder / PANEL_FILE
    try:
        document = json.loads(path.read_text())
        rows = document["members"]
        if not isinstance(rows, list):
            raise TypeError("members is not a list")
        return [PanelMember(**row) for row in rows]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no panel here; run nas fidelity to build one") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"{path}: not a facenas panel ({type(exc).__name__}: {exc}); remove it to draw the "
            "panel again"
        ) from None


# -- jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Job:
    """One measurement: a truth (``kind = "truth"``) or a signal at its fidelities."""

    kind: str
    member: PanelMember
    seed: int
    epochs: int = 0
    signal: str = ""
    images: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        """What identifies the job's result in its file."""
        if self.kind == "truth":
            return f"truth:{self.member.genome_hash}:s{self.seed}:e{self.epochs}"
        return f"signal:{self.signal}:{self.member.genome_hash}:s{self.seed}:" + ",".join(
            map(str, self.images)
        )

    @property
    def estimated_cost(self) -> float:
        """FLOPs the job trains, roughly: what orders the queue."""
        images = self.images[-1] if self.kind == "signal" else self.epochs * 20_000
        return float(self.member.flops) * images


def second_seed_members(members: Sequence[PanelMember], count: int) -> list[PanelMember]:
    """``count`` members spread over the panel's parameter range (every k-th by size)."""
    if count <= 0:
        return []
    ordered = sorted(members, key=lambda m: m.params)
    picks = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[i] for i in dict.fromkeys(picks.tolist())]


def plan_jobs(members: Sequence[PanelMember], plan: BenchmarkPlan, run_seed: int) -> list[Job]:
    """Every measurement of the benchmark, cheapest first within each kind: the first
    seed's truths, then the signals, then the second seeds' truths. A member seeded from a
    baseline goes first: the net a search must beat."""
    seeded = [m for m in members if m.origin.startswith("seed:")]
    rest = sorted((m for m in members if not m.origin.startswith("seed:")), key=lambda m: m.flops)
    ordered = seeded + rest
    jobs = [Job(kind="truth", member=m, seed=run_seed, epochs=plan.truth_epochs) for m in ordered]
    for name in plan.signals:
        definition = SIGNALS[name]
        for seed in range(plan.signal_seeds):
            for m in ordered:
                if definition.proxy_images:
                    trainings: list[tuple[int, ...]] = [(definition.proxy_images,)]
                elif definition.one_run:
                    trainings = [tuple(sorted(plan.fidelities))]
                else:
                    trainings = [(n,) for n in sorted(plan.scheduled_fidelities)]
                jobs += [
                    Job(kind="signal", member=m, seed=run_seed + seed, signal=name, images=images)
                    for images in trainings
                ]
    for m in second_seed_members(ordered, plan.second_seeds):
        jobs.append(Job(kind="truth", member=m, seed=run_seed + 1, epochs=plan.truth_epochs))
    return jobs


def load_measurements(folder: Path, name: str) -> list[dict[str, Any]]:
    """The rows of a ``.jsonl`` measurement file; a torn last line (a killed writer) is
    ignored, any other unreadable line is named."""
    path = folder / name
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines):
                break
            raise ConfigError(
                f"{path}, line {number}: not JSON; remove the line to measure it again"
            ) from None
        if not isinstance(row, dict) or "key" not in row:
            raise ConfigError(f"{path}, line {number}: not a measurement (no key)")
        rows.append(row)
    return rows


def _append(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# -- running ------------------------------------------------------------------------------


@dataclass
class Progress:
    """What a benchmark session did."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    left: int = 0
    messages: list[str] = field(default_factory=list)


def run_benchmark(
    experiment: Experiment,
    folder: Path,
    plan: BenchmarkPlan,
    *,
    workers: int = 2,
    only: str = "",
    include: Sequence[Path] = (),
    echo: Callable[[str], None] = print,
    max_jobs: int = 0,
) -> Progress:
    """Build (or reuse) the panel in ``folder`` and run every measurement not yet done,
    ``workers`` at a time, each in a worker process with one TensorFlow thread.

    ``only`` (``"truths"`` or ``"signals"``) runs one kind, so two commands can share the
    machine's cores; ``max_jobs`` stops after that many measurements (0: all).
    """
    from nas.engine.task_data import load_task_data

    folder.mkdir(parents=True, exist_ok=True)
    (folder / WORK_DIR).mkdir(exist_ok=True)
    if (folder / PANEL_FILE).exists():
        members = load_panel(folder)
        if len(members) != plan.panel_size:
            raise ConfigError(
                f"{folder / PANEL_FILE} holds {len(members)} members, not --panel "
                f"{plan.panel_size}; use the same --panel, or another --out"
            )
        if panel_chance(folder) is None:  # a panel from before the key: same members
            chance = load_task_data(experiment).chance.get("accuracy", 0.0)
            save_panel(folder, experiment, members, chance)
    else:
        loaded = load_task_data(experiment)
        task = loaded.eval_data.task
        space = load_space(experiment.space)
        extra = [pair for run in include for pair in front_members(run, space)]
        members = build_panel(
            experiment, task, plan.panel_size, max_flops=plan.max_flops, extra=extra
        )
        save_panel(folder, experiment, members, loaded.chance.get("accuracy", 0.0))
        echo(
            f"Panel of {len(members)} architectures, {min(m.params for m in members):,} to "
            f"{max(m.params for m in members):,} parameters -> {folder / PANEL_FILE}"
        )
    jobs = plan_jobs(members, plan, experiment.seed)
    if only:
        jobs = [j for j in jobs if j.kind + "s" == only]
    done = {
        row["key"]
        for name in (TRUTHS_FILE, SIGNALS_FILE)
        for row in load_measurements(folder, name)
    }
    todo = [j for j in jobs if j.key not in done]
    progress = Progress(skipped=len(jobs) - len(todo))
    if max_jobs:
        todo = todo[:max_jobs]
    echo(f"{len(jobs)} measurements: {progress.skipped} done before, {len(todo)} to run now")
    if not todo:
        return progress
    from nas.engine import fidelity_worker

    # oneDNN's kernels: 1.2-1.9x faster training on this project's AVX2-only 2-core machine,
    # where TensorFlow leaves them off; recorded in every row ("onednn")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    context = multiprocessing.get_context("spawn")
    setup = experiment.to_dict()
    pending = list(todo)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=max(1, min(workers, len(todo))),
        mp_context=context,
        initializer=fidelity_worker.initialise,
        initargs=(setup,),
        max_tasks_per_child=1 if only == "truths" else 8,
    ) as pool:
        running: dict[concurrent.futures.Future, Job] = {}

        def submit() -> None:
            while pending and len(running) < workers:
                job = pending.pop(0)
                work = folder / WORK_DIR / job.key.replace(":", "-")
                running[pool.submit(fidelity_worker.measure, _job_json(job), str(work))] = job

        submit()
        while running:
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                job = running.pop(future)
                try:
                    row = future.result()
                except concurrent.futures.process.BrokenProcessPool as exc:
                    raise ConfigError(
                        f"a measurement process died ({exc}); run the same command again to "
                        "continue (a truth resumes from its last epoch)"
                    ) from None
                row = {"key": job.key, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **row}
                _append(folder / (TRUTHS_FILE if job.kind == "truth" else SIGNALS_FILE), row)
                if row.get("failure"):
                    progress.failed += 1
                else:
                    progress.done += 1
                echo(_describe(job, row))
            submit()
    progress.left = 0
    return progress


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "genome": job.member.genome,
        "genome_hash": job.member.genome_hash,
        "member": job.member.id,
        "seed": job.seed,
        "epochs": job.epochs,
        "signal": job.signal,
        "budget": SIGNALS[job.signal].budget if job.signal else {},
        "images": list(job.images),
        # a scheduled signal is also scored at a quarter and half of its budget: the
        # points a learning-curve extrapolation fits (the report's "curve" signals)
        "curve": _curve_points(job) if job.signal and SIGNALS[job.signal].scheduled else [],
    }


def _curve_points(job: Job) -> list[int]:
    n = job.images[-1]
    return [n // 4, n // 2]


def _describe(job: Job, row: dict[str, Any]) -> str:
    what = f"{job.member.id} ({job.member.params:,} params) seed {job.seed}"
    if row.get("failure"):
        return f"{job.kind} {what}: failed, {row['failure']}: {row.get('detail', '')}"
    if job.kind == "truth":
        return (
            f"truth  {what}: {row['accuracy']:.4f} after {row['epochs']} epochs "
            f"({row['seconds'] / 60:.1f} min)"
        )
    scores = ", ".join(f"{n}: {a:.4f}" for n, a in zip(row["images"], row["accuracy"], strict=True))
    return f"signal {job.signal} {what}: {scores} ({row['cpu_seconds']:.0f} CPU-s)"


def measured_rows(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The truth and signal rows measured so far (failures left out)."""
    truths = [r for r in load_measurements(folder, TRUTHS_FILE) if not r.get("failure")]
    signals = [r for r in load_measurements(folder, SIGNALS_FILE) if not r.get("failure")]
    return truths, signals


def iter_members(folder: Path) -> Iterable[PanelMember]:
    """The panel of ``folder``."""
    return load_panel(folder)
