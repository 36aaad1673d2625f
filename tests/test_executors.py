"""Executors (audioset_tools.download.executors): threads, and real Dask clusters on 127.0.0.1.

The Dask tests need the optional extra [dask]; they are skipped, with the reason, only
when it is not installed. Tasks coordinate through files (tests/executor_tasks.py),
never through timing.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import executor_tasks
import pytest

from audioset_tools.download.executors import (
    LOCAL_IDENTITY,
    SchedulerLost,
    WorkerLost,
    open_executor,
    tooling_versions,
)
from audioset_tools.errors import UserError

TESTS = Path(__file__).resolve().parent
# Bounds on waiting for processes to come up: a broken setup fails instead of hanging.
STARTUP_BOUND = 120.0
RESULT_BOUND = 120.0

def dask_missing() -> str | None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "Dask is not installed (the optional extra: pip install -e '.[dask]')"
    return None


requires_dask = pytest.mark.skipif(dask_missing() is not None, reason=str(dask_missing()))


def _wait_until(condition, what: str, bound: float = STARTUP_BOUND) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {bound:g} s waiting for {what}")
        time.sleep(0.05)


def _pid(folder: Path, name: str) -> int:
    path = folder / f"{name}.pid"
    _wait_until(path.exists, f"task {name} to start")
    return int(path.read_text())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- threads -----------------------------------------------------------------------------


def test_threads_run_tasks_and_have_one_identity(tmp_path: Path) -> None:
    with open_executor("threads", workers=2) as executor:
        assert executor.slots == 2
        assert executor.identities() == [LOCAL_IDENTITY]
        assert executor.slots_by_identity() == {LOCAL_IDENTITY: 2}
        futures = [
            executor.submit(executor_tasks.meet, str(tmp_path), name, ["a", "b"], identity=identity)
            for name, identity in (("a", None), ("b", LOCAL_IDENTITY))
        ]
        done, pending = concurrent.futures.wait(futures, timeout=RESULT_BOUND)
        assert not pending
        assert sorted(f.result()[0] for f in done) == ["a", "b"]
        with pytest.raises(ValueError, match="identity"):
            executor.submit(executor_tasks.square, 2, identity="127.0.0.2")
        [worker] = executor.describe_workers()
        assert (worker.identity, worker.threads, worker.tooling) == (LOCAL_IDENTITY, 2, tooling_versions())


def test_tooling_versions_name_the_installed_versions() -> None:
    import yt_dlp

    assert f"yt-dlp {yt_dlp.version.__version__}" in tooling_versions()
    assert tooling_versions().startswith("audioset-tools ")


def test_an_unknown_executor_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="threads or dask"), open_executor("processes", workers=1):  # type: ignore[arg-type]
        pass


def test_dask_not_installed_is_one_clear_message(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UserError, match=r"audioset-tools\[dask\]"), open_executor("dask", workers=1):
        pass


# -- a LocalCluster of worker processes --------------------------------------------------


@pytest.fixture(scope="module")
def local_cluster() -> Iterator:
    if dask_missing():
        pytest.skip(dask_missing())
    with open_executor("dask", workers=2) as executor:
        yield executor


@requires_dask
def test_local_cluster_runs_module_level_functions_in_two_processes(local_cluster, tmp_path: Path) -> None:
    assert local_cluster.slots == 2
    assert local_cluster.identities() == ["127.0.0.1"]
    squares = [local_cluster.submit(executor_tasks.square, value) for value in range(5)]
    assert [future.result(timeout=RESULT_BOUND)[0] for future in squares] == [0, 1, 4, 9, 16]
    assert all(future.result()[1] != os.getpid() for future in squares)
    # Two tasks that wait for each other can only finish if two worker processes run them at once.
    met = [local_cluster.submit(executor_tasks.meet, str(tmp_path), name, ["a", "b"]) for name in ("a", "b")]
    done, pending = concurrent.futures.wait(met, timeout=RESULT_BOUND)
    assert not pending
    names_and_pids = sorted(future.result() for future in done)
    assert [name for name, _ in names_and_pids] == ["a", "b"]
    assert len({pid for _, pid in names_and_pids}) == 2


@requires_dask
def test_local_cluster_workers_are_described_for_doctor(local_cluster) -> None:
    workers = local_cluster.describe_workers()
    assert len(workers) == 2
    for worker in workers:
        assert worker.address.startswith("tcp://127.0.0.1:")
        assert (worker.identity, worker.threads, worker.tooling) == ("127.0.0.1", 1, tooling_versions())


@requires_dask
def test_a_task_restricted_to_its_identity_runs_there(local_cluster) -> None:
    future = local_cluster.submit(executor_tasks.square, 7, identity="127.0.0.1")
    assert future.result(timeout=RESULT_BOUND)[0] == 49


@requires_dask
def test_a_task_whose_identity_has_no_worker_fails_with_worker_lost() -> None:
    if dask_missing():
        pytest.skip(dask_missing())
    with open_executor("dask", workers=1, identity_grace=0.5) as executor:
        future = executor.submit(executor_tasks.square, 3, identity="127.0.0.9")
        with pytest.raises(WorkerLost, match="127.0.0.9"):
            future.result(timeout=RESULT_BOUND)


@requires_dask
def test_killing_a_worker_mid_task_gives_worker_lost_and_the_pool_goes_on(local_cluster, tmp_path: Path) -> None:
    folder = str(tmp_path)
    victim = local_cluster.submit(executor_tasks.hold, folder, "victim")
    survivor = local_cluster.submit(executor_tasks.hold, folder, "survivor")
    victim_pid, survivor_pid = _pid(tmp_path, "victim"), _pid(tmp_path, "survivor")
    assert victim_pid != survivor_pid
    os.kill(victim_pid, signal.SIGKILL)
    # The LocalCluster does not rerun it behind the runner's back: the runner decides (and paces) the retry.
    with pytest.raises(WorkerLost, match="died"):
        victim.result(timeout=RESULT_BOUND)
    (tmp_path / "survivor.go").touch()
    assert survivor.result(timeout=RESULT_BOUND) == ("survivor", survivor_pid)
    # The nanny replaces the dead process; the pool still runs tasks, on two workers again.
    assert [local_cluster.submit(executor_tasks.square, v).result(timeout=RESULT_BOUND)[0] for v in (2, 3)] == [4, 9]
    _wait_until(lambda: local_cluster.slots == 2, "the nanny to restart the killed worker")


# -- `dask scheduler` and `dask worker` as separate processes ---------------------------


def _dask_cli(command: str) -> list[str]:
    script = Path(sys.executable).with_name("dask")
    return [str(script), command] if script.exists() else [sys.executable, "-m", "dask", command]


@pytest.fixture
def separate_cluster(request, tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A scheduler and two nanny-less workers (one thread each), all on 127.0.0.1.

    Yields the scheduler's address and the processes: the scheduler, then the workers.

    Parametrised indirectly with extra environment variables for the processes (Dask reads
    its config from DASK_* variables), e.g. the scheduler's allowed failures.
    """
    if dask_missing():
        pytest.skip(dask_missing())
    scheduler_file = tmp_path / "scheduler.json"
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    environment.update(getattr(request, "param", {}))
    log = (tmp_path / "dask.log").open("w")
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(
            [*_dask_cli("scheduler"), "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=log, stderr=subprocess.STDOUT, env=environment,
        ))
        _wait_until(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, "the scheduler to start")
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            subprocess.Popen(
                [*_dask_cli("worker"), address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--death-timeout", "60"],
                stdout=log, stderr=subprocess.STDOUT, env=environment,
            )
            for _ in range(2)
        ]
        processes.extend(workers)
        yield address, processes
    finally:
        for process in processes:
            process.kill()
            process.wait()
        log.close()


