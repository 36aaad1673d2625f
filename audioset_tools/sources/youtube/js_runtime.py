"""The JavaScript runtime yt-dlp needs for YouTube extraction (its ``js_runtimes`` option).

Default: the Deno binary shipped by the ``deno`` PyPI package (a dependency), so a plain
``pip install audioset-tools`` suffices. ``download.js_runtime`` overrides it:
``"node"`` (found on PATH by yt-dlp), or ``"NAME:PATH"`` such as ``"deno:/usr/bin/deno"``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

from ...errors import UserError

log = logging.getLogger(__name__)

# The runtimes yt-dlp 2026.10.26 accepts (yt_dlp.globals.supported_js_runtimes).
SUPPORTED = ("deno", "node", "bun", "quickjs")
# yt-dlp's executable name for each runtime, used to look a bare name up on PATH.
_EXECUTABLES = {"deno": "deno", "node": "node", "bun": "bun", "quickjs": "qjs"}


@dataclasses.dataclass(frozen=True)
class JsRuntime:
    name: str
    # None: yt-dlp looks the executable up on PATH itself.
    path: str | None = None

    def ytdlp_option(self) -> dict[str, dict[str, str]]:
        """The value of yt-dlp's ``js_runtimes`` parameter."""
        return {self.name: {"path": self.path} if self.path else {}}

    def describe(self) -> str:
        return f"{self.name} ({self.path or 'from PATH'})"


def resolve_js_runtime(spec: str | None) -> JsRuntime:
    """Turn ``download.js_runtime`` into a runtime; :class:`UserError` on a bad value."""
    if spec is None:
        return _bundled_deno()
    name, sep, path = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in SUPPORTED:
        raise UserError(
            f"download.js_runtime = {spec!r}: unknown runtime {name!r}. "
            f"Use one of {', '.join(SUPPORTED)}, optionally as NAME:PATH (e.g. deno:/usr/bin/deno), "
            f"or null for the bundled deno."
        )
    if not sep:
        return JsRuntime(name)
    if not path.strip():
        raise UserError(f"download.js_runtime = {spec!r}: the path after ':' is empty")
    return JsRuntime(name, str(Path(path.strip()).expanduser()))


def runtime_executable(runtime: JsRuntime) -> str | None:
    """Where the runtime's executable is, or None if it cannot be found (for doctor)."""
    if runtime.path is not None:
        candidate = Path(runtime.path)
        if candidate.is_dir():
            candidate = candidate / _EXECUTABLES[runtime.name]
        return str(candidate) if candidate.is_file() else None
    return shutil.which(_EXECUTABLES[runtime.name])


def _bundled_deno() -> JsRuntime:
    try:
        import deno
        return JsRuntime("deno", deno.find_deno_bin())
    except (ImportError, FileNotFoundError) as exc:
        # Not fatal here: direct media URLs (mirrors, tests) need no JavaScript at all;
        # doctor reports the missing runtime, and yt-dlp says so on YouTube pages.
        log.debug("the deno package's binary is not available (%s); yt-dlp will look for deno on PATH", exc)
        return JsRuntime("deno")
