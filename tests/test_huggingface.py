"""The dataset folder as Hugging Face ``datasets`` sees it, with the real library ([hf] extra).

A class folder whose name contains "train", the quarantine folder, validate's report and
a report folder all sit in the dataset; ``load_dataset(root)`` must still load exactly
the clips of ``metadata.csv``, every one of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from post_data import ClassSpec, make_dataset, write_clip

from audioset_tools.cli import main
from audioset_tools.dataset.hf_card import CARD_NAME, MARKER, write_dataset_card
from audioset_tools.dataset.layout import assign_class_folders
from audioset_tools.dataset.manifest import (
    HF_METADATA_NAME,
    MANIFEST_NAME,
    read_manifest,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: nothing to fetch, ever

TRAIN_WAGON = assign_class_folders([("/m/0000", "Railroad car, train wagon")])["/m/0000"]
CLASSES = (
    ClassSpec(0, TRAIN_WAGON, "train", 3),
    ClassSpec(1, "Bark", "train", 2),
    ClassSpec(2, "Meow", "val", 2),
    ClassSpec(3, "test_tone", "test", 2),
)


def _dataset(tmp_path: Path) -> tuple[Path, list[str]]:
    """A dataset with one clip quarantined by clean and a validation report written."""
    root = tmp_path / "data"
    manifest = make_dataset(root, CLASSES)
    write_clip(root / manifest["file"][4], np.zeros(16000))
    config = tmp_path / "control.yaml"
    config.write_text("paths:\n  output_dir: data\npostprocess:\n  workers: 1\n")
    assert main(["clean", "--config", str(config), "-q"]) == 0
    assert main(["validate", str(root), "-q"]) == 0
    assert main(["report", str(root), "-q"]) == 0
    files = list(read_manifest(root / MANIFEST_NAME)["file"])
    assert len(files) == len(manifest) - 1
    return root, files


def _torchcodec_reason() -> str | None:
    """Why audio cannot be loaded here (datasets >= 4 needs torchcodec and FFmpeg's libraries)."""
    try:
        from torchcodec.decoders import AudioDecoder  # noqa: F401
    except (ImportError, OSError, RuntimeError) as exc:
        return f"datasets needs torchcodec with FFmpeg shared libraries to load audio: {exc}"
    return None


def test_card_front_matter_names_metadata_and_every_class_folder(tmp_path: Path) -> None:
    root, files = _dataset(tmp_path)
    text = (root / CARD_NAME).read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    (config,) = front["configs"]
    assert config["config_name"] == "default" and config["default"] is True
    (split,) = config["data_files"]
    assert split["path"][0] == HF_METADATA_NAME
    assert sorted(split["path"][1:]) == sorted({f"{f.split('/')[0]}/*.wav" for f in files})
    assert MARKER in text
    # Nothing at the root that split inference could read as a split.
    assert not any(p.suffix == ".csv" and p.name not in (HF_METADATA_NAME, MANIFEST_NAME) for p in root.iterdir())


def test_a_users_own_readme_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / CARD_NAME).write_text("# my notes\n")
    assert write_dataset_card(root, ["Bark/a.wav"], HF_METADATA_NAME, 1) is False
    assert (root / CARD_NAME).read_text() == "# my notes\n"


def test_datasets_resolves_exactly_the_listed_clips(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="needs the [hf] extra (Hugging Face datasets)")
    root, files = _dataset(tmp_path)
    builder = datasets.load_dataset_builder(str(root), cache_dir=str(tmp_path / "cache"))
    assert list(builder.config.data_files) == ["train"]
    resolved = sorted(Path(f).relative_to(root.resolve()).as_posix() for f in builder.config.data_files["train"])
    assert resolved == sorted([HF_METADATA_NAME, *files])
    # The same folder without the card: split inference takes the class folder "...train..."
    # for the train split and loads nothing else. This is what the card prevents.
    (root / CARD_NAME).unlink()
    guessed = datasets.load_dataset_builder(str(root), cache_dir=str(tmp_path / "cache2"))
    assert sorted(Path(f).parent.name for f in guessed.config.data_files["train"]) != sorted(
        [f.split("/")[0] for f in files]
    )


def test_metadata_rows_load_without_any_audio_decoder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="needs the [hf] extra (Hugging Face datasets)")
    root, files = _dataset(tmp_path)
    rows = datasets.load_dataset("csv", data_files=str(root / HF_METADATA_NAME), cache_dir=str(tmp_path / "c"))
    table = rows["train"]
    assert table["file_name"] == files
    assert set(table["split"]) == {"train", "val", "test"} and TRAIN_WAGON in set(table["label"])


def test_load_dataset_loads_every_row_with_audio(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="needs the [hf] extra (Hugging Face datasets)")
    reason = _torchcodec_reason()
    if reason is not None:
        pytest.skip(reason)
    root, files = _dataset(tmp_path)
    manifest = read_manifest(root / MANIFEST_NAME)
    loaded = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"]
    clips = loaded["train"]
    assert clips.num_rows == len(files)
    assert list(clips["label"]) == list(manifest["class_name"])
    assert list(clips["split"]) == list(manifest["split"])
    paths = clips.cast_column("audio", datasets.Audio(decode=False))["audio"]
    assert [Path(p["path"]).relative_to(root.resolve()).as_posix() for p in paths] == files
    decoded = clips[0]["audio"].get_all_samples()
    assert decoded.sample_rate == 16000
    assert decoded.data.shape[-1] == round(float(manifest["duration"][0]) * 16000)
