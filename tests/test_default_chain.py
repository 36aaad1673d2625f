"""The whole default chain, untuned, as a new user runs it, on clips from the local media server.

select -> download -> validate -> clean -> download (refill) -> validate -> to-npy -> melspec
-> stats -> pack -> examples/iterate_episodes.py (--source packed, arrays, clips).

The config is the shipped control.yaml, copied byte for byte except ``download.url_template``,
which points at the local test server instead of YouTube (nothing here can reach YouTube).
Its relative paths (metadata, MetaData, AudioSet_Data, AudioSet_npy, ...) resolve against
the folder holding the copy, so the whole dataset lands in the test's temporary folder,
and the metadata is a small generated one written there in the official formats. No
``--set``: every other value (pacing, retries, tolerances, rate, mel settings, splits,
episode sizes) is the default a user gets, so a default that needs tuning fails here.

The generated metadata: 7 leaf classes (5 meta-train, 1 val, 1 test with the default
proportions), each with 10 good segments spread over every source codec (Opus/webm,
AAC/m4a, mp3, flac) and starting at 0 s or mid-video, plus per class 2 silent sources
(kept by download, quarantined by clean, replaced by the refill), 1 video that is gone
(404), 1 source that ends before its segment (too_short) and 1 segment shorter than
10 s (removed at selection by ``segment_seconds``). Every clip written must hold exactly
160,000 samples.

This test sleeps between requests as the shipped pacing says (about 1.25 s per clip),
so it takes a couple of minutes; it asserts nothing about time.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from audioset_tools.cli import main
from audioset_tools.config import load_config
from audioset_tools.dataset.audio_info import probe_audio, segment_frames
from audioset_tools.dataset.layout import QUARANTINE_DIR
from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest
from audioset_tools.dataset.quarantine import QUARANTINE_LIST

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "control.yaml"
CLASSES = (
    ("/m/t0", "Dog, bark"), ("/m/t1", "Meow"), ("/m/t2", "Chirp"), ("/m/t3", "Moo"),
    ("/m/t4", "Oink"), ("/m/t5", "Neigh"), ("/m/t6", "Quack"),
)
GOOD_PER_CLASS = 10
STARTS = (0.0, 20.0, 5.0, 30.0, 12.0)
CODECS = ("webm", "m4a", "mp3", "flac")
CLIP_FRAMES = 160_000  # 10 s at the shipped 16 kHz


def _ytid(cls: int, kind: str, number: int) -> str:
    return f"c{cls}{kind}{number:0{9 - len(kind)}d}"


def _ontology(path: Path) -> None:
    def node(mid, name, children=(), restrictions=()):
        return {"id": mid, "name": name, "description": "", "citation_uri": "", "positive_examples": [],
                "child_ids": list(children), "restrictions": list(restrictions)}

    nodes = [node("/m/root", "Animals", [mid for mid, _ in CLASSES], ["abstract"])]
    nodes += [node(mid, name) for mid, name in CLASSES]
    path.write_text(json.dumps(nodes, indent=2))


def _segment_csv(path: Path, rows: list[tuple[str, float, float, str]]) -> None:
    lines = [
        "# Segments csv created Sun Mar  5 10:54:31 2017",
        f"# num_ytids={len(rows)}, num_segs={len(rows)}, num_unique_labels={len(CLASSES)}, "
        f"num_positive_labels={len(rows)}",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    lines += [f'{ytid}, {start:.3f}, {end:.3f}, "{labels}"' for ytid, start, end, labels in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def world(tmp_path, media_server, tone_sources):
    """The generated metadata in tmp_path/metadata, its media on the server, the config copy."""
    silent = tmp_path / "media" / "silent.flac"
    silent.parent.mkdir()
    soundfile.write(str(silent), np.zeros(48000 * 40, dtype=np.int16), 48000, subtype="PCM_16")
    short = tone_sources.short_webm  # 8 s long
    sources = [getattr(tone_sources, kind) for kind in CODECS]
    rows: dict[str, list[tuple[str, float, float, str]]] = {"balanced": [], "unbalanced": [], "eval": []}
    subsets = list(rows)
    for c, (mid, _) in enumerate(CLASSES):
        segments = []
        for n in range(GOOD_PER_CLASS):
            ytid = _ytid(c, "ok", n)
            media_server.add(ytid, sources[(c + n) % len(sources)])
            start = STARTS[(c + 2 * n) % len(STARTS)]
            segments.append((ytid, start, start + 10.0, mid))
        for n in range(2):
            ytid = _ytid(c, "sil", n)
            media_server.add(ytid, silent)
            segments.append((ytid, 10.0, 20.0, mid))
        media_server.add(_ytid(c, "gone", 0), sources[0], behaviour="404")
        segments.append((_ytid(c, "gone", 0), 10.0, 20.0, mid))
        media_server.add(_ytid(c, "early", 0), short)
        segments.append((_ytid(c, "early", 0), 0.0, 10.0, mid))
        media_server.add(_ytid(c, "cut", 0), sources[1])
        segments.append((_ytid(c, "cut", 0), 30.0, 37.5, mid))  # a video that ended at 37.5 s
        for i, segment in enumerate(segments):
            rows[subsets[(c + i) % 3]].append(segment)
    metadata = tmp_path / "metadata"
    metadata.mkdir()
    _ontology(metadata / "ontology.json")
    (metadata / "qa_true_counts.csv").write_text(
        "label_id,num_rated,num_true\n" + "".join(f"{mid},10,9\n" for mid, _ in CLASSES)
    )
    for subset, name in (("balanced", "balanced_train"), ("unbalanced", "unbalanced_train"), ("eval", "eval")):
        _segment_csv(metadata / f"{name}_segments.csv", rows[subset])

    shipped = SHIPPED.read_text()
    line = 'url_template: "https://www.youtube.com/watch?v={ytid}"'
    assert shipped.count(line) == 1
    config = tmp_path / "control.yaml"
    config.write_text(shipped.replace(line, f'url_template: "{media_server.url_template("webm")}"'))
    return config


def _iterate_episodes(config: Path, source: str, capsys) -> str:
    spec = importlib.util.spec_from_file_location("iterate_episodes", REPO / "examples" / "iterate_episodes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    capsys.readouterr()
    code = module.main(["--config", str(config), "--source", source])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _assert_every_clip_exact(output_dir: Path) -> pd.DataFrame:
    manifest = read_manifest(output_dir / MANIFEST_NAME)
    for row in manifest.itertuples():
        info = probe_audio(output_dir / row.file)
        assert (info.frames, info.sample_rate, info.channels) == (CLIP_FRAMES, 16000, 1), row.file
        assert segment_frames(row.start_seconds, row.end_seconds, row.sample_rate) == CLIP_FRAMES
    return manifest


def test_default_chain_runs_untuned_and_every_clip_is_exact(world, tmp_path, capsys):
    def _cli(command: str, *args: str) -> int:
        return main([command, "--config", str(world), *args])

    config = load_config(world)
    output = config.paths.output_dir
    assert output == tmp_path / "AudioSet_Data"

    # select: the 7.5 s segments are removed by segment_seconds and counted.
    assert _cli("select") == 0
    assert f"segment_seconds 10: removed {len(CLASSES)} segments of another length" in capsys.readouterr().out
    candidates = pd.read_csv(config.paths.meta_dir / "candidates.csv")
    assert len(candidates) == len(CLASSES) * (GOOD_PER_CLASS + 4)

    # download: 10 clips per class are attempted in rank order; gone/too-short ones are skipped.
    assert _cli("download") == 0
    first = _assert_every_clip_exact(output)
    silent_kept = first["ytid"].str.contains("sil")
    assert silent_kept.any(), "the seeded order should put some silent source in the first ranks"

    # validate: the dataset matches its manifests except the silent clips, which it flags.
    report = tmp_path / "validation_report.csv"  # explicit: where the default report lives may change
    assert _cli("validate", str(output), "--out", str(report)) == 1
    details = pd.read_csv(report)
    assert set(details["kind"]) == {"silent"} and len(details) == silent_kept.sum()

    # clean quarantines exactly the silent clips and download refills every class to 10.
    # A refill can fetch a silent source that was ranked lower, so, as a user would, clean
    # and refill again until clean finds nothing (each source is tried once: at most 3 rounds).
    quarantine_list = output / QUARANTINE_DIR / QUARANTINE_LIST
    for _ in range(3):
        before = len(pd.read_csv(quarantine_list)) if quarantine_list.exists() else 0
        assert _cli("clean") == 0
        quarantined = pd.read_csv(quarantine_list)
        if len(quarantined) == before:
            break
        assert _cli("download") == 0
    assert set(quarantined["reason"]) == {"silent"}
    # (a silent source ranked after 10 good ones is never tried at all)
    assert set(quarantined["ytid"]) <= {_ytid(c, "sil", n) for c in range(len(CLASSES)) for n in range(2)}
    assert len(quarantined) >= silent_kept.sum()
    manifest = _assert_every_clip_exact(output)
    assert manifest.groupby("class_name").size().tolist() == [GOOD_PER_CLASS] * len(CLASSES)
    assert not manifest["ytid"].str.contains("sil|gone|early|cut").any()
    assert set(manifest["ytid"]) == {_ytid(c, "ok", n) for c in range(len(CLASSES)) for n in range(GOOD_PER_CLASS)}
    # Every codec and both kinds of start made it through.
    assert (manifest["start_seconds"] == 0).any() and (manifest["start_seconds"] > 0).any()
    assert _cli("validate", str(output), "--out", str(report)) == 0

    # post-processing with the shipped settings.
    for command in ("to-npy", "melspec", "stats", "pack"):
        assert _cli(command) == 0, command
    waveforms = sorted(config.postprocess.npy_dir.rglob("*.npy"))
    waveforms = [p for p in waveforms if not p.name.startswith(".")]
    assert len(waveforms) >= len(manifest)
    shapes = {np.load(p, mmap_mode="r").shape for p in waveforms if np.load(p, mmap_mode="r").ndim == 1}
    assert shapes == {(CLIP_FRAMES,)}
    features = [p for p in config.postprocess.features_dir.rglob("*.npy") if not p.name.startswith(".")]
    feature_shapes = {np.load(p, mmap_mode="r").shape for p in features if np.load(p, mmap_mode="r").ndim == 2}
    assert feature_shapes == {(128, 313)}

    if importlib.util.find_spec("torch") is None:
        pytest.skip("the last step, examples/iterate_episodes.py, needs the [torch] extra "
                    "(every step before it ran and passed)")
    for source in ("packed", "arrays", "clips"):
        out = _iterate_episodes(world, source, capsys)
        episodes = re.findall(r"episode \d+: support_x \(([\d, ]+)\)", out)
        assert len(episodes) == 3, out
        assert out.startswith(f"train: {5 * GOOD_PER_CLASS} items of 5 classes"), out
