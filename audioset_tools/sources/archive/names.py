"""Which clip a file name (or an archive's ``audio_name``) holds: the naming patterns of peer tools.

Recognised stems (the part before the extension), where ``<ytid>`` is 11 characters of
``[A-Za-z0-9_-]``:

- ``<ytid>`` and ``Y<ytid>``: one clip per video (PANNs' ``Y<ytid>.wav``, many downloaders);
- ``<ytid>_<start>`` and ``Y<ytid>_<start>``: the start in seconds (``30``, ``30.000``) or in
  milliseconds (``30000``, our own ``<ytid>_<start_ms>`` layout);
- ``<ytid>_<start>_<end>`` and ``Y<ytid>_<start>_<end>``: both in seconds, or both in
  milliseconds (audiosetdl's ``<ytid>_<start_ms>_<end_ms>``).

An ID may itself contain ``_`` and start with ``Y``, so a stem is tried both ways (``Y`` +
ID, or an ID beginning with ``Y``). With the patterns above the length settles it (an
11-character stem is the ID; a 12-character ``Y...`` stem is ``Y`` + ID; after the ID only
``_<number>`` may follow, so the two readings never both fit), but :func:`readings` still
returns every reading that fits, the index keeps them all, and a lookup only ever asks for
planned IDs: the reading that names a planned clip is the one used. Which segment a name
holds (seconds or milliseconds) is likewise settled against the planned segment, by
:func:`matches_segment`.
"""

from __future__ import annotations

import dataclasses
import math
import re

from ...dataset.ids import YTID_PATTERN

_NUMBER = r"\d+(?:\.\d+)?"
_TIMES_RE = re.compile(rf"\A(?:_(?P<a>{_NUMBER})(?:_(?P<b>{_NUMBER}))?)?\Z")
_YTID_RE = re.compile(rf"\A{YTID_PATTERN}\Z")
# Seconds as written in a name are rounded to the millisecond; this absorbs float noise.
_SECONDS_TOLERANCE = 5e-4
NO_TIME = -1


@dataclasses.dataclass(frozen=True)
class NameReading:
    """One way to read a stem: the ID and the numbers after it, in thousandths.

    The numbers are stored as written times 1000 (``30`` -> 30000, ``30.5`` -> 30500,
    ``30000`` -> 30000000) because the name does not say whether they are seconds or
    milliseconds; :func:`matches_segment` decides that against the planned segment.
    """

    ytid: str
    first_milli: int = NO_TIME
    second_milli: int = NO_TIME


def readings(stem: str) -> tuple[NameReading, ...]:
    """Every reading of ``stem`` as one of the recognised patterns (empty if none)."""
    found = []
    for offset in (0, 1):
        if offset == 1 and not stem.startswith("Y"):
            continue
        ytid = stem[offset : offset + 11]
        if len(ytid) != 11 or not _YTID_RE.match(ytid):
            continue
        times = _TIMES_RE.match(stem[offset + 11 :])
        if times is None:
            continue
        found.append(NameReading(ytid, _milli(times["a"]), _milli(times["b"])))
    return tuple(found)


def _milli(number: str | None) -> int:
    if number is None:
        return NO_TIME
    value = float(number) * 1000
    if not math.isfinite(value) or value > 2**62:
        return NO_TIME
    return int(round(value))


def matches_segment(first_milli: int, second_milli: int, start_seconds: float, end_seconds: float) -> bool:
    """True when a name's numbers are compatible with the segment ``[start, end)``.

    No numbers: the file is taken to be the segment. One number: it must be the start,
    in seconds or in milliseconds. Two: start and end, both in the same unit.
    """
    if first_milli == NO_TIME:
        return True
    as_seconds = _same(first_milli / 1000, start_seconds) and (
        second_milli == NO_TIME or _same(second_milli / 1000, end_seconds)
    )
    as_millis = _same(first_milli / 1e6, start_seconds) and (
        second_milli == NO_TIME or _same(second_milli / 1e6, end_seconds)
    )
    return as_seconds or as_millis


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SECONDS_TOLERANCE


def stem_of(name: str) -> str:
    """The name without its folder and last extension (``a/Yabc.wav`` -> ``Yabc``)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot else base
