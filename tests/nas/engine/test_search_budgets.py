"""The driver with every strategy, on the toy space (no training): resume after an
interruption at any evaluation ends like an uninterrupted run, and the search budgets
(evaluations, minutes) are respected across resumes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from nas.core.config import FinalConfig
from nas.core.trial import EvalRequest, EvalResult
from nas.engine.experiment import experiment_from_dict
from nas.engine.search import resume_search, run_search
from nas.storage.checkpoint import load_checkpoint
from nas.storage.store import RunStore
from nas.strategies import STRATEGIES
from nas.testing.toy_space import SPACE, zdt1


class Killed(BaseException):
    """Stands for a SIGKILL: nothing catches it, and nothing is written on the way out."""


class ToyEvaluator:
    """Scores toy genomes by ZDT1 (accuracy = 1 - f1, params = 1000 + 1e5 f2), no training.

    ``kill_after`` raises :class:`Killed` after that many results; ``seconds`` sleeps per
    evaluation (for the time budget).
    """

    def __init__(self, kill_after: int | None = None, seconds: float = 0.0) -> None:
        self.kill_after = kill_after
        self.seconds = seconds
        self.done = 0

    def map(
        self, requests: Iterable[EvalRequest], *, deadline: float | None = None
    ) -> Iterator[EvalResult]:
        for request in requests:
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self.kill_after is not None and self.done >= self.kill_after:
                raise Killed
            time.sleep(self.seconds)
            f1, f2 = zdt1(SPACE.from_json(request.genome))
            self.done += 1
            yield EvalResult(
                genome_hash=request.genome_hash,
                metrics={"accuracy": 1.0 - f1, "params": 1000.0 + 1e5 * f2},
                weights=b"w",
            )

    def close(self) -> None:
        pass


def _experiment(strategy: str = "nsga2", **search):
    return experiment_from_dict(
        {
            "name": "toy",
            "seed": 11,
            "space": "nas.testing.toy_space",
            "objectives": ["accuracy", "params"],
            "budget": {"max_train_images": 32, "max_validation_images": 16},
            "search": {"strategy": strategy, "population": 4, "generations": 3} | search,
        }
    )


def _trials(run_dir: Path) -> list[tuple]:
    return sorted(
        (t.generation, t.genome_hash, t.values, t.failure) for t in RunStore.open(run_dir).trials()
    )


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_resumes_after_a_kill_to_the_uninterrupted_result(
    tmp_path: Path, strategy: str
):
    experiment = _experiment(strategy)
    whole = run_search(
        experiment, out_dir=tmp_path / "whole", make_evaluator=lambda d: ToyEvaluator()
    )
    expected = _trials(tmp_path / "whole")
    assert len(expected) >= 12  # Optuna's samplers may propose a genome twice: not retrained
    for kill_after in (1, 6):  # inside the first batch; inside the second
        run_dir = tmp_path / f"killed-{kill_after}"
        with pytest.raises(Killed):
            run_search(
                experiment, out_dir=run_dir, make_evaluator=lambda d, k=kill_after: ToyEvaluator(k)
            )
        assert len(_trials(run_dir)) == kill_after
        summary = resume_search(run_dir, make_evaluator=lambda d: ToyEvaluator())
        assert _trials(run_dir) == expected
        assert summary.restored == kill_after and summary.stopped == "generations"
        assert [r.genome_hash for r in summary.front.members] == [
            r.genome_hash for r in whole.front.members
        ]


@pytest.mark.parametrize("strategy", ["nsga2", "optuna-tpe"])
def test_max_evaluations_is_respected_across_a_kill(tmp_path: Path, strategy: str):
    experiment = _experiment(strategy, max_evaluations=7, generations=50)
    with pytest.raises(Killed):
        run_search(experiment, out_dir=tmp_path / "run", make_evaluator=lambda d: ToyEvaluator(5))
    summary = resume_search(tmp_path / "run", make_evaluator=lambda d: ToyEvaluator())
    assert len(_trials(tmp_path / "run")) == 7
    assert summary.stopped == "max_evaluations"
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.finished and checkpoint.stopped == "max_evaluations"
    again = resume_search(tmp_path / "run", make_evaluator=lambda d: ToyEvaluator())
    assert again.evaluations == 0 and len(_trials(tmp_path / "run")) == 7


def test_max_minutes_stops_the_search_and_its_clock_survives_resumes(tmp_path: Path):
    experiment = _experiment("random", max_minutes=0.02, generations=1000)  # 1.2 s
    with pytest.raises(Killed):
        run_search(
            experiment, out_dir=tmp_path / "run", make_evaluator=lambda d: ToyEvaluator(2, 0.1)
        )
    first = load_checkpoint(tmp_path / "run").seconds
    assert first > 0
    summary = resume_search(tmp_path / "run", make_evaluator=lambda d: ToyEvaluator(None, 0.1))
    assert summary.stopped == "max_minutes"
    assert summary.search_seconds >= 1.2
    trials = RunStore.open(tmp_path / "run").trials()
    # the clock went on from the first session: no evaluation is stamped before it, and
    # far fewer evaluations ran than 1000 generations would allow
    assert all(t.search_seconds > 0 for t in trials)
    assert 2 < len(trials) < 40
    assert max(t.search_seconds for t in trials) <= summary.search_seconds
    again = resume_search(tmp_path / "run", make_evaluator=lambda d: ToyEvaluator())
    assert again.evaluations == 0


def test_a_whole_run_in_minutes_stops_the_search_at_its_share(tmp_path: Path):
    from nas.engine.experiment import changed

    experiment = _experiment("random", generations=1000)
    final = experiment.final.__class__(total_minutes=0.04, search_share=0.5)  # 1.2 s
    experiment = changed(experiment, final=final)
    assert experiment.search_minutes == pytest.approx(0.02)
    summary = run_search(
        experiment, out_dir=tmp_path / "run", make_evaluator=lambda d: ToyEvaluator(None, 0.1)
    )
    assert summary.stopped == "max_minutes" and summary.search_seconds >= 1.2
    assert 2 < summary.evaluations < 40  # far fewer than 1000 generations would allow


def test_optuna_strategies_record_parameters_and_distributions(tmp_path: Path):
    import optuna

    run_search(
        _experiment("optuna-tpe"), out_dir=tmp_path / "run", make_evaluator=lambda d: ToyEvaluator()
    )
    info = RunStore.open(tmp_path / "run").info
    study = optuna.load_study(storage=info.connect, study_name=info.study_name)
    assert len(study.trials) == 16
    for trial in study.trials:
        assert set(trial.params) == {"x0", "x1", "x2", "x3"}
        assert isinstance(trial.distributions["x0"], optuna.distributions.FloatDistribution)
        genome = SPACE.from_json(trial.user_attrs["genome"])
        assert tuple(trial.params[f"x{i}"] for i in range(4)) == genome


class CostlyEvaluator(ToyEvaluator):
    """:class:`ToyEvaluator` whose candidates above 0.5 accuracy took an hour to train."""

    def map(self, requests, *, deadline=None):
        for result in super().map(requests, deadline=deadline):
            costly = result.metrics["accuracy"] > 0.5
            yield dataclasses.replace(result, seconds=3600.0 if costly else 0.01, images_seen=32)


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.records = []

    def resumed(self, generation, restored): ...

    def generation_started(self, generation, generations, to_train): ...

    def evaluated(self, record):
        self.records.append(record)

    def noted(self, text):
        self.lines.append(text)


def test_breeding_affordable_tells_the_strategy_that_costly_candidates_failed(tmp_path: Path):
    final = {"minutes": 10, "min_epochs": 10, "breed_affordable": True}
    experiment = _experiment().replace(final=FinalConfig(**final))
    notes = Notes()
    summary = run_search(
        experiment,
        out_dir=tmp_path / "run",
        make_evaluator=lambda d: CostlyEvaluator(),
        listener=notes,
    )
    costly = [r for r in notes.records if r.metrics["accuracy"] > 0.5]
    assert costly and len(costly) < len(notes.records)
    assert len(notes.lines) == len(costly)
    assert all("not bred from" in line for line in notes.lines)
    # the store keeps what was measured; the strategy saw them failed, so its population
    # holds none of them while it could hold them
    assert all(r.values[0] > 0.5 for r in costly)
    population = load_checkpoint(tmp_path / "run").strategy["population"]
    assert all(entry["values"][0] <= 0.5 for entry in population)
    assert summary.stopped == "generations"
    plain = run_search(
        _experiment(), out_dir=tmp_path / "plain", make_evaluator=lambda d: CostlyEvaluator()
    )
    kept = load_checkpoint(tmp_path / "plain").strategy["population"]
    assert any(entry["values"][0] > 0.5 for entry in kept) and plain.front.members
