"""The official AudioSet metadata files: names, published URLs, known checksums, fetching.

A file is looked for in ``metadata_dir`` as published (``name``) or gzipped (``name.gz``).
When it is absent it is downloaded from Google's URL into ``metadata_dir``: streamed to a
temporary name beside the target, checked against its known SHA-256, then renamed.

ontology.json is the exception to strict checking: Google keeps revising the published
file, so a fetched copy whose checksum differs from the revision we know is accepted with
a warning (it is still parsed and validated before use); every other file must match.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import mmap
import os
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from ...atomic import atomic_open
from ...errors import UserError

log = logging.getLogger(__name__)

ONTOLOGY = "ontology.json"
QUALITY = "qa_true_counts.csv"
SEGMENT_FILES = {
    "balanced": "balanced_train_segments.csv",
    "unbalanced": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}

# Checksums of the files as published (AudioSet v1, March 2017; ontology at the revision
# current when this tool was written).
KNOWN_SHA256 = {
    "balanced_train_segments.csv": "3b83e5ff9ed72cfda37d4e36ce08250e107c1ea70f109f6ab6668ac200db5e94",
    "unbalanced_train_segments.csv": "bb2dfd5e4f1ced39db9480633c510f813d7899f4b7472aa83a411b4a43a12698",
    "eval_segments.csv": "f7055f53935f70e74e39494a5c8c4c78f1700fce275028bd36e31186f33d45db",
    "qa_true_counts.csv": "43507dbfcee2ab1ed771f4412f20ad5ce5c90fd850abcaf982db443f7652a0b2",
    "ontology.json": "9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d",
}

_CSV_BASE = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"
# Module-level so tests can point it at a local server; users never need to change it.
OFFICIAL_URLS = {
    "balanced_train_segments.csv": _CSV_BASE + "balanced_train_segments.csv",
    "unbalanced_train_segments.csv": _CSV_BASE + "unbalanced_train_segments.csv",
    "eval_segments.csv": _CSV_BASE + "eval_segments.csv",
    "qa_true_counts.csv": "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/qa/qa_true_counts.csv",
    "ontology.json": "https://raw.githubusercontent.com/audioset/ontology/master/ontology.json",
}
# Files whose published content changes over time: a checksum mismatch only warns.
REVISED_FILES = frozenset({ONTOLOGY})

FETCH_TIMEOUT_SECONDS = 60.0
_CHUNK = 1 << 20


def needed_files(subsets: Iterable[str]) -> list[str]:
    return [ONTOLOGY, QUALITY, *(SEGMENT_FILES[s] for s in subsets)]


def locate(metadata_dir: Path, name: str) -> Path | None:
    """The file as published, else its gzip copy, else None."""
    for candidate in (metadata_dir / name, metadata_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


class FetchFailed(Exception):
    """One official file could not be downloaded; ``network`` when its host never answered."""

    def __init__(self, reason: str, network: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.network = network


def ensure_files(metadata_dir: Path, names: Iterable[str]) -> dict[str, Path]:
    """Path of every named file, fetching the missing ones.

    When some cannot be fetched, one :class:`UserError` names them all, each with its URL
    and destination, so an offline user learns everything to copy in one run. A host that
    did not answer is not asked again for the next file.
    """
    found: dict[str, Path] = {}
    failed: dict[str, str] = {}
    dead_hosts: dict[str, str] = {}
    for name in names:
        path = locate(metadata_dir, name)
        if path is not None:
            found[name] = path
            continue
        host = urllib.parse.urlsplit(OFFICIAL_URLS[name]).hostname or ""
        if host in dead_hosts:
            failed[name] = dead_hosts[host]  # not asked again
            continue
        try:
            found[name] = fetch_file(name, metadata_dir)
        except FetchFailed as exc:
            failed[name] = exc.reason
            if exc.network:
                failed[name] = dead_hosts[host] = f"{host}: {exc.reason}"
    if failed:
        raise UserError(_missing_message(metadata_dir, failed))
    return found


def fetch_file(name: str, metadata_dir: Path) -> Path:
    """Download one official file into ``metadata_dir`` atomically, verified by SHA-256.

    Raises :class:`FetchFailed` when the download fails, :class:`UserError` when the
    downloaded file is not the published one.
    """
    url = OFFICIAL_URLS[name]
    target = metadata_dir / name
    log.info("%s is missing from %s; downloading %s", name, metadata_dir, url)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            # Created only once the server answered, so a failed fetch leaves no trace.
            metadata_dir.mkdir(parents=True, exist_ok=True)
            total = response.headers.get("Content-Length")
            with atomic_open(target, "wb") as out, tqdm(
                total=int(total) if total and total.isdigit() else None,
                unit="B",
                unit_scale=True,
                desc=name,
                disable=None,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
                _check_checksum(name, url, digest.hexdigest())
    except urllib.error.HTTPError as exc:
        raise FetchFailed(f"HTTP {exc.code} {exc.reason}", network=False) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchFailed(str(getattr(reason, "strerror", None) or reason), network=True) from None
    return target


def _check_checksum(name: str, url: str, actual: str) -> None:
    expected = KNOWN_SHA256.get(name)
    if expected is None or actual == expected:
        return
    if name in REVISED_FILES:
        log.warning(
            "%s from %s differs from the revision this tool knows (sha256 %s); "
            "using it, its checksum is recorded in selection.json",
            name, url, actual,
        )
        return
    # Raising inside atomic_open removes the temporary, so nothing corrupt is left behind.
    raise UserError(
        f"{name} downloaded from {url} is corrupt or not the published file: "
        f"sha256 {actual}, expected {expected}. Nothing was kept; try again, or download it "
        f"yourself and check it with sha256sum."
    )


def _missing_message(metadata_dir: Path, failed: dict[str, str]) -> str:
    if len(failed) == 1:
        ((name, reason),) = failed.items()
        lines = [
            f"metadata file {name} is missing from {metadata_dir} and could not be downloaded ({reason}).",
            "Download it yourself and put it at the path shown (a .gz copy is fine too):",
        ]
    else:
        reasons = sorted(set(failed.values()), key=list(failed.values()).index)
        lines = [
            f"{len(failed)} metadata files are missing from {metadata_dir} and could not be downloaded "
            f"({'; '.join(reasons)}).",
            "Download each yourself and put it at the path shown (a .gz copy is fine too):",
        ]
    for name in failed:
        lines.append(f"  {OFFICIAL_URLS[name]}\n      -> {metadata_dir / name}")
    lines.append("or set paths.metadata_dir to the folder that holds them. "
                 "(Offline? `audioset-tools demo` runs the whole job on built-in data.)")
    return "\n".join(lines)


def read_bytes(path: Path) -> tuple[bytes, str]:
    """The file's content (gunzipped for ``.gz``) and the SHA-256 of the file as stored."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    sha = hashlib.sha256(raw).hexdigest()
    if path.suffix == ".gz":
        raw = _gunzip_bounded(path, raw)
    return raw, sha