@requires_dask
def test_a_coordinator_connects_to_a_separate_scheduler_by_address(separate_cluster, tmp_path: Path) -> None:
    address, _ = separate_cluster
    assert address.startswith("tcp://127.0.0.1:")
    with open_executor("dask", workers=1, scheduler=address) as executor:
        _wait_until(lambda: executor.slots == 2, "both workers to join")
        assert executor.identities() == ["127.0.0.1"]
        met = [executor.submit(executor_tasks.meet, str(tmp_path), name, ["a", "b"]) for name in ("a", "b")]
        done, pending = concurrent.futures.wait(met, timeout=RESULT_BOUND)
        assert not pending and sorted(f.result()[0] for f in done) == ["a", "b"]


@requires_dask
def test_a_user_started_scheduler_reruns_a_killed_workers_task_on_another(separate_cluster, tmp_path: Path) -> None:
    # Measured behaviour of Dask itself: its scheduler (allowed-failures 3 by default) moves a
    # task whose worker died to another worker; the future just completes.
    address, processes = separate_cluster
    with open_executor("dask", workers=1, scheduler=address) as executor:
        _wait_until(lambda: executor.slots == 2, "both workers to join")
        victim = executor.submit(executor_tasks.hold, str(tmp_path), "victim")
        survivor = executor.submit(executor_tasks.hold, str(tmp_path), "survivor")
        victim_pid, survivor_pid = _pid(tmp_path, "victim"), _pid(tmp_path, "survivor")
        assert {victim_pid, survivor_pid} == {worker.pid for worker in processes[1:]}
        os.kill(victim_pid, signal.SIGKILL)
        (tmp_path / "victim.go").touch()
        (tmp_path / "survivor.go").touch()
        assert survivor.result(timeout=RESULT_BOUND) == ("survivor", survivor_pid)
        assert victim.result(timeout=RESULT_BOUND) == ("victim", survivor_pid)


