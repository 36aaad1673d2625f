"""Small finished datasets on disk (WAV clips + manifests) for the validate and report tests.

Clips are written with numpy + soundfile, so these tests need neither ffmpeg nor a server.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from audioset_tools.dataset.audio_info import samples_sha256
from audioset_tools.dataset.manifest import write_dataset_manifests

SAMPLE_RATE = 16000
CLIP_SECONDS = 2.0
CLASSES = (
    (0, "/m/05zppz", "Male speech, man speaking", "Male_speech_man_speaking", "train"),
    (1, "/m/0ytgt", "Child speech, kid speaking", "Child_speech_kid_speaking", "val"),
    (2, "/m/07qrkrw", "Meow", "Meow", "test"),
)


def tone(frequency: float, seconds: float = CLIP_SECONDS, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def ytid_for(class_number: int, clip_number: int) -> str:
    return f"vid{class_number:02d}clip{clip_number:02d}"[:11].ljust(11, "x")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_dataset(root: Path, clips_per_class: int = 2, silent: set[str] | None = None) -> pd.DataFrame:
    """Write clips and every manifest into ``root``; return the manifest frame.

    ``silent`` names ytids whose clip is written as all zeros.
    """
    root = Path(root)
    rows = []
    for class_index, mid, name, folder, split in CLASSES:
        for number in range(clips_per_class):
            ytid = ytid_for(class_index, number)
            start = 10.0 * number
            relative = f"{folder}/{ytid}_{int(start * 1000)}.wav"
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            samples = tone(300 + 100 * class_index + 10 * number)
            if silent and ytid in silent:
                samples = np.zeros_like(samples)
            sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
            rows.append({
                "class_index": class_index, "mid": mid, "class_name": name, "split": split,
                "ytid": ytid, "start_seconds": start, "end_seconds": start + CLIP_SECONDS,
                "file": relative, "sample_rate": SAMPLE_RATE, "channels": 1,
                "duration": CLIP_SECONDS, "sha256": sha256_of(path), "labels": mid,
                "samples_sha256": samples_sha256(path),
            })
    frame = pd.DataFrame(rows)
    write_dataset_manifests(root, frame)
    return frame