# The largest official file (unbalanced_train_segments.csv) is about 100 MB; a .gz that
# expands past this is not one of them, and is refused before it can exhaust memory.
MAX_GUNZIPPED_BYTES = 1 << 30
_GUNZIP_CHUNK = 1 << 20


def _gunzip_bounded(path: Path, raw: bytes) -> bytes:
    """The gunzipped content of ``raw``, decompressed in chunks and never past MAX_GUNZIPPED_BYTES."""
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            while chunk := stream.read(_GUNZIP_CHUNK):
                out += chunk
                if len(out) > MAX_GUNZIPPED_BYTES:
                    raise UserError(
                        f"{path}: expands to more than {MAX_GUNZIPPED_BYTES / 2**20:.0f} MiB when gunzipped, far "
                        f"more than any AudioSet metadata file; it is not one. Replace it with the published file."
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: not a valid gzip file ({exc}); replace it with a good copy") from None
    return bytes(out)


def map_file(path: Path) -> tuple[memoryview | bytes, str]:
    """Like :func:`read_bytes`, but a plain file is memory-mapped instead of copied.

    The 100 MB unbalanced list is then hashed and parsed straight from the page cache.
    """
    if path.suffix == ".gz":
        return read_bytes(path)
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                return b"", hashlib.sha256(b"").hexdigest()
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    view = memoryview(mapped)
    return view, hashlib.sha256(view).hexdigest()


def logical_name(path: Path) -> str:
    return path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name

