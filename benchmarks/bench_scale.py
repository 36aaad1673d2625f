"""Clips per second from one network address against four, each address paced on its own.

The local server (tests/address_server.py) allows ``--rate`` extraction requests per second
per client address (a sliding window of ``--window`` s, 429 with Retry-After beyond it) and
serves a clip's media only to the address that resolved it. The real downloader
(run_download: yt-dlp + ffmpeg, every clip available, the budget set to the allowed rate)
fetches 10 s clips three ways, in the same run:

1. one address: ``source_addresses: [127.0.0.2]``, threads;
2. four addresses: ``source_addresses`` 127.0.0.2 to 127.0.0.5, threads;
3. four Dask workers (``dask scheduler`` and four ``dask worker --host 127.0.0.x``
   processes; the coordinator connects by address), when the [dask] extra is installed.

Each run fetches ``--seconds`` worth of clips at its allowed rate (so one address gets a
quarter of the clips of four). Target (issue 12): four addresses reach >= 3.6x the clips per
second of one (90 % of linear), with at most one throttled answer per address.

Run: python benchmarks/bench_scale.py [--rate 1] [--window 4] [--seconds 40] [--no-dask]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import soundfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from address_server import AddressServer  # noqa: E402
from archive_media import tone, to_int16  # noqa: E402

from targets import target_line  # noqa: E402

from audioset_tools.config import Config  # noqa: E402
from audioset_tools.dataset.layout import clip_file_name  # noqa: E402
from audioset_tools.download.plan import Candidate, ClassPlan  # noqa: E402
from audioset_tools.download.runner import RunOptions, run_download  # noqa: E402
from audioset_tools.sources.ffmpeg_bin import find_ffmpeg  # noqa: E402
from audioset_tools.sources.output_spec import OutputSpec  # noqa: E402
from audioset_tools.sources.pacing import PacingSettings  # noqa: E402
from audioset_tools.sources.youtube.settings import FetchSettings  # noqa: E402
from audioset_tools.sources.youtube.source import YoutubeSource  # noqa: E402

CLIP_SECONDS = 10.0
SOURCE_SECONDS = 12.0
FOUR = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
# Slots per address: enough that a clip's own latency never leaves the budget unused.
SLOTS_PER_ADDRESS = 2


@dataclass
class Measure:
    name: str
    clips: int
    seconds: float
    throttled: dict[str, int]

    @property
    def rate(self) -> float:
        return self.clips / self.seconds


def run_case(name: str, video: Path, work: Path, args: argparse.Namespace, addresses: list[str],
             clips: int, executor=None) -> Measure:
    limit = max(1, round(args.rate * args.window))
    with AddressServer(limit, args.window) as server:
        config = Config.model_validate({"download": {"url_template": server.url_template("wav"),
                                                     "socket_timeout": 60.0}})
        settings = FetchSettings.from_config(config, find_ffmpeg())
        candidates = []
        for n in range(clips):
            ytid = f"{name[:3]}{n:08d}"[:11]
            server.add(ytid, video)
            candidates.append(Candidate(ytid, 1.0, 1.0 + CLIP_SECONDS, n, "/m/bench",
                                        f"bench/{clip_file_name(ytid, 1.0, 'wav')}"))
        plan = ClassPlan(0, "/m/bench", "Bench", "train", "bench", clips, tuple(candidates))
        # The budget is the server's allowed rate; the pacer keeps its own safety margin below it.
        pacing = PacingSettings(max_requests_per_hour=round(args.rate * 3600), sleep_between_requests=0.0,
                                sleep_jitter=0.0)
        source = YoutubeSource(settings, pacing=pacing)
        options = RunOptions(workers=SLOTS_PER_ADDRESS * len(addresses), progress=False,
                             source_addresses=tuple(addresses) if executor is None else ())
        began = time.perf_counter()
        summary = run_download([plan], [source], work / name, OutputSpec(), options, executor=executor)
        elapsed = time.perf_counter() - began
        if summary.outcomes["ok"] != clips:
            raise SystemExit(f"{name}: only {summary.outcomes['ok']} of {clips} clips: {dict(summary.outcomes)}")
        throttled = {address: server.counts(address).throttled for address in server.addresses()}
    measure = Measure(name, clips, elapsed, throttled)
    print(f"  {name:<28} {clips:4d} clips {elapsed:7.1f} s  {measure.rate:6.2f} clips/s  throttled {throttled}",
          flush=True)
    return measure


@contextlib.contextmanager
def dask_workers(work: Path, hosts: list[str]) -> Iterator[str]:
    """A scheduler and one single-threaded worker per host, as separate processes."""
    dask = [str(Path(sys.executable).with_name("dask"))]
    environment = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    log = (work / "dask.log").open("w")
    scheduler_file = work / "scheduler.json"
    processes = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(scheduler_file)], stdout=log, stderr=log, env=environment)]
    try:
        deadline = time.monotonic() + 60
        while not (scheduler_file.exists() and scheduler_file.stat().st_size):
            if time.monotonic() > deadline:
                raise SystemExit("the Dask scheduler did not start")
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        processes += [subprocess.Popen([*dask, "worker", address, "--host", host, "--nthreads",
                                        str(SLOTS_PER_ADDRESS), "--no-dashboard"],
                                       stdout=log, stderr=log, env=environment) for host in hosts]
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1.0, help="extraction requests per second per address (1)")
    parser.add_argument("--window", type=float, default=4.0, help="the server's sliding window in seconds (4)")
    parser.add_argument("--seconds", type=float, default=40.0, help="each run's length at its allowed rate (40)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    one_clips = max(4, round(args.rate * args.seconds))
    print(f"server: {args.rate:g} extraction request(s)/s per address (sliding {args.window:g} s window), media "
          f"only to the resolving address; {SLOTS_PER_ADDRESS} slots per address; {one_clips} clips for one "
          f"address, {4 * one_clips} for four")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        video = work / "video.wav"
        soundfile.write(video, to_int16(tone(0.0, SOURCE_SECONDS, 16000)), 16000, subtype="PCM_16")
        run_case("warm-up", video, work, args, ["127.0.0.2"], 2)
        one = run_case("one address", video, work, args, ["127.0.0.2"], one_clips)
        four = run_case("four source addresses", video, work, args, FOUR, 4 * one_clips)
        dask = None
        if not args.no_dask:
            from audioset_tools.download.executors import open_executor

            try:
                import distributed  # noqa: F401
            except ImportError:
                print("  (Dask not installed: pip install -e '.[dask]'; its run is skipped)")
            else:
                with dask_workers(work, FOUR) as address, open_executor("dask", 1, address) as executor:
                    deadline = time.monotonic() + 60
                    while len(executor.identities()) < len(FOUR) and time.monotonic() < deadline:
                        time.sleep(0.1)
                    # Each worker process imports yt-dlp and starts ffmpeg for the first time on its first clip.
                    run_case("Dask warm-up", video, work, args, FOUR, 2 * len(FOUR), executor)
                    dask = run_case("four Dask workers", video, work, args, FOUR, 4 * one_clips, executor)
    print()
    target_line("four source addresses: clips/s vs one address", four.rate / one.rate, ">=", 3.6, digits=2)
    target_line("four source addresses: most throttled answers at one address", max(four.throttled.values(), default=0),
         "<=", 1)
    if dask is not None:
        target_line("four Dask workers: clips/s vs one address", dask.rate / one.rate, ">=", 3.6, digits=2)
        target_line("four Dask workers: most throttled answers at one address", max(dask.throttled.values(), default=0),
             "<=", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
