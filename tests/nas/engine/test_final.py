"""``nas train`` and ``[final]``: train a run's winner further, survive crashes, export it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.core.errors import ConfigError
from nas.core.faults import ENVIRONMENT_VARIABLE
from nas.engine.final import FinalPlan, load_state, plan_final, train_final
from nas.storage.selection import select_trial
from nas.storage.store import RunStore


def _plan(run: Path, **changes) -> FinalPlan:
    store = RunStore.open(run)
    options = {"epochs": 2, "augment": True} | changes
    return plan_final(store, select_trial(store, rank=1), **options)


@pytest.mark.slow
def test_a_crashing_training_process_resumes_from_its_last_epoch(
    tiny_search: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "final"
    plan = _plan(tiny_search)
    # every training process kills itself right after checkpointing its first epoch
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "final:epoch@1")
    with pytest.raises(ConfigError, match="crashed 2 times"):
        train_final(plan, out, restarts=1)  # epoch 1, crash, restart, epoch 2, crash
    state = load_state(out)
    assert state is not None and state.epochs_done == 2 and state.finished
    assert [c["after_epoch"] for c in state.crashes] == [1, 2]
    assert not (out / "MODEL_CARD.md").exists()  # no export before the training ends

    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    outcome = train_final(plan, out, restarts=0)  # the same command again: export only
    assert [h["epoch"] for h in outcome.state.history] == [1, 2]  # no epoch trained twice
    assert outcome.state.images > 0
    assert sorted(p.name for p in (out / "training").glob("epoch-*")) == [
        "epoch-2.optimizer.npz",
        "epoch-2.weights.h5",
    ]
    card = (out / "MODEL_CARD.md").read_text()
    assert "crashed 2 time(s)" in card and "after the final training" in card


@pytest.mark.slow
def test_a_process_dying_before_any_epoch_ends_is_restarted_on_one_thread(
    tiny_search: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "final"
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "final:start@1=SIGABRT")
    with pytest.raises(ConfigError, match="crashed 2 times"):
        train_final(_plan(tiny_search), out, restarts=1)
    state = load_state(out)
    assert state is not None and state.epochs_done == 0
    assert [(c["returncode"], c["threads"]) for c in state.crashes] == [(-6, 0), (-6, 1)]


@pytest.mark.slow
def test_an_exception_in_the_training_stops_it_with_its_reason_and_is_not_retried(
    tiny_search: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
):
    out = tmp_path / "final"
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "final:epoch@1=raise")
    with pytest.raises(ConfigError, match="failed \\(exit code 1, its reason above\\); it is "):
        train_final(_plan(tiny_search), out, restarts=3)
    assert (
        "the final training failed: RuntimeError: failpoint final:epoch" in capfd.readouterr().err
    )
    state = load_state(out)
    assert state is not None and state.crashes == []  # not a crash, not restarted
    assert "RuntimeError: failpoint final:epoch" in (out / "training" / "failure.txt").read_text()


@pytest.mark.slow
def test_nas_train_exports_the_best_epoch_ready_to_serve(tiny_search: Path, tmp_path: Path, capsys):
    import keras

    out = tmp_path / "served"
    board = tmp_path / "board"
    args = ["train", str(tiny_search), "--trial", "0", "--epochs", "2", "--scratch"]
    args += ["--tensorboard", str(board)]
    assert main([*args, "--no-augment", "--out", str(out), "--name", "faces"]) == 0
    printed = capsys.readouterr().out
    assert "Best accuracy" in printed and "model card" in printed
    state = load_state(out)
    assert state is not None and state.stopped == "epochs" and len(state.history) == 2
    best = max(state.history, key=lambda h: h["accuracy"])
    assert state.best["accuracy"] == best["accuracy"]

    from nas.core.scoring import accuracy
    from nas.engine.experiment import experiment_from_dict
    from nas.engine.task_data import load_task_data
    from nas.training.core import predict

    store = RunStore.open(tiny_search)
    data = load_task_data(experiment_from_dict(store.info.experiment), full=True).eval_data
    model = keras.models.load_model(out / "model.keras")
    predicted = predict(lambda x: model(x, training=False), data.validation_images)
    # the export is the best epoch's model, in float32
    assert accuracy(data.validation_targets, predicted.argmax(axis=1)) == pytest.approx(
        state.best["accuracy"]
    )
    assert (out / "faces" / "1" / "saved_model.pb").exists()
    assert json.loads((out / "genome.json").read_text())["space"] == "cnn"
    assert np.all(np.isfinite(predicted))

    # TensorBoard has every epoch's loss, validation metrics, learning rate and speed
    import tensorflow as tf

    logged: dict[str, list[int]] = {}
    for events in board.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                logged.setdefault(value.tag, []).append(event.step)
    assert logged["validation/accuracy"] == [1, 2] and logged["train/loss"] == [1, 2]
    assert {"train/learning_rate", "train/images_per_second", "validation/macro_f1"} <= set(logged)

    # the same command again finds the training finished and changes nothing
    stamp = (out / "model.keras").stat().st_mtime_ns
    assert main([*args, "--no-augment", "--out", str(out), "--name", "faces"]) == 0
    assert (out / "model.keras").stat().st_mtime_ns == stamp


def test_a_folder_holding_another_plan_is_refused_in_one_line(
    tiny_search: Path, tmp_path: Path, capsys
):
    out = tmp_path / "final"
    (out / "training").mkdir(parents=True)
    (out / "training" / "plan.json").write_text(json.dumps(_plan(tiny_search).to_json()))
    assert main(["train", str(tiny_search), "--epochs", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nas: error: ") and err.count("\n") == 1
    assert "holds another final training (epochs: 2 there, 5 now)" in err


def test_a_folder_with_other_files_is_refused(tiny_search: Path, tmp_path: Path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", str(tiny_search), "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "holds no final training" in capsys.readouterr().err


@pytest.mark.slow
def test_a_final_section_trains_the_winner_after_the_search(
    tmp_path: Path, faces_csv: Path, ray_local, capsys
):
    # a race by score and FLOPs (without a race: test_race.py), and the whole run in 0.01
    # minutes, the search not held to a share of it: no time for any final epoch, so the
    # cheapest candidate is the one entrant, and the final training still trains one epoch
    experiment = tmp_path / "final.toml"
    experiment.write_text(
        'name = "withfinal"\nseed = 1\n[data]\npath = "data/not-here.csv"\n'
        "[budget]\ntrain_images = 64\nmax_train_images = 128\nmax_validation_images = 64\n"
        "max_params = 60000\ntrain_seconds = 120\ntimeout_seconds = 300\n"
        "[search]\npopulation = 4\ngenerations = 0\nworkers = 2\n"
        '[final]\ntotal_minutes = 0.01\nsearch_share = 1\nrace = 2\nchoose_by = "score+flops"\n'
    )
    run = tmp_path / "run"
    # --data reaches the race and the final training too, not only the search (320
    # training faces: the final epoch is the whole split, not the search's 128 images)
    assert main(["search", str(experiment), "--out", str(run), "--data", str(faces_csv)]) == 0
    out = capsys.readouterr().out
    assert "Chosen: trial" in out and "Final training of trial" in out  # one entrant: no race
    assert "Final training: 0.0 of the run's 0.01 minutes are left" in out
    assert "none does: the cheapest" in out
    state = load_state(run / "final")
    assert state is not None and state.finished and state.epochs_done == 1
    assert state.images > 128  # the whole training split, not the search's subset
    assert (run / "final" / "withfinal" / "1" / "saved_model.pb").exists()


def test_total_minutes_cap_the_search_at_its_share():
    from nas.core.errors import ConfigError
    from nas.engine.experiment import experiment_from_dict

    def minutes(search: dict, final: dict) -> float:
        return experiment_from_dict({"name": "x", "search": search, "final": final}).search_minutes

    assert minutes({}, {}) == 0.0  # no limit
    assert minutes({"max_minutes": 12}, {}) == 12.0
    assert minutes({}, {"total_minutes": 35}) == 17.5  # half by default
    assert minutes({"max_minutes": 10}, {"total_minutes": 35}) == 10.0  # the sooner one
    assert minutes({"max_minutes": 30}, {"total_minutes": 35, "search_share": 0.4}) == 14.0
    assert minutes({}, {"total_minutes": 35, "search_share": 1}) == 0.0  # no cap
    for share in (0, 1.5):
        with pytest.raises(ConfigError, match=r"search_share must be in \(0, 1\]"):
            minutes({}, {"total_minutes": 35, "search_share": share})


def test_total_minutes_leave_the_final_training_what_the_search_left(tmp_path: Path):
    from nas.engine.final import minutes_left

    assert minutes_left(35.0, 600.0, tmp_path / "final") == pytest.approx(25.0)
    # nothing left: a second, so that the training stops after its first epoch
    assert minutes_left(35.0, 3000.0, tmp_path / "final") == pytest.approx(1 / 60)
    # a training already begun keeps its plan's time, whatever the clock says now
    plan = {"trial": 3, "epochs": 0, "minutes": 22.5}
    (tmp_path / "final" / "training").mkdir(parents=True)
    (tmp_path / "final" / "training" / "plan.json").write_text(json.dumps(plan))
    assert minutes_left(35.0, 1200.0, tmp_path / "final") == 22.5


def test_a_minutes_only_training_plans_its_length_again_after_every_epoch():
    from nas.engine.final import epochs_that_fit

    # the first epoch also traces the model: alone it is the only measure
    assert epochs_that_fit([30.0], 300.0) == 1 + 9
    # after that it is left out: 270 s left at 20 s an epoch
    assert epochs_that_fit([30.0, 20.0], 300.0) == 2 + 12
    # epochs that slow down shorten the plan (the median of the last five)
    slower = [30.0, 20.0, 20.0, 25.0, 25.0, 25.0, 25.0, 25.0]
    assert epochs_that_fit(slower, 1200.0) == 8 + 40  # 1005 s left at 25 s
    assert epochs_that_fit([30.0, 20.0], 40.0) == 2  # out of time: no more epochs


SUPERVISOR = """
import sys
from pathlib import Path
from nas.engine import final
# a stand-in for the training process: it says it runs, then trains "forever"
final._child_command = lambda folder, threads: [
    sys.executable, "-c", "import time; print('child', flush=True); time.sleep(120)"
]
print("returned", final._run_child(Path(".")), flush=True)
"""


def test_a_sigterm_to_the_supervisor_alone_ends_its_training_process_too(tmp_path: Path):
    """`kill PID` of a search in its final training (a scheduler does it) once left the
    training process running on its own after the driver was gone."""
    script = tmp_path / "supervisor.py"
    script.write_text(SUPERVISOR)
    supervisor = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline().strip() == "child"  # the training process runs
        supervisor.send_signal(signal.SIGTERM)  # to the supervisor alone, not its group
        out, _ = supervisor.communicate(timeout=60)
        assert out.split() == ["returned", "-15"]  # train_final makes it TrainingStopped
        children = subprocess.run(
            ["pgrep", "-s", str(supervisor.pid)], capture_output=True, text=True
        ).stdout.split()
        assert children == [], "the training process outlived its supervisor"
    finally:  # nothing left behind, whatever failed
        with contextlib.suppress(ProcessLookupError):
            os.killpg(supervisor.pid, signal.SIGKILL)
