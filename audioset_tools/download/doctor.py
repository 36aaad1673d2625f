"""``doctor``: check everything a download depends on, before a multi-day job finds out the hard way."""

from __future__ import annotations

import enum
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..config import Config
from ..errors import UserError
from ..sources.ffmpeg_bin import (
    ffmpeg_filters,
    ffmpeg_protocols,
    ffmpeg_version,
    find_ffmpeg,
)
from ..sources.youtube.cookies import validate_cookies_file
from ..sources.youtube.js_runtime import resolve_js_runtime, runtime_executable
from ..sources.youtube.reachability import check_source
from ..sources.youtube.segment import REQUIRED_FILTERS
from ..sources.youtube.ytdlp_tooling import (
    PO_TOKEN_SETTINGS_PREFIX,
    TOOLING_FIX,
    ejs_version_wanted,
    installed_plugins,
    package_version,
)
from .plan import ClassPlan

# YouTube changes often enough that a yt-dlp older than this is a likely cause of failures.
YTDLP_MAX_AGE_DAYS = 60
_RUN_TIMEOUT = 30.0


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def check_ffmpeg(override: Path | None) -> Check:
    try:
        path = find_ffmpeg(override)
    except UserError as exc:
        return Check("ffmpeg", Status.FAIL, exc.message)
    version = ffmpeg_version(path)
    if "https" not in ffmpeg_protocols(path):
        return Check(
            "ffmpeg", Status.FAIL,
            f"{path} (version {version}) cannot read https URLs; use imageio-ffmpeg's binary "
            f"(unset download.ffmpeg_path) or an ffmpeg built with TLS",
        )
    missing = sorted(REQUIRED_FILTERS - ffmpeg_filters(path))
    if missing:
        return Check(
            "ffmpeg", Status.FAIL,
            f"{path} (version {version}) lacks the audio filter(s) {', '.join(missing)} that cut clips to an "
            f"exact sample count; use imageio-ffmpeg's binary (unset download.ffmpeg_path) or a full ffmpeg build",
        )
    return Check("ffmpeg", Status.OK, f"{path} (version {version}, https supported)")


def ytdlp_release_date(version: str) -> date | None:
    """yt-dlp versions are release dates: ``2026.10.26`` (nightlies add ``.HHMMSS``)."""
    parts = version.split(".")
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (IndexError, ValueError):
        return None


def check_ytdlp(today: date | None = None) -> Check:
    from yt_dlp.version import __version__

    released = ytdlp_release_date(__version__)
    if released is None:
        return Check("yt-dlp", Status.WARN, f"version {__version__}: cannot tell its age")
    age = ((today or date.today()) - released).days
    if age > YTDLP_MAX_AGE_DAYS:
        return Check(
            "yt-dlp", Status.WARN,
            f"version {__version__} is {age} days old; YouTube breaks old versions: {TOOLING_FIX}",
        )
    return Check("yt-dlp", Status.OK, f"version {__version__} ({age} days old)")


def check_ejs() -> Check:
    """yt-dlp-ejs: the challenge solver scripts YouTube extraction needs, in the version yt-dlp pins."""
    installed = package_version("yt-dlp-ejs")
    wanted = ejs_version_wanted()
    if installed is None:
        return Check("yt-dlp-ejs", Status.WARN,
                     f"not installed; YouTube's JS challenges cannot be solved without it: {TOOLING_FIX}")
    if wanted is not None and installed != wanted:
        return Check("yt-dlp-ejs", Status.WARN,
                     f"version {installed}, but this yt-dlp expects {wanted}; update both together: {TOOLING_FIX}")
    return Check("yt-dlp-ejs", Status.OK, f"version {installed}" + (" (the one yt-dlp expects)" if wanted else ""))


def check_ytdlp_plugins(extractor_args: Mapping[str, object] | None = None) -> Check:
    """yt-dlp plugins and PO-token providers (they change what YouTube extraction does).

    Warns when ``download.youtube.extractor_args`` configures a PO-token provider that is
    not installed: yt-dlp would silently ignore those options.
    """
    plugins = installed_plugins()
    # When the listing itself failed, nothing can be said about what is missing.
    orphans = [] if plugins.notes else sorted(
        name for name in (extractor_args or {})
        if name.startswith(PO_TOKEN_SETTINGS_PREFIX) and name not in plugins.po_token_settings_names
    )
    parts = []
    if plugins.po_token_providers:
        parts.append("PO-token providers: " + ", ".join(plugins.po_token_providers))
    if plugins.extractors:
        parts.append("extractor plugins: " + ", ".join(plugins.extractors))
    if plugins.postprocessors:
        parts.append("post-processor plugins: " + ", ".join(plugins.postprocessors))
    if not parts:
        parts.append("none installed (PO-token providers such as bgutil-ytdlp-pot-provider are optional;"
                     " their options go in download.youtube.extractor_args)")
    if orphans:
        plugins.notes.append(
            f"download.youtube.extractor_args configures {', '.join(orphans)}, but no such PO-token provider "
            f"is installed (yt-dlp ignores those options); install its plugin or remove the key"
        )
    if plugins.notes:
        return Check("yt-dlp plugins", Status.WARN, "; ".join(parts + plugins.notes))
    return Check("yt-dlp plugins", Status.OK, "; ".join(parts))


