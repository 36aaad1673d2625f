"""The download job of download_data.py: selection outputs + config -> plans -> run."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ..config import Config
from ..dataset.lock import dataset_lock
from ..errors import UserError
from ..sources.configured import close_sources, open_sources, usable_sources
from ..sources.ffmpeg_bin import find_ffmpeg
from ..sources.output_spec import OutputSpec
from .executors import Executor, open_executor
from .ledger import LEDGER_NAME, Ledger
from .plan import ClassPlan, plan_download, selection_identities
from .preview import ClassPreview, SourceName, preview_download
from .runner import RunOptions, RunSummary, run_download
from .unavailable import export_unavailable, import_unavailable

log = logging.getLogger(__name__)


def slice_plans(config: Config, start: int | None = None, end: int | None = None) -> list[ClassPlan]:
    """Plans for the configured class slice; ``start`` / ``end`` override download.start_index / end_index."""
    from ..select.outputs import read_candidates, read_suitable_classes

    d = config.download
    start_index = d.start_index if start is None else start
    end_index = d.end_index if end is None else end
    if end_index is not None and start_index > end_index:
        raise UserError(f"--start {start_index} is past --end {end_index}; the slice is [start, end)")
    meta_dir = config.paths.meta_dir
    return plan_download(
        read_suitable_classes(meta_dir),
        read_candidates(meta_dir),
        start_index=start_index,
        end_index=end_index,
        samples_per_class=d.samples_per_class,
        audio_format=config.audio.format,
        max_attempts_per_class=d.max_attempts_per_class,
    )


def require_writable_folder(folder: Path) -> None:
    """Refuse an output folder that is a file or cannot be written, before anything is created.

    Local problems come first: they are exit 2 whatever the network does, and the source
    check that follows must still leave no trace when the source does not answer.
    """
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{existing}: not a folder; point paths.output_dir at a folder (or a new path)")
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        cause = os.strerror(errno.EROFS if read_only else errno.EACCES)
        raise UserError(f"{existing}: {cause}; choose another paths.output_dir")


def output_spec(config: Config) -> OutputSpec:
    """The clips every source must produce, from the ``audio`` section."""
    audio = config.audio
    return OutputSpec(sample_rate=audio.sample_rate, channels=audio.channels, audio_format=audio.format)


@contextlib.contextmanager
def configured_executor(config: Config) -> Iterator[Executor | None]:
    """Dask's executor for ``download.executor: dask`` (the cluster stopped on exit); None for threads."""
    download = config.download
    if download.executor == "threads":
        yield None
        return
    with open_executor("dask", download.workers, download.dask.scheduler) as executor:
        log.info("Dask: %d worker thread(s) on %s", executor.slots, ", ".join(executor.identities()))
        yield executor


def download_slice(
    config: Config,
    *,
    start: int | None = None,
    end: int | None = None,
    retry_failed: bool | str = False,
    progress: bool = True,
) -> RunSummary:
    """Download the configured slice into paths.output_dir (resuming whatever ran before).

    ``retry_failed``: True tries every source's known failures again, a source's name only that one's.
    """
    plans = slice_plans(config, start, end)
    ffmpeg = find_ffmpeg(config.download.ffmpeg_path)
    options = RunOptions.from_config(config, retry_failed=retry_failed, progress=progress)
    require_writable_folder(config.paths.output_dir)
    output_dir = config.paths.output_dir
    sources = open_sources(config, ffmpeg, output_dir, progress=progress)
    try:
        # Offline, every clip would fail one by one; one request now says so at once (exit 4).
        usable = usable_sources(sources)
        log.info(
            "downloading %d classes (%d clips each) into %s with %d worker(s) from %s",
            len(plans), config.download.samples_per_class, output_dir, options.workers,
            ", ".join(source.name for source in usable),
        )
        from ..select.outputs import read_suitable_classes

        selection = selection_identities(read_suitable_classes(config.paths.meta_dir))
        with configured_executor(config) as executor:
            return run_download(plans, usable, output_dir, output_spec(config), options, selection=selection,
                                executor=executor)
    finally:
        close_sources(sources)


def dry_run_slice(
    config: Config, *, start: int | None = None, end: int | None = None, retry_failed: bool | str = False
) -> list[ClassPreview]:
    sources = [SourceName(entry.name, entry.kind == "youtube") for entry in config.download.sources]
    return preview_download(slice_plans(config, start, end), config.paths.output_dir, retry_failed=retry_failed,
                            sources=sources)


def export_unavailable_list(output_dir: Path, path: Path) -> int:
    ledger_path = Path(output_dir) / LEDGER_NAME
    if not ledger_path.exists():
        raise UserError(f"no download ledger in {output_dir} yet: run a download first, then export")
    with Ledger(ledger_path, read_only=True) as ledger:
        return export_unavailable(ledger, path)


def import_unavailable_list(output_dir: Path, path: Path) -> int:
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    with dataset_lock(output_dir, "import-unavailable"), Ledger(Path(output_dir) / LEDGER_NAME) as ledger:
        return import_unavailable(ledger, path)
