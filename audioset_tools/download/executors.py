"""Where per-clip work runs: threads in this process, or the workers of a Dask cluster.

:func:`open_executor` gives an :class:`Executor` for ``download.executor``:

- ``threads``: a thread pool of ``workers`` threads in this process; one identity, :data:`LOCAL_IDENTITY`.
- ``dask``: the workers of a Dask cluster (the optional extra ``[dask]``). With no scheduler
  address, a ``LocalCluster`` of ``workers`` processes with one thread each, on 127.0.0.1,
  without a dashboard; with one (``download.dask.scheduler``), the cluster listening there.
  Each worker's host is an identity (the address its requests leave from).

Whatever the kind, :meth:`Executor.submit` returns a :class:`concurrent.futures.Future`, so
the runner waits on threads and Dask alike with :func:`concurrent.futures.wait`. The
function and its arguments must pickle (a module-level function of plain values) and,
for Dask, be importable on the workers (audioset-tools installed there too).

A worker that dies while running a task fails its future with :class:`WorkerLost`: the
task did not complete, and the runner should run it again, paced like any other
request. On the LocalCluster it comes at the first death (``allowed_failures=0``), so the
runner alone decides about retries; a scheduler started by the user retries a task on
other workers by itself up to its ``distributed.scheduler.allowed-failures`` (Dask's
default: 3) before giving up, and only then does :class:`WorkerLost` arrive.

When the scheduler itself goes away, the tasks in flight fail with :class:`WorkerLost`
while the client tries to reconnect (for ``connect_timeout`` seconds); once it gives
up, every task and every later :meth:`~DaskExecutor.submit` fails with
:class:`SchedulerLost`: the run must stop (and resume on a rerun).

A task restricted to an identity (``submit(..., identity=host)``) must not run from any
other address; when that identity has had no worker for ``identity_grace`` seconds, its
waiting tasks fail with :class:`WorkerLost` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import importlib.metadata
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from ..errors import UserError
from ..sources.base import DEFAULT_IDENTITY

log = logging.getLogger(__name__)

ExecutorKind = Literal["threads", "dask"]
# The identity of work done in this process: requests leave from this machine's default route.
LOCAL_IDENTITY = DEFAULT_IDENTITY
# Seconds to reach a scheduler, and to wait for its first worker, before telling the user.
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_WORKER_WAIT = 60.0
# Seconds an identity may have no worker (a nanny restarts one in about a second) before
# the tasks restricted to it are failed.
DEFAULT_IDENTITY_GRACE = 30.0
_WATCH_INTERVAL = 1.0
_INSTALL_HINT = "pip install 'audioset-tools[dask]'"


class WorkerLost(Exception):
    """The worker running (or meant to run) a task is gone; the task did not complete: run it again elsewhere."""


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """One worker as ``doctor`` lists it."""

    # The worker's address (tcp://host:port), or "this process" for threads.
    address: str
    identity: str
    threads: int
    # The versions of audioset-tools and yt-dlp the worker runs, or why it cannot run ours.
    tooling: str


def tooling_versions() -> str:
    """``audioset-tools X, yt-dlp Y`` as installed in this process (runs on workers too)."""
    versions = []
    for distribution in ("audioset-tools", "yt-dlp"):
        try:
            versions.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{distribution} not installed")
    return ", ".join(versions)


class SchedulerLost(Exception):
    """The Dask scheduler is gone for good (the client gave up reconnecting): the run cannot go on here."""


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any, identity: str | None = None) -> concurrent.futures.Future:
        """Run ``fn(*args)``, from ``identity``'s address when given."""

    @property
    def slots(self) -> int:
        """How many tasks can run at once."""

    def identities(self) -> list[str]:
        """The addresses requests can leave from, sorted."""

    def slots_by_identity(self) -> dict[str, int]:
        """How many tasks can run at once from each identity."""

    def describe_workers(self) -> list[WorkerInfo]:
        """Every worker, for ``doctor``."""


