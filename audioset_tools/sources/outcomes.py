"""What can happen to one clip, and which of those results are final."""

from __future__ import annotations

import enum


class Outcome(str, enum.Enum):
    """Result of fetching one clip. The values are what ledgers and reports store."""

    OK = "ok"
    # 404/410, removed, private, deleted account, geo-blocked.
    UNAVAILABLE = "unavailable"
    # 403 that survived one fresh resolve (signed media URLs expire, so one 403 is not final).
    FORBIDDEN = "forbidden"
    # Bot check, age gate, login wall: cookies may help.
    SIGN_IN_REQUIRED = "sign_in_required"
    # HTTP 429 or YouTube's "try again later": every worker should pause.
    RATE_LIMITED = "rate_limited"
    # 5xx, timeouts, resets, DNS failures: worth retrying.
    TRANSIENT = "transient"
    # The source ends before the segment does.
    TOO_SHORT = "too_short"
    # Not audio, or corrupt.
    DECODE_ERROR = "decode_error"
    # The source kept delivering less than the segment (its container claims more).
    TRUNCATED = "truncated"
    # Our tooling, not the video: yt-dlp could not solve YouTube's JS challenges, found no
    # JavaScript runtime, got only SABR formats without a URL, or no format at all. Never a
    # verdict on the video; a few in a row stop the run (update yt-dlp and yt-dlp-ejs).
    TOOLING_ERROR = "tooling_error"

    def __str__(self) -> str:
        return self.value


# Retrying these on a rerun would only repeat the answer (unless the user asks to).
PERMANENT_FAILURES = frozenset(
    {Outcome.UNAVAILABLE, Outcome.FORBIDDEN, Outcome.SIGN_IN_REQUIRED, Outcome.TOO_SHORT, Outcome.DECODE_ERROR}
)

# Signs that the site is pushing back on this client: the scheduler pauses every worker.
THROTTLING = frozenset({Outcome.RATE_LIMITED, Outcome.SIGN_IN_REQUIRED})
