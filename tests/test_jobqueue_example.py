"""examples/dask_jobqueue_cluster.py, the SLURM / PBS recipe of docs/download.md, without a batch system.

The cluster object is built as on a login node, nothing is submitted; the worker command
of its job script (what SLURM or PBS would run on a node) is started here instead, and the
coordinator reaches that worker through ``cluster.scheduler_address``, as the recipe does.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import executor_tasks
import pytest

from audioset_tools.download.executors import open_executor

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def _example():
    spec = importlib.util.spec_from_file_location("dask_jobqueue_cluster", REPO / "examples" / "dask_jobqueue_cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _worker_command(job_script: str) -> list[str]:
    """The job script's command line (its last line that is not a directive or a comment)."""
    lines = [line for line in job_script.splitlines() if line.strip() and not line.startswith("#")]
    return shlex.split(lines[-1])


def _jobqueue_missing() -> str | None:
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        return "dask-jobqueue is not installed (the optional extra: pip install -e '.[jobqueue]')"
    return None


@pytest.mark.skipif(_jobqueue_missing() is not None, reason=str(_jobqueue_missing()))
@pytest.mark.parametrize(
    ("system", "directives"),
    [("slurm", ["#SBATCH -p normal", "#SBATCH -A myproject", "#SBATCH -t 01:00:00"]),
     ("pbs", ["#PBS -q normal", "#PBS -A myproject", "#PBS -l walltime=01:00:00"])],
)
def test_the_recipe_cluster_runs_tasks_on_a_worker_started_from_its_job_script(system, directives) -> None:
    example = _example()
    with example.make_cluster(
        system, queue="normal", account="myproject", walltime="01:00:00", interface="lo"
    ) as cluster:
        script = cluster.job_script()
        for directive in directives:
            assert directive in script
        command = _worker_command(script)
        assert cluster.scheduler_address in command and "--nthreads" in command
        assert command[command.index("--nthreads") + 1] == "1"
        assert command[0] == sys.executable
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
        try:
            with open_executor("dask", workers=1, scheduler=cluster.scheduler_address, worker_wait=120) as executor:
                assert executor.identities() == ["127.0.0.1"]
                value, pid = executor.submit(executor_tasks.square, 6).result(timeout=120)
                assert value == 36 and pid != os.getpid()
        finally:
            worker.kill()
            worker.wait()


def test_the_recipe_points_the_download_at_the_scheduler(monkeypatch) -> None:
    example = _example()
    ran: list[list[str]] = []

    class FakeCluster:
        scheduler_address = "tcp://10.1.2.3:8786"
        scaled: dict = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def scale(self, **kwargs):
            FakeCluster.scaled = kwargs

    monkeypatch.setattr(example, "make_cluster", lambda system, **options: FakeCluster())
    monkeypatch.setattr(
        example.subprocess, "run", lambda command, check: ran.append(command) or subprocess.CompletedProcess(command, 0)
    )
    assert example.main(["--jobs", "3", "--", "--config", "my.yaml"]) == 0
    assert FakeCluster.scaled == {"jobs": 3}
    command = ran[0]
    assert command[1:4] == ["-m", "audioset_tools", "download"]
    assert command[4:6] == ["--config", "my.yaml"]
    assert "download.executor=dask" in command
    assert "download.dask.scheduler=tcp://10.1.2.3:8786" in command


def test_without_dask_jobqueue_the_recipe_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(SystemExit, match=r"audioset-tools\[jobqueue\]"):
        _example().main(["--", "--config", "control.yaml"])


@pytest.mark.skipif(_jobqueue_missing() is not None, reason=str(_jobqueue_missing()))
def test_an_unknown_system_is_refused() -> None:
    with pytest.raises(ValueError, match="pbs"):
        _example().make_cluster("lsf-typo")
