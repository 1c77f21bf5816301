"""Fault injection, done for real: SIGKILL the search driver, kill Ray workers, time out.

The driver runs as a separate ``python -m nas search`` process on Ray. Failpoints
(:mod:`nas.core.faults`) make it send itself a signal at exact places: SIGKILL before the
first checkpoint, in the middle of a checkpoint write, between two evaluations while
others run, between writing weights and recording the trial; Ctrl-C just as a result
comes in; SIGTERM between two evaluations. Each time the
search is continued, with ``--resume`` or by running the same experiment into the same
run directory, and the run stopped six times must end with the same trials and the same
front as the session's uninterrupted run (``tiny_search``).

Drivers connect to the session's Ray (``--address``) rather than each starting its own,
except the one stopped with Ctrl-C, which starts and shuts down a Ray of its own as a
user's search does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nas.core.faults import ENVIRONMENT_VARIABLE
from nas.engine.experiment import experiment_from_dict
from nas.storage.front import compute_front
from nas.storage.store import RunStore

pytestmark = pytest.mark.slow

KILLED, CTRL_C, SIGTERM = -signal.SIGKILL, 128 + signal.SIGINT, 128 + signal.SIGTERM

# (failpoint, where the search stops, its exit code, how it is continued afterwards).
# The stops after a tell and after an ask are killed in-process, with a fake evaluator, in
# tests/nas/engine/test_search_multifidelity.py; here each stop costs a driver and its Ray
# workers (TensorFlow's import alone is about 6 CPU-seconds a worker on 2 cores).
STOPS = [
    ("run:opened@1", "after the run is created, before the first checkpoint", KILLED, "resume"),
    ("write:checkpoint.json@1", "during the first checkpoint write", KILLED, "again"),
    (
        "evaluation:recorded@2",
        "between two evaluations of generation 0, one running",
        KILLED,
        "again",
    ),
    ("ray:ready@2=SIGINT", "Ctrl-C as a result comes in, on a Ray of its own", CTRL_C, "resume"),
    (
        "evaluation:recorded@1=SIGTERM",
        "SIGTERM (kill, a scheduler) between evaluations",
        SIGTERM,
        "again",
    ),
    (
        "write:*.weights.h5@2",
        "after writing a model's weights, before recording its trial",
        KILLED,
        "resume",
    ),
]


def _env(failpoints: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    if failpoints:
        env[ENVIRONMENT_VARIABLE] = failpoints
    return env


def _default_sigint() -> None:
    """As in a terminal: a shell's background jobs (CI) inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _nas(*args: str, failpoints: str | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nas", *args],
        cwd=cwd,
        env=_env(failpoints),
        capture_output=True,
        text=True,
        timeout=400,
        preexec_fn=_default_sigint,
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
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_search: Path) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    shutil.copy(tiny_search.parent / "tiny.toml", folder)
    return folder


def test_a_search_stopped_at_six_points_ends_like_an_uninterrupted_one(
    workspace: Path, tiny_search: Path, ray_address: str
):
    run_dir = workspace / "killed"
    hint = "nas: interrupted; continue with: nas search --resume killed"
    recorded: set[str] = set()
    start = ("tiny.toml", "--out", "killed")
    for spec, where, returncode, then in STOPS:
        address = () if returncode == CTRL_C else ("--address", ray_address)
        result = _nas("search", *start, *address, failpoints=spec, cwd=workspace)
        assert result.returncode == returncode, f"{spec} ({where}): {result.stderr[-2000:]}"
        assert (run_dir / "run.json").exists()
        if returncode != KILLED:  # a clean stop: the hint, and nothing left running
            assert hint in result.stderr
            assert "Traceback" not in result.stderr and "Check failed" not in result.stderr
            _assert_no_evaluation_left()
        if (run_dir / "checkpoint.json").exists():  # never torn, whenever the kill came
            json.loads((run_dir / "checkpoint.json").read_text())
        if spec.startswith("write:checkpoint.json"):
            assert list(run_dir.glob(".checkpoint.json.*.tmp")), "the kill missed the write"
        hashes = {t.genome_hash for t in RunStore.open(run_dir).trials()}
        assert recorded <= hashes, f"completed evaluations lost at {spec}"
        recorded = hashes
        if spec == "evaluation:recorded@2":
            status = _nas("status", "killed", cwd=workspace).stdout
            assert (
                "stopped in generation 0 of 0..1; continue with: nas search --resume killed"
                in status
            )
            assert f"{len(hashes)} evaluations recorded" in status
        # The same experiment into the same --out continues the run, as --resume does.
        start = ("tiny.toml", "--out", "killed") if then == "again" else ("--resume", "killed")

    result = _nas("search", *start, "--address", ray_address, cwd=workspace)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(recorded)} evaluations restored from the store" in result.stdout
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / "models").glob(".*.tmp"))
    assert json.loads((run_dir / "checkpoint.json").read_text())["finished"]
    status = _nas("status", "killed", cwd=workspace).stdout
    assert "finished: generations 0..1" in status and "peak resident memory" in status
    assert _outcome(run_dir) == _outcome(tiny_search)


