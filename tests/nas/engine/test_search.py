"""End-to-end searches with real training on tiny data, serial and on Ray workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.engine.experiment import experiment_from_dict
from nas.engine.parallel import SerialEvaluator
from nas.engine.search import run_search
from nas.storage.store import RunStore


def _experiment(data: Path, max_params: int = 200_000, **search):
    return experiment_from_dict(
        {
            "name": "tiny",
            "seed": 3,
            "objectives": ["accuracy", "params"],
            "data": {"path": str(data)},
            "budget": {
                "epochs": 1,
                "max_train_images": 96,
                "max_validation_images": 48,
                "max_params": max_params,
            },
            "search": {"population": 4, "generations": 1, "workers": 2} | search,
        }
    )


class _Events:
    def __init__(self) -> None:
        self.generations: list[int] = []
        self.records = []

    def generation_started(self, generation, generations, to_train):
        self.generations.append(generation)

    def evaluated(self, record):
        self.records.append(record)


@pytest.mark.slow
def test_serial_search_records_every_evaluation(tmp_path: Path, faces_csv: Path):
    events = _Events()
    summary = run_search(
        _experiment(faces_csv),
        out_dir=tmp_path / "run",
        make_evaluator=SerialEvaluator,
        listener=events,
    )
    trials = RunStore.open(tmp_path / "run").trials()
    assert events.generations == [0, 1]
    assert summary.evaluations == len(trials) == len(events.records) >= 5
    assert len({t.genome_hash for t in trials}) == len(trials)
    completed = [t for t in trials if t.ok]
    assert completed and summary.front.members
    for trial in completed:
        assert 0.0 <= trial.metrics["accuracy"] <= 1.0
        assert trial.values == (trial.metrics["accuracy"], trial.metrics["params"])
        assert (tmp_path / "run" / trial.weights).stat().st_size > 0
        assert trial.metrics["flops"] > 0


@pytest.mark.slow
def test_failing_candidates_are_recorded_and_the_search_goes_on(tmp_path: Path, faces_csv: Path):
    experiment = _experiment(faces_csv).replace(space="tests.nas.failing_space")
    summary = run_search(experiment, out_dir=tmp_path / "run", make_evaluator=SerialEvaluator)
    trials = RunStore.open(tmp_path / "run").trials()
    failed = [t for t in trials if not t.ok]
    broken = [t for t in failed if t.failure == "build_error"]
    assert broken and len(failed) < len(trials)
    # past max_params, a genome fails as oversized before it is built
    assert {t.failure for t in failed} <= {"build_error", "oversized"}
    assert all("injected build failure" in t.detail for t in broken)
    assert summary.failures == len(failed)
    assert {t.generation for t in trials} == {0, 1}
    assert all(t.ok for t in summary.front.members)


def test_same_seed_same_first_generation(tmp_path: Path, faces_csv: Path):
    """The genomes asked for depend only on the seed (training results aside)."""

    from nas.core.space import genome_hash, load_space
    from nas.strategies.nsga2 import Nsga2

    space = load_space("cnn")

    def first(seed: int) -> list[str]:
        strategy = Nsga2(
            space, weights=(1.0, -1.0), population_size=8, rng=np.random.default_rng(seed)
        )
        return [genome_hash(space, g) for g in strategy.ask()]

    assert first(5) == first(5)
    assert first(5) != first(6)
    assert np.unique(first(5)).size == 8
