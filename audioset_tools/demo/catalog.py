"""What the demo's media server does for each video of the built-in metadata.

The shipped segment lists name their videos ``demo<Class><n>`` (e.g. ``demoBark004``), so
the class code in the ID picks the generated sound a healthy video plays. A few videos
misbehave (:data:`SPECIAL`) so that the ledger, the report and ``clean`` have something to
say. They rank among the first candidates of their class under the shipped selection
(seed 0), before the class is full, so the download really tries them (the demo checks every
outcome the ledger records against :data:`EXPECTED_OUTCOME`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# What a misbehaving video does.
MISSING = "missing"  # not on the server: 404
FORBIDDEN = "forbidden"  # 403 on every request
CORRUPT = "corrupt"  # random bytes under an audio content type: extraction passes, decoding fails
TOO_SHORT = "too_short"  # a 5 s source for a segment that ends at 20 s
FLAKY = "flaky"  # 500 on the first request, then fine: one retry recovers it
SILENT = "silent"  # digital silence: downloads fine, clean quarantines it

SPECIAL = {
    "demoBark005": MISSING,
    "demoGrow003": MISSING,
    "demoGrow001": MISSING,
    "demoHowl003": FORBIDDEN,
    "demoPurr002": CORRUPT,
    "demoChrp004": TOO_SHORT,
    "demoCoo0001": FLAKY,
    "demoMeow002": SILENT,
}

# The outcome the download ledger must record for each kind of video.
EXPECTED_OUTCOME = {
    None: "ok",
    MISSING: "unavailable",
    FORBIDDEN: "forbidden",
    CORRUPT: "decode_error",
    TOO_SHORT: "too_short",
    FLAKY: "ok",
    SILENT: "ok",
}

# Class code in a demo ID -> (base frequency in Hz, pulses per second) of its generated sound.
VOICES = {
    "Bark": (420.0, 3.0), "Howl": (310.0, 0.5), "Grow": (140.0, 8.0), "Purr": (90.0, 25.0),
    "Meow": (700.0, 1.0), "Chrp": (2600.0, 6.0), "Coo0": (520.0, 1.5),
}
DEFAULT_VOICE = "Bark"

METADATA_FILE_NAMES = (
    "ontology.json", "qa_true_counts.csv",
    "balanced_train_segments.csv", "unbalanced_train_segments.csv", "eval_segments.csv",
)


def metadata_folder() -> Path:
    """The shipped miniature metadata (package data)."""
    return Path(str(resources.files(__package__).joinpath("metadata")))


def special(ytid: str) -> str | None:
    return SPECIAL.get(ytid)


def voice(ytid: str) -> str:
    code = ytid[4:8]
    return code if code in VOICES else DEFAULT_VOICE


def expected_outcome(ytid: str) -> str:
    return EXPECTED_OUTCOME[special(ytid)]
