"""A dataset as lhotse manifests (``audioset-tools export lhotse``).

One recording per clip of the global manifest, one supervision per recording that spans
the whole clip and carries its class and every AudioSet label, and the cut set joining
them; each as ``.jsonl.gz``, checked with lhotse's own validation before it is written.
lhotse is an optional extra ([lhotse]) and is imported only here, inside the function.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd
from tqdm import tqdm

from ..errors import UserError
from .manifest import MANIFEST_NAME, dataset_path, read_manifest

log = logging.getLogger(__name__)

CORPUS = "audioset"
KINDS = ("recordings", "supervisions", "cuts")
DEFAULT_OUT_NAME = "_lhotse"


@dataclass(frozen=True)
class LhotseExport:
    recordings: Path
    supervisions: Path
    cuts: Path
    clips: int


def output_names() -> dict[str, str]:
    """lhotse recipes' naming: ``<corpus>_<kind>.jsonl.gz``."""
    return {kind: f"{CORPUS}_{kind}.jsonl.gz" for kind in KINDS}


def clip_ids(files: pd.Series) -> list[str]:
    """A recording id per clip: its file stem (``<ytid>_<start ms>``), prefixed with its
    class folder only when the same segment sits in two classes (``label_policy: any``).
    No slash: lhotse uses ids as file names when it stores features."""
    stems = [PurePosixPath(f).stem for f in files]
    repeated = {stem for stem, count in Counter(stems).items() if count > 1}
    return [
        f"{PurePosixPath(f).parent.name}-{stem}" if stem in repeated else stem for f, stem in zip(files, stems)
    ]


def _import_lhotse():
    try:
        import lhotse
        from lhotse.qa import validate_recordings_and_supervisions
    except ImportError:
        raise UserError(
            "audioset-tools export lhotse needs lhotse: pip install 'audioset-tools[lhotse]'"
        ) from None
    return lhotse, validate_recordings_and_supervisions


def export_lhotse(root: Path, out: Path, *, relative_paths: bool = False, progress: bool = True) -> LhotseExport:
    """Write recordings, supervisions and cuts of the dataset at ``root`` into ``out``.

    Audio paths are absolute, or with ``relative_paths`` relative to ``root`` (load them
    with ``RecordingSet.with_path_prefix(root)``). Each recording's sample count and rate
    are read from the file header, so lhotse's lengths are the files' own.
    """
    lhotse, validate = _import_lhotse()
    root = Path(root).resolve()
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UserError(f"no dataset manifest at {manifest_path}\n  Run download_data.py first, or pass the dataset folder.")
    manifest = read_manifest(manifest_path)
    if manifest.empty:
        raise UserError(f"{manifest_path} lists no clips: nothing to export")
    recordings, supervisions = [], []
    rows = zip(clip_ids(manifest["file"]), manifest.itertuples(index=False))
    for clip_id, row in tqdm(rows, total=len(manifest), desc="lhotse", unit="clip", disable=not progress):
        path = dataset_path(root, row.file)
        if not path.is_file():
            raise UserError(f"{path}: listed in {manifest_path} but missing; run audioset-tools validate --repair")
        recording = lhotse.Recording.from_file(
            path, recording_id=clip_id, relative_path_depth=len(PurePosixPath(row.file).parts) if relative_paths else None
        )
        recordings.append(recording)
        supervisions.append(
            lhotse.SupervisionSegment(
                id=clip_id,
                recording_id=clip_id,
                start=0.0,
                duration=recording.duration,
                channel=recording.channel_ids[0] if recording.num_channels == 1 else list(recording.channel_ids),
                custom={
                    "class_name": row.class_name,
                    "mid": row.mid,
                    "class_index": int(row.class_index),
                    "split": row.split,
                    "labels": [label for label in str(row.labels).split(",") if label],
                    "ytid": row.ytid,
                    "start_seconds": float(row.start_seconds),
                    "end_seconds": float(row.end_seconds),
                },
            )
        )
    recording_set = lhotse.RecordingSet.from_recordings(recordings)
    supervision_set = lhotse.SupervisionSet.from_segments(supervisions)
    if relative_paths:
        validate(recording_set.with_path_prefix(root), supervision_set)
    else:
        validate(recording_set, supervision_set)
    # One cut per recording with the recording's id (from_manifests would append "-<n>").
    cuts = []
    for recording, supervision in zip(recordings, supervisions):
        cut = recording.to_cut()
        cut.supervisions = [supervision]
        cuts.append(cut)
    cut_set = lhotse.CutSet.from_cuts(cuts)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = output_names()
    for kind, manifest_set in zip(KINDS, (recording_set, supervision_set, cut_set)):
        _write_atomically(manifest_set, out / names[kind])
    log.info("wrote %d recordings, supervisions and cuts into %s", len(recording_set), out)
    return LhotseExport(*(out / names[kind] for kind in KINDS), clips=len(recording_set))


def _write_atomically(manifest_set, path: Path) -> None:
    """lhotse picks the format from the name, so the temporary keeps the ``.jsonl.gz`` end."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.jsonl.gz", dir=path.parent)
    os.close(fd)
    try:
        manifest_set.to_file(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
