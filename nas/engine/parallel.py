"""The map seam: evaluate many candidates, serially in-process or as Ray tasks.

Both evaluators yield :class:`~nas.core.trial.EvalResult` objects as they complete, so the
driver can record each one at once and show progress. The Ray evaluator puts the data
in the object store once, runs at most ``workers`` evaluations at a time, enforces the
per-evaluation time-out (a task past it is cancelled, which kills its worker), runs an
evaluation whose worker died again up to ``retries`` times (Ray's own task retry), then
turns it into a failed result. Workers are recycled after ``recycle_after`` tasks,
because TensorFlow leaks memory across many models even with ``clear_session()``.
The time-out counts from when a worker starts the evaluation (each worker posts that
to a small actor on the driver's node), so queueing and worker start-up do not eat into
it; a retry on another worker gets the whole time-out again. Each result names the Ray
node it ran on and the threads TensorFlow had there (the CPUs Ray gave the task).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from nas.core.errors import ClusterLost, ConfigError, FailureReason
from nas.core.faults import failpoint
from nas.core.tensorflow_logs import ENVIRONMENT as TENSORFLOW_ENVIRONMENT
from nas.core.tensorflow_logs import import_tensorflow_quietly, set_log_level
from nas.core.trial import EvalData, EvalRequest, EvalResult

__all__ = [
    "Evaluator",
    "RayEvaluator",
    "SerialEvaluator",
    "check_address",
    "cluster_threads",
    "default_threads",
    "shipped_packages",
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


def cluster_threads(nodes: list[dict[str, Any]], workers: int) -> int:
    """TensorFlow threads per evaluation on a Ray cluster: the alive nodes' CPUs shared
    by ``workers`` evaluations at once, never more than the largest node has (one
    evaluation runs on one node). ``nodes`` is what ``ray.nodes()`` returns."""
    cpus = [int(node["Resources"].get("CPU", 0)) for node in nodes if node.get("Alive")]
    if not any(cpus):
        return 1
    return max(1, min(max(cpus), sum(cpus) // max(1, workers)))


def _evaluate_in_worker(
    request: EvalRequest, data: EvalData, board: Any = None, token: str = ""
) -> EvalResult:
    """One evaluation, in a Ray worker (or in this process for :class:`SerialEvaluator`).

    In Ray it first tells ``board`` that ``token`` has started (the driver's time-out
    counts from then), sizes TensorFlow to the CPUs Ray gave the task on this node, and
    records the node."""
    set_log_level()
    node, device, note = "", "", ""
    if board is not None:
        import ray

        context = ray.get_runtime_context()
        node = context.get_node_id()
        cpus = context.get_assigned_resources().get("CPU")
        if cpus:
            request = dataclasses.replace(request, threads=max(1, int(cpus)))
        with contextlib.suppress(Exception):  # a dead board: the driver falls back
            # waited for, before any work: a start still on its way when the worker died,
            # or when its retry's result came in, was a restart the driver never counted
            ray.get(board.started.remote(token), timeout=5)
        device, note = _training_device(context.get_assigned_resources().get("GPU", 0.0))
    from nas.training.evaluate import evaluate  # TensorFlow is imported in the worker only

    result = evaluate(request, data)
    return dataclasses.replace(result, node=node, device=device, device_note=note)


GPU_INSTALL = 'pip install "tensorflow[and-cuda]"'
"""What a GPU node needs instead of the default install (``tensorflow-cpu`` on Linux
x86-64); ``docs/cluster.md`` gives the whole install."""


def _training_device(reserved_gpus: float) -> tuple[str, str]:
    """The device this worker's TensorFlow trains on ("GPU" or "CPU") and, when Ray
    reserved a GPU that TensorFlow cannot see, the one line that says so. With a GPU,
    TensorFlow grows its memory as it needs it, so that evaluations sharing one
    (``gpus_per_worker`` below 1) do not each reserve all of it."""
    import_tensorflow_quietly()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        with contextlib.suppress(RuntimeError):  # already initialised in this process
            tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        return "GPU", ""
    if not reserved_gpus:
        return "CPU", ""
    build = "a CPU-only TensorFlow" if not tf.test.is_built_with_cuda() else "no usable GPU"
    return "CPU", (
        f"Ray reserved {reserved_gpus:g} GPU for this evaluation but TensorFlow sees none "
        f"({build}); it trained on the CPU. On GPU nodes: {GPU_INSTALL} (docs/cluster.md)"
    )


class _StartBoard:
    """A Ray actor (no CPU, on the driver's node) where workers post the tokens of the
    evaluations they start; the driver takes them at every poll."""

    def __init__(self) -> None:
        self._new: list[str] = []

    def started(self, token: str) -> None:
        self._new.append(token)

    def take(self) -> list[str]:
        new, self._new = self._new, []
        return new


@dataclass
class _Running:
    """An evaluation submitted to Ray: when it was submitted and when a worker started
    it (None while it waits for one)."""

    request: EvalRequest
    token: str
    submitted: float
    started: float | None = None
    starts: int = 0  # how many workers began it: more than one after a worker died


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

    ``threads`` is each task's CPU share: the Ray task reserves that many CPUs, and the
    worker sizes TensorFlow's pools to the CPUs Ray gave it. Locally Ray is started with
    ``workers * threads`` CPUs; on a cluster, ``threads=None`` takes the cluster's CPUs
    (:func:`cluster_threads`) shared by ``threads_share`` evaluations (default:
    ``workers``). ``gpus`` per task is Ray's ``num_gpus``, dropped with a note when the
    cluster has no GPU. The project's packages, and the plugin
    ``modules``, are shipped with the job (:func:`shipped_packages`). The time-out of an
    evaluation counts from when a worker starts it, not from its submission; one still
    waiting for a worker times out only when nothing at all has started or ended for
    that long.
    """

    def __init__(
        self,
        data: EvalData,
        *,
        workers: int,
        threads: int | None,
        timeout_seconds: float,
        address: str | None = None,
        retries: int = 1,
        recycle_after: int = 10,
        poll_seconds: float = 1.0,
        gpus: float = 0.0,
        modules: Iterable[str] = (),
        threads_share: int | None = None,
    ) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._ray = ray
        self.workers = workers
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.notes: list[str] = []
        self._started_here = not ray.is_initialized()
        if self._started_here:
            local_cpus = None if address else workers * (threads or default_threads(workers))
            _start_ray(ray, address=address, num_cpus=local_cpus, modules=modules)
        self.threads = threads or cluster_threads(ray.nodes(), threads_share or workers)
        if gpus and not ray.cluster_resources().get("GPU"):
            self.notes.append(
                f"gpus_per_worker = {gpus:g} ignored: the Ray cluster has no GPU; "
                "evaluations run on CPUs"
            )
            gpus = 0.0
        self._data = ray.put(data)
        self._task = ray.remote(
            num_cpus=self.threads,
            num_gpus=gpus,
            max_calls=recycle_after,
            max_retries=retries,
            retry_exceptions=False,
        )(_evaluate_in_worker)
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self._board: Any = ray.remote(num_cpus=0, scheduling_strategy=here)(_StartBoard).remote()
        self._tokens = itertools.count()
        self._progress = time.monotonic()
        self._lost = False
        self._head = ray.get_runtime_context().gcs_address
        self._head_silent_since: float | None = None

    def map(
        self, requests: Iterable[EvalRequest], *, deadline: float | None = None
    ) -> Iterator[EvalResult]:
        queue = deque(requests)
        running: dict[Any, _Running] = {}
        self._progress = time.monotonic()  # the last start or result of any evaluation
        signals_before, interrupted = len(_received), False
        try:
            while queue or running:
                if deadline is not None and time.monotonic() >= deadline:
                    return  # the finally cancels what still runs
                while queue and len(running) < self.workers:
                    request = queue.popleft()
                    token = f"{next(self._tokens)}"
                    ref = self._task.remote(request, self._data, self._board, token)
                    running[ref] = _Running(request, token, time.monotonic())
                    failpoint("ray:submitted")
                ready, _ = self._ray.wait(list(running), num_returns=1, timeout=self.poll_seconds)
                if ready:
                    failpoint("ray:ready")
                elif not self._head_answers():
                    continue  # the board lived on the head's node: do not wait on it
                self._note_starts(running)  # first: a ready one's last start is counted
                for ref in ready:
                    self._progress = time.monotonic()
                    entry = running.pop(ref)
                    result = self._collect(ref, entry.request, entry.started or entry.submitted)
                    yield dataclasses.replace(result, restarts=max(0, entry.starts - 1))
                yield from self._expire(running)
        except KeyboardInterrupt:
            interrupted = True
            raise
        except OSError as exc:  # Ray's connection broke (only Ray is asked here)
            self._stop_on_broken_connection(exc)
        finally:
            # On Ctrl-C or SIGTERM nothing is cancelled: the shutdown that follows ends
            # the tasks anyway, and cancelling one whose result is just coming in crashes
            # the driver (see _cancel_unfinished).
            if running and not interrupted and not self._lost and len(_received) == signals_before:
                self._cancel_unfinished(list(running))

    def _head_answers(self) -> bool:
        """Whether the head node's control service (the GCS) takes connections; raise
        :class:`~nas.core.errors.ClusterLost` once it has refused them for
        :data:`HEAD_GRACE_SECONDS`.

        Ray itself notices a dead head only after a minute, then ends the driver's
        process from C++ with a page of logs and no word on what to do; a TCP connect
        to the GCS port answers at once (refused) when the head is gone."""
        host, _, port = self._head.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2.0).close()
        except OSError as exc:
            now = time.monotonic()
            self._head_silent_since = self._head_silent_since or now
            if now - self._head_silent_since >= HEAD_GRACE_SECONDS:
                self._board = None  # it lived on the head's node, or cannot be asked now
                self._lost = True
                raise ClusterLost(
                    f"the Ray head at {self._head} stopped answering "
                    f"({exc.strerror or type(exc).__name__}) during the search"
                ) from None
            return False
        self._head_silent_since = None
        return True

    def _stop_on_broken_connection(self, error: OSError) -> NoReturn:
        """Raise :class:`~nas.core.errors.ClusterLost` for a broken connection to Ray.

        A killed head node's raylet goes first, so the driver's pipe can break before its
        control service refuses connections: probe the head through its grace, to say that
        it stopped answering when it did. Either way the driver's Ray cannot go on."""
        until = time.monotonic() + 2 * HEAD_GRACE_SECONDS
        while time.monotonic() < until:
            self._head_answers()  # raises ClusterLost once the head refused for its grace
            time.sleep(HEAD_GRACE_SECONDS / 5)
        self._board = None
        self._lost = True
        raise ClusterLost(
            f"the connection to the Ray cluster at {self._head} broke "
            f"({error.strerror or type(error).__name__}) during the search"
        ) from None

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

    def _note_starts(self, running: dict[Any, _Running]) -> None:
        """Start the clocks of the evaluations that workers have begun (again, for a
        retry on another worker). Without the board (it died with its node), every
        evaluation counts from its submission, as a clock that never started would."""
        if self._board is None:
            return
        try:
            posted = list(self._ray.get(self._board.take.remote(), timeout=30))
        except Exception:
            self._board = None
            for entry in running.values():
                entry.started = entry.started or entry.submitted
            return
        now = time.monotonic()
        for entry in running.values():
            if entry.token in posted:
                entry.started = now
                entry.starts += posted.count(entry.token)
        if posted:
            self._progress = now

    def _expire(self, running: dict[Any, _Running]) -> Iterator[EvalResult]:
        """Cancel and fail the evaluations past the time-out: a started one counts from
        its start; one still waiting for a worker only when no evaluation at all has
        started or finished for that long (the cluster is stuck, or has no node that
        fits it), so waiting in a busy cluster's queue never fails."""
        now = time.monotonic()
        late = [
            ref
            for ref, entry in running.items()
            if now - (entry.started or max(entry.submitted, self._progress)) > self.timeout_seconds
        ]
        for ref in self._cancel_unfinished(late):  # a finished one is collected next time
            entry = running.pop(ref)
            if entry.started is None:
                detail = (
                    f"no worker started it, and no other evaluation started or ended, for "
                    f"{self.timeout_seconds:g} s (budget.timeout_seconds): the cluster has "
                    "no node free for it"
                )
            else:
                detail = f"no result after {self.timeout_seconds:g} s (budget.timeout_seconds)"
            yield EvalResult(
                genome_hash=entry.request.genome_hash,
                failure="timeout",
                detail=detail,
                seconds=now - (entry.started or entry.submitted),
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
        if self._board is not None and self._ray.is_initialized():
            with contextlib.suppress(Exception):
                self._ray.kill(self._board)
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


HEAD_GRACE_SECONDS = 5.0
"""How long the head node may refuse connections before the search stops: enough for a
blip, well inside the minute after which Ray ends the driver on its own."""


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


def shipped_packages(modules: Iterable[str] = ()) -> list[str]:
    """The folders shipped with every Ray job of a search (``runtime_env``
    ``py_modules``): the project's packages, and the top-level packages of ``modules``
    (plugin spaces or tasks named by module, e.g. ``mypackage.smile``). A node then needs
    only the dependencies, and the code a run started with is the code its workers run
    to the end, whatever is edited or installed meanwhile. A plugin that is a single
    top-level ``.py`` file cannot be shipped this way: install it on every node."""
    folders = []
    for name in ("nas", "search_spaces", "baselines", *modules):
        spec = importlib.util.find_spec(name.split(".")[0])
        locations = list(spec.submodule_search_locations or []) if spec else []
        if locations and locations[0] not in folders:
            folders.append(locations[0])
    return folders


def _start_ray(
    ray: Any, *, address: str | None, num_cpus: int | None, modules: Iterable[str] = ()
) -> None:
    """Start Ray here, or connect to the cluster at ``address``, shipping the code.

    The job's ``working_dir`` is an empty folder: with one, Ray no longer puts the
    driver's own folder first on the workers' ``sys.path``, where the source tree would
    shadow the shipped copies."""
    set_log_level()
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    empty = tempfile.mkdtemp(prefix="facenas-job-")
    runtime_env = {
        "working_dir": empty,
        "py_modules": shipped_packages(modules),
        "excludes": ["__pycache__", "*.pyc"],
        "env_vars": dict(TENSORFLOW_ENVIRONMENT),
    }
    try:
        ray.init(
            # "local": a Ray of our own, even where another runs on this machine (a
            # plain init would join the cluster that `ray start` left here)
            address=address or "local",
            num_cpus=num_cpus,
            runtime_env=runtime_env,
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
    finally:
        shutil.rmtree(empty, ignore_errors=True)  # uploaded by ray.init, no longer needed
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
