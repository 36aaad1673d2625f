"""Pacing against a rate-limited server: how close to the allowed rate, with how few throttles.

The local server (tests/rate_limit_server.py) allows ``--limit`` extraction requests
(yt-dlp's resolving GET) per sliding ``--window`` seconds per client address and answers
429 with Retry-After (whole seconds) beyond it; ffmpeg's Range reads are free. The real
downloader (run_download: yt-dlp + ffmpeg, 4 workers, every clip available) fetches
``--clips`` 10 s clips, four times, each against a fresh server:

1. budget configured: ``max_requests_per_hour`` = the server's limit per hour
   (limit * 3600 / window), no other pause;
2. nothing configured: no budget, no pause (``sleep_between_requests`` 0, no jitter);
3. and 4. the same two with the pacer as it was before this pacing work (``git show
   BASELINE_COMMIT:...pacing.py``: a fixed token bucket and full backoff on every throttle),
   the baseline.

Achieved rate = clips / wall time of the run, as a share of the allowed rate (limit / window).
Targets (issue 12): budget configured >= 90 % with at most 1 throttled answer; nothing
configured >= 70 % with at most 5 throttled answers.

Run: python benchmarks/bench_pacing.py [--clips 60] [--no-baseline]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from media import make_tone_source  # noqa: E402
from rate_limit_server import RateLimitedMediaServer  # noqa: E402

from targets import target_line  # noqa: E402

from audioset_tools.config import Config  # noqa: E402
from audioset_tools.dataset.layout import clip_file_name  # noqa: E402
from audioset_tools.download.plan import Candidate, ClassPlan  # noqa: E402
from audioset_tools.download.runner import RunOptions, run_download  # noqa: E402
from audioset_tools.sources.ffmpeg_bin import find_ffmpeg  # noqa: E402
from audioset_tools.sources.output_spec import OutputSpec  # noqa: E402
from audioset_tools.sources.pacing import PacingSettings  # noqa: E402
from audioset_tools.sources.youtube import source as youtube_source  # noqa: E402
from audioset_tools.sources.youtube.settings import FetchSettings  # noqa: E402

SOURCE_SECONDS = 40
CLIP_SECONDS = 10.0
WORKERS = 4


@dataclass
class Measure:
    name: str
    clips: int
    seconds: float
    throttled: int
    allowed_rate: float

    @property
    def share(self) -> float:
        """Achieved rate as a percentage of the allowed rate."""
        return 100.0 * self.clips / self.seconds / self.allowed_rate


# The last commit with the old pacer. Pinned: "main" moved on, and a baseline that follows it
# would compare the new pacer with itself.
BASELINE_COMMIT = "651ce9ecb021e7143aba11fd57b56796e309c011"


def old_pacer_module():
    """The old pacer (BASELINE_COMMIT), imported from a temporary copy."""
    shown = subprocess.run(["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:audioset_tools/download/pacing.py"],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        sys.exit(f"the baseline needs the git history of commit {BASELINE_COMMIT[:10]} (a full clone); "
                 f"or run with --no-baseline")
    source = shown.stdout
    source = source.replace("from ..config import", "from audioset_tools.config import")
    folder = Path(tempfile.mkdtemp(prefix="bench-pacing-old-"))
    path = folder / "old_pacing.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_pacing", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_case(name: str, source: Path, work: Path, args: argparse.Namespace, pacing: object,
             pacer_class: type | None) -> Measure:
    with RateLimitedMediaServer(args.limit, args.window) as server:
        config = Config.model_validate({"download": {"url_template": server.url_template("webm"),
                                                     "socket_timeout": 60.0}})
        settings = FetchSettings.from_config(config, find_ffmpeg())
        folder = "bench"
        candidates = []
        for n in range(args.clips):
            ytid = f"{name[:3]}{n:08d}"[:11]
            server.add(ytid, source)
            start = float((n * 7) % int(SOURCE_SECONDS - CLIP_SECONDS))
            candidates.append(Candidate(ytid, start, start + CLIP_SECONDS, n, "/m/bench",
                                        f"{folder}/{clip_file_name(ytid, start, 'wav')}"))
        plan = ClassPlan(0, "/m/bench", "Bench", "train", folder, args.clips, tuple(candidates))
        options = RunOptions(workers=WORKERS, progress=False)
        # The baseline swaps the old Pacer into the YouTube source; the scheduler itself is today's.
        patch = mock.patch.object(youtube_source, "Pacer", pacer_class) if pacer_class else contextlib.nullcontext()
        with patch:
            source = youtube_source.YoutubeSource(settings, pacing=pacing)
            began = time.perf_counter()
            summary = run_download([plan], [source], work / name, OutputSpec(), options)
            elapsed = time.perf_counter() - began
        ok = summary.outcomes["ok"]
        if ok != args.clips:
            raise SystemExit(f"{name}: only {ok} of {args.clips} clips succeeded: {dict(summary.outcomes)}")
        throttled = server.address_stats("127.0.0.1").throttled
    measure = Measure(name, ok, elapsed, throttled, args.limit / args.window)
    print(f"  {name:<34} {measure.seconds:7.1f} s  {measure.share:5.1f} % of allowed  "
          f"{measure.throttled} throttled", flush=True)
    return measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=60, help="clips per run (default 60)")
    parser.add_argument("--limit", type=int, default=10, help="extraction requests allowed per window (default 10)")
    parser.add_argument("--window", type=float, default=5.0, help="the server's sliding window in seconds (default 5)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the two runs with old pacer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    per_hour = round(args.limit * 3600 / args.window)
    print(f"server: {args.limit} extraction requests per sliding {args.window:g} s per address "
          f"({per_hour}/hour), 429 + Retry-After beyond; {WORKERS} workers, {args.clips} clips of "
          f"{CLIP_SECONDS:g} s, every clip available")
    with tempfile.TemporaryDirectory(prefix="bench-pacing-") as tmp:
        work = Path(tmp)
        source = make_tone_source(work / "source.webm", SOURCE_SECONDS)
        unpaced = {"sleep_between_requests": 0.0, "sleep_jitter": 0.0}
        budget = PacingSettings(max_requests_per_hour=per_hour, **unpaced)
        nothing = PacingSettings(max_requests_per_hour=None, **unpaced)
        # Warm-up: the first yt-dlp call in a process pays for imports and extractor set-up.
        warm = argparse.Namespace(**{**vars(args), "clips": 2})
        run_case("warm-up", source, work, warm, nothing, None)
        new_budget = run_case("budget configured", source, work, args, budget, None)
        new_nothing = run_case("nothing configured", source, work, args, nothing, None)
        old = None
        if not args.no_baseline:
            old_pacing = old_pacer_module()
            old_budget = old_pacing.PacingSettings(max_requests_per_hour=per_hour, **unpaced)
            old_nothing = old_pacing.PacingSettings(max_requests_per_hour=None, **unpaced)
            old = (run_case("old pacer, budget configured", source, work, args, old_budget, old_pacing.Pacer),
                   run_case("old pacer, nothing configured", source, work, args, old_nothing, old_pacing.Pacer))

    print()
    target_line("budget configured: rate, % of allowed", new_budget.share, ">=", 90, " %")
    target_line("budget configured: throttled answers", new_budget.throttled, "<=", 1)
    target_line("nothing configured: rate, % of allowed", new_nothing.share, ">=", 70, " %")
    target_line("nothing configured: throttled answers", new_nothing.throttled, "<=", 5)
    if old is not None:
        print(f"\n{'baseline (old pacer)':<52} {'rate':>8}  {'throttled':>9}")
        print(f"{'budget configured':<52} {old[0].share:7.1f}%  {old[0].throttled:>9}")
        print(f"{'nothing configured':<52} {old[1].share:7.1f}%  {old[1].throttled:>9}")
        print(f"{'improvement, budget configured (rate new / old)':<52} {new_budget.share / old[0].share:7.2f}x")
        print(f"{'improvement, nothing configured (rate new / old)':<52} {new_nothing.share / old[1].share:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
