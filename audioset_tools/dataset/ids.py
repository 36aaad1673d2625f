"""YouTube IDs: the one definition of what a valid AudioSet YTID looks like."""

from __future__ import annotations

import re

YTID_PATTERN = r"[A-Za-z0-9_-]{11}"
_YTID_RE = re.compile(rf"\A{YTID_PATTERN}\Z")


def is_valid_ytid(value: object) -> bool:
    """True for exactly 11 characters of ``[A-Za-z0-9_-]``; such an ID is safe in a file name."""
    return isinstance(value, str) and _YTID_RE.match(value) is not None
