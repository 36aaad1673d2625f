"""Shared fixtures: time-encoded test media and a local media server.

- ``tone_sources`` (session): a :class:`ToneSources` of generated files (see tests/media.py):
  ``webm`` (Opus), ``m4a`` (AAC), ``mp3`` and ``flac`` of ``SOURCE_SECONDS`` s, ``short_webm`` of
  ``SHORT_SECONDS`` s, and ``video_only`` (a webm without audio). Built once per session.
- ``media_server``: a running :class:`tests.media_server.MediaServer` (fresh per test, so
  counters and behaviours never leak between tests). Register IDs with
  ``media_server.add(ytid, tone_sources.webm, behaviour=...)`` and point
  ``download.url_template`` at ``media_server.url_template("webm")``.
- ``ffmpeg_exe`` (session): path of the ffmpeg binary the tests use (imageio-ffmpeg's).
- ``real_metadata`` (session): the folder of Google's official AudioSet metadata,
  ``../shared/audioset``; tests using it skip (with how to get the files) when it is
  absent, and are marked ``slow``.
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

# Google's official AudioSet metadata next to the repository (never committed: 2 million rows).
SHARED_AUDIOSET = Path(__file__).resolve().parents[1].parent / "shared" / "audioset"
OFFICIAL_FILES = (
    "ontology.json", "qa_true_counts.csv",
    "balanced_train_segments.csv", "unbalanced_train_segments.csv", "eval_segments.csv",
)

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


def missing_real_metadata() -> str | None:
    """Why the real-metadata tests cannot run, or None when ../shared/audioset is complete."""
    missing = [name for name in OFFICIAL_FILES if not (SHARED_AUDIOSET / name).is_file()]
    if not missing:
        return None
    what = "is absent" if len(missing) == len(OFFICIAL_FILES) else f"lacks {', '.join(missing)}"
    return (
        f"../shared/audioset, the folder next to the repository holding Google's official AudioSet "
        f"metadata, {what} ({SHARED_AUDIOSET}). To run these tests put ontology.json "
        f"(https://github.com/audioset/ontology), qa_true_counts.csv and the balanced_train, unbalanced_train "
        f"and eval segment CSVs (http://storage.googleapis.com/us_audioset/youtube_corpus/v1/) there; "
        f"audioset-tools select downloads them all into paths.metadata_dir."
    )


@pytest.fixture(scope="session")
def real_metadata() -> Path:
    reason = missing_real_metadata()
    if reason is not None:
        pytest.skip(reason)
    return SHARED_AUDIOSET


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The real metadata is 2 million rows: whatever uses it is a slow test (-m "not slow" skips them).
    for item in items:
        if "real_metadata" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
