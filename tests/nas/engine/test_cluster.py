"""A search on a real multi-node Ray cluster (a head and two one-CPU worker nodes on this
machine, Ray's ``cluster_utils.Cluster``), driven through ``--address`` by a ``nas
search`` process, with a worker node removed half-way through the run."""

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


@pytest.mark.slow
def test_a_node_removed_mid_run_loses_nothing_and_the_front_is_unchanged(
    tmp_path: Path, tiny_search: Path
):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        nodes = {node.node_id: node for node in (cluster.add_node(num_cpus=1) for _ in range(2))}
        cluster.wait_for_nodes()
        run = tmp_path / "run"
        experiment = tiny_search.parent / "tiny.toml"
        search = subprocess.Popen(
            [str(Path(sys.executable).parent / "nas"), "search", str(experiment),
             "--out", str(run), "--address", cluster.address],
            cwd=tmp_path,  # where the project is importable only as installed
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and search.poll() is None:
            if (run / "run.json").exists() and RunStore.open(run).trials():
                break
            time.sleep(0.5)
        before = {t.number: t.node for t in RunStore.open(run).trials()}
        # the node that has not answered yet is still training: remove it, and its
        # evaluation with it
        first_node = before[min(before)]
        kept = nodes[first_node]
        (removed,) = (node for node_id, node in nodes.items() if node_id != first_node)
        cluster.remove_node(removed)
        output, _ = search.communicate(timeout=300)
        assert search.returncode == 0, output
    finally:
        cluster.shutdown()

    records = RunStore.open(run).trials()
    assert _trials(run) == _trials(tiny_search)  # nothing lost, the same front
    assert {r.node for r in records if r.ok} <= set(nodes)
    after = [r for r in records if r.number not in before]
    # at most one result was on its way back in the instant the node went
    assert after and sum(r.node != kept.node_id for r in after) <= 1
    assert all(r.threads == 1 for r in records if r.ok)  # one CPU per node, measured there


@pytest.mark.slow
def test_a_head_that_dies_mid_run_stops_the_driver_in_one_line_and_resume_ends_the_same(
    tmp_path: Path, tiny_search: Path, ray_address: str
):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    run = tmp_path / "run"
    nas = str(Path(sys.executable).parent / "nas")
    try:
        search = subprocess.Popen(
            [nas, "search", str(tiny_search.parent / "tiny.toml"), "--out", str(run),
             "--address", cluster.address],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and search.poll() is None:
            if (run / "run.json").exists() and RunStore.open(run).trials():
                break
            time.sleep(0.5)
        recorded = _trials(run)
        cluster.remove_node(cluster.head_node, allow_graceful=False)
        _, stderr = search.communicate(timeout=120)  # Ray alone would wait a minute
    finally:
        cluster.shutdown()

    assert search.returncode == 3, stderr[-3000:]
    ours = [line for line in stderr.splitlines() if line.startswith("nas:")]
    assert len(ours) == 1 and "stopped answering" in ours[0], stderr[-3000:]
    assert f"nas search --resume {run}" in ours[0]
    assert recorded and set(recorded) <= set(_trials(run))  # nothing recorded is lost

    resumed = subprocess.run(
        [nas, "search", "--resume", str(run), "--address", ray_address],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _trials(run) == _trials(tiny_search)  # the front of an uninterrupted run


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