class ThreadExecutor:
    """``workers`` threads in this process."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._workers = workers
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip")

    @property
    def slots(self) -> int:
        return self._workers

    def submit(self, fn: Callable[..., Any], *args: Any, identity: str | None = None) -> concurrent.futures.Future:
        if identity not in (None, LOCAL_IDENTITY):
            raise ValueError(f"the threads executor has only the identity {LOCAL_IDENTITY!r}, not {identity!r}")
        return self._pool.submit(fn, *args)

    def identities(self) -> list[str]:
        return [LOCAL_IDENTITY]

    def slots_by_identity(self) -> dict[str, int]:
        return {LOCAL_IDENTITY: self._workers}

    def describe_workers(self) -> list[WorkerInfo]:
        return [WorkerInfo("this process", LOCAL_IDENTITY, self._workers, tooling_versions())]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The workers of a Dask cluster, through a ``distributed.Client``; see the module docstring."""

    def __init__(self, client: Any, identity_grace: float = DEFAULT_IDENTITY_GRACE) -> None:
        self._client = client
        self._identity_grace = identity_grace
        # Restricted tasks not done yet: (dask future, our future, identity).
        self._restricted: list[tuple[Any, concurrent.futures.Future, str]] = []
        self._missing_since: dict[str, float] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- what the cluster offers --------------------------------------------------------
    def _workers(self) -> dict[str, dict[str, Any]]:
        return dict(self._client.scheduler_info(n_workers=-1).get("workers", {}))

    @property
    def slots(self) -> int:
        return sum(self.slots_by_identity().values())

    def slots_by_identity(self) -> dict[str, int]:
        from distributed.comm import get_address_host

        slots: dict[str, int] = {}
        for address, info in self._workers().items():
            host = get_address_host(address)
            slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        return dict(sorted(slots.items()))

    def identities(self) -> list[str]:
        return list(self.slots_by_identity())

    def describe_workers(self) -> list[WorkerInfo]:
        """Every worker with its identity, threads and tooling (a worker that cannot load ours says why)."""
        from distributed.comm import get_address_host

        workers = self._workers()
        # on_error="return": a worker without audioset-tools cannot even unpickle the function.
        tooling = self._client.run(tooling_versions, workers=list(workers), on_error="return") if workers else {}
        described = []
        for address, info in sorted(workers.items()):
            answer = tooling.get(address, "no answer")
            if isinstance(answer, BaseException):
                answer = f"cannot run audioset-tools ({type(answer).__name__}: {answer})"
            described.append(WorkerInfo(address, get_address_host(address), int(info.get("nthreads", 1)), str(answer)))
        return described

    # -- running tasks ------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, identity: str | None = None) -> concurrent.futures.Future:
        if self._client.status in _CLIENT_GONE:
            raise SchedulerLost(self._gone_message())
        # pure=False: a clip submitted again (after WorkerLost) must run again, not reuse a key.
        restriction = {"workers": [identity], "allow_other_workers": False} if identity is not None else {}
        task = self._client.submit(fn, *args, pure=False, **restriction)
        outer: concurrent.futures.Future = concurrent.futures.Future()
        outer.add_done_callback(lambda done: task.cancel() if done.cancelled() else None)
        task.add_done_callback(lambda finished: self._settle(finished, outer))
        if identity is not None:
            with self._lock:
                self._restricted.append((task, outer, identity))
            self._ensure_watcher()
        return outer

    def _ensure_watcher(self) -> None:
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="dask-identity-watch", daemon=True)
                self._watcher.start()

    def _watch(self) -> None:
        while not self._closed.wait(_WATCH_INTERVAL):
            try:
                present = set(self.identities())
            except Exception as exc:  # the scheduler is unreachable: the tasks' own futures will say so
                log.debug("cannot list the Dask workers: %s", exc)
                continue
            self.fail_orphans(present, time.monotonic())

    def fail_orphans(self, present: set[str], now: float) -> None:
        """Fail restricted tasks whose identity has had no worker for ``identity_grace`` seconds."""
        with self._lock:
            self._restricted = [entry for entry in self._restricted if not entry[1].done()]
            wanted = {identity for _, _, identity in self._restricted}
            for identity in list(self._missing_since):
                if identity in present or identity not in wanted:
                    del self._missing_since[identity]
            for identity in wanted - present:
                self._missing_since.setdefault(identity, now)
            orphaned = {
                identity for identity, since in self._missing_since.items() if now - since >= self._identity_grace
            }
            victims = [entry for entry in self._restricted if entry[2] in orphaned]
        for task, outer, identity in victims:
            # Settled before the cancel, whose callback would report a vaguer reason.
            _finish(outer, error=WorkerLost(f"no Dask worker on {identity} for {self._identity_grace:g} s"))
            task.cancel()

    def close(self) -> None:
        self._closed.set()

    def _gone_message(self) -> str:
        address = getattr(self._client.scheduler, "address", None) or "the scheduler"
        return (
            f"lost the Dask scheduler at {address} (download.dask.scheduler) and could not reconnect; "
            "rerun when it is back to resume"
        )

    def _settle(self, task: Any, outer: concurrent.futures.Future) -> None:
        """Hand a finished Dask future's outcome to ``outer`` (runs in a thread of Dask's client)."""
        _settle(task, outer, self._dropped)

    def _dropped(self) -> Exception:
        """Why the scheduler cancelled a task we did not cancel: for now, or for good."""
        if self._client.status in _CLIENT_GONE:
            return SchedulerLost(self._gone_message())
        return WorkerLost("the Dask scheduler dropped the task (the connection to it was lost)")


