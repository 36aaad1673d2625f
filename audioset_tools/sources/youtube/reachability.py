"""Is the download source reachable? One request before a run, instead of minutes of failing clips.

:func:`check_source` resolves the host of ``download.url_template`` (bounded in time: a
resolver that never answers must not hang the check) and sends one ``HEAD /`` to it, or
through the configured proxies (then the proxy resolves the host). Any HTTP answer, even
404, proves the network path works; only no answer at all fails. ``download`` calls
:func:`require_source` once before it starts and stops with exit code 4 when it fails;
``doctor`` reports the same check.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...errors import EXIT_NETWORK, UserError
from .network_errors import describe_network_error

# Bounds of the whole check (DNS + one request); together well under 15 s.
DNS_TIMEOUT = 5.0
REQUEST_TIMEOUT = 8.0
# A proxy answering these could not reach the host itself.
_PROXY_GATEWAY_ERRORS = {502, 503, 504}


@dataclass(frozen=True)
class Reachability:
    ok: bool
    # What was asked (scheme://host[:port]/), or "" when nothing was.
    url: str
    detail: str


class SourceUnreachable(UserError):
    """The download source does not answer: exit code 4, like a run stopped by the network."""

    exit_code = EXIT_NETWORK


def probe_url(url_template: str) -> str | None:
    """``scheme://host[:port]/`` of the template, or None for a source that is not http(s)."""
    parts = urlsplit(url_template.replace("{ytid}", "x"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"


def _resolve(host: str, port: int, timeout: float) -> str | None:
    """None when ``host`` resolves within ``timeout``, else why not."""
    outcome: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    # getaddrinfo has no timeout of its own; a daemon thread lets us stop waiting for it.
    worker = threading.Thread(target=lookup, name="dns-check", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"cannot resolve {host} (DNS: no answer within {timeout:g} s)"
    error = outcome[0]
    if error is None:
        return None
    described = describe_network_error(error, host)
    return described.message if described else f"cannot resolve {host} ({error})"


def _head(url: str, host: str, proxy: str | None, timeout: float) -> tuple[int | None, str]:
    """HTTP status of ``HEAD url`` (None when nothing answered) and a description; ``host`` names it.

    Bounded in wall time: urllib's timeout covers each socket operation, not the name
    lookup of the connection nor a server trickling its headers.
    """
    outcome: list[tuple[int | None, str]] = []
    worker = threading.Thread(target=lambda: outcome.append(_head_unbounded(url, host, proxy, timeout)),
                              name="reachability-check", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    return outcome[0] if outcome else (None, f"no answer from {host} within {timeout:g} s")


def _head_unbounded(url: str, host: str, proxy: str | None, timeout: float) -> tuple[int | None, str]:
    handlers = [urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})]
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "audioset-tools reachability check"})
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        described = describe_network_error(exc, host)
        return None, described.message if described else f"no answer from {host} ({getattr(exc, 'reason', exc)})"
    return status, f"HTTP {status} in {time.monotonic() - started:.2f} s"


def check_source(url_template: str, proxies: Sequence[str] = (), *, dns_timeout: float = DNS_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT) -> Reachability:
    """One request to the host of ``url_template`` (directly, or through the first proxy that answers)."""
    url = probe_url(url_template)
    if url is None:
        return Reachability(True, "", "not an http(s) source; nothing to check")
    parts = urlsplit(url)
    host = parts.hostname or ""
    environment_proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxies and environment_proxy and not urllib.request.proxy_bypass(host):
        # yt-dlp and ffmpeg use $http_proxy / $https_proxy too; then the proxy resolves the host.
        proxies = [environment_proxy]
    if not proxies:
        problem = _resolve(host, parts.port or (443 if parts.scheme == "https" else 80), dns_timeout)
        if problem is not None:
            return Reachability(False, url, problem)
        where = parts.netloc.rpartition("@")[2]
        status, detail = _head(url, where, None, request_timeout)
        return Reachability(status is not None, url, f"{where} answered {detail}" if status else detail)
    problems = []
    deadline = time.monotonic() + dns_timeout + request_timeout
    for proxy in proxies:
        label = _redacted(proxy)
        remaining = deadline - time.monotonic()
        if remaining < 0.5:
            problems.append(f"proxy {label}: not tried (time is up)")
            continue
        status, detail = _head(url, parts.netloc.rpartition("@")[2], proxy, min(request_timeout, remaining))
        if status is not None and status not in _PROXY_GATEWAY_ERRORS:
            return Reachability(True, url, f"{host} answered {detail} through proxy {label}")
        problems.append(f"proxy {label}: {detail}")
    return Reachability(False, url, "; ".join(problems))


def _redacted(proxy: str) -> str:
    parts = urlsplit(proxy)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def require_source(url_template: str, proxies: Sequence[str] = ()) -> Reachability:
    """:func:`check_source`, raising :class:`SourceUnreachable` (exit 4, one line) when it fails."""
    result = check_source(url_template, proxies)
    if not result.ok:
        raise SourceUnreachable(
            f"the download source does not answer: {result.detail}. Nothing was tried or marked; "
            f"check the connection (or download.url_template / download.proxies) and run again."
        )
    return result
