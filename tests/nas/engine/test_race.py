"""The race before the final training: the front's best train on, the better half each round."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from nas.core.config import Experiment
from nas.core.errors import ConfigError
from nas.engine.experiment import changed, experiment_from_dict
from nas.engine.migration import stored_experiment
from nas.engine.race import (
    RACE_FILE,
    _round_order,
    race_candidates,
    race_images,
    raced,
    run_race,
)
from nas.storage.front import compute_front
from nas.storage.records import TrialRecord
from nas.storage.store import RunStore


def _record(number: int, accuracy: float, params: float, flops: float) -> TrialRecord:
    return TrialRecord(
        number=number,
        genome_hash=f"h{number}",
        genome={},
        ok=True,
        values=(accuracy, params),
        metrics={"accuracy": accuracy, "params": params, "flops": flops},
        weights=f"models/h{number}.weights.h5",
    )


def test_score_and_flops_rank_every_trained_candidate_by_their_mean_rank():
    # trial: accuracy, params, FLOPs; at chance 0.36 (trial 4) is never a candidate
    records = [
        _record(0, 0.52, 350_000, 2e6),  # accuracy rank 5, FLOPs rank 1 -> 3.0
        _record(1, 0.45, 300_000, 170e6),  # 2, 5 -> 3.5 (off the front: trial 2 dominates)
        _record(2, 0.50, 60_000, 70e6),  # 4, 4 -> 4.0
        _record(3, 0.48, 40_000, 10e6),  # 3, 2 -> 2.5
        _record(4, 0.36, 200_000, 90e6),
        _record(5, 0.40, 20_000, 30e6),  # 1, 3 -> 2.0
    ]
    front = compute_front(records, ("accuracy", "params"), chance={"accuracy": 0.36})
    assert [r.number for r in race_candidates(front)] == [0, 2, 3, 5]  # the front, by accuracy
    ranked = race_candidates(front, "score+flops")
    assert [r.number for r in ranked] == [2, 1, 0, 3, 5]
    tie = [_record(6, 0.50, 1, 1e6), _record(7, 0.40, 1, 9e6)]  # 1.5 each: the better score
    scores = {6: 0.50, 7: 0.40}
    assert [r.number for r in _round_order(tie, scores, 1.0, "score+flops")] == [6, 7]
    assert [r.number for r in _round_order(tie[::-1], scores, 1.0, "score+flops")] == [6, 7]
    even = {6: 0.45, 7: 0.45}  # the same score and FLOPs: the entrants' order
    same = [_record(6, 0.5, 1, 1e6), _record(7, 0.4, 1, 1e6)]
    assert [r.number for r in _round_order(same[::-1], even, 1.0, "score+flops")] == [7, 6]
    assert [r.number for r in _round_order(tie[::-1], scores, 1.0, "score")] == [6, 7]
    failed = {6: float("nan"), 7: 0.40}
    assert [r.number for r in _round_order(tie, failed, 1.0, "score+flops")] == [7, 6]


def test_entrants_that_build_the_same_net_race_once():
    from baselines.vgg import VGG
    from nas.core.space import architecture_hash, genome_hash, load_space
    from nas.engine.race import distinct_nets

    space = load_space("cnn")
    other_batch = dataclasses.replace(
        VGG, training=dataclasses.replace(VGG.training, batch_size=16)
    )
    smaller = dataclasses.replace(VGG, stages=VGG.stages[:2])
    assert genome_hash(space, VGG) != genome_hash(space, other_batch)
    assert architecture_hash(space, VGG) == architecture_hash(space, other_batch)
    assert architecture_hash(space, VGG) != architecture_hash(space, smaller)
    records = [
        dataclasses.replace(_record(number, 0.5, 1, 1), genome=space.to_json(genome))
        for number, genome in enumerate([other_batch, smaller, VGG])
    ]
    by_net = [r.number for r in distinct_nets(records, space, training_ignored=True)]
    assert by_net == [0, 1]  # the better-placed one
    assert [r.number for r in distinct_nets(records[::-1], space, training_ignored=True)] == [2, 1]
    assert [r.number for r in distinct_nets(records, space, training_ignored=False)] == [0, 1, 2]
    rungs = [records[0], dataclasses.replace(records[0], number=9)]  # one genome, two trials
    assert [r.number for r in distinct_nets(rungs, space, training_ignored=False)] == [0]


def test_round_results_go_to_their_own_entrants_whatever_order_they_arrive_in():
    from nas.core.trial import EvalResult
    from nas.engine.race import round_results

    alive = [_record(n, 0.5, 1, 1) for n in (3, 5, 8)]
    arrived = [  # as two workers finish them: not the requests' order
        EvalResult(genome_hash="h8", metrics={"accuracy": 0.61}, weights=b"eight"),
        EvalResult(genome_hash="h3", failure="nan_loss"),
        EvalResult(genome_hash="h5", metrics={"accuracy": 0.55}, weights=b"five"),
    ]
    scores, weights = round_results(alive, iter(arrived), "accuracy")
    assert scores[8] == 0.61 and scores[5] == 0.55 and math.isnan(scores[3])
    assert weights[8].weights == b"eight" and weights[5].weights == b"five" and 3 not in weights
    lost, _ = round_results(alive, iter(arrived[:1]), "accuracy")  # a result never came
    assert math.isnan(lost[5]) and lost[8] == 0.61


def test_choose_by_is_checked():
    with pytest.raises(ConfigError, match="choose_by must be 'score' or 'score\\+flops'"):
        experiment_from_dict({"name": "x", "final": {"choose_by": "flops"}})
    chosen = experiment_from_dict({"name": "x", "final": {"choose_by": "score+flops"}})
    assert chosen.final.choose_by == "score+flops"


def test_race_settings_are_checked_and_the_first_round_defaults_to_the_budget():
    with pytest.raises(ConfigError, match=r"race must be in 0\.\.32"):
        experiment_from_dict({"name": "x", "final": {"race": -1}})
    experiment = experiment_from_dict({"name": "x", "budget": {"train_images": 6000}})
    assert race_images(experiment, 19_000) == 6000
    by_epochs = experiment_from_dict({"name": "x", "budget": {"epochs": 2}})
    assert race_images(by_epochs, 96) == 192
    chosen = experiment_from_dict({"name": "x", "final": {"race_images": 500}})
    assert race_images(chosen, 96) == 500


def _copied_run(
    tiny_search: Path, tmp_path: Path, **final: Any
) -> tuple[Path, RunStore, Experiment]:
    """A copy of the session's tiny search, its store, and its experiment with ``final``."""
    run = tmp_path / "run"
    shutil.copytree(tiny_search, run)
    store = RunStore.open(run)
    experiment = stored_experiment(store.info.experiment, source="run.json")
    return run, store, changed(experiment, final=dataclasses.replace(experiment.final, **final))


