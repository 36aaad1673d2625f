#!/usr/bin/env python3
"""Time `audioset-tools demo` end to end, in a fresh process, with and without the PyTorch step.

The demo is the README's first command and an install self-test, so it has a time budget:
under 2 minutes on 2 cores. "without torch" makes the episode step take the numpy path
(as on a plain `pip install .`) even when torch is installed here.

    python benchmarks/bench_demo.py [--repeat 1]

Prints one line per mode: `demo seconds (<mode>) <value> target <= 120 met` (or MISSED).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 120.0
_WITHOUT_TORCH = (
    "import sys\n"
    "from audioset_tools.demo import episodes\n"
    "episodes.torch_available = lambda: False\n"
    "from audioset_tools.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_once(torch: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        prefix = [sys.executable, "-m", "audioset_tools"] if torch else [sys.executable, "-c", _WITHOUT_TORCH]
        started = time.monotonic()
        completed = subprocess.run([*prefix, "demo", "-q", "--output", str(Path(scratch) / "demo")],
                                   capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
    if completed.returncode != 0:
        sys.exit(f"the demo failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode; the slowest counts (default 1)")
    args = parser.parse_args()
    modes = [("without torch", False)]
    if importlib.util.find_spec("torch") is not None:
        modes.append(("with torch", True))
    for label, torch in modes:
        worst = max(run_once(torch) for _ in range(args.repeat))
        verdict = "met" if worst <= TARGET_SECONDS else "MISSED"
        print(f"demo seconds ({label}) {worst:.1f} target <= {TARGET_SECONDS:.0f} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
