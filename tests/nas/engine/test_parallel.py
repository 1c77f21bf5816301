"""The Ray evaluator's handling of a connection to Ray that breaks mid-search (unit tests:
a stand-in for Ray whose ``wait`` fails as a dead local raylet makes it fail; the real
cluster is in test_cluster.py)."""

import errno
import itertools
import socket
import time
from typing import Any, cast

import pytest

from nas.core.errors import ClusterLost
from nas.core.trial import EvalRequest
from nas.engine import parallel


class _BrokenRay:
    """Submits tasks, then fails every ``wait`` as Ray does once its raylet is gone."""

    def __init__(self) -> None:
        self.cancelled: list[Any] = []

    def wait(self, refs: list[Any], **_: Any) -> Any:
        raise OSError(errno.EPIPE, "Broken pipe")

    def cancel(self, ref: Any, force: bool = False) -> None:
        self.cancelled.append(ref)


class _Task:
    def remote(self, *args: Any) -> object:
        return object()


def _evaluator(head: str) -> parallel.RayEvaluator:
    evaluator = object.__new__(parallel.RayEvaluator)
    evaluator._ray = _BrokenRay()
    evaluator.workers = 2
    evaluator.timeout_seconds = 60.0
    evaluator.poll_seconds = 0.01
    evaluator._task = _Task()
    evaluator._data = None
    evaluator._board = None
    evaluator._tokens = itertools.count()
    evaluator._progress = time.monotonic()
    evaluator._lost = False
    evaluator._head = head
    evaluator._head_silent_since = None
    return evaluator


def _requests() -> list[EvalRequest]:
    return [cast(EvalRequest, object()) for _ in range(3)]  # never read: the task is a stand-in


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_broken_pipe_with_the_head_gone_says_the_head_stopped_answering(monkeypatch):
    monkeypatch.setattr(parallel, "HEAD_GRACE_SECONDS", 0.2)
    evaluator = _evaluator(f"127.0.0.1:{_closed_port()}")
    with pytest.raises(ClusterLost, match="stopped answering"):
        list(evaluator.map(_requests()))
    assert evaluator._ray.cancelled == []  # nothing is asked of a Ray that is gone


def test_a_broken_pipe_with_the_head_answering_still_stops_the_search(monkeypatch):
    monkeypatch.setattr(parallel, "HEAD_GRACE_SECONDS", 0.2)
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        evaluator = _evaluator(f"127.0.0.1:{head.getsockname()[1]}")
        with pytest.raises(
            ClusterLost, match=r"connection to the Ray cluster .* broke \(Broken pipe\)"
        ):
            list(evaluator.map(_requests()))
    assert evaluator._ray.cancelled == []