def check_js_runtime(spec: str | None) -> Check:
    try:
        runtime = resolve_js_runtime(spec)
    except UserError as exc:
        return Check("JavaScript runtime", Status.FAIL, exc.message)
    executable = runtime_executable(runtime)
    if executable is None:
        return Check(
            "JavaScript runtime", Status.FAIL,
            f"{runtime.describe()} not found; YouTube extraction needs one: pip install deno, "
            f"or set download.js_runtime (e.g. node)",
        )
    try:
        completed = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=_RUN_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("JavaScript runtime", Status.FAIL, f"{executable} does not run ({exc})")
    if completed.returncode != 0:
        return Check("JavaScript runtime", Status.FAIL, f"{executable} --version exited {completed.returncode}")
    first_line = (completed.stdout.strip().splitlines() or ["?"])[0]
    return Check("JavaScript runtime", Status.OK, f"{runtime.name} at {executable} ({first_line})")


def check_cookies(path: Path | None) -> Check:
    if path is None:
        return Check("cookies", Status.OK, "none configured (set download.cookies_file if YouTube asks to sign in)")
    try:
        count = validate_cookies_file(path)
    except UserError as exc:
        return Check("cookies", Status.FAIL, exc.message)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check("cookies", Status.WARN,
                     f"{path}: {count} cookies, but other users can read it (mode {mode:o}); chmod 600 it")
    return Check("cookies", Status.OK, f"{path}: {count} cookies, valid Netscape format")


# AudioSet segments last 10 s. Beyond the clips: ledger, manifests and temporaries.
SEGMENT_SECONDS = 10.0
_OVERHEAD_BYTES = 64 * 2**20
# Without a plan to size it from, less than this is still worth a warning.
MIN_FREE_BYTES = 256 * 2**20
# FLAC of field recordings keeps about 60 % of the PCM size; sized generously.
_FLAC_RATIO = 0.75


@dataclass(frozen=True)
class SpaceNeed:
    clips: int
    bytes: int


def space_needed(clips: int, sample_rate: int, channels: int, audio_format: str) -> SpaceNeed:
    """Disk space ``clips`` 10 s clips take (16-bit PCM in WAV, less in FLAC), plus overhead."""
    pcm = SEGMENT_SECONDS * sample_rate * channels * 2
    per_clip = pcm * (_FLAC_RATIO if audio_format == "flac" else 1.0) + 4096
    return SpaceNeed(clips, int(clips * per_clip * 1.1) + _OVERHEAD_BYTES)


