"""``audioset-tools export lhotse`` against the real lhotse ([lhotse] extra): its own
validation accepts the manifests and decoded lengths equal the dataset manifest's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from post_data import DEFAULT_CLASSES, make_dataset

from audioset_tools.cli import main
from audioset_tools.dataset.manifest import (
    MANIFEST_NAME,
    read_manifest,
    write_dataset_manifests,
)

lhotse = pytest.importorskip("lhotse", reason="needs the [lhotse] extra")
from lhotse.qa import validate  # noqa: E402


def _config(tmp_path: Path) -> str:
    path = tmp_path / "control.yaml"
    path.write_text("paths:\n  output_dir: data\n")
    return str(path)


def test_export_is_valid_for_lhotse_and_lengths_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = make_dataset(tmp_path / "data", seconds=1.5)
    assert main(["export", "lhotse", "--config", _config(tmp_path), "-q"]) == 0
    out = tmp_path / "data" / "_lhotse"
    assert "exported 27 clip(s)" in capsys.readouterr().out
    recordings = lhotse.load_manifest(out / "audioset_recordings.jsonl.gz")
    supervisions = lhotse.load_manifest(out / "audioset_supervisions.jsonl.gz")
    cuts = lhotse.CutSet.from_file(out / "audioset_cuts.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet) and isinstance(supervisions, lhotse.SupervisionSet)
    assert len(recordings) == len(supervisions) == len(cuts) == len(manifest)
    validate(recordings, read_data=True)
    validate(supervisions)
    validate(cuts, read_data=True)

    by_id = {cut.id: cut for cut in cuts}
    for row in manifest.itertuples():
        clip_id = Path(row.file).stem
        cut = by_id[clip_id]
        samples = cut.load_audio()
        on_disk = sf.info(str(tmp_path / "data" / row.file)).frames
        assert samples.shape == (1, on_disk) == (1, cut.num_samples)
        assert cut.num_samples == round(row.duration * row.sample_rate)
        np.testing.assert_allclose(samples[0], sf.read(str(tmp_path / "data" / row.file), dtype="float32")[0])
        (supervision,) = cut.supervisions
        assert (supervision.start, supervision.duration) == (0.0, cut.duration)
        assert supervision.custom["class_name"] == row.class_name and supervision.custom["mid"] == row.mid
        assert supervision.custom["split"] == row.split
        assert supervision.custom["labels"] == row.labels.split(",")
    assert {c.supervisions[0].custom["split"] for c in cuts} == {"train", "val", "test"}
    assert sorted({c.supervisions[0].custom["class_name"] for c in cuts}) == sorted(s.name for s in DEFAULT_CLASSES)


def test_relative_paths_load_with_a_prefix(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data", classes=DEFAULT_CLASSES[:2])
    out = tmp_path / "manifests"
    assert main(["export", "lhotse", str(tmp_path / "data"), "--out", str(out), "--relative-paths", "-q"]) == 0
    recordings = lhotse.load_manifest(out / "audioset_recordings.jsonl.gz")
    assert all(not Path(r.sources[0].source).is_absolute() for r in recordings)
    validate(recordings.with_path_prefix(tmp_path / "data"), read_data=True)


def test_all_labels_and_a_segment_in_two_classes(tmp_path: Path) -> None:
    root = tmp_path / "data"
    manifest = make_dataset(root, classes=DEFAULT_CLASSES[:2])
    # label_policy any: the same segment downloaded into a second class keeps a distinct id.
    twin = manifest.iloc[[0]].copy()
    twin["class_index"], twin["class_name"], twin["mid"] = 1, "Meow", "/m/0001"
    twin["file"] = "Meow/" + manifest["file"][0].split("/")[1]
    twin["labels"] = "/m/0000,/m/0001,/m/09x0r"
    (root / twin["file"].iloc[0]).write_bytes((root / manifest["file"][0]).read_bytes())
    write_dataset_manifests(root, __import__("pandas").concat([manifest, twin], ignore_index=True))
    assert main(["export", "lhotse", str(root), "-q"]) == 0
    cuts = lhotse.CutSet.from_file(root / "_lhotse" / "audioset_cuts.jsonl.gz")
    ids = [cut.id for cut in cuts]
    assert len(set(ids)) == len(read_manifest(root / MANIFEST_NAME)) and all("/" not in i for i in ids)
    labels = {tuple(c.supervisions[0].custom["labels"]) for c in cuts}
    assert ("/m/0000", "/m/0001", "/m/09x0r") in labels


def test_errors_are_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["export", "lhotse", str(tmp_path / "empty"), "-q"]) == 2
    assert "no dataset manifest" in capsys.readouterr().err
    manifest = make_dataset(tmp_path / "data", classes=DEFAULT_CLASSES[:1])
    (tmp_path / "data" / manifest["file"][0]).unlink()
    assert main(["export", "lhotse", str(tmp_path / "data"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "Traceback" not in err
    assert not (tmp_path / "data" / "_lhotse" / "audioset_cuts.jsonl.gz").exists()


def test_without_lhotse_the_command_says_how_to_install(tmp_path: Path, monkeypatch, capsys) -> None:
    make_dataset(tmp_path / "data", classes=DEFAULT_CLASSES[:1])
    monkeypatch.setitem(sys.modules, "lhotse", None)  # import lhotse now raises ImportError
    assert main(["export", "lhotse", str(tmp_path / "data"), "-q"]) == 2
    assert "pip install 'audioset-tools[lhotse]'" in capsys.readouterr().err
