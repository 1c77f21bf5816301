"""What a candidate's final training will cost, and which candidates the time allows."""

from __future__ import annotations

import math

from nas.core.config import FinalConfig
from nas.engine.experiment import changed, experiment_from_dict
from nas.engine.final_cost import FINAL_EPOCH_FACTOR, affordable, breeding_rule, epoch_seconds
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


def test_the_time_a_final_training_is_sure_to_get():
    assert FinalConfig(minutes=20).known_seconds == 1200.0
    assert FinalConfig(total_minutes=35).known_seconds == 1050.0  # past search_share 0.5
    assert FinalConfig(total_minutes=35, search_share=0.8).known_seconds == 420.0
    assert FinalConfig(total_minutes=35, search_share=1.0).known_seconds == 0.0
    assert FinalConfig(epochs=24).known_seconds == 0.0


def test_breeding_keeps_out_what_the_final_training_cannot_afford():
    experiment = experiment_from_dict(
        {
            "name": "afford",
            "data": {"path": "builtin:faces"},
            "search": {"workers": 1, "threads_per_worker": 1},
            "final": {"minutes": 10, "min_epochs": 10, "breed_affordable": True},
        }
    )
    too_costly = breeding_rule(experiment)
    assert too_costly is not None
    # 10 final epochs in 10 minutes: at most 60 s an epoch over the builtin training faces
    cheap, costly = _record(0, 0.01, images=6000), _record(1, 6000.0, images=6000)
    assert too_costly(cheap) is None
    seconds = too_costly(costly)
    assert seconds is not None and seconds * 10 > 600.0
    failed = TrialRecord(number=2, genome_hash="h2", genome={}, ok=False, values=None)
    assert too_costly(failed) is None  # failed already
    assert breeding_rule(changed(experiment, final=FinalConfig(minutes=10))) is None