# Client states after it gave up on the scheduler (or was closed).
_CLIENT_GONE = frozenset({"closing", "closed"})


def _settle(task: Any, outer: concurrent.futures.Future, dropped: Callable[[], Exception]) -> None:
    try:
        if outer.done():
            return
        if task.status == "finished":
            value = task.result()
        elif task.status == "cancelled":
            raise dropped()
        else:
            error = task.exception() if task.status == "error" else None
            if error is None:
                # "lost" (its result vanished with its worker) or a state newer Dask versions add.
                raise WorkerLost(f"the Dask task ended as {task.status!r}")
            raise _as_worker_lost(error) or error
    except BaseException as exc:  # handed to whoever waits on outer
        _finish(outer, error=exc)
    else:
        _finish(outer, value=value)
    finally:
        # Frees the result on the worker at once (a clip's bytes may be handed back).
        task.release()


# Two threads may settle one future (Dask's callback, the identity watch): the first wins.
_finish_lock = threading.Lock()


def _finish(outer: concurrent.futures.Future, value: Any = None, error: BaseException | None = None) -> None:
    with _finish_lock:
        if outer.done() or not outer.set_running_or_notify_cancel():
            return
        if error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(value)


def _as_worker_lost(error: BaseException | None) -> WorkerLost | None:
    from distributed.scheduler import KilledWorker

    if isinstance(error, KilledWorker):
        lost = WorkerLost(f"the Dask worker running the task died ({error.last_worker.address})")
        lost.__cause__ = error
        return lost
    return None


@contextlib.contextmanager
def open_executor(
    kind: ExecutorKind,
    workers: int,
    scheduler: str | None = None,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    worker_wait: float = DEFAULT_WORKER_WAIT,
    identity_grace: float = DEFAULT_IDENTITY_GRACE,
) -> Iterator[Executor]:
    """The executor for ``download.executor``; closed (tasks cancelled, cluster stopped) on exit."""
    if kind == "threads":
        executor = ThreadExecutor(workers)
        try:
            yield executor
        finally:
            executor.close()
        return
    if kind != "dask":
        raise ValueError(f"unknown executor {kind!r}: threads or dask")
    with _dask_client(workers, scheduler, connect_timeout, worker_wait) as client:
        executor = DaskExecutor(client, identity_grace)
        try:
            yield executor
        finally:
            executor.close()


@contextlib.contextmanager
def _dask_client(workers: int, scheduler: str | None, connect_timeout: float, worker_wait: float) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError(f"download.executor is dask, but Dask is not installed here: {_INSTALL_HINT}") from None
    if scheduler is None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            # Dask's own log lines (a worker restarted, a task failed) would repeat what the runner reports.
            silence_logs=logging.CRITICAL,
            # No dashboard; the scheduler's small HTTP server (health checks) on a free loopback port,
            # not on 8787, which another cluster may hold. A dead worker's task fails at once (WorkerLost).
            scheduler_kwargs={"allowed_failures": 0, "dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
        try:
            with Client(cluster, set_as_default=False) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError, asyncio.TimeoutError, ValueError) as exc:
        raise UserError(
            f"download.dask.scheduler: cannot connect to a Dask scheduler at {scheduler} ({exc}). "
            "Start one with `dask scheduler`, or fix the address (tcp://host:8786)."
        ) from None
    with client:
        try:
            _wait_for_a_worker(client, worker_wait)
        except (TimeoutError, asyncio.TimeoutError):
            raise UserError(
                f"download.dask.scheduler: the Dask scheduler at {scheduler} has no worker after {worker_wait:g} s. "
                f"Start some with `dask worker {scheduler}`."
            ) from None
        yield client


def _wait_for_a_worker(client: Any, seconds: float) -> None:
    """Return once the cluster has a worker; TimeoutError after ``seconds`` (0: look once, do not wait)."""
    if seconds > 0:
        client.wait_for_workers(1, timeout=seconds)
    elif not client.scheduler_info(n_workers=-1).get("workers"):
        # Dask's wait_for_workers takes a timeout of 0 as "wait forever".
        raise TimeoutError("no worker")
