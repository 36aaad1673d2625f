"""Download speed against the local media server with a realistic network shape.

The server adds ``--latency`` seconds before every response and limits each connection
to ``--rate`` bytes/s; the sources are 5-minute webm/Opus files at YouTube's usual
~128 kbit/s. Three runs through the real runner (yt-dlp + ffmpeg), one 10 s clip per
candidate:

1. range reads, 1 worker (download.fetch_strategy = range, the default);
2. range reads, 8 workers;
3. baseline: whole file then trim (fetch_strategy = whole_file, what the original tool
   did), 1 worker.

Printed ratios and their targets:
- bytes per clip, range / whole file: <= 1/5;
- seconds per clip, whole file / range (1 worker): >= 5x;
- clips per second, 8 workers / 1 worker: >= 5x.

Run: python benchmarks/bench_download.py [--clips 8] [--clips-parallel 32] [--baseline-clips 3]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from media_server import MediaServer  # noqa: E402

from audioset_tools.config import Config  # noqa: E402
from audioset_tools.dataset.layout import clip_file_name  # noqa: E402
from audioset_tools.download.plan import Candidate, ClassPlan  # noqa: E402
from audioset_tools.download.runner import RunOptions, run_download  # noqa: E402
from audioset_tools.sources.ffmpeg_bin import find_ffmpeg  # noqa: E402
from audioset_tools.sources.output_spec import OutputSpec  # noqa: E402
from audioset_tools.sources.pacing import PacingSettings  # noqa: E402
from audioset_tools.sources.youtube.settings import FetchSettings  # noqa: E402
from audioset_tools.sources.youtube.source import YoutubeSource  # noqa: E402

SOURCE_SECONDS = 300
CLIP_SECONDS = 10.0
NO_PAUSES = PacingSettings(sleep_between_requests=0.0, sleep_jitter=0.0)


@dataclass
class Measure:
    name: str
    clips: int
    seconds: float
    bytes_served: int

    @property
    def seconds_per_clip(self) -> float:
        return self.seconds / self.clips

    @property
    def clips_per_second(self) -> float:
        return self.clips / self.seconds

    @property
    def bytes_per_clip(self) -> float:
        return self.bytes_served / self.clips


def make_source(ffmpeg: str, path: Path) -> Path:
    """5 minutes of tone plus noise as constant-bitrate Opus, cues first like YouTube's DASH webm."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SOURCE_SECONDS}",
         "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.2:sample_rate=48000:duration={SOURCE_SECONDS}",
         "-filter_complex", "amix=inputs=2", "-ac", "2",
         "-c:a", "libopus", "-b:a", "128k", "-vbr", "off", "-cues_to_front", "1", str(path)],
        check=True, capture_output=True,
    )
    return path


def run_case(name: str, server: MediaServer, source: Path, work: Path, settings: FetchSettings,
             clips: int, workers: int) -> Measure:
    prefix = name[:3]
    folder = "bench"
    candidates = []
    for n in range(clips):
        ytid = f"{prefix}{n:08d}"[:11]
        server.add(ytid, source)
        # Starts spread over the whole source, as AudioSet segments are.
        start = float(10 + (n * 37) % (SOURCE_SECONDS - 30))
        candidates.append(Candidate(ytid, start, start + CLIP_SECONDS, n, "/m/bench",
                                    f"{folder}/{clip_file_name(ytid, start, 'wav')}"))
    plan = ClassPlan(0, "/m/bench", "Bench", "train", folder, clips, tuple(candidates))
    server.reset_stats()
    began = time.perf_counter()
    source = YoutubeSource(settings, pacing=NO_PAUSES)
    summary = run_download([plan], [source], work / name, OutputSpec(), RunOptions(workers=workers, progress=False))
    elapsed = time.perf_counter() - began
    ok = summary.outcomes["ok"]
    if ok != clips:
        raise SystemExit(f"{name}: only {ok} of {clips} clips succeeded: {dict(summary.outcomes)}")
    return Measure(name, clips, elapsed, server.total_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips for the 1-worker range run")
    parser.add_argument("--clips-parallel", type=int, default=32, help="clips for the 8-worker range run")
    parser.add_argument("--baseline-clips", type=int, default=3, help="clips for the whole-file baseline")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds before every response")
    parser.add_argument("--rate", type=float, default=1_000_000, help="bytes/s per connection")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp, \
            MediaServer(latency=args.latency, bytes_per_second=args.rate) as server:
        work = Path(tmp)
        source = make_source(ffmpeg, work / "source.webm")
        size = source.stat().st_size
        print(f"source: {SOURCE_SECONDS} s webm/opus, {size / 1e6:.2f} MB; network: {args.latency * 1000:.0f} ms "
              f"per response, {args.rate / 1e6:.2f} MB/s per connection; clips of {CLIP_SECONDS:.0f} s to 16 kHz wav")

        def settings(strategy: str) -> FetchSettings:
            config = Config.model_validate({"download": {"url_template": server.url_template("webm"),
                                                         "fetch_strategy": strategy, "socket_timeout": 60.0}})
            return FetchSettings.from_config(config, ffmpeg)

        # Warm-up: the first yt-dlp call in a process pays for imports and extractor set-up.
        run_case("warm", server, source, work, settings("range"), 1, 1)
        one = run_case("one", server, source, work, settings("range"), args.clips, 1)
        eight = run_case("eig", server, source, work, settings("range"), args.clips_parallel, 8)
        whole = run_case("who", server, source, work, settings("whole_file"), args.baseline_clips, 1)

    print(f"\n{'run':<28}{'clips':>6}{'s/clip':>9}{'clips/s':>9}{'MB/clip':>9}")
    for label, m in (("range, 1 worker", one), ("range, 8 workers", eight), ("whole file + trim, 1 worker", whole)):
        print(f"{label:<28}{m.clips:>6}{m.seconds_per_clip:>9.2f}{m.clips_per_second:>9.2f}"
              f"{m.bytes_per_clip / 1e6:>9.3f}")
    ratios = [
        ("bytes per clip, range / whole file", one.bytes_per_clip / whole.bytes_per_clip, "<=", 1 / 5),
        ("speed per clip, range 1 worker / whole file", whole.seconds_per_clip / one.seconds_per_clip, ">=", 5.0),
        ("clips per second, 8 workers / 1 worker", eight.clips_per_second / one.clips_per_second, ">=", 5.0),
    ]
    print()
    for label, value, op, target in ratios:
        met = value <= target if op == "<=" else value >= target
        print(f"{label:<46} {value:8.3f}  target {op} {target:.3f}  {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
