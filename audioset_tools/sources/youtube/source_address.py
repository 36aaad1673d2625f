"""Sending from a chosen local address (``download.source_addresses``): what a bind failure looks like.

Both tools bind the address themselves (yt-dlp's ``source_address``, ffmpeg's tcp
``local_addr``). When the address is not one of this machine's:

- yt-dlp raises a ``TransportError`` whose chain ends in ``OSError`` ``EADDRNOTAVAIL``
  ("[Errno 99] Cannot assign requested address");
- ffmpeg prints ``bind local failed: Cannot assign requested address`` and exits 255 with a
  misleading summary ("Error opening input: Operation not permitted").

Neither says anything about the video: the clip is transient, and retrying it at once
would only fail again (the address does not appear within seconds).
"""

from __future__ import annotations

import errno
import re

from ..outcomes import Outcome
from .classify import Failure, clean_message
from .network_errors import causes

_FFMPEG_BIND = re.compile(r"bind local failed: ([^\r\n]*)")


def ytdlp_bind_failure(exc: BaseException) -> str | None:
    """The reason yt-dlp could not bind its source address, or None when ``exc`` is something else."""
    for cause in causes(exc):
        if isinstance(cause, OSError) and cause.errno == errno.EADDRNOTAVAIL:
            return cause.strerror or str(cause)
    return None


def ffmpeg_bind_failure(stderr: str) -> str | None:
    """The reason ffmpeg could not bind its ``local_addr``, or None when it did not report one."""
    match = _FFMPEG_BIND.search(stderr)
    return match.group(1).strip() if match else None


def bind_failure(address: str, reason: str) -> Failure:
    # EADDRNOTAVAIL is by far the common case; ffmpeg also reports rarer ones (no free port) here.
    meaning = "it is not an address of this machine" if "assign requested address" in reason.lower() else "binding it failed"
    return Failure(
        Outcome.TRANSIENT,
        clean_message(f"cannot send from source address {address} ({reason}): {meaning}; check download.source_addresses"),
        worth_retrying=False,
    )
