"""Run the download on a SLURM or PBS cluster: dask-jobqueue submits the Dask workers as batch jobs.

Run it where you would run the download (a login node, or a small job of its own): this
process holds the Dask scheduler, submits ``--jobs`` worker jobs, then runs
``audioset-tools download`` pointed at the scheduler (``download.executor=dask``,
``download.dask.scheduler=<its address>``), and cancels the worker jobs when it ends.
Everything after ``--`` goes to ``audioset-tools download`` unchanged:

    pip install 'audioset-tools[jobqueue]'
    python examples/dask_jobqueue_cluster.py --system slurm --jobs 8 --queue normal \\
        --account myproject -- --config control.yaml

Each job is one worker process with one thread (one clip at a time); workers on the same
node share its address, so they share its pacing budget. The workers need the same Python
environment as this process (``--python``, by default this interpreter: a shared
filesystem, or the same virtualenv path on every node), but no access to the output folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

INSTALL = "pip install 'audioset-tools[jobqueue]'"


def make_cluster(
    system: str,
    *,
    queue: str | None = None,
    account: str | None = None,
    walltime: str = "04:00:00",
    memory: str = "2GB",
    python: str = sys.executable,
    interface: str | None = None,
) -> Any:
    """A dask-jobqueue cluster whose jobs each start one single-threaded Dask worker. Submits nothing yet."""
    try:
        from dask_jobqueue import PBSCluster, SLURMCluster
    except ImportError:
        raise SystemExit(f"error: this example needs dask-jobqueue; install the extra: {INSTALL}") from None

    kinds = {"slurm": SLURMCluster, "pbs": PBSCluster}
    if system not in kinds:
        raise ValueError(f"system must be one of {sorted(kinds)}, got {system!r}")
    return kinds[system](
        cores=1,
        processes=1,
        memory=memory,
        walltime=walltime,
        queue=queue,
        account=account,
        python=python,
        # The network interface the scheduler and workers talk over (e.g. ib0); None = the default route.
        interface=interface,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=("slurm", "pbs"), default="slurm", help="the batch system (default: slurm)")
    parser.add_argument("--jobs", type=int, default=4, help="worker jobs to submit (default: 4)")
    parser.add_argument("--queue", help="partition (SLURM) or queue (PBS)")
    parser.add_argument("--account", help="account / project to charge")
    parser.add_argument("--walltime", default="04:00:00", help="per job (default: 04:00:00)")
    parser.add_argument("--memory", default="2GB", help="per job (default: 2GB)")
    parser.add_argument("--interface", help="network interface for Dask's traffic, e.g. ib0")
    parser.add_argument("--python", default=sys.executable, help="Python on the nodes (default: this one)")
    parser.add_argument("download_args", nargs=argparse.REMAINDER, help="-- then arguments of audioset-tools download")
    args = parser.parse_args(argv)
    download_args = args.download_args[1:] if args.download_args[:1] == ["--"] else args.download_args
    with make_cluster(
        args.system, queue=args.queue, account=args.account, walltime=args.walltime, memory=args.memory,
        python=args.python, interface=args.interface,
    ) as cluster:
        cluster.scale(jobs=args.jobs)
        command = [
            sys.executable, "-m", "audioset_tools", "download", *download_args,
            "--set", "download.executor=dask", "--set", f"download.dask.scheduler={cluster.scheduler_address}",
        ]
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
