"""Fault injection, done for real: SIGKILL the search driver, kill Ray workers, time out.

The driver runs as a separate ``python -m nas search`` process on Ray. Failpoints
(:mod:`nas.faults`) make it send itself SIGKILL at exact places: before the first
checkpoint, in the middle of a checkpoint write, between two evaluations while others
run, between a tell and its checkpoint, between writing weights and recording the trial.
Each time the search is resumed, and the run that was killed seven times must end with
the same trials and the same front as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nas.config import experiment_from_dict
from nas.faults import ENVIRONMENT_VARIABLE
from nas.pareto import compute_front
from nas.store import RunStore

pytestmark = pytest.mark.slow

KILL_POINTS = [
    ("run:opened@1", "after the run is created, before the first checkpoint"),
    ("write:checkpoint.json@1", "during the first checkpoint write"),
    ("evaluation:recorded@2", "between two evaluations of generation 0, one still running"),
    ("generation:told@1", "after a tell, before its checkpoint"),
    ("write:*.weights.h5@2", "after writing a model's weights, before recording its trial"),
    ("write:checkpoint.json@2", "during the checkpoint write after a tell"),
    ("generation:asked@2", "right after the next generation was asked for"),
]


def _experiment_file(folder: Path, data: Path) -> Path:
    path = folder / "tiny.toml"
    path.write_text(
        'name = "tiny"\nseed = 3\nobjectives = ["accuracy", "params"]\n'
        f'[data]\npath = "{data}"\n'
        "[budget]\nepochs = 1\nmax_train_images = 96\nmax_validation_images = 48\n"
        "max_params = 200000\ntrain_seconds = 120\ntimeout_seconds = 300\n"
        "[search]\npopulation = 4\ngenerations = 2\nworkers = 2\n"
    )
    return path


def _nas(*args: str, failpoints: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    if failpoints:
        env[ENVIRONMENT_VARIABLE] = failpoints
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _outcome(run_dir: Path) -> tuple[set[tuple], list[tuple]]:
    """Every trial as (generation, genome hash, values, failure), and the front's members."""
    store = RunStore.open(run_dir)
    trials = store.trials()
    hashes = [t.genome_hash for t in trials]
    assert len(hashes) == len(set(hashes)), "a completed evaluation was trained again"
    front = compute_front(trials, store.info.objectives)
    return (
        {(t.generation, t.genome_hash, t.values, t.failure) for t in trials},
        sorted((t.genome_hash, t.values) for t in front.members),
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, faces_csv: Path) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    _experiment_file(folder, faces_csv)
    return folder


@pytest.fixture(scope="module")
def uninterrupted(workspace: Path) -> Path:
    result = _nas("search", "tiny.toml", "--out", "reference", cwd=workspace)
    assert result.returncode == 0, result.stderr[-2000:]
    return workspace / "reference"


def test_a_search_killed_at_seven_points_ends_like_an_uninterrupted_one(
    workspace: Path, uninterrupted: Path
):
    run_dir = workspace / "killed"
    recorded: set[str] = set()
    for spec, where in KILL_POINTS:
        args = ("--resume", "killed") if (run_dir / "run.json").exists() else ("tiny.toml",)
        if args == ("tiny.toml",):
            args += ("--out", "killed")
        result = _nas("search", *args, failpoints=spec, cwd=workspace)
        assert result.returncode == -signal.SIGKILL, f"{spec} ({where}) was not reached"
        assert (run_dir / "run.json").exists()
        if (run_dir / "checkpoint.json").exists():  # never torn, whenever the kill came
            json.loads((run_dir / "checkpoint.json").read_text())
        if spec.startswith("write:checkpoint.json"):
            assert list(run_dir.glob(".checkpoint.json.*.tmp")), "the kill missed the write"
        hashes = {t.genome_hash for t in RunStore.open(run_dir).trials()}
        assert recorded <= hashes, f"completed evaluations lost at {spec}"
        recorded = hashes

    result = _nas("search", "--resume", "killed", cwd=workspace)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "evaluations restored from the store" in result.stdout
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / "models").glob(".*.tmp"))
    assert json.loads((run_dir / "checkpoint.json").read_text())["finished"]

    trials, front = _outcome(run_dir)
    expected_trials, expected_front = _outcome(uninterrupted)
    assert trials == expected_trials
    assert front == expected_front


