"""What a candidate's final training will cost, and which candidates the time allows."""

from __future__ import annotations

import math

from nas.engine.final_cost import FINAL_EPOCH_FACTOR, affordable, epoch_seconds
from nas.storage.records import TrialRecord


def _record(number: int, seconds: float, images: int = 6000) -> TrialRecord:
    return TrialRecord(
        number=number,
        genome_hash=f"h{number}",
        genome={},
        ok=True,
        values=(0.5,),
        seconds=seconds,
        images_seen=images,
    )


def test_an_epoch_is_estimated_from_the_brief_training_per_image_and_threads():
    record = _record(0, 60.0)  # 0.01 s an image on one thread
    estimate = epoch_seconds(record, train_faces=20_000, search_threads=1, final_threads=2)
    assert estimate == FINAL_EPOCH_FACTOR * 0.01 * 20_000 / 2
    same_threads = epoch_seconds(record, train_faces=20_000, search_threads=2, final_threads=2)
    assert same_threads == 2 * estimate
    assert math.isinf(epoch_seconds(_record(1, 0.0), train_faces=10, search_threads=1))


def test_only_candidates_with_time_for_their_epochs_stay_in_order_else_the_cheapest():
    candidates = [_record(0, 0), _record(1, 0), _record(2, 0), _record(3, 0)]
    costs = {0: 300.0, 1: 50.0, 2: 80.0, 3: 20.0}  # a final epoch's seconds
    kept, fit = affordable(candidates, costs, final_seconds=800.0, min_epochs=10)
    assert [r.number for r in kept] == [1, 2, 3] and fit  # 10 x 80 s fit 800 s exactly
    kept, fit = affordable(candidates, costs, final_seconds=799.0, min_epochs=10)
    assert [r.number for r in kept] == [1, 3] and fit
    kept, fit = affordable(candidates, costs, final_seconds=100.0, min_epochs=10)
    assert [r.number for r in kept] == [3] and not fit  # none fits: the cheapest alone
    assert affordable(candidates, costs, final_seconds=1.0, min_epochs=0) == (candidates, True)
