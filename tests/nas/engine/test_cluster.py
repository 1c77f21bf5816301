"""A search on a real multi-node Ray cluster (a head and two one-CPU worker nodes on this
machine, Ray's ``cluster_utils.Cluster``), driven through ``--address`` by a ``nas
search`` process, with a worker node removed half-way through the run and then the head
killed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.storage.store import RunStore


def _trials(run: Path) -> list[tuple]:
    return sorted(
        (t.generation, t.genome_hash, t.values, t.failure) for t in RunStore.open(run).trials()
    )


def _wait_for(run: Path, search: subprocess.Popen, ready, seconds: float = 240) -> list:
    """The run's trials once ``ready(trials)`` holds (or the search ended, or time is up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and search.poll() is None:
        if (run / "run.json").exists():
            trials = RunStore.open(run).trials()
            if ready(trials):
                return trials
        time.sleep(0.25)
    raise AssertionError(f"the search on the cluster ended or stalled (exit {search.poll()})")


@pytest.mark.slow
def test_a_node_lost_costs_nothing_a_dead_head_stops_the_driver_and_resume_ends_the_same(
    tmp_path: Path, tiny_search: Path, ray_address: str
):
    """One cluster (a head without CPUs, two one-CPU worker nodes), one ``nas search`` on
    it: a worker node removed as the first result comes in costs nothing (what it was
    training runs again on the other node); the head killed once a result has come in
    from the node left stops the driver with one line and exit code 3; resumed on another
    Ray, the run ends with the trials and front of an uninterrupted one. (One cluster and
    one driver for both faults: each costs a Ray start and a search's TensorFlow imports.)"""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    run = tmp_path / "run"
    nas = str(Path(sys.executable).parent / "nas")
    try:
        nodes = {node.node_id: node for node in (cluster.add_node(num_cpus=1) for _ in range(2))}
        cluster.wait_for_nodes()
        search = subprocess.Popen(
            [nas, "search", str(tiny_search.parent / "tiny.toml"), "--out", str(run),
             "--address", cluster.address],
            cwd=tmp_path,  # where the project is importable only as installed
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        before = {t.number: t.node for t in _wait_for(run, search, lambda trials: trials)}
        # the node that has not answered yet is still training: remove it, and its
        # evaluation with it
        kept = nodes[before[min(before)]]
        (removed,) = (node for node_id, node in nodes.items() if node_id != kept.node_id)
        cluster.remove_node(removed)
        trained_after = _wait_for(
            run, search, lambda trials: any(t.number not in before and t.node for t in trials)
        )
        recorded = {(t.generation, t.genome_hash, t.values, t.failure) for t in trained_after}
        cluster.remove_node(cluster.head_node, allow_graceful=False)
        _, stderr = search.communicate(timeout=120)  # Ray alone would wait a minute
    finally:
        cluster.shutdown()

    assert search.returncode == 3, stderr[-3000:]
    ours = [line for line in stderr.splitlines() if line.startswith("nas:")]
    assert len(ours) == 1 and "stopped answering" in ours[0], stderr[-3000:]
    assert f"nas search --resume {run}" in ours[0]
    records = RunStore.open(run).trials()
    assert recorded <= set(_trials(run))  # nothing recorded is lost
    assert {r.node for r in records if r.ok} <= set(nodes)
    after = [r for r in records if r.number not in before and r.node]
    # at most one result was on its way back in the instant the node went
    assert after and sum(r.node != kept.node_id for r in after) <= 1
    assert all(r.threads == 1 for r in records if r.ok)  # one CPU per node, measured there

    resumed = subprocess.run(
        [nas, "search", "--resume", str(run), "--address", ray_address],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _trials(run) == _trials(tiny_search)  # nothing lost, the same front


QUEUED = """
import sys
import numpy as np
from nas.engine import parallel
from nas.core.config import Budget
from nas.core.task import Task
from nas.core.trial import EvalData, EvalRequest, EvalResult

def slow(request, data, board=None, token=""):
    import time
    board.started.remote(token)
    time.sleep(request.seed)
    return EvalResult(genome_hash=request.genome_hash, metrics={"accuracy": 0.5})

parallel._evaluate_in_worker = slow
images, labels = np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4, np.int64)
task = Task(kind="classification", input_shape=(8, 8, 1), num_classes=5)
data = EvalData(task=task, train_images=images, train_targets=labels,
                validation_images=images, validation_targets=labels)
evaluator = parallel.RayEvaluator(data, workers=3, threads=1, timeout_seconds=3.5,
                                  address=sys.argv[1], poll_seconds=0.2)
def requests(seconds, n):
    return [EvalRequest(space="cnn", genome={}, genome_hash=str(i), seed=seconds,
                        budget=Budget()) for i in range(n)]
list(evaluator.map(requests(0, 2)))  # the job's workers started, its code unpacked
# three of 2 s at once on a Ray of two CPUs: the third waits about 2 s for a CPU
print(sorted(str(r.failure) for r in evaluator.map(requests(2, 3))))
evaluator.close()
"""


def test_the_time_out_counts_from_when_a_worker_starts_the_evaluation(ray_address: str):
    """Two seconds of queueing and two of running are within a 3.5 s time-out: the clock
    starts when a worker starts the evaluation (counted from submission, the third
    evaluation timed out)."""
    result = subprocess.run(
        [sys.executable, "-c", QUEUED, ray_address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "['None', 'None', 'None']"


def test_gpus_per_worker_is_dropped_with_a_note_on_a_machine_without_gpus(ray_local):
    import numpy as np

    from nas.core.task import Task
    from nas.core.trial import EvalData
    from nas.engine.parallel import RayEvaluator

    if ray_local.cluster_resources().get("GPU"):
        pytest.skip("this Ray cluster has a GPU: see the GPU test")
    images, labels = np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4, np.int64)
    task = Task(kind="classification", input_shape=(8, 8, 1), num_classes=5)
    data = EvalData(
        task=task,
        train_images=images,
        train_targets=labels,
        validation_images=images,
        validation_targets=labels,
    )
    evaluator = RayEvaluator(data, workers=1, threads=1, timeout_seconds=60, gpus=1)
    evaluator.close()
    assert evaluator.notes == [
        "gpus_per_worker = 1 ignored: the Ray cluster has no GPU; evaluations run on CPUs"
    ]


def test_a_candidate_trains_on_a_gpu_worker_with_memory_growth(tmp_path: Path, ray_local):
    """Where Ray sees a GPU: the evaluation reserves it (num_gpus) and TensorFlow grows
    its memory instead of taking all of it."""
    if not ray_local.cluster_resources().get("GPU"):
        pytest.skip("needs a GPU visible to Ray (none on this machine)")
    from nas.engine.experiment import experiment_from_dict
    from nas.engine.search import run_search

    experiment = experiment_from_dict(
        {
            "name": "gpu",
            "budget": {"train_images": 64, "max_train_images": 64, "max_validation_images": 32},
            "search": {"population": 4, "generations": 0, "workers": 1, "gpus_per_worker": 1},
        }
    )
    summary = run_search(experiment, out_dir=tmp_path / "run")
    assert summary.evaluations == 4 and summary.failures < 4
    trained = [t for t in RunStore.open(tmp_path / "run").trials() if t.ok]
    assert trained and all(t.device == "GPU" and not t.device_note for t in trained)


def test_a_reserved_gpu_that_tensorflow_cannot_see_is_named_in_one_line():
    """On this CPU-only install, a worker that Ray gave a GPU trains on the CPU and says
    why, naming the install GPU nodes need; without a reserved GPU there is nothing to say."""
    import tensorflow as tf

    from nas.engine.parallel import GPU_INSTALL, _training_device

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees a GPU here")
    device, note = _training_device(0.5)
    assert device == "CPU" and "\n" not in note
    assert "Ray reserved 0.5 GPU" in note and GPU_INSTALL in note
    assert _training_device(0.0) == ("CPU", "")


def test_workers_run_the_code_shipped_with_the_job_not_the_source_tree(ray_local):
    """The session's Ray was started from the repository (pytest's folder), where ``nas``
    is importable as the source tree; its workers import the copy shipped with the job."""

    @ray_local.remote
    def where() -> list[str]:
        import baselines
        import nas.engine.parallel
        import search_spaces.cnn
        import tests.nas.failing_space

        return [
            nas.engine.parallel.__file__,
            search_spaces.cnn.__file__,
            next(iter(baselines.__path__)),
            tests.nas.failing_space.__file__,
        ]

    paths = ray_local.get(where.remote())
    assert all("runtime_resources" in path and "py_modules_files" in path for path in paths), paths


def test_threads_on_a_cluster_share_its_cpus_without_spanning_nodes():
    from nas.engine.parallel import cluster_threads

    def node(cpus: int, alive: bool = True) -> dict:
        return {"Alive": alive, "Resources": {"CPU": float(cpus)}}

    assert cluster_threads([node(0), node(1), node(1)], workers=2) == 1
    assert cluster_threads([node(0), node(16), node(16)], workers=4) == 8
    assert cluster_threads([node(4), node(32)], workers=2) == 18
    assert cluster_threads([node(64)], workers=2) == 32
    assert cluster_threads([node(8), node(8, alive=False)], workers=2) == 4
    assert cluster_threads([node(2)], workers=8) == 1