def check_output_dir(path: Path, need: SpaceNeed | None = None) -> Check:
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check("output folder", Status.FAIL, f"{path}: {existing} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".doctor-", suffix=".tmp"):
            pass
    except OSError as exc:
        return Check("output folder", Status.FAIL, f"{path}: cannot write in {existing} ({exc.strerror})")
    free = shutil.disk_usage(existing).free
    where = "" if existing == Path(path) else f" (will be created in {existing})"
    detail = f"{path} is writable{where}, {_gib(free)} GiB free"
    if need is not None and free < need.bytes:
        return Check("output folder", Status.WARN,
                     f"{detail}, but the {need.clips} planned clips need about {_gib(need.bytes)} GiB; free some "
                     f"space or choose another paths.output_dir (a full disk stops a download with exit 5)")
    if need is None and free < MIN_FREE_BYTES:
        return Check("output folder", Status.WARN, f"{detail}: nearly full (a full disk stops a download with exit 5)")
    return Check("output folder", Status.OK, detail + (f", enough for the {need.clips} planned clips" if need else ""))


def check_network(url_template: str, proxies: Sequence[str] = (), offline: bool = False) -> Check:
    """One request to the configured source (download.url_template), as download makes before it starts."""
    if offline:
        return Check("network", Status.SKIP, "not checked (--offline); download needs the source to answer")
    result = check_source(url_template, proxies)
    if not result.ok:
        return Check("network", Status.FAIL, f"{result.url or url_template} does not answer: {result.detail}")
    return Check("network", Status.OK, f"{result.url}: {result.detail}" if result.url else result.detail)


def _gib(size: float) -> str:
    return f"{size / 2**30:.1f}"


def run_checks(
    *, ffmpeg_path: Path | None, js_runtime: str | None, cookies_file: Path | None, output_dir: Path,
    url_template: str | None = None, proxies: Sequence[str] = (), offline: bool = False,
    space: SpaceNeed | None = None, extractor_args: Mapping[str, object] | None = None, youtube: bool = True,
) -> list[Check]:
    """Every check; the YouTube tooling ones only for a ``youtube`` source, the network one only when
    ``url_template`` is given too (skipped with ``offline``)."""
    checks: list[Callable[[], Check]] = [lambda: check_ffmpeg(ffmpeg_path)]
    if youtube:
        checks += [
            check_ytdlp,
            check_ejs,
            lambda: check_ytdlp_plugins(extractor_args),
            lambda: check_js_runtime(js_runtime),
            lambda: check_cookies(cookies_file),
        ]
    checks.append(lambda: check_output_dir(output_dir, space))
    if youtube and url_template is not None:
        checks.append(lambda: check_network(url_template, proxies, offline))
    return [check() for check in checks]


def check_archives(config: Config, output_dir: Path, plans: Sequence[ClassPlan] | None) -> list[Check]:
    """One check per archive in ``download.sources``: readable, indexed, and how many planned clips it holds."""
    from ..sources.archive.source import ArchiveSource
    from ..sources.configured import INDEX_CACHE_DIR
    from .coverage import plan_coverage

    checks = []
    for entry in config.download.sources:
        if entry.kind != "archive":
            continue
        name = f"source {entry.name}"
        try:
            source = ArchiveSource.open(entry.path, Path(output_dir) / INDEX_CACHE_DIR, entry.format,
                                            name=entry.name)
        except UserError as exc:
            checks.append(Check(name, Status.FAIL, exc.message))
            continue
        try:
            detail = source.preflight()
            if plans is None:
                checks.append(Check(name, Status.OK, f"{detail}; no selection yet to compare it with"))
                continue
            held = plan_coverage(plans, [source], output_dir).sources[0].holds or 0
            planned = sum(len(plan.candidates) for plan in plans)
            status = Status.OK if held else Status.WARN
            checks.append(Check(name, status, f"{detail}; holds {held:,} of the {planned:,} planned candidates"))
        finally:
            source.close()
    return checks


def check_source_addresses(addresses: Sequence[str]) -> list[Check]:
    """Each of ``download.source_addresses`` must be an address of this machine (binding to it works)."""
    import ipaddress
    import socket

    checks = []
    for address in addresses:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((address, 0))
        except OSError as exc:
            checks.append(Check(f"source address {address}", Status.FAIL,
                                f"not an address of this machine ({exc.strerror}); fix download.source_addresses"))
        else:
            checks.append(Check(f"source address {address}", Status.OK, "an address of this machine"))
    return checks


def check_executor(executor: str, workers: int, scheduler: str | None, offline: bool = False) -> list[Check]:
    """For ``download.executor: dask``: the scheduler answers, and each worker with its address and tooling."""
    if executor != "dask":
        return []
    from .executors import open_executor

    where = scheduler or f"a LocalCluster of {workers} process(es) on this machine"
    if offline and scheduler is not None:
        return [Check("Dask", Status.SKIP, f"--offline: {scheduler} not contacted")]
    try:
        with open_executor("dask", workers, scheduler, connect_timeout=10.0, worker_wait=10.0) as pool:
            described = pool.describe_workers()
    except UserError as exc:
        return [Check("Dask", Status.FAIL, exc.message)]
    checks = [Check("Dask", Status.OK, f"{where}: {len(described)} worker(s) on "
                                       f"{len({w.identity for w in described})} address(es)")]
    for worker in described:
        usable = worker.tooling.startswith("audioset-tools")
        checks.append(Check(f"Dask worker {worker.address}", Status.OK if usable else Status.FAIL,
                            f"address {worker.identity}, {worker.threads} thread(s); {worker.tooling}"))
    return checks


def format_checks(checks: list[Check]) -> str:
    return "\n".join(f"[{c.status.value:>4}] {c.name}: {c.detail}" for c in checks)
