"""One short line for a network error, whichever library raised it (yt-dlp, urllib, sockets).

yt-dlp's own text for an offline machine is a 400-character restatement of the URL, the
connection object and the cause; a user needs "cannot resolve www.youtube.com (DNS)".
The exception chain holds the real cause (``socket.gaierror``, ``ConnectionRefusedError``,
...), so it decides; the text is only mined for the host name when no URL is known.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from dataclasses import dataclass

_HOST_IN_TEXT = re.compile(r"host='([^']+)'(?:, port=(\d+))?")
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


@dataclass(frozen=True)
class NetworkError:
    message: str
    # Name resolution failed: retrying within seconds only repeats it (the resolver caches).
    dns: bool = False


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything that caused it: yt-dlp's ``exc_info`` / ``cause``, urllib's
    ``reason``, ``__cause__`` and ``__context__``."""
    chain: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(chain) < 20:
        current = pending.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        exc_info = getattr(current, "exc_info", None)
        linked = [
            exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
            getattr(current, "cause", None),
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
        ]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return chain


def describe_network_error(exc: BaseException, host: str | None = None) -> NetworkError | None:
    """A short description when ``exc`` comes from the network, else None."""
    if host is None:
        found = _HOST_IN_TEXT.search(str(exc))
        if found:
            host = found.group(1) if found.group(2) in (None, "80", "443") else f"{found.group(1)}:{found.group(2)}"
    where = host or "the server"
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror):
            return NetworkError(f"cannot resolve {where} (DNS: {cause.strerror or cause})", dns=True)
        if isinstance(cause, ConnectionRefusedError):
            return NetworkError(f"connection refused by {where}")
        if isinstance(cause, ConnectionResetError):
            return NetworkError(f"connection reset by {where}")
        if isinstance(cause, TimeoutError):
            return NetworkError(f"no answer from {where} (timed out)")
        if isinstance(cause, ssl.SSLError):
            return NetworkError(f"TLS handshake with {where} failed ({cause.reason or cause})")
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return NetworkError(f"network unreachable for {where} ({cause.strerror})")
    return None
