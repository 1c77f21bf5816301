"""A search on a real multi-node Ray cluster (a head and two one-CPU worker nodes on this
machine, Ray's ``cluster_utils.Cluster``), driven through ``--address`` by a ``nas
search`` process, with a worker node removed half-way through the run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.store import RunStore


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
