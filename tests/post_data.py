"""Generated few-shot datasets for the post-processing tests: real wav files, real manifests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from audioset_tools.dataset.manifest import write_dataset_manifests

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ClassSpec:
    index: int
    name: str
    split: str
    clips: int


DEFAULT_CLASSES = (
    ClassSpec(0, "Bark", "train", 5),
    ClassSpec(1, "Meow", "train", 4),
    ClassSpec(2, "Chirp", "train", 6),
    ClassSpec(3, "Moo", "val", 4),
    ClassSpec(4, "Oink", "test", 5),
    ClassSpec(5, "Neigh", "test", 3),
)


def ytid(class_index: int, clip: int) -> str:
    return f"c{class_index:02d}clip{clip:03d}x"[:11].ljust(11, "_")


def clip_signal(class_index: int, clip: int, seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A class-specific tone with a clip-specific amplitude and noise: distinct, deterministic."""
    rng = np.random.default_rng(1000 * class_index + clip)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    tone = np.sin(2 * np.pi * (220.0 * (class_index + 1) + 7.0 * clip) * t)
    return (0.2 + 0.05 * clip) * tone + 0.02 * rng.standard_normal(t.size)


def write_clip(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype)


def manifest_row(root: Path, spec: ClassSpec, clip: int, seconds: float, start: float = 30.0) -> dict:
    folder = spec.name
    relative = f"{folder}/{ytid(spec.index, clip)}_{int(start * 1000)}.wav"
    path = root / relative
    info = sf.info(str(path))
    return {
        "class_index": spec.index,
        "mid": f"/m/{spec.index:04d}",
        "class_name": spec.name,
        "split": spec.split,
        "ytid": ytid(spec.index, clip),
        "start_seconds": start,
        "end_seconds": start + seconds,
        "file": relative,
        "sample_rate": info.samplerate,
        "channels": info.channels,
        "duration": info.duration,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "labels": f"/m/{spec.index:04d}",
    }


def make_dataset(
    root: Path,
    classes: tuple[ClassSpec, ...] = DEFAULT_CLASSES,
    seconds: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
) -> pd.DataFrame:
    """Write clips and manifests under ``root``; returns the manifest frame."""
    rows = []
    for spec in classes:
        for clip in range(spec.clips):
            relative = f"{spec.name}/{ytid(spec.index, clip)}_30000.wav"
            write_clip(root / relative, clip_signal(spec.index, clip, seconds, sample_rate), sample_rate)
            rows.append(manifest_row(root, spec, clip, seconds))
    frame = pd.DataFrame(rows)
    write_dataset_manifests(root, frame)
    return frame


def write_post_config(tmp_path: Path, extra: str = "") -> Path:
    """A control.yaml for post-processing tests: dataset in data/, derived folders npy/, mel/, packed/."""
    path = tmp_path / "control.yaml"
    path.write_text(
        "paths:\n  output_dir: data\n"
        "postprocess:\n  workers: 2\n  batch_clips: 4\n"
        "  npy_dir: npy\n  features_dir: mel\n  packed_dir: packed\n" + extra
    )
    return path
