"""examples/iterate_episodes.py where PyTorch is not installed: --help works, a run says what to install.

Torch is hidden from the example's interpreter (``sys.modules["torch"] = None`` makes every
``import torch`` fail), so this runs whether or not the [torch] extra is installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iterate_episodes.py"
WITHOUT_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; sys.argv = [sys.argv[1], *sys.argv[2:]]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, str(EXAMPLE), *args], capture_output=True, text=True, check=False
    )


def test_a_run_without_torch_prints_one_line_naming_the_extra(tmp_path: Path) -> None:
    result = _run("--config", str(tmp_path / "control.yaml"))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "audioset-tools[torch]" in lines[0]


def test_help_works_without_torch_and_explains_every_option() -> None:
    result = _run("--help")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    options = ["--config", "--set", "--source", "--split", "--n-way", "--k-shot", "--q-query", "--episodes", "--seed"]
    help_text = result.stdout
    for option in options:
        # Each option's line (or the line after it, when argparse wraps) carries a description.
        lines = help_text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(option))
        rest = lines[at].strip()[len(option):].split("  ", 1)[1:]
        following = lines[at + 1].strip() if at + 1 < len(lines) else ""
        described = rest[0].strip() if rest and rest[0].strip() else following
        assert described and not described.startswith("-"), f"{option} has no help text"
    assert "[torch]" in help_text
