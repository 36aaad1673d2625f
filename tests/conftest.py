"""Shared fixtures: time-encoded test media and a local media server.

- ``tone_sources`` (session): a :class:`ToneSources` of generated files (see tests/media.py):
  ``webm`` (Opus), ``m4a`` (AAC), ``mp3`` and ``flac`` of ``SOURCE_SECONDS`` s, ``short_webm`` of
  ``SHORT_SECONDS`` s, and ``video_only`` (a webm without audio). Built once per session.
- ``media_server``: a running :class:`tests.media_server.MediaServer` (fresh per test, so
  counters and behaviours never leak between tests). Register IDs with
  ``media_server.add(ytid, tone_sources.webm, behaviour=...)`` and point
  ``download.url_template`` at ``media_server.url_template("webm")``.
- ``ffmpeg_exe`` (session): path of the ffmpeg binary the tests use (imageio-ffmpeg's).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from media import FFMPEG, make_tone_source, make_video_only_source  # noqa: E402
from media_server import MediaServer  # noqa: E402

SOURCE_SECONDS = 40
SHORT_SECONDS = 8


@dataclasses.dataclass(frozen=True)
class ToneSources:
    webm: Path
    m4a: Path
    short_webm: Path
    video_only: Path
    mp3: Path
    flac: Path
    seconds: int = SOURCE_SECONDS
    short_seconds: int = SHORT_SECONDS


@pytest.fixture(scope="session")
def tone_sources(tmp_path_factory: pytest.TempPathFactory) -> ToneSources:
    folder = tmp_path_factory.mktemp("media")
    return ToneSources(
        webm=make_tone_source(folder / "tone.webm", SOURCE_SECONDS),
        m4a=make_tone_source(folder / "tone.m4a", SOURCE_SECONDS, sample_rate=44100),
        short_webm=make_tone_source(folder / "short.webm", SHORT_SECONDS),
        video_only=make_video_only_source(folder / "video_only.webm"),
        mp3=make_tone_source(folder / "tone.mp3", SOURCE_SECONDS, sample_rate=44100),
        flac=make_tone_source(folder / "tone.flac", SOURCE_SECONDS, sample_rate=22050),
    )


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    with MediaServer() as server:
        yield server


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    return FFMPEG
