"""What YouTube extraction runs on here: yt-dlp, yt-dlp-ejs and yt-dlp's plugins, with versions.

yt-dlp's plugin system is explicitly not a stable API ("no backwards compatibility is
guaranteed"), so every look into it is guarded: a yt-dlp that moved things gives an
empty listing and a note, never a crash of ``doctor`` or a run.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# What fixes nearly every tooling error: yt-dlp and its challenge solver scripts, updated together.
TOOLING_FIX = 'pip install -U "yt-dlp[default]" yt-dlp-ejs deno'


def package_version(name: str) -> str | None:
    """The installed distribution's version, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def ytdlp_version() -> str | None:
    try:
        from yt_dlp.version import __version__
    except ImportError:
        return package_version("yt-dlp")
    return str(__version__)


def tooling_versions() -> dict[str, str]:
    """``{"yt_dlp": ..., "yt_dlp_ejs": ...}``; "" for what is not installed (for run records)."""
    return {"yt_dlp": ytdlp_version() or "", "yt_dlp_ejs": package_version("yt-dlp-ejs") or ""}


_PIN = re.compile(r"\Ayt-dlp-ejs\s*==\s*(?P<version>[^;\s]+)", re.IGNORECASE)


def ejs_version_wanted() -> str | None:
    """The yt-dlp-ejs version the installed yt-dlp pins in its extras (``yt-dlp[default]``), if any."""
    try:
        requirements = importlib.metadata.requires("yt-dlp") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        match = _PIN.match(requirement.strip())
        if match:
            return match["version"]
    return None


# yt-dlp reads a PO-token provider's options from extractor_args["youtubepot-<provider key>"].
PO_TOKEN_SETTINGS_PREFIX = "youtubepot-"


@dataclass
class Plugins:
    """yt-dlp plugins found in this environment, as ``"Name (module)"`` lines."""

    extractors: list[str] = field(default_factory=list)
    postprocessors: list[str] = field(default_factory=list)
    po_token_providers: list[str] = field(default_factory=list)
    # The extractor_args name each provider reads its options from ("youtubepot-<key>").
    po_token_settings_names: set[str] = field(default_factory=set)
    # Why a listing may be incomplete (an API yt-dlp changed, a plugin that failed to import).
    notes: list[str] = field(default_factory=list)


def installed_plugins() -> Plugins:
    """Load yt-dlp's plugins the way a ``YoutubeDL`` does, and list them."""
    plugins = Plugins()
    try:
        from yt_dlp import globals as ytdlp_globals
        from yt_dlp.plugins import load_all_plugins

        if not ytdlp_globals.all_plugins_loaded.value:
            load_all_plugins()
        plugins.extractors = _describe(ytdlp_globals.plugin_ies.value)
        plugins.postprocessors = _describe(ytdlp_globals.plugin_pps.value)
    except Exception as exc:  # an API yt-dlp changed: report, never fail
        plugins.notes.append(f"cannot list yt-dlp plugins with this yt-dlp ({type(exc).__name__}: {exc})")
    try:
        # PO-token providers register themselves when their plugin module is imported (above).
        registry = importlib.import_module("yt_dlp.extractor.youtube.pot._registry")
        providers = registry._pot_providers.value
        plugins.po_token_providers = [
            f"{getattr(cls, 'PROVIDER_NAME', key)} {getattr(cls, 'PROVIDER_VERSION', '')}".strip()
            + f" ({cls.__module__})"
            for key, cls in sorted(providers.items())
        ]
        plugins.po_token_settings_names = {f"{PO_TOKEN_SETTINGS_PREFIX}{str(key).lower()}" for key in providers}
    except Exception as exc:
        plugins.notes.append(f"cannot list PO-token providers with this yt-dlp ({type(exc).__name__}: {exc})")
    return plugins


def _describe(classes: dict) -> list[str]:
    return [f"{name} ({getattr(cls, '__module__', '?')})" for name, cls in sorted(classes.items())]
