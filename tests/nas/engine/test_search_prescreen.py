"""The driver hands NSGA-II the free objectives: a pre-screened search on the costed toy
space (no training) differs from an unscreened one, and resumes after a kill to the
uninterrupted result."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.engine.experiment import experiment_from_dict
from nas.engine.search import resume_search, run_search
from tests.nas.engine.test_search_budgets import Killed, ToyEvaluator, _trials


def _experiment(prescreen: int):
    return experiment_from_dict(
        {
            "name": "toy-screened",
            "seed": 11,
            "space": "tests.nas.toy_costed_space",
            "objectives": ["accuracy", "params"],
            "budget": {"max_train_images": 32, "max_validation_images": 16},
            "search": {"population": 4, "generations": 3, "prescreen": prescreen},
        }
    )


def test_a_prescreened_search_differs_and_resumes_to_the_same_trials(tmp_path: Path):
    def search(prescreen: int, name: str, kill_after: int | None = None) -> list[tuple]:
        run_search(
            _experiment(prescreen),
            out_dir=tmp_path / name,
            make_evaluator=lambda d: ToyEvaluator(kill_after),
        )
        return _trials(tmp_path / name)

    screened = search(4, "screened")
    plain = search(1, "plain")
    assert len(screened) == len(plain) == 16
    assert [t for t in screened if t[0] == 0] == [t for t in plain if t[0] == 0]
    assert {t[1] for t in screened if t[0] > 0} != {t[1] for t in plain if t[0] > 0}

    with pytest.raises(Killed):
        search(4, "killed", kill_after=6)  # inside generation 1, the first screened batch
    resume_search(tmp_path / "killed", make_evaluator=lambda d: ToyEvaluator())
    assert _trials(tmp_path / "killed") == screened


class _Notes:
    """A listener that keeps the strategy's notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def resumed(self, generation: int, restored: int) -> None:
        pass

    def generation_started(self, generation: int, generations: int, to_train: int) -> None:
        pass

    def evaluated(self, record) -> None:
        pass

    def noted(self, text: str) -> None:
        self.notes.append(text)


def test_a_surrogate_screened_search_reports_its_tau_and_resumes_to_the_same_trials(
    tmp_path: Path,
):
    def experiment(prescreen_by: str):
        base = _experiment(4)
        search = dict(population=4, generations=5, prescreen=4, prescreen_by=prescreen_by)
        return experiment_from_dict(
            {
                "name": base.name,
                "seed": base.seed,
                "space": base.space,
                "objectives": list(base.objectives),
                "budget": {"max_train_images": 32, "max_validation_images": 16},
                "search": search,
            }
        )

    def search(prescreen_by: str, name: str, kill_after: int | None = None, listener=None):
        run_search(
            experiment(prescreen_by),
            out_dir=tmp_path / name,
            make_evaluator=lambda d: ToyEvaluator(kill_after),
            listener=listener,
        )
        return _trials(tmp_path / name)

    notes = _Notes()
    learnt = search("surrogate", "surrogate", listener=notes)
    sized = search("size", "size")
    assert len(learnt) == len(sized) == 24
    # generations 0-2 (12 trials) are screened by size in both; 3 onwards by the surrogate
    assert [t for t in learnt if t[0] < 3] == [t for t in sized if t[0] < 3]
    assert {t[1] for t in learnt if t[0] >= 3} != {t[1] for t in sized if t[0] >= 3}
    assert any(n.startswith("surrogate: tau ") for n in notes.notes)

    with pytest.raises(Killed):
        search("surrogate", "killed", kill_after=18)  # inside generation 4
    resume_search(tmp_path / "killed", make_evaluator=lambda d: ToyEvaluator())
    assert _trials(tmp_path / "killed") == learnt
