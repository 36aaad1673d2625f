"""The YouTube source's settings: where videos are, ffmpeg, retries, timeouts, credentials, yt-dlp options."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import UserError
from .js_runtime import JsRuntime, resolve_js_runtime

if TYPE_CHECKING:
    from ...config import Config

# Proxies ffmpeg's http protocol can tunnel through (it has no SOCKS support).
_FFMPEG_PROXY_SCHEMES = ("http://",)
# Beyond what ffmpeg's own timeouts bound: a trickling server could still take forever.
DEFAULT_PROCESS_TIMEOUT = 600.0


@dataclasses.dataclass(frozen=True)
class FetchSettings:
    """How the YouTube source fetches (the output spec comes with each job); plain values, so it pickles."""

    url_template: str
    ffmpeg: str
    fetch_strategy: str = "range"
    max_retries: int = 3
    socket_timeout: float = 30.0
    # Wall-clock bound of one resolve (see fetch.resolve).
    resolve_timeout: float = 120.0
    # How much earlier than the segment's end the source may run out (codec delay); that
    # gap is padded. Clips always hold exactly round(duration * sample_rate) samples.
    duration_tolerance: float = 0.05
    # Transient failures wait retry_backoff * 2**n seconds (n = retries so far), capped.
    retry_backoff: float = 2.0
    retry_backoff_max: float = 60.0
    # A PRIVATE copy of the user's cookies (see cookies.private_cookie_copy), never the original.
    cookies_file: Path | None = None
    proxy: str | None = None
    # Local address both tools send from (yt-dlp source_address, ffmpeg local_addr), always
    # together: a media URL is valid only from the address that resolved it. None = the default route.
    source_address: str | None = None
    js_runtime: JsRuntime = JsRuntime("deno")
    process_timeout: float = DEFAULT_PROCESS_TIMEOUT
    # yt-dlp's extractor_args (download.youtube.extractor_args), frozen as nested tuples:
    # ((extractor, ((argument, (value, ...)), ...)), ...).
    extractor_args: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...] = ()
    # Longest wait for a format's available_at before reading it (download.youtube.max_wait_for_format_seconds).
    max_wait_for_format: float = 120.0

    def __post_init__(self) -> None:
        if "{ytid}" not in self.url_template:
            raise ValueError("url_template must contain {ytid}")
        if self.fetch_strategy not in ("range", "whole_file"):
            raise ValueError(f"fetch_strategy must be range or whole_file, got {self.fetch_strategy!r}")
        if self.proxy is not None and not self.proxy.lower().startswith(_FFMPEG_PROXY_SCHEMES):
            raise ValueError(
                "only http:// proxies are supported: ffmpeg, which reads the audio, cannot tunnel through "
                "socks or https proxies, and sending its requests direct would bypass the proxy"
            )

    @classmethod
    def from_config(
        cls, config: Config, ffmpeg: str, cookies_copy: Path | None = None, proxy: str | None = None
    ) -> FetchSettings:
        download = config.download
        runtime = resolve_js_runtime(download.js_runtime)
        try:
            return cls(
                url_template=download.url_template,
                ffmpeg=ffmpeg,
                fetch_strategy=download.fetch_strategy,
                max_retries=download.max_retries,
                socket_timeout=download.socket_timeout,
                resolve_timeout=download.resolve_timeout,
                duration_tolerance=download.duration_tolerance,
                retry_backoff=download.retry_backoff_seconds,
                retry_backoff_max=download.backoff_max_seconds,
                cookies_file=cookies_copy,
                proxy=proxy,
                js_runtime=runtime,
                extractor_args=freeze_extractor_args(download.youtube.extractor_args),
                max_wait_for_format=download.youtube.max_wait_for_format_seconds,
            )
        except ValueError as exc:
            # The config model checks these too; this catches values passed in directly (proxy).
            raise UserError(f"download settings: {exc}") from None

    def url_for(self, ytid: str) -> str:
        return self.url_template.replace("{ytid}", ytid)

    def extractor_args_mapping(self) -> dict[str, dict[str, list[str]]]:
        """:attr:`extractor_args` in the shape yt-dlp's ``extractor_args`` parameter takes."""
        return {name: {arg: list(values) for arg, values in args} for name, args in self.extractor_args}


def freeze_extractor_args(
    mapping: dict[str, dict[str, list[str]]],
) -> tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
    """An immutable, comparable form of ``download.youtube.extractor_args`` (settings stay hashable)."""
    return tuple(
        (name, tuple((arg, tuple(values)) for arg, values in sorted(args.items())))
        for name, args in sorted(mapping.items())
    )
