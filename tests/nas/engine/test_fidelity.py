"""The fidelity benchmark: its panel, its jobs, its report, and one real run on built-in faces."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nas.analysis.fidelity_report import member_features, signal_table, surrogate_signals
from nas.cli import main
from nas.core.errors import ConfigError
from nas.core.task import Task
from nas.engine.experiment import experiment_from_dict
from nas.engine.fidelity import (
    SIGNALS_FILE,
    TRUTHS_FILE,
    BenchmarkPlan,
    build_panel,
    load_measurements,
    load_panel,
    plan_jobs,
)

TASK = Task(kind="classification", input_shape=(48, 48, 1), num_classes=5)


def _experiment(**budget: object):
    return experiment_from_dict(
        {
            "name": "fid",
            "data": {"path": "builtin:faces"},
            "budget": {"max_params": 60_000, **budget},
            "search": {"seeds": []},
        }
    )


def test_the_panel_spreads_over_log_parameters_and_is_the_same_every_time():
    experiment = _experiment()
    panel = build_panel(experiment, TASK, 8, draws=3000)
    again = build_panel(experiment, TASK, 8, draws=3000)
    assert [m.genome_hash for m in panel] == [m.genome_hash for m in again]
    assert len({m.genome_hash for m in panel}) == 8
    params = sorted(m.params for m in panel)
    assert params[0] >= 5_000 and params[-1] <= 60_000
    assert params[-1] / params[0] > 4  # spread, not 8 nets of one size
    assert all(m.origin == "draw" for m in panel)


def test_seeds_come_first_and_a_flops_cap_holds():
    experiment = experiment_from_dict(
        {"name": "fid", "budget": {"max_params": 400_000}, "search": {"seeds": ["vgg"]}}
    )
    panel = build_panel(experiment, TASK, 5, max_flops=50_000_000, draws=2000)
    assert panel[0].origin == "seed:vgg" and panel[0].params == 305_381
    assert all(m.flops <= 50_000_000 for m in panel[1:])


def test_jobs_put_the_first_seed_truths_first_and_second_seeds_last():
    members = build_panel(_experiment(), TASK, 6, draws=2000)
    plan = BenchmarkPlan(
        panel_size=6,
        truth_epochs=3,
        second_seeds=2,
        fidelities=(100, 200),
        scheduled_fidelities=(200,),
        signal_seeds=2,
    )
    jobs = plan_jobs(members, plan, run_seed=7)
    kinds = [j.kind for j in jobs]
    assert kinds[:6] == ["truth"] * 6 and kinds[-2:] == ["truth"] * 2
    assert {j.seed for j in jobs[:6]} == {7} and {j.seed for j in jobs[-2:]} == {8}
    genome = [j for j in jobs if j.signal == "genome"]
    standard = [j for j in jobs if j.signal == "standard"]
    assert len(genome) == 12 and all(j.images == (100, 200) for j in genome)  # one run each
    assert len(standard) == 12 and all(j.images == (200,) for j in standard)
    assert len({j.key for j in jobs}) == len(jobs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"panel_size": 3}, "--panel must be at least 4"),
        ({"signals": ("nope",)}, "unknown signal 'nope'"),
        ({"fidelities": ()}, "--fidelities must be positive"),
        ({"second_seeds": 30}, "--second-seeds must be in 0..24"),
        ({"truth_epochs": 0}, "--epochs must be in 1..1000"),
    ],
)
def test_a_bad_plan_is_one_line(changes: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        BenchmarkPlan(**changes)


def test_a_torn_last_line_is_ignored_and_a_bad_one_named(tmp_path: Path):
    good = json.dumps({"key": "truth:a:s0:e1", "accuracy": 0.5})
    (tmp_path / TRUTHS_FILE).write_text(good + '\n{"key": "tru')
    assert [r["key"] for r in load_measurements(tmp_path, TRUTHS_FILE)] == ["truth:a:s0:e1"]
    (tmp_path / TRUTHS_FILE).write_text("not json\n" + good + "\n")
    with pytest.raises(ConfigError, match="line 1: not JSON"):
        load_measurements(tmp_path, TRUTHS_FILE)
    (tmp_path / "panel.json").write_text('{"members": [{"id": "p00"}]}')
    with pytest.raises(ConfigError, match="not a facenas panel"):
        load_panel(tmp_path)


def _truth_rows(members: list, truths: list[float]) -> list[dict]:
    """One first-seed truth row per member."""
    return [
        {"genome_hash": m.genome_hash, "seed": 0, "accuracy": t}
        for m, t in zip(members, truths, strict=True)
    ]


def test_the_table_scores_a_perfect_and_a_reversed_signal():
    members = build_panel(_experiment(), TASK, 5, draws=2000)
    truths = [0.40, 0.50, 0.60, 0.70, 0.80]
    truth_rows = [
        {"genome_hash": m.genome_hash, "seed": 0, "accuracy": t, "seconds": 60.0}
        for m, t in zip(members, truths, strict=True)
    ]
    truth_rows.append({"genome_hash": members[0].genome_hash, "seed": 1, "accuracy": 0.42})
    signal_rows = []
    for seed in (0, 1):
        for m, t in zip(members, truths, strict=True):
            for name, score in (("genome", t / 2), ("standard", 1 - t)):
                signal_rows.append(
                    {
                        "signal": name,
                        "genome_hash": m.genome_hash,
                        "seed": seed,
                        "images": [1000],
                        "accuracy": [score + 0.001 * seed],
                        "cpu_seconds": 5.0,
                    }
                )
    rows, noise = signal_table(members, truth_rows, signal_rows, chance=0.25)
    by_name = {(r["signal"], r["images"]): r for r in rows}
    perfect, reversed_ = by_name[("genome", 1000)], by_name[("standard", 1000)]
    # genome scores t / 2: 0.20 and 0.25 (both seeds) are within 0.01 of chance 0.25
    assert perfect["at_chance"] == pytest.approx(4 / 10)
    assert reversed_["at_chance"] == pytest.approx(2 / 10)  # 1 - 0.80, both seeds
    assert perfect["tau"] == pytest.approx(1.0) and perfect["regret"] == 0.0
    assert perfect["top5_overlap"] == 5 and perfect["seed_tau"] == pytest.approx(1.0)
    assert reversed_["tau"] == pytest.approx(-1.0) and reversed_["rho"] == pytest.approx(-1.0)
    assert reversed_["regret"] == pytest.approx(0.80 - 0.41)  # picks member 0: (0.40 + 0.42) / 2
    assert perfect["cpu_seconds"] == 5.0 and perfect["members"] == 5
    assert {("params", 0), ("flops", 0)} <= set(by_name)
    assert noise["members_two_seeds"] == 1
    assert noise["seed_mean_abs_difference"] == pytest.approx(0.02)


def test_scores_kept_with_a_signal_rank_as_signals_of_their_own():
    members = build_panel(_experiment(), TASK, 5, draws=2000)
    truths = [0.40, 0.50, 0.60, 0.70, 0.80]
    truth_rows = _truth_rows(members, truths)
    signal_rows = [  # accuracy ties at chance; the log-likelihood and the losses do not
        {
            "signal": "standard",
            "genome_hash": m.genome_hash,
            "seed": 0,
            "images": [3000, 6000],
            "accuracy": [0.25, 0.25],
            "scores": {"log_likelihood": -2 + t, "train_loss": 2 - t, "train_loss_late": t},
            "cpu_at": [4.0],
            "cpu_seconds": 9.0,
        }
        for m, t in zip(members, truths, strict=True)
    ]
    rows, _ = signal_table(members, truth_rows, signal_rows, chance=0.25)
    by_name = {(r["signal"], r["images"]): r for r in rows}
    assert math.isnan(by_name[("standard", 6000)]["tau"])  # all tied: no ranking
    assert by_name[("standard", 6000)]["at_chance"] == 1.0
    loglik, tse = by_name[("standard+loglik", 6000)], by_name[("standard+tse", 6000)]
    assert loglik["tau"] == pytest.approx(1.0) and loglik["regret"] == 0.0
    assert tse["tau"] == pytest.approx(1.0) and tse["cpu_seconds"] == 9.0
    assert by_name[("standard+tse_late", 6000)]["tau"] == pytest.approx(-1.0)  # lower is better
    assert math.isnan(loglik["at_chance"])  # not an accuracy
    assert ("standard+loglik", 3000) not in by_name  # kept at the last image count only


def test_the_flops_row_ranks_the_score_and_the_flops_together_with_nothing_fitted():
    members = build_panel(_experiment(), TASK, 6, draws=2000)
    by_flops = sorted(members, key=lambda m: m.flops)
    # the brief score ranks the nets in reverse of their FLOPs: every mean rank is 3.5
    truths = dict(
        zip([m.genome_hash for m in by_flops], [0.5, 0.6, 0.7, 0.4, 0.3, 0.2], strict=True)
    )
    truth_rows = [{"genome_hash": h, "seed": 0, "accuracy": t} for h, t in truths.items()]
    signal_rows = [
        {"signal": "standard", "genome_hash": m.genome_hash, "seed": 0, "images": [6000],
         "accuracy": [0.6 - 0.05 * i], "cpu_seconds": 5.0}
        for i, m in enumerate(by_flops)
    ]  # fmt: skip
    rows, _ = signal_table(members, truth_rows, signal_rows)
    by_name = {(r["signal"], r["images"]): r for r in rows}
    flops_row = by_name[("standard+flops", 6000)]
    assert flops_row["members"] == 6 and math.isnan(flops_row["tau"])  # every mean rank 3.5
    for i, row in enumerate(signal_rows):  # now the fourth net also computes the most
        row["accuracy"] = [[0.6, 0.55, 0.5, 0.58, 0.4, 0.35][i]]
    rows, _ = signal_table(members, truth_rows, signal_rows)
    by_name = {(r["signal"], r["images"]): r for r in rows}
    # mean ranks (score + FLOPs) / 2: 3.5, 3, 3, 4.5, 3.5, 3.5 -> it picks the fourth (0.4),
    # the score alone the first (0.5)
    assert by_name[("standard+flops", 6000)]["regret"] == pytest.approx(0.7 - 0.4)
    assert by_name[("standard", 6000)]["regret"] == pytest.approx(0.7 - 0.5)


def test_the_cost_share_compares_a_signal_only_with_a_truth_timed_on_the_same_machine():
    members = build_panel(_experiment(), TASK, 4, draws=2000)
    truth_rows, signal_rows = [], []
    for i, m in enumerate(members):
        truth_machine = "x86_64 avx512" if i == 0 else "x86_64 avx2"  # member 0: timed apart
        truth_rows.append(
            {"genome_hash": m.genome_hash, "seed": 0, "accuracy": 0.4 + 0.1 * i,
             "cpu_seconds": 100.0 * (i + 1), "machine": truth_machine}
        )  # fmt: skip
        signal_rows.append(
            {"signal": "standard", "genome_hash": m.genome_hash, "seed": 0, "images": [1000],
             "accuracy": [0.3 + 0.1 * i], "cpu_seconds": 10.0, "machine": "x86_64 avx2"}
        )  # fmt: skip
    rows, _ = signal_table(members, truth_rows, signal_rows)
    (row,) = [r for r in rows if r["signal"] == "standard"]
    assert row["cost_share"] == pytest.approx(10.0 / 300.0)  # median of 1/20, 1/30, 1/40
    for r in truth_rows + signal_rows:  # rows from before the machine was recorded
        del r["machine"]
    rows, _ = signal_table(members, truth_rows, signal_rows)
    (row,) = [r for r in rows if r["signal"] == "standard"]
    assert row["cost_share"] == pytest.approx((10.0 / 200.0 + 10.0 / 300.0) / 2)


def test_a_measurement_process_ends_when_the_benchmark_process_is_killed(tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import time

    child, script = tmp_path / "child.pid", tmp_path / "benchmark.py"
    script.write_text(
        "import multiprocessing as mp, os, sys, time\n"
        "def work(path):\n"
        "    from nas.engine.fidelity_worker import _end_with_parent\n"
        "    _end_with_parent()\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
        "if __name__ == '__main__':\n"
        "    mp.get_context('spawn').Process(target=work, args=(sys.argv[1],)).start()\n"
        "    time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script), str(child)])
    deadline = time.monotonic() + 120
    while not child.exists() or not child.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.2)
    pid = int(child.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "State:\tZ" in status.read_text():  # gone, or a zombie
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the measurement process outlived the benchmark's process")


def test_the_surrogate_rows_predict_each_member_from_the_others():
    """A signal that is a function of the genome (its log FLOPs) is predicted, leave one
    out, in the right order; the blend lies between the member's rank and the prediction."""
    members = build_panel(_experiment(), TASK, 12, draws=2000)
    values = {
        m.genome_hash: {seed: (member_features(m)["log_flops"], 3.0) for seed in (0, 1)}
        for m in members
    }
    tables = surrogate_signals(values, {m.genome_hash: m for m in members})
    from nas.core.ranking import kendall_tau

    hashes = list(values)
    predicted = [tables["surrogate"][h][0][0] for h in hashes]
    assert kendall_tau(predicted, [values[h][0][0] for h in hashes]) > 0.6
    assert all(tables["blend"][h][0][1] == 3.0 for h in hashes)
    assert (
        surrogate_signals(dict(list(values.items())[:5]), {m.genome_hash: m for m in members}) == {}
    )


