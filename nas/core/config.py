"""Experiments: one TOML file plus a seed, loaded into frozen, validated dataclasses.

Every section is a keyword-only dataclass whose constructor rejects bad values with a
sentence that says what to do. :func:`load_experiment` adds the file and the section to
that sentence and raises :class:`nas.core.errors.ConfigError`, which the CLI prints as one line
(the TOML table is read into these dataclasses by :mod:`nas.core.config_table`).

Example (``experiments/quickstart.toml``)::

    name = "quickstart"
    seed = 0
    space = "cnn"
    objectives = ["accuracy", "params"]

    [data]
    path = "builtin:faces"

    [budget]
    epochs = 1

    [search]
    population = 8
    generations = 3
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from nas.core.errors import ConfigError
from nas.core.objectives import METRICS
from nas.core.recipes import BRIEF_RECIPES, FINAL_RECIPES

__all__ = [
    "CHOOSE_BY",
    "PRECISIONS",
    "TASK_SCHEDULES",
    "Budget",
    "DataConfig",
    "Experiment",
    "FinalConfig",
    "SearchConfig",
]

PRECISIONS: tuple[str, ...] = ("float32", "bf16", "auto")
"""Training precisions: full float32, mixed bfloat16 (Keras' ``mixed_bfloat16``), or
``auto``: bf16 where the CPU computes it natively (AVX512_BF16 or AMX), else float32
(:func:`nas.training.core.resolved_precision`)."""
TASK_SCHEDULES: tuple[str, ...] = ("alternating", "sequential", "joint")
"""How a multi-task candidate trains on its tasks' images (see :class:`Budget`)."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the images come from and what is learnt from them.

    ``task`` names a task of :mod:`nas.tasks`: ``"emotion"`` (classification of
    FER2013-layout files or of image folders), ``"keypoints"`` (Kaggle Facial Keypoints
    layout), or an importable module defining ``TASK``. ``path`` is relative to the
    working directory; empty means the task's built-in synthetic faces (``builtin:faces``
    / ``builtin:keypoint-faces``), filled in when the experiment is loaded. For an image
    folder or a ``.zip`` of one (:mod:`nas.data.image_folders`), ``image_size`` is the
    side the images are resized to (0: the task's, 48), ``channels`` 1 (grey) or 3 (RGB),
    ``validation_split`` the split folder that validates (empty: ``val``, ``validation``
    or ``test``, the first there), and ``skip_unreadable`` counts and skips files that are
    not readable images instead of refusing the folder.
    ``classes``: 0 (the default) keeps FER2013's five classes of a CSV and every class
    folder of an image folder; 5 or 7 keeps FER's five or seven (of a CSV, or of folders
    named as FER's); a list names the class folders to keep, in the order of their labels.
    ``deduplicate`` keeps validation honest: emotion training rows byte-identical to a
    validation or test face are left out, and near-identical keypoint frames stay on one
    side of the split (see :mod:`nas.data.duplicates`). Runs stored before it existed did
    neither, and keep doing so (:func:`stored_experiment`).
    """

    task: str = "emotion"
    path: str = ""
    classes: int | tuple[str, ...] = 0
    validation_fraction: float = 0.1
    deduplicate: bool = True
    image_size: int = 0
    channels: int = 1
    validation_split: str = ""
    skip_unreadable: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.task), "task must name a task, e.g. 'emotion' or 'keypoints'")
        if isinstance(self.classes, tuple):
            _require(
                len(self.classes) >= 2 and all(isinstance(c, str) and c for c in self.classes),
                f"classes must name at least two class folders, got {list(self.classes)}",
            )
            _require(
                len(set(self.classes)) == len(self.classes),
                f"classes names a class twice: {list(self.classes)}",
            )
        else:
            _require(
                self.classes == 0 or self.classes >= 2,
                f"classes must be 0 (the data's own), 5 or 7 (FER2013's), a number of class "
                f"folders, or a list of their names; got {self.classes}",
            )
        _require(
            self.image_size == 0 or 8 <= self.image_size <= 1024,
            f"image_size must be 0 (the task's) or a side from 8 to 1024 pixels, got "
            f"{self.image_size}",
        )
        _require(
            self.channels in (1, 3), f"channels must be 1 (grey) or 3 (RGB), got {self.channels}"
        )
        _require(
            0.0 < self.validation_fraction < 0.5,
            f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}",
        )


@dataclass(frozen=True, kw_only=True)
class Budget:
    """How much each candidate is trained: the same for all, and part of the report.

    Training is counted in images, never in seconds, so a budget means the same on every
    machine and under any load: each candidate sees ``train_images`` images (in shuffled
    passes over the training subset, as many optimizer steps as that takes at its batch
    size), or ``epochs`` passes when ``train_images`` is 0. ``train_seconds`` is only a
    guard against a pathological candidate; a candidate it stops is marked in every table.
    Short budgets favour small nets that converge fast; compare candidates only at equal
    budget. ``0`` for an image cap means "all". ``deterministic`` turns on TensorFlow's op
    determinism, so a genome trains to the same weights every time (a candidate stopped
    by ``train_seconds`` is the exception: where the clock stops it is not reproducible).
    ``precision = "bf16"`` trains in mixed bfloat16 (float32 weights, bfloat16 compute;
    fast on CPUs with AVX512_BF16 or AMX), ``"float32"`` in full precision, ``"auto"`` bf16
    where the CPU has those instructions and float32 elsewhere (on an AVX2-only CPU,
    TensorFlow emulates bfloat16 and it buys nothing: the `vgg` baseline trained at 70
    images/s in bf16 and 71 in float32 on one thread).
    ``task_schedule`` says how a multi-task candidate (``[[tasks]]``) meets its tasks'
    images (each task gets the whole budget in every schedule): ``"alternating"`` one
    batch of each task in turn, each through its own loss and optimizer;
    ``"sequential"`` all of the first task's batches, then the next task's;
    ``"joint"`` one batch of every task per step, one optimizer on the sum of the losses.
    ``recipe`` (:mod:`nas.core.recipes`) is how a candidate trains: ``"genome"`` with the
    training genes it carries (optimizer, rate, batch), at a constant rate; ``"standard"``
    with one recipe for every architecture (AdamW, warm-up, a cosine that ends with the
    budget, label smoothing, batch 32), so the budget ranks architectures, not recipes.
    ``class_weight`` weighs each training image's loss by its class, for the candidates
    and the final training alike: ``"none"``; ``"balanced"``, ``N / (K * n_c)`` for a class
    of ``n_c`` of the ``N`` training images of ``K`` classes (each class then weighs the
    same in the loss; FER2013's five-class ``disgust`` has 436 of 19,647); or a list of
    one weight per class, in label order. Classification tasks only.
    ``max_flops`` (0: none) bounds a candidate's FLOPs per image as ``max_params`` bounds
    its parameters: a larger one fails as ``oversized`` before it is built (counted from
    the genome where the space can), so neither it nor a final training of it can take
    more time than the budget was planned for.
    """

    epochs: int = 1
    train_images: int = 0
    max_train_images: int = 0
    max_validation_images: int = 0
    train_seconds: float = 600.0
    timeout_seconds: float = 1800.0
    max_params: int = 5_000_000
    max_flops: int = 0
    deterministic: bool = True
    precision: str = "float32"
    task_schedule: str = "alternating"
    recipe: str = "genome"
    curve_images: int = 0
    repeats: int = 1
    class_weight: str | tuple[float, ...] = "none"

    def __post_init__(self) -> None:
        _require(
            self.recipe in BRIEF_RECIPES,
            f"recipe must be {' or '.join(map(repr, BRIEF_RECIPES))}, got {self.recipe!r}",
        )
        _require(1 <= self.epochs <= 1000, f"epochs must be in 1..1000, got {self.epochs}")
        _require(1 <= self.repeats <= 8, f"repeats must be in 1..8, got {self.repeats}")
        _require(
            self.curve_images >= 0,
            f"curve_images must be >= 0 (0 = no learning curve), got {self.curve_images}",
        )
        _require(
            not self.curve_images or self.train_images >= 4,
            "curve_images needs train_images (the curve is scored at a quarter, a half and all "
            "of them); set [budget] train_images",
        )
        _require(
            self.train_images >= 0,
            f"train_images must be >= 0 (0 means epochs passes), got {self.train_images}",
        )
        _require(
            self.max_train_images >= 0,
            f"max_train_images must be >= 0 (0 means all), got {self.max_train_images}",
        )
        _require(
            self.max_validation_images >= 0,
            f"max_validation_images must be >= 0 (0 means all), got {self.max_validation_images}",
        )
        _require(self.train_seconds > 0, f"train_seconds must be > 0, got {self.train_seconds}")
        _require(
            self.timeout_seconds > self.train_seconds,
            f"timeout_seconds ({self.timeout_seconds}) must exceed train_seconds "
            f"({self.train_seconds}): it also covers building and scoring",
        )
        _require(self.max_params >= 1000, f"max_params must be >= 1000, got {self.max_params}")
        _require(
            self.max_flops >= 0, f"max_flops must be >= 0 (0 = no limit), got {self.max_flops}"
        )
        _require(
            self.precision in PRECISIONS,
            f"precision must be {' or '.join(map(repr, PRECISIONS))}, got {self.precision!r}",
        )
        _require(
            self.task_schedule in TASK_SCHEDULES,
            f"task_schedule must be {', '.join(map(repr, TASK_SCHEDULES))}, "
            f"got {self.task_schedule!r}",
        )
        if isinstance(self.class_weight, str):
            _require(
                self.class_weight in ("none", "balanced"),
                "class_weight must be 'none', 'balanced' or a list of one weight per class, "
                f"got {self.class_weight!r}",
            )
        else:
            _require(
                all(math.isfinite(w) and w > 0 for w in self.class_weight),
                f"class_weight must be positive weights, got {list(self.class_weight)}",
            )


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """The strategy, its settings, the search's budget and the degree of parallelism.

    ``strategy`` names one of :data:`nas.strategies.STRATEGIES`, or a module that defines
    ``STRATEGY`` (:func:`nas.strategies.strategy_entry`). ``generations`` counts
    the batches (generations) after the initial one, so a search evaluates at most
    ``population * (generations + 1)`` genomes; ``max_evaluations`` and ``max_minutes``
    (0: no limit) stop it sooner, whichever comes first, and hold across resumes. An evaluation
    whose worker process dies (killed, out of memory) is run again up to ``retries``
    times, then recorded as failed. Each worker process is replaced after
    ``recycle_after`` evaluations (0: never), which keeps memory flat over long runs.
    ``inherit_weights`` (off by default) starts each child of NSGA-II from its parents'
    trained weights (LEMONADE's Lamarckian inheritance, :mod:`nas.training.inheritance`) instead
    of from scratch, then trains it with the same budget; strategies without parents
    (random, Optuna's samplers) train every genome from scratch either way.
    Every other key of ``[search]`` is a strategy's own setting, kept as given in
    ``options`` and read by the strategy that declares it (NSGA-II's ``crossover_prob``,
    ``mutation_prob``, ``prescreen``, ``prescreen_by``, ``low_fidelity_images``,
    ``promote_fraction``: :class:`nas.strategies.nsga2.Nsga2Settings`); the keys of another
    built-in strategy are checked and ignored, so one experiment runs under every strategy
    (``nas compare``), and a key no strategy declares is an error
    (:func:`nas.engine.experiment.with_plugins` checks them all).
    ``threads_per_worker`` (0 = auto: this machine's cores, or a cluster's CPUs, shared
    by ``workers``) is each evaluation's CPU reservation in Ray; ``gpus_per_worker`` its
    GPU reservation (Ray's ``num_gpus``; 0.5 puts two evaluations on one GPU; ignored
    with a note when the cluster has no GPU).
    """

    strategy: str = "nsga2"
    population: int = 8
    generations: int = 3
    max_evaluations: int = 0
    max_minutes: float = 0.0
    workers: int = 2
    threads_per_worker: int = 0
    gpus_per_worker: float = 0.0
    seeds: tuple[str, ...] = ()
    retries: int = 1
    recycle_after: int = 10
    inherit_weights: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(
            self.max_evaluations >= 0,
            f"max_evaluations must be >= 0 (0 = no limit), got {self.max_evaluations}",
        )
        _require(
            self.max_minutes >= 0,
            f"max_minutes must be >= 0 (0 = no limit), got {self.max_minutes}",
        )
        _require(
            self.population >= 4 and self.population % 4 == 0,
            f"population must be a multiple of 4 (NSGA-II's tournament pairs them), "
            f"got {self.population}; try {max(4, (self.population + 3) // 4 * 4)}",
        )
        _require(
            0 <= self.generations <= 10_000,
            f"generations must be in 0..10000, got {self.generations}",
        )
        _require(1 <= self.workers <= 4096, f"workers must be in 1..4096, got {self.workers}")
        _require(
            self.threads_per_worker >= 0,
            f"threads_per_worker must be >= 0 (0 = auto), got {self.threads_per_worker}",
        )
        _require(
            0 <= self.gpus_per_worker <= 8,
            f"gpus_per_worker must be in 0..8 (a fraction shares a GPU), got {self.gpus_per_worker}",
        )
        _require(0 <= self.retries <= 10, f"retries must be in 0..10, got {self.retries}")
        _require(
            self.recycle_after >= 0,
            f"recycle_after must be >= 0 (0 = never recycle), got {self.recycle_after}",
        )
        generic = set(self.options) & {f.name for f in dataclasses.fields(self)} - {"options"}
        _require(
            not generic,
            f"options holds strategies' own keys, not {', '.join(sorted(generic))}; "
            "set those as the fields they are",
        )
        _require(
            len(self.seeds) <= self.population,
            f"{len(self.seeds)} seeds do not fit a population of {self.population}; "
            "list fewer seeds or raise population",
        )


CHOOSE_BY: tuple[str, ...] = ("score", "score+flops")
"""The values of ``[final] choose_by``: how the final training's winner is chosen."""


@dataclass(frozen=True, kw_only=True)
class FinalConfig:
    """The final training of the search's winner, run by ``nas search`` after the search.

    ``epochs`` passes over the whole training split (augmented, cosine learning-rate
    decay, keeping the epoch best on the validation split), or, when ``epochs`` is 0,
    as many as ``minutes`` allows at the speed of the first epoch. ``minutes`` also
    stops a longer training at that wall time (0: no limit). ``total_minutes`` bounds the
    whole run instead: the final training gets what is left of it once the search (its
    clock, over every session) and the race are done, at least one epoch, and fits its
    epochs to that time like ``minutes``. With ``total_minutes``, the
    search and the race together take at most ``search_share`` of it (default half): the
    search stops at that share of its clock (or at ``[search] max_minutes`` if sooner),
    the race stops there too (its winner then is the best of its last finished round), and
    the final training gets the rest, so that a slower machine than the one a search's
    counts were calibrated on trains fewer candidates, not a starved winner (issue 20's
    seed 1: 38 of 35 minutes spent before one final epoch). With ``minutes`` or
    ``total_minutes``, the race and ``choose_by`` consider only candidates of which
    ``min_epochs`` final epochs are estimated to fit the final training's time (0: all;
    :mod:`nas.engine.final_cost`), the cheapest when none does: the choice rules predict a
    net's accuracy after 10 epochs. Nothing runs when ``epochs``,
    ``minutes`` and ``total_minutes`` are all 0.
    ``rank`` picks the architecture: rank K of the front by the first objective.
    ``start = "search"`` continues from the weights the search trained, ``"scratch"``
    starts anew. ``patience`` stops after that many epochs without a better validation
    score (0: never). ``augment`` turns on flips, shifts and zooms. A crashed training
    process is restarted from its last epoch up to ``restarts`` times. ``recipe``
    (:mod:`nas.core.recipes`): ``"standard"`` trains with its own optimizer, batch and schedule
    (AdamW, batch 64, warm-up, cosine, label smoothing), whatever the search used;
    ``"genome"`` with the winner's own training genes and a cosine decay (runs stored
    before the key existed). ``race`` K (0 or 1: off) races the front's best K by the
    first objective on before the final training, successive-halving style, from
    ``race_images`` more images each (0: the budget's ``train_images``), doubling as the
    field halves; the last one standing is trained (:mod:`nas.engine.race`).
    ``choose_by`` (:data:`CHOOSE_BY`) says how the winner is chosen: ``"score"`` by the first
    objective among the front (with a race, its best ``race``); ``"score+flops"`` among
    every trained candidate not at chance, by the mean of its rank by the first objective
    and its rank by FLOPs (more compute ranking higher), in the race's rounds too: a brief
    training under-rates nets that compute more per image, which gain most from the final
    training (measured with ``nas fidelity``, docs/fidelity.md). ``breed_affordable``
    (with a time bound and ``min_epochs``) keeps the search itself to such nets: a trained
    candidate whose ``min_epochs`` final epochs are estimated not to fit
    :attr:`known_seconds` is told to the strategy as failed, so that NSGA-II breeds from
    nets the final training can afford; its trial keeps its measured scores
    (:func:`nas.engine.final_cost.breeding_rule`).
    """

    epochs: int = 0
    minutes: float = 0.0
    total_minutes: float = 0.0
    search_share: float = 0.5
    min_epochs: int = 10
    rank: int = 1
    start: str = "search"
    patience: int = 0
    augment: bool = True
    restarts: int = 3
    recipe: str = "standard"
    race: int = 0
    race_images: int = 0
    choose_by: str = "score"
    breed_affordable: bool = False

    def __post_init__(self) -> None:
        _require(
            self.choose_by in CHOOSE_BY,
            f"choose_by must be {' or '.join(map(repr, CHOOSE_BY))}, got {self.choose_by!r}",
        )
        _require(
            0 <= self.race <= 32,
            f"race must be in 0..32 (the front's best that race on before the final training; "
            f"0 or 1 = off), got {self.race}",
        )
        _require(
            self.race_images >= 0,
            f"race_images must be >= 0 (0 = [budget] train_images), got {self.race_images}",
        )
        _require(
            self.recipe in FINAL_RECIPES,
            f"recipe must be {' or '.join(map(repr, FINAL_RECIPES))}, got {self.recipe!r}",
        )
        _require(0 <= self.epochs <= 10_000, f"epochs must be in 0..10000, got {self.epochs}")
        _require(self.minutes >= 0, f"minutes must be >= 0 (0 = no limit), got {self.minutes}")
        _require(
            self.total_minutes >= 0,
            f"total_minutes must be >= 0 (0 = no limit), got {self.total_minutes}",
        )
        _require(
            not (self.minutes and self.total_minutes),
            "set minutes (the final training's own wall time) or total_minutes (the whole "
            "run's, the final training getting what is left), not both",
        )
        _require(
            0.0 < self.search_share <= 1.0,
            f"search_share must be in (0, 1] (the share of total_minutes the search and the "
            f"race may take; 1 = no cap), got {self.search_share}",
        )
        _require(
            0 <= self.min_epochs <= 1000,
            f"min_epochs must be in 0..1000 (final epochs a chosen net must have time for; "
            f"0 = any net), got {self.min_epochs}",
        )
        _require(self.rank >= 1, f"rank must be >= 1 (1 = the best), got {self.rank}")
        _require(
            not self.breed_affordable or (self.known_seconds > 0 and self.min_epochs > 0),
            "breed_affordable needs a final training bounded by time (minutes, or "
            "total_minutes with search_share below 1) and min_epochs above 0: it keeps the "
            "search to nets with time for min_epochs final epochs",
        )
        _require(
            self.start in ("search", "scratch"),
            f"start must be 'search' (continue the search's weights) or 'scratch', "
            f"got {self.start!r}",
        )
        _require(self.patience >= 0, f"patience must be >= 0 (0 = never), got {self.patience}")
        _require(0 <= self.restarts <= 100, f"restarts must be in 0..100, got {self.restarts}")

    @property
    def enabled(self) -> bool:
        """True when ``nas search`` should train its winner after the search."""
        return bool(self.epochs or self.minutes or self.total_minutes)

    @property
    def search_seconds(self) -> float:
        """The wall time the search and the race may take together under ``total_minutes``
        (``search_share`` of it); 0 (no cap) without ``total_minutes`` or with a share of 1,
        where the search stops by its own budget as before the share existed."""
        return 0.0 if self.search_share >= 1.0 else 60.0 * self.total_minutes * self.search_share

    @property
    def known_seconds(self) -> float:
        """The final training's time known before the search starts: ``minutes``, or what
        ``total_minutes`` leaves past ``search_share`` (at least that: a search that ends
        sooner leaves more); 0 when neither bounds it."""
        if self.minutes:
            return 60.0 * self.minutes
        return 60.0 * self.total_minutes - self.search_seconds if self.search_seconds else 0.0


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A complete, reproducible experiment.

    ``reference_point`` fixes the worst value of each objective for the hypervolume;
    objectives it leaves out take :meth:`hypervolume_reference`'s defaults. ``tasks``
    (``[[tasks]]`` in TOML, each with the keys of ``[data]``) makes it a multi-task
    experiment: every individual is one backbone with a head per task, trained on each
    task's data (:mod:`nas.training.multitask`); ``data`` is then unused.
    """

    name: str
    seed: int = 0
    space: str = "cnn"
    objectives: tuple[str, ...] = ("accuracy", "params")
    reference_point: dict[str, float] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    tasks: tuple[DataConfig, ...] = ()
    budget: Budget = field(default_factory=Budget)
    search: SearchConfig = field(default_factory=SearchConfig)
    final: FinalConfig = field(default_factory=FinalConfig)

    def __post_init__(self) -> None:
        _require(
            re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name) is not None,
            f"name must be 1-64 letters, digits, '_', '.' or '-', got {self.name!r}; "
            'set name = "my-experiment" (it names the run and the study)',
        )
        _require(0 <= self.seed < 2**32, f"seed must be in 0..2**32-1, got {self.seed}")
        _require(
            len(self.objectives) >= 2,
            f"objectives needs at least two metrics to trade off, got {list(self.objectives)}; "
            f"add one of {', '.join(METRICS)}",
        )
        for name in self.objectives:
            _require(name in METRICS, f"unknown objective {name!r} (known: {', '.join(METRICS)})")
        repeated = sorted({name for name in self.objectives if self.objectives.count(name) > 1})
        _require(
            not repeated, f"objectives repeat {', '.join(map(repr, repeated))}; list each once"
        )
        if self.tasks:
            _require(
                len(self.tasks) >= 2,
                "[[tasks]] lists one task; a multi-task experiment needs two or more "
                "(for one task, use [data])",
            )
            names = [config.task for config in self.tasks]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(f"[[tasks]] lists the task {twice[0]!r} twice; list each once")
        for name, value in self.reference_point.items():
            _require(
                name in self.objectives,
                f"reference_point names {name!r}, which is not an objective "
                f"({', '.join(self.objectives)})",
            )
            _require(math.isfinite(value), f"reference_point {name} must be finite, got {value}")
        for name, value in self.hypervolume_reference().items():
            metric = METRICS[name]
            worse = value < metric.ideal if metric.direction == "maximize" else value > metric.ideal
            source = (
                f"reference_point {name}"
                if name in self.reference_point
                else (
                    "[budget] max_params (the params reference)"
                    if name == "params"
                    else f"the default reference of {name}"
                )
            )
            _require(
                worse,
                f"{source} is {value:g}, not worse than the objective's ideal {metric.ideal:g}, "
                "so the hypervolume would have no width there; choose a "
                f"{'smaller' if metric.direction == 'maximize' else 'larger'} value",
            )
        _require(
            "accuracy_curve" not in self.objectives or self.budget.curve_images > 0,
            "objective 'accuracy_curve' needs [budget] curve_images (the images to read the "
            "learning curve at, e.g. 200_000)",
        )

    @property
    def multitask(self) -> bool:
        """Whether the experiment lists several ``[[tasks]]``."""
        return bool(self.tasks)

    @property
    def task_configs(self) -> tuple[DataConfig, ...]:
        """The data of each task: the ``[[tasks]]``, or ``[data]`` alone."""
        return self.tasks or (self.data,)

    @property
    def search_minutes(self) -> float:
        """The search's wall-time limit (0: none): ``[search] max_minutes``, capped by
        ``[final] search_share`` of ``[final] total_minutes`` when a final training is to
        get the rest of the run's time."""
        limits = [self.search.max_minutes, self.final.search_seconds / 60.0]
        return min((limit for limit in limits if limit > 0), default=0.0)

    def hypervolume_reference(self) -> dict[str, float]:
        """The fixed hypervolume reference point: declared values, else the defaults.

        The defaults are each metric's ``reference`` (accuracy 0, RMSE 24 px, ...) and,
        for ``params``, the budget's ``max_params``: a larger candidate is never trained.
        """
        reference = {name: METRICS[name].reference for name in self.objectives}
        if "params" in reference:
            reference["params"] = float(self.budget.max_params)
        return reference | {name: float(v) for name, v in self.reference_point.items()}

    def replace(self, **changes: Any) -> Experiment:
        """A copy with top-level fields replaced, its values checked; a bad value raises
        :class:`ConfigError`. Its plugins are not checked again: see
        :func:`nas.engine.experiment.changed`."""
        try:
            return dataclasses.replace(self, **changes)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the inverse of :func:`nas.engine.experiment.experiment_from_dict`: ``tasks`` (a list)
        for a multi-task experiment, ``data`` for one task."""
        plain = dataclasses.asdict(self)
        plain["search"] |= plain["search"].pop("options")  # a strategy's keys, as written
        if self.multitask:
            del plain["data"]
            plain["tasks"] = list(plain["tasks"])
        else:
            del plain["tasks"]
        return plain