@requires_dask
@pytest.mark.parametrize("separate_cluster", [{"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}], indirect=True)
def test_a_user_started_scheduler_with_no_allowed_failures_gives_worker_lost(separate_cluster, tmp_path: Path) -> None:
    # What docs/download.md recommends for `dask scheduler`: the runner, not Dask, retries (and paces) the clip.
    address, _ = separate_cluster
    with open_executor("dask", workers=1, scheduler=address) as executor:
        _wait_until(lambda: executor.slots == 2, "both workers to join")
        victim = executor.submit(executor_tasks.hold, str(tmp_path), "victim")
        survivor = executor.submit(executor_tasks.hold, str(tmp_path), "survivor")
        victim_pid, survivor_pid = _pid(tmp_path, "victim"), _pid(tmp_path, "survivor")
        os.kill(victim_pid, signal.SIGKILL)
        with pytest.raises(WorkerLost, match="died"):
            victim.result(timeout=RESULT_BOUND)
        (tmp_path / "survivor.go").touch()
        assert survivor.result(timeout=RESULT_BOUND) == ("survivor", survivor_pid)
        assert executor.slots == 1


@requires_dask
def test_losing_the_scheduler_ends_in_scheduler_lost(separate_cluster, tmp_path: Path) -> None:
    address, processes = separate_cluster
    # connect_timeout also bounds how long the client tries to reconnect: long enough that the
    # in-flight task is reported before the client gives up, even on a loaded machine.
    with open_executor("dask", workers=1, scheduler=address, connect_timeout=8) as executor:
        _wait_until(lambda: executor.slots == 2, "both workers to join")
        running = executor.submit(executor_tasks.hold, str(tmp_path), "running")
        _pid(tmp_path, "running")
        processes[0].kill()
        processes[0].wait()
        # The task in flight is dropped at once: the runner may try it again...
        with pytest.raises(WorkerLost, match="dropped"):
            running.result(timeout=RESULT_BOUND)
        # ...but once the client gives up reconnecting, the run cannot go on.
        with pytest.raises(SchedulerLost, match="download.dask.scheduler"):
            executor.submit(executor_tasks.square, 2).result(timeout=RESULT_BOUND)
        with pytest.raises(SchedulerLost, match=address):
            executor.submit(executor_tasks.square, 3)


@requires_dask
def test_an_unreachable_scheduler_is_one_message_naming_the_key() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(UserError, match="download.dask.scheduler") as raised:
        with open_executor("dask", workers=1, scheduler=address, connect_timeout=2):
            pass
    assert address in str(raised.value) and "dask scheduler" in str(raised.value)


@requires_dask
@pytest.mark.parametrize("worker_wait", [1, 0])
def test_a_scheduler_without_workers_is_one_message(tmp_path: Path, worker_wait: float) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as empty:
        with pytest.raises(UserError, match="no worker") as raised:
            with open_executor("dask", workers=1, scheduler=empty.scheduler_address, worker_wait=worker_wait):
                pass
    assert "dask worker" in str(raised.value)


@requires_dask
def test_a_worker_that_cannot_load_audioset_tools_says_so(tmp_path: Path) -> None:
    from distributed import LocalCluster

    # A package of the same name that fails to import, ahead of the real one on the worker's path.
    shadow = tmp_path / "shadow" / "audioset_tools"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('this worker has a broken audioset-tools')\n")
    environment = dict(os.environ, PYTHONPATH=str(shadow.parent))
    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        worker = subprocess.Popen(
            [*_dask_cli("worker"), cluster.scheduler_address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
             "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
        )
        try:
            with open_executor("dask", workers=1, scheduler=cluster.scheduler_address, worker_wait=STARTUP_BOUND) as executor:
                [described] = executor.describe_workers()
                assert described.identity == "127.0.0.1" and described.threads == 1
                assert described.tooling.startswith("cannot run audioset-tools")
                assert "broken audioset-tools" in described.tooling
        finally:
            worker.kill()
            worker.wait()
