"""Which ffmpeg binary to use, checked once.

Order: an explicit override (``download.ffmpeg_path``), then ``$AUDIOSET_TOOLS_FFMPEG``,
then imageio-ffmpeg's bundled static binary (installed with the package, has https),
then ``ffmpeg`` on PATH. ffprobe is never needed.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)

ENV_VAR = "AUDIOSET_TOOLS_FFMPEG"
_VERSION_RE = re.compile(r"ffmpeg version (\S+)")
_CHECK_TIMEOUT = 30.0


def find_ffmpeg(override: Path | None = None) -> str:
    """Path of a working ffmpeg; :class:`UserError` when none works.

    An override that does not work is an error rather than a reason to fall back:
    the user asked for that binary.
    """
    if override is not None:
        return _checked(str(override), "download.ffmpeg_path")
    env_value = os.environ.get(ENV_VAR)
    if env_value:
        return _checked(env_value, f"${ENV_VAR}")
    tried = []
    bundled = _bundled_ffmpeg()
    if bundled is not None:
        if _works(bundled):
            return bundled
        tried.append(f"imageio-ffmpeg's {bundled}")
    on_path = shutil.which("ffmpeg")
    if on_path is not None:
        if _works(on_path):
            return on_path
        tried.append(on_path)
    detail = f" (tried: {', '.join(tried)})" if tried else ""
    raise UserError(
        f"no working ffmpeg found{detail}.\n"
        f"  Reinstall audioset-tools (it brings imageio-ffmpeg), install ffmpeg on PATH, "
        f"or set download.ffmpeg_path / ${ENV_VAR} to an ffmpeg binary."
    )


def ffmpeg_version(path: str) -> str:
    """Version string of the ffmpeg at ``path`` (e.g. ``9.0.2-static``)."""
    output = _version_output(path)
    if output is None:
        raise UserError(f"{path}: does not run as ffmpeg")
    match = _VERSION_RE.search(output)
    return match.group(1) if match else "unknown"


def ffmpeg_protocols(path: str) -> frozenset[str]:
    """Input protocols the ffmpeg at ``path`` supports (``https`` matters for YouTube)."""
    completed = subprocess.run(
        [path, "-hide_banner", "-protocols"], capture_output=True, text=True, timeout=_CHECK_TIMEOUT, check=False
    )
    lines = completed.stdout.splitlines()
    try:
        start, stop = lines.index("Input:") + 1, lines.index("Output:")
    except ValueError:
        return frozenset()
    return frozenset(line.strip() for line in lines[start:stop] if line.strip())


_FILTER_LINE = re.compile(r"^\s*[A-Z.|]{2,3}\s+(\w+)\s+\S+->\S+")


def ffmpeg_filters(path: str) -> frozenset[str]:
    """Names of the filters the ffmpeg at ``path`` was built with."""
    completed = subprocess.run(
        [path, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=_CHECK_TIMEOUT, check=False
    )
    return frozenset(match[1] for line in completed.stdout.splitlines() if (match := _FILTER_LINE.match(line)))


def _checked(path: str, origin: str) -> str:
    if not _works(path):
        raise UserError(
            f"{origin} = {path}: this ffmpeg does not run (`{path} -version` failed).\n"
            f"  Point it at a working ffmpeg binary, or unset it to use the bundled one."
        )
    return path


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        log.debug("imageio-ffmpeg has no usable binary: %s", exc)
        return None


def _works(path: str) -> bool:
    return _version_output(path) is not None


@functools.lru_cache(maxsize=None)
def _version_output(path: str) -> str | None:
    # Cached: every clip would otherwise pay for a process start to re-check the same binary.
    try:
        completed = subprocess.run(
            [path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=_CHECK_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("%s -version failed: %s", path, exc)
        return None
    if completed.returncode != 0 or "ffmpeg version" not in completed.stdout:
        log.debug("%s -version exited %s", path, completed.returncode)
        return None
    return completed.stdout
