"""Which files make up an archive, and which format they are in (``format: auto``).

An archive path is a folder, one file, or a glob of files. ``auto`` decides by what is
there: HDF5 files (``.h5``, ``.hdf5``, ``.hdf``) -> ``hdf5``; Parquet files -> ``parquet``; audio
files -> ``folder``. A folder holding audio files is a ``folder`` archive even if it also
holds other files; a folder with no audio but Parquet shards (a Hugging Face mirror's
``data/``) is ``parquet``. The file list is sorted, so the index (and every lookup) is the
same whatever order the filesystem lists entries in.
"""

from __future__ import annotations

import dataclasses
import enum
import glob
import os
from pathlib import Path

from ...errors import UserError

# PaSST's packs end in .hdf.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
PARQUET_SUFFIXES = (".parquet",)
# What soundfile reads natively, plus what peer downloaders keep and only ffmpeg reads.
AUDIO_SUFFIXES = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".w64", ".caf",
    ".m4a", ".aac", ".webm", ".mka", ".mp4",
)
_GLOB_CHARACTERS = frozenset("*?[")


class ArchiveFormat(str, enum.Enum):
    FOLDER = "folder"
    HDF5 = "hdf5"
    PARQUET = "parquet"

    def __str__(self) -> str:
        return self.value


FORMAT_CHOICES = ("auto", *(f.value for f in ArchiveFormat))


@dataclasses.dataclass(frozen=True)
class FileStamp:
    """A file of the archive as the index saw it: a change of size or mtime invalidates the index."""

    relative: str
    size: int
    mtime_ns: int


@dataclasses.dataclass(frozen=True)
class ArchiveFiles:
    format: ArchiveFormat
    root: Path
    stamps: tuple[FileStamp, ...]

    def path(self, file_number: int) -> Path:
        return self.root / self.stamps[file_number].relative


def list_archive(path: str | Path, archive_format: str = "auto") -> ArchiveFiles:
    """The archive's files (stamped) and its format; :class:`UserError` when there is nothing to read."""
    if archive_format not in FORMAT_CHOICES:
        raise UserError(f"archive format {archive_format!r} is not one of {', '.join(FORMAT_CHOICES)}")
    text = str(path)
    if _GLOB_CHARACTERS & set(text):
        matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True) if Path(p).is_file())
        if not matches:
            raise UserError(f"archive path {text!r}: the pattern matches no file")
        root = Path(os.path.commonpath([str(m.parent.resolve()) for m in matches]))
        files = [m.resolve() for m in matches]
    else:
        location = Path(os.path.expanduser(text))
        if location.is_dir():
            root = location.resolve()
            files = _walk(root)
        elif location.is_file():
            root = location.resolve().parent
            files = [location.resolve()]
        else:
            raise UserError(f"archive path {text!r} does not exist (expected a folder, a file or a glob)")
    chosen = _choose_format(files, archive_format, text)
    wanted = {ArchiveFormat.HDF5: HDF5_SUFFIXES, ArchiveFormat.PARQUET: PARQUET_SUFFIXES,
              ArchiveFormat.FOLDER: AUDIO_SUFFIXES}[chosen]
    single_named_file = len(files) == 1 and Path(os.path.expanduser(text)).is_file()
    # A file named outright with its format stated is read whatever its suffix.
    kept = files if single_named_file and archive_format != "auto" else [f for f in files if f.suffix.lower() in wanted]
    if not kept:
        raise UserError(
            f"archive path {text!r} holds no {chosen.value} files (looked for {', '.join(wanted)})"
        )
    return ArchiveFiles(chosen, root, tuple(stamp(root, f) for f in kept))


def stamp(root: Path, file: Path) -> FileStamp:
    status = file.stat()
    return FileStamp(file.relative_to(root).as_posix(), status.st_size, status.st_mtime_ns)


def _walk(root: Path) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(root):
        # Hidden folders (.git, our own caches) and hidden files (partial downloads) are not clips.
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(Path(folder) / n for n in names if not n.startswith("."))
    return sorted(found)


def _choose_format(files: list[Path], requested: str, text: str) -> ArchiveFormat:
    if requested != "auto":
        return ArchiveFormat(requested)
    suffixes = {f.suffix.lower() for f in files}
    if suffixes & set(AUDIO_SUFFIXES):
        return ArchiveFormat.FOLDER
    if suffixes & set(HDF5_SUFFIXES):
        return ArchiveFormat.HDF5
    if suffixes & set(PARQUET_SUFFIXES):
        return ArchiveFormat.PARQUET
    raise UserError(
        f"archive path {text!r}: cannot tell its format (no audio, .h5/.hdf5/.hdf or .parquet files); "
        f"set format to one of {', '.join(f.value for f in ArchiveFormat)}"
    )
