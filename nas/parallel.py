"""The map seam: evaluate many candidates, serially in-process or as Ray tasks.

Both evaluators yield :class:`~nas.trial.EvalResult` objects as they complete, so the
driver can record each one at once and show progress. The Ray evaluator puts the data
in the object store once, runs at most ``workers`` evaluations at a time, enforces the
per-evaluation time-out (a task past it is cancelled, which kills its worker), runs an
evaluation whose worker died again up to ``retries`` times (Ray's own task retry), then
turns it into a failed result. Workers are recycled after ``recycle_after`` tasks,
because TensorFlow leaks memory across many models even with ``clear_session()``.
The time-out counts from submission, retries included, so no evaluation outlives it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from nas.errors import ConfigError, FailureReason
from nas.faults import failpoint
from nas.trial import EvalData, EvalRequest, EvalResult

__all__ = [
    "Evaluator",
    "RayEvaluator",
    "SerialEvaluator",
    "check_address",
    "default_threads",
    "stop_cleanly_on_sigterm",
    "stopped_by",
]


class Evaluator(Protocol):
    """Evaluates requests and yields their results in completion order."""

    def map(
        self, requests: Iterable[EvalRequest], *, deadline: float | None = None
    ) -> Iterator[EvalResult]:
        """Yield one result per request, as each completes.

        Past ``deadline`` (a ``time.monotonic()`` reading), start nothing more, cancel
        what runs and return: the results not yielded are lost (a search budget ran out).
        """
        ...

    def close(self) -> None:
        """Release workers."""
        ...


def default_threads(workers: int) -> int:
    """TensorFlow threads per worker so that ``workers * threads <= cores``."""
    return max(1, (os.cpu_count() or 1) // workers)


def _evaluate_in_worker(request: EvalRequest, data: EvalData) -> EvalResult:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nas.evaluate import evaluate  # TensorFlow is imported in the worker only

    return evaluate(request, data)


class SerialEvaluator:
    """Evaluates in this process, one at a time (unit tests, debugging)."""

    def __init__(self, data: EvalData) -> None:
        self.data = data

    def map(
        self, requests: Iterable[EvalRequest], *, deadline: float | None = None
    ) -> Iterator[EvalResult]:
        for request in requests:
            if deadline is not None and time.monotonic() >= deadline:
                return
            yield _evaluate_in_worker(request, self.data)

    def close(self) -> None:
        pass


class RayEvaluator:
    """Evaluates as Ray tasks, on this machine by default or on a cluster at ``address``.

    ``threads`` is each task's CPU share: the Ray task reserves that many CPUs and sizes
    TensorFlow's pools to match. Locally Ray is started with ``workers * threads`` CPUs.
    """

    def __init__(
        self,
        data: EvalData,
        *,
        workers: int,
        threads: int,
        timeout_seconds: float,
        address: str | None = None,
        retries: int = 1,
        recycle_after: int = 10,
        poll_seconds: float = 1.0,
    ) -> None:
        import ray

        self._ray = ray
        self.workers = workers
        self.threads = threads
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self._started_here = not ray.is_initialized()
        if self._started_here:
            _start_ray(ray, address=address, num_cpus=None if address else workers * threads)
        self._data = ray.put(data)
        self._task = ray.remote(
            num_cpus=threads, max_calls=recycle_after, max_retries=retries, retry_exceptions=False
        )(_evaluate_in_worker)

    def map(
        self, requests: Iterable[EvalRequest], *, deadline: float | None = None
    ) -> Iterator[EvalResult]:
        queue = deque(requests)
        running: dict[Any, tuple[EvalRequest, float]] = {}
        signals_before, interrupted = len(_received), False
        try:
            while queue or running:
                if deadline is not None and time.monotonic() >= deadline:
                    return  # the finally cancels what still runs
                while queue and len(running) < self.workers:
                    request = queue.popleft()
                    ref = self._task.remote(request, self._data)
                    running[ref] = (request, time.monotonic())
                    failpoint("ray:submitted")
                ready, _ = self._ray.wait(list(running), num_returns=1, timeout=self.poll_seconds)
                if ready:
                    failpoint("ray:ready")
                for ref in ready:
                    request, started = running.pop(ref)
                    yield self._collect(ref, request, started)
                yield from self._expire(running)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            # On Ctrl-C or SIGTERM nothing is cancelled: the shutdown that follows ends
            # the tasks anyway, and cancelling one whose result is just coming in crashes
            # the driver (see _cancel_unfinished).
            if running and not interrupted and len(_received) == signals_before:
                self._cancel_unfinished(list(running))

    def _collect(self, ref: Any, request: EvalRequest, started: float) -> EvalResult:
        from ray import exceptions

        try:
            return self._ray.get(ref)
        except exceptions.OutOfMemoryError as exc:
            return _failed(request, "oom", exc, started)
        except (exceptions.WorkerCrashedError, exceptions.TaskCancelledError) as exc:
            return _failed(request, "worker_died", exc, started)
        except exceptions.RayError as exc:
            return _failed(request, "error", exc, started)

    def _expire(self, running: dict[Any, tuple[EvalRequest, float]]) -> Iterator[EvalResult]:
        now = time.monotonic()
        late = [
            ref for ref, (_, started) in running.items() if now - started > self.timeout_seconds
        ]
        for ref in self._cancel_unfinished(late):  # a finished one is collected next time
            request, started = running.pop(ref)
            detail = f"no result after {self.timeout_seconds:g} s (budget.timeout_seconds)"
            yield EvalResult(
                genome_hash=request.genome_hash,
                failure="timeout",
                detail=detail,
                seconds=now - started,
            )

    def _cancel_unfinished(self, refs: list[Any]) -> list[Any]:
        """Cancel (killing their workers) the tasks of ``refs`` that have no result yet.

        ``ray.cancel`` of a task whose result is coming in crashes the driver (Ray 2.x:
        ``Check failed: ... Tried to complete task that was not pending`` in
        ``TaskManager::CompletePendingTask``, the reply thread completing a task that the
        cancel has just failed), so tasks with a result are left alone. The check narrows
        that window to the moment between a reply's arrival and its result being stored.
        """
        if not refs:
            return []
        _, unfinished = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in unfinished:
            self._ray.cancel(ref, force=True)
        return unfinished

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def check_address(address: str | None, timeout_seconds: float = 5.0) -> None:
    """Fail fast, with one line, when the Ray cluster at ``address`` cannot be reached.

    ``ray.init`` keeps retrying an unreachable head node for minutes; a plain TCP connect
    answers in seconds. ``None`` (start Ray here) and ``"auto"`` are not probed.
    """
    if address is None or address == "auto":
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    hint = "check the address (host:port of the head node, or 'auto')"
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}: expected host:port (or 'auto'); {hint}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_seconds).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"--address {address}: cannot reach a Ray cluster there ({reason}); {hint}"
        ) from None


def _start_ray(ray: Any, *, address: str | None, num_cpus: int | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    try:
        ray.init(
            address=address,
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=True,
            logging_level="ERROR",
        )
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        if address is None:
            raise ConfigError(f"cannot start Ray on this machine ({reason})") from None
        raise ConfigError(
            f"--address {address}: cannot connect to a Ray cluster ({reason}); "
            "check the address (host:port of the head node, or 'auto')"
        ) from None
    stop_cleanly_on_sigterm()


def stop_cleanly_on_sigterm() -> None:
    """Make SIGTERM stop this driver like Ctrl-C: a clean, resumable stop.

    ``ray.init`` replaces the driver's SIGTERM handler with one that exits at once, so
    this is called again once Ray has started. The handler raises
    :class:`KeyboardInterrupt`, so Ray is shut down on the way out, which ends the
    running evaluations; :func:`stopped_by` tells which signal it was. Ctrl-C goes
    through the same handler (where SIGINT has Python's default one), so that
    :meth:`RayEvaluator.map` knows a stop is under way wherever the interrupt lands.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupt)  # the same KeyboardInterrupt, recorded


def stopped_by() -> int | None:
    """The signal that :func:`stop_cleanly_on_sigterm`'s handler last received, if any."""
    return _received[-1] if _received else None


_received: list[int] = []


def _interrupt(signum: int, frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _failed(
    request: EvalRequest, reason: FailureReason, exc: Exception, started: float
) -> EvalResult:
    text = " ".join(str(exc).split())
    return EvalResult(
        genome_hash=request.genome_hash,
        failure=reason,
        detail=text[:300],
        seconds=time.monotonic() - started,
    )
