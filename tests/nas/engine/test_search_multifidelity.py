"""The driver with multi-fidelity NSGA-II ([search] low_fidelity_images): two rungs per
generation, promoted candidates continuing from their own rung-0 weights, the front and
survivors from full-fidelity values only, resume between the rungs, the config's checks.

All on the toy space without training (an evaluator that scores ZDT1 better the more
images a model has seen), except the last test, which trains real tiny CNNs."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from nas.core import faults
from nas.core.errors import ConfigError
from nas.core.objectives import CHANCE_MARGIN
from nas.core.trial import EvalRequest, EvalResult
from nas.engine.experiment import experiment_from_dict
from nas.engine.search import resume_search, run_search
from nas.storage.checkpoint import load_checkpoint
from nas.storage.front import compute_front
from nas.storage.records import TrialFidelity
from nas.storage.store import RunStore
from nas.testing.toy_space import SPACE, zdt1
from tests.nas.engine.test_search_budgets import Killed

TOTAL, LOW, POPULATION = 400, 100, 8


class RungEvaluator:
    """Scores toy genomes by ZDT1, better the more images their model has seen:
    accuracy ``(1 - f1) (0.8 + 0.2 seen / TOTAL)``, params ``1000 + 1e5 f2``. A request
    whose only parent is its own genome continues from the images its weights had seen
    (the weights are that count, as JSON). Every request is appended to ``log``;
    ``kill_after`` raises :class:`Killed` after that many results."""

    def __init__(self, log: list[EvalRequest] | None = None, kill_after: int | None = None):
        self.log = [] if log is None else log
        self.kill_after = kill_after
        self.done = 0

    def map(
        self, requests: Iterable[EvalRequest], *, deadline: float | None = None
    ) -> Iterator[EvalResult]:
        for request in requests:
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self.kill_after is not None and self.done >= self.kill_after:
                raise Killed
            before = 0
            own = [p for p in request.parents if p.genome == request.genome]
            if own:
                before = json.loads(own[0].weights)["seen"]
            seen = before + request.budget.train_images
            f1, f2 = zdt1(SPACE.from_json(request.genome))
            self.log.append(request)
            self.done += 1
            yield EvalResult(
                genome_hash=request.genome_hash,
                metrics={
                    "accuracy": (1.0 - f1) * (0.8 + 0.2 * seen / TOTAL),
                    "params": 1000.0 + 1e5 * f2,
                },
                weights=json.dumps({"seen": seen, "at": request.budget.train_images}).encode(),
                images_seen=request.budget.train_images,
            )

    def close(self) -> None:
        pass


def _experiment(low: int = LOW, **search):
    return experiment_from_dict(
        {
            "name": "toy-rungs",
            "seed": 11,
            "space": "nas.testing.toy_space",
            "objectives": ["accuracy", "params"],
            "budget": {
                "train_images": TOTAL,
                "max_train_images": 32,
                "max_validation_images": 16,
            },
            "search": {"population": POPULATION, "generations": 2, "low_fidelity_images": low}
            | search,
        }
    )


def _search(run_dir: Path, log: list | None = None, kill_after: int | None = None, **search):
    return run_search(
        _experiment(**search),
        out_dir=run_dir,
        make_evaluator=lambda d: RungEvaluator(log, kill_after),
    )


def _trials(run_dir: Path) -> list[tuple]:
    return sorted(
        (t.generation, t.genome_hash, t.rung, t.values, t.failure, t.fidelity)
        for t in RunStore.open(run_dir).trials()
    )


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[EvalRequest]]:
    """An uninterrupted multi-fidelity search and every request it made."""
    run_dir = tmp_path_factory.mktemp("rungs") / "whole"
    log: list[EvalRequest] = []
    _search(run_dir, log)
    return run_dir, log


def test_each_generation_trains_every_child_at_low_fidelity_then_promotes_at_most_half(whole):
    run_dir, log = whole
    trials = RunStore.open(run_dir).trials()
    assert len(trials) == len(log)  # one training per request, none reused here
    for generation in range(3):
        rung0 = [t for t in trials if t.generation == generation and t.rung == 0]
        rung1 = [t for t in trials if t.generation == generation and t.rung == 1]
        assert len(rung0) == POPULATION
        assert 1 <= len(rung1) <= math.ceil(0.5 * POPULATION)
        assert {t.genome_hash for t in rung1} <= {t.genome_hash for t in rung0}
        assert all(t.fidelity == TrialFidelity(0, LOW, LOW) for t in rung0)
        assert all(t.fidelity == TrialFidelity(1, TOTAL - LOW, TOTAL) for t in rung1)
        assert all(t.low_fidelity for t in rung0) and not any(t.low_fidelity for t in rung1)
    assert [r.budget.train_images for r in log[:POPULATION]] == [LOW] * POPULATION


def test_a_promoted_candidate_continues_from_its_own_rung_0_weights(whole):
    run_dir, log = whole
    store = RunStore.open(run_dir)
    by_key = {(t.genome_hash, t.rung): t for t in store.trials()}
    promotions = [r for r in log if r.budget.train_images == TOTAL - LOW]
    assert promotions
    for request in promotions:
        low = by_key[(request.genome_hash, 0)]
        # inherit_weights is off, yet the promotion starts from its own rung-0 weights
        assert [p.genome for p in request.parents] == [request.genome]
        assert request.parents[0].weights == (run_dir / low.weights).read_bytes()
        assert json.loads(request.parents[0].weights) == {"seen": LOW, "at": LOW}
        assert request.seed != next(r.seed for r in log if r.genome_hash == request.genome_hash)
        high = by_key[(request.genome_hash, 1)]
        assert low.images_seen + high.images_seen == TOTAL == high.fidelity.total_images_seen
        # separate files: the rung-0 weights stay what rung 0 was scored with
        assert low.weights == f"models/{low.genome_hash}.rung0.weights.h5"
        assert high.weights == f"models/{high.genome_hash}.weights.h5"
        assert json.loads((run_dir / high.weights).read_bytes())["seen"] == TOTAL
    children = [r for r in log if r.budget.train_images == LOW]
    assert all(r.parents == () for r in children), "inherit_weights is off"


def test_near_chance_candidates_are_never_promoted(whole):
    run_dir, _ = whole
    store = RunStore.open(run_dir)
    chance = store.info.chance["accuracy"]
    trials = store.trials()
    promoted = {t.genome_hash for t in trials if t.rung == 1}
    near = [t for t in trials if t.rung == 0 and t.values[0] <= chance + CHANCE_MARGIN]
    assert near, "the test needs near-chance candidates"
    assert not {t.genome_hash for t in near} & promoted


def test_only_full_fidelity_values_survive_and_make_the_front(whole):
    run_dir, _ = whole
    store = RunStore.open(run_dir)
    trials = store.trials()
    full = {t.genome_hash: t.values for t in trials if t.rung == 1}
    population = load_checkpoint(run_dir).strategy["population"]
    assert population
    for member in population:
        key = next(t.genome_hash for t in trials if t.genome == member["genome"])
        assert tuple(member["values"]) == full[key]
    front = compute_front(trials, store.info.objectives, store.info.reference)
    assert front.members and all(t.rung == 1 for t in front.members + front.evaluated)
    assert {t.genome_hash for t in front.evaluated} == set(full)
    assert {t.genome_hash for t in front.low_fidelity} == {
        t.genome_hash for t in trials if t.rung == 0 and t.genome_hash not in full
    }
    only_full = compute_front(
        [t for t in trials if t.rung == 1], store.info.objectives, store.info.reference
    )
    assert front.hypervolume == only_full.hypervolume > 0


def test_nas_pareto_says_how_many_were_trained_at_low_fidelity_only(
    whole, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from nas.cli import main

    run_dir, _ = whole
    store = RunStore.open(run_dir)
    front = compute_front(store.trials(), store.info.objectives, store.info.reference)
    assert main(["pareto", str(run_dir), "--plot", str(tmp_path / "front.png")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{len(front.low_fidelity)} candidates trained at low fidelity only" in out
    assert (tmp_path / "front.png").stat().st_size > 0


def test_a_search_without_multifidelity_records_no_fidelity(tmp_path: Path):
    log: list[EvalRequest] = []
    _search(tmp_path / "run", log, low=0)
    trials = RunStore.open(tmp_path / "run").trials()
    assert len(trials) == 3 * POPULATION
    assert all(t.fidelity is None and t.rung is None and not t.low_fidelity for t in trials)
    assert all(r.budget.train_images == TOTAL and r.parents == () for r in log)
    assert all(t.weights == f"models/{t.genome_hash}.weights.h5" for t in trials)


def test_inherited_weights_are_the_parents_full_fidelity_ones(tmp_path: Path):
    log: list[EvalRequest] = []
    _search(tmp_path / "run", log, inherit_weights=True, generations=1)
    children = [r for r in log if r.budget.train_images == LOW and r.parents]
    assert children, "generation 1's children name their parents"
    for request in children:
        for parent in request.parents:
            assert json.loads(parent.weights)["seen"] == TOTAL


def test_max_evaluations_counts_every_rung(tmp_path: Path):
    summary = _search(tmp_path / "run", max_evaluations=POPULATION + 2, generations=50)
    trials = RunStore.open(tmp_path / "run").trials()
    assert len(trials) == POPULATION + 2 and summary.stopped == "max_evaluations"
    assert [t.rung for t in trials] == [0] * POPULATION + [1, 1]


class _KillAt:
    """Raises :class:`Killed` at the ``count``-th pass of a failpoint matching ``name``."""

    def __init__(self, name: str, count: int) -> None:
        self.name, self.count, self.hits = name, count, 0

    def __call__(self, name: str) -> None:
        import fnmatch

        if fnmatch.fnmatchcase(name, self.name):
            self.hits += 1
            if self.hits == self.count:
                raise Killed


KILLS = [
    ("generation:told", 1, "after generation 0's rung-0 tell, before its checkpoint"),
    ("generation:asked", 2, "right after the promotion batch was asked for"),
    ("evaluation:recorded", POPULATION + 1, "between two promoted evaluations"),
    ("write:*.weights.h5", POPULATION + 1, "writing a promoted model's weights"),
    ("evaluation:recorded", POPULATION + 6, "inside generation 1's rung 0"),
]


@pytest.mark.parametrize(("name", "count", "where"), KILLS, ids=[k[2] for k in KILLS])
def test_a_search_killed_anywhere_resumes_to_the_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole, name: str, count: int, where: str
):
    run_dir = tmp_path / "killed"
    kill = _KillAt(name, count)
    monkeypatch.setattr(faults, "observer", kill)
    first: list[EvalRequest] = []
    with pytest.raises(Killed):
        _search(run_dir, first)
    recorded = len(RunStore.open(run_dir).trials())
    monkeypatch.setattr(faults, "observer", None)
    second: list[EvalRequest] = []
    summary = resume_search(run_dir, make_evaluator=lambda d: RungEvaluator(second))
    assert summary.restored == recorded and summary.stopped == "generations"
    assert _trials(run_dir) == _trials(whole[0])
    # nothing recorded was trained again (an evaluation cut before its record is)
    assert len(second) == len(whole[1]) - recorded
    keys = [(t.genome_hash, t.rung) for t in RunStore.open(run_dir).trials()]
    assert len(keys) == len(set(keys))
    front = compute_front(RunStore.open(run_dir).trials(), ("accuracy", "params"))
    expected = compute_front(RunStore.open(whole[0]).trials(), ("accuracy", "params"))
    assert [t.genome_hash for t in front.members] == [t.genome_hash for t in expected.members]


def test_the_same_seed_gives_the_same_search(tmp_path: Path, whole):
    _search(tmp_path / "again")
    assert _trials(tmp_path / "again") == _trials(whole[0])


@pytest.mark.parametrize(
    ("budget", "search", "message"),
    [
        (
            {"train_images": 400},
            {"low_fidelity_images": 400},
            "[search] low_fidelity_images = 400 must be below [budget] train_images (400)",
        ),
        (
            {"epochs": 2},
            {"low_fidelity_images": 100},
            "[search] low_fidelity_images = 100 needs an image budget per candidate",
        ),
        ({}, {"low_fidelity_images": -5}, "low_fidelity_images must be >= 0"),
        ({}, {"promote_fraction": 0.0}, "promote_fraction must be in (0, 1]"),
        ({}, {"promote_fraction": 1.5}, "promote_fraction must be in (0, 1]"),
    ],
)
def test_bad_multifidelity_settings_are_one_line_config_errors(budget, search, message):
    with pytest.raises(ConfigError) as error:
        experiment_from_dict({"name": "bad", "budget": budget, "search": search}, source="bad.toml")
    text = str(error.value)
    assert message in text and "\n" not in text and text.startswith("bad.toml")


def test_promote_fraction_one_and_other_strategies_are_accepted():
    experiment_from_dict(
        {
            "name": "ok",
            "budget": {"train_images": 400},
            "search": {"low_fidelity_images": 399, "promote_fraction": 1.0, "strategy": "random"},
        }
    )


@pytest.mark.slow
def test_real_training_continues_from_the_rung_0_weights(tmp_path: Path, faces_csv: Path):
    """Tiny CNNs on a few dozen faces: each promoted candidate inherits all its rung-0
    weights, and its two trainings add up to the budget's images."""
    from nas.core.space import load_space
    from nas.engine.parallel import SerialEvaluator
    from search_spaces.cnn import CnnGenome, Stage, Stem, Training

    cnn = load_space("cnn")
    seeds = []  # two small nets, so that at least two candidates train and are promoted
    for width, batch in ((8, 32), (12, 64)):
        genome = CnnGenome(
            stem=Stem(width=width),
            stages=(Stage(block="basic", depth=1, width=width),),
            training=Training(batch_size=batch),
        )
        seeds.append(tmp_path / f"small{width}.json")
        seeds[-1].write_text(json.dumps({"space": "cnn", "genome": cnn.to_json(genome)}))
    experiment = experiment_from_dict(
        {
            "name": "tiny-rungs",
            "seed": 3,
            # macro-F1 has no chance figure, so promotion goes by rank alone here
            "objectives": ["macro_f1", "params"],
            "data": {"path": str(faces_csv)},
            "budget": {
                "train_images": 256,
                "max_train_images": 48,
                "max_validation_images": 32,
                "max_params": 200_000,
            },
            "search": {
                "population": 4,
                "generations": 0,
                "workers": 1,
                "low_fidelity_images": 128,
                "seeds": [str(path) for path in seeds],
            },
        }
    )
    run_search(experiment, out_dir=tmp_path / "run", make_evaluator=SerialEvaluator)
    trials = RunStore.open(tmp_path / "run").trials()
    low = {t.genome_hash: t for t in trials if t.rung == 0}
    high = [t for t in trials if t.rung == 1]
    assert len(low) == 4 and len(high) == 2, [(t.rung, t.failure, t.detail) for t in trials]
    assert all(t.inherited is None for t in low.values())
    for trial in high:
        first = low[trial.genome_hash]
        assert trial.ok and first.ok
        assert trial.inherited["fraction"] == 1.0
        assert trial.inherited["partial"] == 0 and trial.inherited["fresh"] == 0
        assert first.images_seen + trial.images_seen == 256 == trial.fidelity.total_images_seen
        assert (tmp_path / "run" / trial.weights).read_bytes() != (
            tmp_path / "run" / first.weights
        ).read_bytes()
