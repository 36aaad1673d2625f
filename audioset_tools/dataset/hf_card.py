"""The dataset card ``README.md`` at a dataset's root, for Hugging Face ``datasets``.

Without a card, ``datasets.load_dataset(root)`` guesses splits from file and folder
names: a class folder such as ``Railroad_car_train_wagon`` (it contains "train") or a
stray ``validation.csv`` makes it load only part of the dataset, or fail. The card's YAML
front matter names exactly what to load (``configs`` / ``data_files``), so every row of
``metadata.csv`` loads whatever the class folders are called. It is rewritten with the
manifests; a README.md the user wrote (without our marker line) is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..atomic import atomic_write_text

log = logging.getLogger(__name__)
# Cards of the user's own that were already reported in this process: warn once, not per write.
_reported: set[Path] = set()

CARD_NAME = "README.md"
# Present in every card we write: a README.md without it is the user's and never overwritten.
MARKER = "<!-- audioset-tools: generated dataset card, rewritten with the manifests -->"
AUDIO_CONFIG = "default"
# datasets' name for the one split of each config; the meta-split is the `split` column.
HF_SPLIT = "train"


def audio_patterns(files: Iterable[str]) -> list[str]:
    """One glob per (class folder, extension) present: ``Bark/*.wav``.

    Folder names are slugs of ``[A-Za-z0-9._-]`` (see :mod:`layout`), so they hold no glob
    characters; naming them one by one keeps the quarantine and report folders out.
    """
    patterns = set()
    for relative in files:
        path = PurePosixPath(relative)
        patterns.add(f"{path.parent.as_posix()}/*{path.suffix}")
    return sorted(patterns)


def card_text(files: Iterable[str], metadata_name: str, clips: int, classes: int) -> str:
    patterns = audio_patterns(files)
    audio_paths = "\n".join(f'    - "{p}"' for p in [metadata_name, *patterns])
    return f"""---
pretty_name: AudioSet slice (audioset-tools)
task_categories:
- audio-classification
configs:
- config_name: {AUDIO_CONFIG}
  default: true
  data_files:
  - split: {HF_SPLIT}
    path:
{audio_paths}
---
{MARKER}

# AudioSet slice

{clips} ten-second clips of {classes} AudioSet classes, made by audioset-tools. One folder
per class; `{metadata_name}` lists every clip with its class (`label`, `mid`), its
meta-learning split (`split`: train, val or test, by class), its YouTube segment and
all of its AudioSet labels.

```python
from datasets import load_dataset

clips = load_dataset("path/to/this/folder")["{HF_SPLIT}"]  # audio + metadata, every clip
meta_train = clips.filter(lambda split: split == "train", input_columns="split")
# metadata only, no audio decoder needed:
rows = load_dataset("csv", data_files="path/to/this/folder/{metadata_name}")["train"]
```

Every clip is in the one `{HF_SPLIT}` split; the meta-split is the `split` column, so
that classes, not clips, are split. Loading the audio needs `datasets` >= 4 with
`torchcodec` (and FFmpeg's shared libraries), or `datasets` 3.x with pandas < 3.
"""


def write_dataset_card(root: Path, files: list[str], metadata_name: str, classes: int) -> bool:
    """Write ``root/README.md``; False (and nothing written) when a user's own card is there."""
    path = Path(root) / CARD_NAME
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except (OSError, UnicodeDecodeError):
        existing = ""
    if existing is not None and MARKER not in existing:
        if path in _reported:
            return False
        _reported.add(path)
        log.warning(
            "%s is not a card audioset-tools wrote; left as it is. Hugging Face datasets may then "
            "guess splits from folder names; add the 'configs' of docs/metaaudio-huggingface-lhotse.md",
            path,
        )
        return False
    atomic_write_text(path, card_text(files, metadata_name, len(files), classes))
    return True
