"""The configured ``download.sources``, opened: the one place that turns config entries into sources."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import UserError
from .base import Source

if TYPE_CHECKING:
    from .youtube.source import Fetch

log = logging.getLogger(__name__)

# Inside the output folder: archive indexes are ours, never written next to the archive.
INDEX_CACHE_DIR = Path("_cache") / "archive-index"


def open_sources(
    config: Config, ffmpeg: str, output_dir: Path, *, fetch: Fetch | None = None, progress: bool = True
) -> list[Source]:
    """Every ``download.sources`` entry, in order, ready to produce clips (archives indexed).

    ``fetch`` stands in for YouTube's ``fetch_clip`` in tests. Raises ``UserError`` naming
    the entry when an archive cannot be read; whatever was opened is closed again. Each kind
    is imported when configured: yt-dlp and pyarrow are slow to import for commands (the
    dry run) that never open a source.
    """
    download = config.download
    opened: list[Source] = []
    try:
        for position, entry in enumerate(download.sources):
            if entry.kind == "youtube":
                from .pacing import PacingSettings
                from .youtube.clip import fetch_clip
                from .youtube.settings import FetchSettings
                from .youtube.source import YoutubeSource

                opened.append(YoutubeSource(
                    FetchSettings.from_config(config, ffmpeg), name=entry.name, cookies_file=download.cookies_file,
                    proxies=download.proxies, pacing=PacingSettings.from_config(download),
                    fetch=fetch if fetch is not None else fetch_clip,
                ))
                continue
            from .archive.source import ArchiveSource

            try:
                opened.append(ArchiveSource.open(
                    entry.path, Path(output_dir) / INDEX_CACHE_DIR, entry.format, name=entry.name, ffmpeg=ffmpeg,
                    progress=progress,
                ))
            except UserError as exc:
                raise UserError(f"download.sources[{position}] ({entry.name}): {exc}") from None
    except BaseException:
        close_sources(opened)
        raise
    return opened


def close_sources(sources: Sequence[Source]) -> None:
    for source in sources:
        source.close()


def usable_sources(sources: Sequence[Source]) -> list[Source]:
    """The sources that pass their :meth:`~.base.Source.preflight`.

    An unreachable network source stops everything when it is the only one (exit 4); with
    other sources the run goes on without it, and the clips only it could give stay untried.
    """
    from .youtube.reachability import SourceUnreachable

    usable = []
    for source in sources:
        try:
            log.info("source %s: %s", source.name, source.preflight())
        except SourceUnreachable as exc:
            if len(sources) == 1:
                raise
            log.warning("source %s is not reachable (%s); going on with the other sources. Clips that only "
                        "it could give are left untried; run again when it is back.", source.name, exc)
            continue
        usable.append(source)
    return usable

