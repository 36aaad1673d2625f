"""Where clips live on disk: class folder names, clip file names, containment checks.

Everything that turns metadata (display names, YouTube IDs) into a path goes through
here, because that metadata is untrusted text: a class called ``../../etc`` or a YTID
carrying a slash must never name a file outside the dataset folder.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..errors import UserError
from .ids import is_valid_ytid

AUDIO_EXTENSIONS = ("wav", "flac")
# The tool's own folder for clips that cleaning set aside. Class folders can never take this
# name: slugify strips leading underscores.
QUARANTINE_DIR = "_quarantine"
# The tool's reports about a dataset (validate's details). Not at the root: Hugging Face
# datasets reads a root file such as validation.csv as a split. Never a class folder name
# either, for the same reason as the quarantine folder.
REPORTS_DIR = "_reports"
MAX_FOLDER_LENGTH = 80
# No dot in a slug: every file the tool writes at a dataset's root has an extension
# (manifest.csv, metadata.csv, ledger.sqlite3 and its -wal/-shm side files, rebuild_report.csv,
# validation.csv), so no class folder can ever take one of their names.
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
# Names the tool gives to entries at a dataset's root (compared case-insensitively). Class folders
# never take them: slugify cannot produce the dotted ones, assign_class_folders avoids the others,
# and a manifest naming one as a class folder is refused. tests/test_layout.py checks the list
# against the modules that own these names.
OWN_ROOT_NAMES = frozenset(
    {
        "manifest.csv", "metadata.csv", "ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm",
        "ledger.sqlite3-journal", "rebuild_report.csv", "validation.csv", "report", QUARANTINE_DIR,
        ".download.lock",
    }
)
_CLIP_NAME = re.compile(r"\A(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start_ms>\d+)\.(?P<ext>wav|flac)\Z")
# Names Windows refuses for a folder whatever the extension; a dataset copied there must still open.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(1, 10)}


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def slugify(name: str) -> str:
    """The readable part of a class folder: ASCII letters, digits, ``_-``; may be empty.

    "Male speech, man speaking" becomes ``Male_speech_man_speaking``; "manifest.csv" becomes
    ``manifest_csv`` (see OWN_ROOT_NAMES).
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE_RUN.sub("_", ascii_name).strip("._-")
    return slug[:MAX_FOLDER_LENGTH].rstrip("._-")


def _fallback(mid: str) -> str:
    return f"class_{_short_hash(mid)}"


def assign_class_folders(classes: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Map each class MID to a folder name that is safe, unique and stable.

    ``classes`` holds (mid, display name) pairs: pass ALL suitable classes, not one slice,
    so a class gets the same folder whichever slice is downloaded. Names whose slugs
    collide (also case-insensitively, for macOS and Windows disks) all get a suffix
    derived from their MID, so the result does not depend on the order of ``classes``.
    """
    slugs: dict[str, str] = {}
    for mid, name in classes:
        slug = slugify(name)
        if not slug or slug.lower() in _WINDOWS_RESERVED:
            slug = _fallback(mid)
        elif slug.lower() in OWN_ROOT_NAMES:
            slug = f"{slug}_{_short_hash(mid)}"
        if mid in slugs and slugs[mid] != slug:
            raise UserError(f"class {mid!r} appears twice with different names")
        slugs[mid] = slug
    by_key: dict[str, list[str]] = {}
    for mid, slug in slugs.items():
        by_key.setdefault(slug.lower(), []).append(mid)
    folders: dict[str, str] = {}
    for mids in by_key.values():
        for mid in mids:
            slug = slugs[mid]
            if len(mids) > 1:
                slug = f"{slug[: MAX_FOLDER_LENGTH - 9]}_{_short_hash(mid)}"
            folders[mid] = slug
    return folders


def clip_file_name(ytid: str, start_seconds: float, audio_format: str) -> str:
    """``<ytid>_<start_ms>.<ext>``: unique per segment, and a YTID can never smuggle a path in."""
    if not is_valid_ytid(ytid):
        raise ValueError(f"not a valid YouTube ID: {ytid!r}")
    if audio_format not in AUDIO_EXTENSIONS:
        raise ValueError(f"unknown audio format {audio_format!r}; expected one of {AUDIO_EXTENSIONS}")
    ms = start_ms(start_seconds)
    if ms < 0:
        raise ValueError(f"negative start time {start_seconds!r}")
    return f"{ytid}_{ms}.{audio_format}"


def is_clip_file_name(name: str) -> bool:
    return _CLIP_NAME.match(name) is not None


def start_ms(start_seconds: float) -> int:
    return round(float(start_seconds) * 1000)


def check_folder(folder: str) -> str:
    """Validate a class folder given as text (e.g. read from a manifest); return it unchanged.

    One path component, no separators, never ``.`` or ``..``, not hidden (our temporaries
    start with a dot).
    """
    if (
        not folder
        or folder in (".", "..")
        or folder.startswith(".")
        or "/" in folder
        or "\\" in folder
        or "\x00" in folder
        or len(folder) > 255
    ):
        raise UserError(
            f"unsafe class folder name {folder!r}: it must be one plain folder name "
            f"(no '/', '\\', leading '.', '..')"
        )
    if folder.lower() in OWN_ROOT_NAMES:
        raise UserError(
            f"class folder name {folder!r} is the name of one of the tool's own files or folders "
            f"({', '.join(sorted(OWN_ROOT_NAMES))}); a class cannot live there"
        )
    return folder


def inside(root: Path, relative: str) -> Path:
    """``root / relative`` after proving it stays inside ``root`` (symlinks included)."""
    if not relative or "\\" in relative or "\x00" in relative:
        raise UserError(f"unsafe path {relative!r} inside {root}")
    posix = PurePosixPath(relative)
    if posix.is_absolute() or any(part in ("", ".", "..") for part in relative.split("/")):
        raise UserError(f"unsafe path {relative!r}: must stay inside {root}")
    root = Path(root).resolve()
    target = (root / posix).resolve()
    if not target.is_relative_to(root) or target == root:
        raise UserError(f"unsafe path {relative!r}: it resolves outside {root}")
    return target