RACE = """
import os, sys
import numpy as np
from nas.engine import parallel
from nas.core.config import Budget
from nas.core.task import Task
from nas.core.trial import EvalData, EvalRequest, EvalResult

def quick(request, data, board=None, token=""):
    import random, time
    time.sleep(random.uniform(0.0, 0.03))
    return EvalResult(genome_hash=request.genome_hash, metrics={"accuracy": 0.5})

parallel._evaluate_in_worker = quick
images, labels = np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4, np.int64)
task = Task(kind="classification", input_shape=(8, 8, 1), num_classes=5)
data = EvalData(task=task, train_images=images, train_targets=labels,
                validation_images=images, validation_targets=labels)
evaluator = parallel.RayEvaluator(data, workers=2, threads=1, timeout_seconds=60,
                                  address=sys.argv[1])
# A busy machine, on purpose: the driver's threads share one CPU, where Ray's reply
# thread runs only when the main thread leaves it time.
cpu = min(os.sched_getaffinity(0))
for thread in map(int, os.listdir("/proc/self/task")):
    os.sched_setaffinity(thread, {cpu})
    if thread != os.getpid():
        os.setpriority(os.PRIO_PROCESS, thread, 19)
interrupted = 0
for attempt in range(int(sys.argv[2])):
    requests = [EvalRequest(space="cnn", genome={}, genome_hash=f"{attempt}.{i}", seed=0,
                            budget=Budget()) for i in range(4)]
    try:
        for _ in evaluator.map(requests):
            pass
    except KeyboardInterrupt:
        interrupted += 1
evaluator.close()
print(f"{interrupted} interrupted")
"""


def test_ctrl_c_as_a_result_comes_in_never_crashes_the_driver(ray_address: str):
    """Ctrl-C lands as ``ray.wait`` returns a result: the moment that crashed the driver.

    The result's object is stored before Ray's reply thread marks its task completed;
    cancelling the task in between made the reply thread fail Ray's check (``Tried to
    complete task that was not pending``) and the driver exit 1 with a C++ stack trace.
    150 interrupted maps on a starved reply thread hit it about one in 20 before the fix.
    """
    attempts = 80  # about 98% to catch a fault that strikes one map in 20
    result = subprocess.run(
        [sys.executable, "-c", RACE, ray_address, str(attempts)],
        env=_env("ray:ready@1+=SIGINT"),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_default_sigint,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{attempts} interrupted" in result.stdout


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


def _assert_no_evaluation_left(seconds: float = 30.0) -> None:
    """A stopped search's evaluations end with it (Ray shut down, or its job ended)."""
    deadline = time.monotonic() + seconds
    while _evaluation_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _evaluation_processes(), "an evaluation outlived the search that ran it"


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
    """SIGKILLs every process that runs an evaluation, up to ``limit`` of them, once it
    has run one for ``after_seconds``."""

    def __init__(self, limit: int, after_seconds: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.limit = limit
        self.after_seconds = after_seconds
        self.killed: list[int] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        seen: dict[int, float] = {}
        while not self._stop_event.is_set() and len(self.killed) < self.limit:
            for pid in _evaluation_processes():
                first = seen.setdefault(pid, time.monotonic())
                if time.monotonic() - first < self.after_seconds:
                    continue
                if pid not in self.killed and len(self.killed) < self.limit:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@pytest.fixture(scope="module")
def eval_setup(faces_csv: Path, ray_local):
    from nas.core.space import genome_hash, load_space
    from nas.core.trial import EvalRequest
    from nas.engine.task_data import load_task_data

    experiment = experiment_from_dict(
        {
            "name": "workers",
            "data": {"path": str(faces_csv)},
            # 10 traced steps of its batch of 128: seconds of training for the killers to
            # land in, where one step (eager) could end before them
            "budget": {"train_images": 1280, "max_train_images": 96, "max_validation_images": 48},
        }
    )
    data = load_task_data(experiment).eval_data
    _assert_no_evaluation_left()  # of the searches above, which the killers must not see
    space = load_space("cnn")
    genome = space.sample(np.random.default_rng(11))
    key = genome_hash(space, genome)
    request = EvalRequest(
        space="cnn", genome=space.to_json(genome), genome_hash=key, seed=1, budget=experiment.budget
    )
    return data, request


def _evaluate(data, request, *, retries: int, timeout: float = 300.0):
    from nas.engine.parallel import RayEvaluator

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
    killer = _Killer(limit=1, after_seconds=1.0)  # once the worker has said it started
    killer.start()
    result = _evaluate(data, request, retries=1)
    killer.stop()
    assert len(killer.killed) == 1
    assert result.ok, result.detail
    assert result.pid != killer.killed[0]
    assert result.restarts == 1  # the death under it is counted, kept with the trial


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
