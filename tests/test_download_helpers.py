"""Shared helpers of the download tests (no tests here): meta files, configs, invariants."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from audioset_tools.atomic import is_temporary
from audioset_tools.dataset.layout import QUARANTINE_DIR
from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest

SUITABLE_COLUMNS = ["index", "mid", "name", "quality", "num_rated", "num_candidates", "split"]
CANDIDATE_COLUMNS = ["class_index", "mid", "rank", "ytid", "start_seconds", "end_seconds", "subset", "labels"]
SPLIT_CYCLE = ("train", "val", "test")


def ytid(prefix: str, number: int) -> str:
    """An 11-character YouTube-like ID: prefix, then the number zero-padded."""
    return f"{prefix}{number:0{11 - len(prefix)}d}"


def suitable_frame(classes: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            (i, mid, name, 1.0, 10, 0, SPLIT_CYCLE[i % 3])
            for i, (mid, name) in enumerate(classes)
        ],
        columns=SUITABLE_COLUMNS,
    )


def candidate_frame(rows: dict[str, list[tuple[str, float, float]]], classes: list[tuple[str, str]]) -> pd.DataFrame:
    index = {mid: i for i, (mid, _) in enumerate(classes)}
    out = []
    for mid, segments in rows.items():
        for rank, (yt, start, end) in enumerate(segments):
            out.append((index[mid], mid, rank, yt, start, end, "balanced", mid))
    return pd.DataFrame(out, columns=CANDIDATE_COLUMNS)


def write_meta(meta_dir: Path, classes, rows) -> None:
    """suitable_classes.csv and candidates.csv with the documented columns."""
    meta_dir.mkdir(parents=True, exist_ok=True)
    suitable_frame(classes).to_csv(meta_dir / "suitable_classes.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    candidate_frame(rows, classes).to_csv(meta_dir / "candidates.csv", index=False, quoting=csv.QUOTE_MINIMAL)


def write_config(folder: Path, url_template: str, **download) -> Path:
    """A control.yaml tuned for tests: no pauses, tiny backoffs and timeouts."""
    settings = {
        "samples_per_class": 2,
        "url_template": url_template,
        "sleep_between_requests": 0.0,
        "sleep_jitter": 0.0,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "max_retries": 1,
        "socket_timeout": 3.0,
    }
    settings.update(download)
    lines = ["paths:", "  meta_dir: meta", "  output_dir: out", "download:"]
    for key, value in settings.items():
        if isinstance(value, str):
            lines.append(f"  {key}: {value!r}")
        elif value is None:
            lines.append(f"  {key}: null")
        elif isinstance(value, list):
            lines.append(f"  {key}: [{', '.join(repr(v) for v in value)}]")
        else:
            lines.append(f"  {key}: {value}")
    path = folder / "control.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def audio_files(output_dir: Path) -> set[str]:
    """Audio files of the dataset; clips that cleaning set aside in the quarantine are not part of it."""
    return {
        p.relative_to(output_dir).as_posix()
        for p in output_dir.rglob("*")
        if p.is_file() and p.suffix in (".wav", ".flac") and p.relative_to(output_dir).parts[0] != QUARANTINE_DIR
    }


def assert_manifests_equal_disk(output_dir: Path) -> pd.DataFrame:
    """The global manifest lists exactly the audio on disk, the per-class ones add up to it,
    and no partial or temporary file is left. Returns the global manifest."""
    manifest = read_manifest(output_dir / MANIFEST_NAME)
    assert set(manifest["file"]) == audio_files(output_dir)
    assert len(manifest["file"]) == len(set(manifest["file"]))
    per_class = [read_manifest(p) for p in sorted(output_dir.glob(f"*/{MANIFEST_NAME}"))]
    combined = pd.concat(per_class) if per_class else manifest.iloc[0:0]
    assert sorted(combined["file"]) == sorted(manifest["file"])
    leftovers = [p for p in output_dir.rglob("*") if p.is_file() and (is_temporary(p) or ".part" in p.name)]
    assert leftovers == []
    hf = pd.read_csv(output_dir / "metadata.csv")
    assert sorted(hf["file_name"]) == sorted(manifest["file"])
    return manifest


def youtube_run(plans, settings, out: Path, *, spec=None, fetch=None, pacing=None, cookies_file=None, proxies=(),
                selection=(), **options):
    """run_download with one YouTube source built from ``settings`` (``fetch`` stands in for the network)."""
    from audioset_tools.download.runner import RunOptions, run_download
    from audioset_tools.sources.output_spec import OutputSpec
    from audioset_tools.sources.pacing import PacingSettings
    from audioset_tools.sources.youtube.clip import fetch_clip
    from audioset_tools.sources.youtube.source import YoutubeSource

    source = YoutubeSource(settings, cookies_file=cookies_file, proxies=proxies,
                           pacing=pacing if pacing is not None else PacingSettings(),
                           fetch=fetch if fetch is not None else fetch_clip)
    options.setdefault("progress", False)
    return run_download(plans, [source], out, spec if spec is not None else OutputSpec(), RunOptions(**options),
                        selection=selection)