def test_the_same_experiment_into_the_same_out_dir_resumes(workspace: Path, uninterrupted: Path):
    result = _nas(
        "search", "tiny.toml", "--out", "again", failpoints="evaluation:recorded@3", cwd=workspace
    )
    assert result.returncode == -signal.SIGKILL
    done = len(RunStore.open(workspace / "again").trials())
    assert done >= 3
    status = _nas("status", "again", cwd=workspace).stdout
    assert "stopped in generation 0 of 0..2; continue with: nas search --resume again" in status
    assert f"{done} evaluations recorded" in status

    result = _nas("search", "tiny.toml", "--out", "again", cwd=workspace)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{done} evaluations restored from the store" in result.stdout
    assert _outcome(workspace / "again") == _outcome(uninterrupted)
    status = _nas("status", "again", cwd=workspace).stdout
    assert "finished: generations 0..2" in status and "peak resident memory" in status


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_search_stops_cleanly_and_says_how_to_resume(
    workspace: Path, uninterrupted: Path, signum: int
):
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    out = f"interrupted-{signum}"
    command = [sys.executable, "-m", "nas", "search", "tiny.toml", "--out", out]
    process = subprocess.Popen(
        command,
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a shell's background jobs (CI) inherit SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if (workspace / out / "models").exists() and any(
            (workspace / out / "models").glob("*.weights.h5")
        ):
            break
        time.sleep(0.2)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert f"nas: interrupted; continue with: nas search --resume {out}" in stderr
    assert "Traceback" not in stderr

    result = _nas("search", "--resume", out, cwd=workspace)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _outcome(workspace / out) == _outcome(uninterrupted)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--storage", "nosuchdb://x/y"), "storage 'nosuchdb://x/y' cannot be opened"),
        (
            ("--storage", "postgresql://nobody@127.0.0.1:1/none"),
            "storage 'postgresql://nobody@127.0.0.1:1/none' cannot be opened",
        ),
        (("--address", "127.0.0.1:1"), "--address 127.0.0.1:1: cannot reach a Ray cluster there"),
        (("--address", "no-port"), "--address no-port: expected host:port"),
    ],
    ids=["unknown-storage-scheme", "unreachable-database", "unreachable-ray", "address-no-port"],
)
def test_bad_storage_or_address_is_one_line_and_leaves_no_run(
    workspace: Path, args: tuple[str, ...], message: str
):
    result = _nas("search", "tiny.toml", "--out", "bad", *args, cwd=workspace)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("nas: ")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-1000:]
    assert "Traceback" not in result.stderr
    assert not (workspace / "bad").exists()


# --- Ray workers killed in the middle of an evaluation -------------------------------


def _evaluation_processes() -> list[int]:
    """PIDs of this test session's Ray workers running an evaluation right now.

    Ray names a worker process after the task it runs; the local Ray started by this
    process is its child, so only descendants of this process are ours.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::_evaluate_in_worker") and _descends_from_us(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _descends_from_us(pid: int) -> bool:
    ours = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent's PID
        if pid == ours:
            return True
    return False


class _Killer(threading.Thread):
    """SIGKILLs every process that runs an evaluation, up to ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        super().__init__(daemon=True)
        self.limit = limit
        self.killed: list[int] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set() and len(self.killed) < self.limit:
            for pid in _evaluation_processes():
                if pid not in self.killed and len(self.killed) < self.limit:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@pytest.fixture(scope="module")
def eval_setup(faces_csv: Path, ray_local):
    from nas.search import load_task_data
    from nas.space import genome_hash, load_space
    from nas.trial import EvalRequest

    experiment = experiment_from_dict(
        {
            "name": "workers",
            "data": {"path": str(faces_csv)},
            "budget": {"epochs": 2, "max_train_images": 256, "max_validation_images": 64},
        }
    )
    data = load_task_data(experiment).eval_data
    space = load_space("cnn")
    genome = space.sample(np.random.default_rng(11))
    key = genome_hash(space, genome)
    request = EvalRequest(
        space="cnn", genome=space.to_json(genome), genome_hash=key, seed=1, budget=experiment.budget
    )
    return data, request


def _evaluate(data, request, *, retries: int, timeout: float = 300.0):
    from nas.parallel import RayEvaluator

    evaluator = RayEvaluator(
        data, workers=1, threads=1, timeout_seconds=timeout, retries=retries, poll_seconds=0.2
    )
    try:
        (result,) = evaluator.map([request])
    finally:
        evaluator.close()
    return result


def test_a_killed_worker_is_retried_and_the_evaluation_completes(eval_setup):
    data, request = eval_setup
    killer = _Killer(limit=1)
    killer.start()
    result = _evaluate(data, request, retries=1)
    killer.stop()
    assert len(killer.killed) == 1
    assert result.ok, result.detail
    assert result.pid != killer.killed[0]


def test_a_worker_killed_every_time_fails_after_the_retries(eval_setup):
    data, request = eval_setup
    killer = _Killer(limit=3)
    killer.start()
    result = _evaluate(data, request, retries=2)
    killer.stop()
    assert len(killer.killed) == 3  # the first attempt and two retries
    assert result.failure == "worker_died"


def test_an_evaluation_past_its_timeout_is_cancelled_and_recorded(eval_setup):
    data, request = eval_setup
    result = _evaluate(data, request, retries=1, timeout=0.5)
    assert result.failure == "timeout"
    assert "budget.timeout_seconds" in result.detail
    deadline = time.monotonic() + 30
    while _evaluation_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _evaluation_processes(), "the timed-out evaluation kept running"