def test_the_size_row_learns_how_much_the_size_makes_up_for_once_trained():
    """Truths that are a line in the brief score and the log size are predicted, leave
    one out, exactly; with fewer than 6 members there is no row."""
    from nas.analysis.fidelity_report import size_corrected_signal

    members = build_panel(_experiment(), TASK, 8, draws=2000)
    rng = np.random.default_rng(0)
    brief = {m.genome_hash: float(rng.uniform(0.2, 0.6)) for m in members}
    values = {h: {0: (score, 4.0), 1: (score, 6.0)} for h, score in brief.items()}
    truth = {
        m.genome_hash: 0.5 * brief[m.genome_hash] + 0.1 * member_features(m)["log_params"]
        for m in members
    }
    table = size_corrected_signal(values, {m.genome_hash: m for m in members}, truth)
    assert {h: v[0][0] for h, v in table.items()} == pytest.approx(truth)
    assert all(v[0][1] == 5.0 for v in table.values())  # the median cost of the seeds
    few = {h: truth[h] for h in list(truth)[:5]}
    assert size_corrected_signal(values, {m.genome_hash: m for m in members}, few) == {}


@pytest.mark.slow
def test_the_benchmark_runs_resumes_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture, faces_csv: Path
):
    experiment = tmp_path / "fid.toml"
    experiment.write_text(  # 320 training faces: a truth's epoch takes seconds
        'name = "fid"\nobjectives = ["accuracy", "params"]\n'
        f'[data]\npath = "{faces_csv}"\n[budget]\nmax_params = 20_000\n'
    )
    out = tmp_path / "bench"
    flags = [
        "fidelity",
        str(experiment),
        "--out",
        str(out),
        "--panel",
        "4",
        "--epochs",
        "1",
        "--second-seeds",
        "1",
        "--fidelities",
        "64,128",
        "--scheduled-fidelities",
        "128",
        "--signal-seeds",
        "1",
        "--signals",
        "genome,standard",
    ]
    assert main([*flags, "--max-jobs", "3"]) == 0
    assert len(load_measurements(out, TRUTHS_FILE)) == 3
    assert main(flags) == 0
    output = capsys.readouterr().out
    assert "3 done before, 10 to run now" in output
    truths = load_measurements(out, TRUTHS_FILE)
    signals = load_measurements(out, SIGNALS_FILE)
    assert len(truths) == 5 and len(signals) == 8
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["epochs"] == 1 for r in truths)
    assert {r["seed"] for r in truths} == {0, 1}
    genome = [r for r in signals if r["signal"] == "genome"]
    assert all(r["images"] == [64, 128] and len(r["accuracy"]) == 2 for r in genome)
    standard = [r for r in signals if r["signal"] == "standard"]
    assert all(sorted(map(int, r["curve"])) == [32, 64] for r in standard)
    assert all(r["cpu_seconds"] > 0 and r["threads"] == 1 for r in signals)
    for r in signals:  # the same training's other scores, kept for the report
        assert set(r["scores"]) == {"log_likelihood", "train_loss", "train_loss_late"}
        assert r["scores"]["log_likelihood"] < 0 < r["scores"]["train_loss"]
    assert 0.0 < json.loads((out / "panel.json").read_text())["chance"] < 1.0
    report = json.loads((out / "fidelity.json").read_text())
    rows = {(r["signal"], r["images"]) for r in report["signals"]}
    assert {("genome", 64), ("genome", 128), ("standard", 128), ("params", 0)} <= rows
    assert {("standard+loglik", 128), ("genome+tse", 128), ("genome+tse_late", 128)} <= rows
    assert all(r["members"] == 4 for r in report["signals"])
    assert (out / "fidelity.png").stat().st_size > 0
    assert main(flags) == 0  # finished: nothing trains again
    assert "0 to run now" in capsys.readouterr().out
    assert len(load_measurements(out, SIGNALS_FILE)) == 8


