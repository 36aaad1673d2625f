"""Generate the demo's source audio with the real ffmpeg (no recorded audio is shipped).

Each class gets a voice: a tone at its base frequency, pulsed at its own rate, whose
pitch also steps a little every second so that no two seconds of a source are alike.
Sources are Opus in WebM with the cues first, as the DASH audio streams of video sites.

(tests/media.py generates the test suite's time-encoded sources the same way; a later
package restructure can give both one generator.)
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .catalog import (
    CORRUPT,
    FLAKY,
    FORBIDDEN,
    MISSING,
    SILENT,
    TOO_SHORT,
    VOICES,
    special,
    voice,
)

SOURCE_SECONDS = 45.0
SHORT_SECONDS = 5.0
_TIMEOUT = 60.0
_OPUS = ["-c:a", "libopus", "-b:a", "32k", "-cues_to_front", "1"]
_BEHAVIOUR = {None: "ok", SILENT: "ok", TOO_SHORT: "ok", FLAKY: "500_once", FORBIDDEN: "403", CORRUPT: "corrupt"}


@dataclass(frozen=True)
class DemoSources:
    """The generated files, and which one (with which behaviour) each demo ID gets."""

    voices: dict[str, Path]
    short: Path
    silent: Path

    def lookup(self, ytid: str) -> tuple[Path, str] | None:
        kind = special(ytid)
        if kind == MISSING:
            return None
        if kind == SILENT:
            source = self.silent
        elif kind == TOO_SHORT:
            source = self.short
        else:
            source = self.voices[voice(ytid)]
        return source, _BEHAVIOUR[kind]


def _voice_expression(base: float, pulses: float) -> str:
    pitch = f"({base}*(1+0.02*mod(floor(t),10)))"
    envelope = f"(0.55+0.45*sin(2*PI*{pulses}*t))"
    return f"0.4*{envelope}*sin(2*PI*{pitch}*t)"


def _run(ffmpeg: str, arguments: list[str]) -> None:
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *arguments]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"could not run ffmpeg ({ffmpeg}) to generate the demo audio: {exc}") from None
    if completed.returncode != 0:
        raise UserError(f"ffmpeg ({ffmpeg}) could not generate the demo audio: {completed.stderr.strip()[-300:]}")


def _synthesise(ffmpeg: str, expression: str, seconds: float, codec: list[str], path: Path) -> Path:
    # Stereo 48 kHz like a real stream, so the download's down-mix and resampling do real work.
    source = f"aevalsrc=exprs='{expression}|{expression}':s=48000:d={seconds}"
    _run(ffmpeg, ["-f", "lavfi", "-i", source, *codec, str(path)])
    return path


def make_sources(folder: Path, ffmpeg: str) -> DemoSources:
    """Write every source the demo server serves into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    voices = {
        code: _synthesise(ffmpeg, _voice_expression(base, pulses), SOURCE_SECONDS, _OPUS, folder / f"{code}.webm")
        for code, (base, pulses) in VOICES.items()
    }
    base, pulses = VOICES["Chrp"]
    short = _synthesise(ffmpeg, _voice_expression(base, pulses), SHORT_SECONDS, _OPUS, folder / "short.webm")
    silent = _synthesise(ffmpeg, "0", SOURCE_SECONDS, ["-c:a", "pcm_s16le"], folder / "silent.wav")
    return DemoSources(voices=voices, short=short, silent=silent)