@pytest.mark.slow
def test_the_race_trains_the_best_of_the_front_on_and_records_every_round(
    tiny_search: Path, tmp_path: Path
):
    run, store, experiment = _copied_run(tiny_search, tmp_path, race=3)
    front = compute_front(
        store.trials(), store.info.objectives, store.info.reference, store.info.chance
    )
    entrants = [r.number for r in front.members if r.weights][:3]
    lines: list[str] = []
    winner = run_race(experiment, run, echo=lines.append)
    document = json.loads((run / RACE_FILE).read_text())
    assert document["entrants"] == entrants and winner.number in entrants
    rounds = document["rounds"]
    if len(entrants) == 1:
        assert rounds == []
    else:
        assert [len(r["scores"]) for r in rounds] == [len(entrants), 2][: len(rounds)]
        assert rounds[0]["images"] == 96  # one epoch over the 96 training faces
        assert all(0.0 <= s <= 1.0 for r in rounds for s in r["scores"].values())
        last = rounds[-1]["scores"]
        assert max(last, key=last.get) == str(winner.number)
        assert len(lines) == len(rounds)
    again = run_race(experiment, run, echo=lines.append)  # finished: no training
    assert again.number == winner.number and len(lines) == len(rounds)
    assert raced(run) is bool(rounds)
    for broken in ("{", json.dumps({k: v for k, v in document.items() if k != "rounds"})):
        (run / RACE_FILE).write_text(broken)  # a file of the run's folder: untrusted
        with pytest.raises(ConfigError, match=r"unreadable.*remove it to race again"):
            run_race(experiment, run)
        with pytest.raises(ConfigError, match="unreadable"):
            raced(run)


@pytest.mark.slow
def test_a_race_past_its_deadline_runs_no_round_and_keeps_the_entrants_order(
    tiny_search: Path, tmp_path: Path
):
    run, _, experiment = _copied_run(tiny_search, tmp_path, race=3)
    lines: list[str] = []
    winner = run_race(experiment, run, echo=lines.append, deadline=time.monotonic() - 1.0)
    document = json.loads((run / RACE_FILE).read_text())
    assert document["rounds"] == [] and winner.number == document["entrants"][0]
    assert document["stopped_by_time"] is (len(document["entrants"]) > 1)
    assert all("share of the time" in line for line in lines)
    (run / RACE_FILE).unlink()  # no time for any final epoch: the cheapest candidate alone
    winner = run_race(experiment, run, echo=lines.append, final_seconds=0.001)
    document = json.loads((run / RACE_FILE).read_text())
    costs = document["affordable"]
    assert costs["fit"] == [] and costs["min_epochs"] == 10 and document["rounds"] == []
    cheapest = min(costs["epoch_seconds"], key=costs["epoch_seconds"].get)
    assert document["entrants"] == [winner.number] == [int(cheapest)]
    assert "none does: the cheapest" in lines[-1]


@pytest.mark.slow
def test_by_score_and_flops_the_race_and_its_rounds_rank_both(tiny_search: Path, tmp_path: Path):
    run, store, experiment = _copied_run(tiny_search, tmp_path, race=0, choose_by="score+flops")
    front = compute_front(
        store.trials(), store.info.objectives, store.info.reference, store.info.chance
    )
    candidates = race_candidates(front, "score+flops")
    alone = run_race(experiment, run, echo=print)  # no race: the best
    assert alone.number == candidates[0].number
    assert json.loads((run / RACE_FILE).read_text())["rounds"] == []
    (run / RACE_FILE).unlink()
    final = dataclasses.replace(experiment.final, race=3)
    winner = run_race(changed(experiment, final=final), run, echo=print)
    document = json.loads((run / RACE_FILE).read_text())
    assert document["choose_by"] == "score+flops"
    assert document["entrants"] == [r.number for r in candidates[:3]]
    assert winner.number in document["entrants"]