def test_the_report_and_card_sentence_reads_the_panel_of_the_run_experiment(tmp_path: Path):
    from nas.core.signal_quality import signal_quality

    row = {
        "signal": "genome",
        "images": 6000,
        "members": 20,
        "tau": 0.41,
        "top5_overlap": 2,
        "regret": 0.031,
    }
    (tmp_path / "fidelity.json").write_text(json.dumps({"signals": [row]}))
    experiment = {"name": "emotion_35min", "budget": {"train_images": 6000}}
    sentence = signal_quality(experiment, tmp_path)
    assert "Kendall's tau 0.41" in sentence and "20 trained nets" in sentence
    assert "regret 0.0310" in sentence
    assert "FLOPs" not in sentence
    ranked = {**row, "signal": "genome+flops", "tau": 0.65, "regret": 0.0028}
    (tmp_path / "fidelity.json").write_text(json.dumps({"signals": [row, ranked]}))
    chosen = {**experiment, "final": {"choose_by": "score+flops"}}
    assert "the FLOPs ranked together, which ranked them with tau 0.65 (regret 0.0028)" in (
        signal_quality(chosen, tmp_path)
    )
    assert "FLOPs" not in signal_quality(experiment, tmp_path)
    other = {"name": "emotion_35min", "budget": {"train_images": 3000, "recipe": "standard"}}
    assert signal_quality(other, tmp_path) == ""
    (tmp_path / "fidelity.json").write_text("{not json")
    assert signal_quality(experiment, tmp_path) == ""


def test_racing_the_best_few_on_picks_by_the_longer_signal():
    members = build_panel(_experiment(), TASK, 5, draws=2000)
    truths = [0.40, 0.50, 0.60, 0.70, 0.80]
    truth_rows = _truth_rows(members, truths)
    # at 1000 images the best net looks second best; at 2000 it is the best
    short = [0.1, 0.2, 0.3, 0.5, 0.45]
    long = [0.2, 0.3, 0.4, 0.55, 0.7]
    signal_rows = [
        {
            "signal": "genome",
            "genome_hash": m.genome_hash,
            "seed": 0,
            "images": [1000, 2000],
            "accuracy": [a, b],
            "cpu_seconds": 10.0,
            "cpu_at": [5.0, 10.0],
        }
        for m, a, b in zip(members, short, long, strict=True)
    ]
    rows, _ = signal_table(members, truth_rows, signal_rows)
    by_name = {(r["signal"], r["images"]): r for r in rows}
    assert by_name[("genome", 1000)]["regret"] == pytest.approx(0.1)
    race = by_name[("genome race2", 1000)]
    assert race["regret"] == 0.0
    assert race["cpu_seconds"] == pytest.approx(5.0 + 2 * 5.0 / 5)
