"""``audioset-tools melspec``: log-mel spectrograms of every clip."""

from __future__ import annotations

import argparse

from ..config import Config
from ..post.features import compute_melspecs
from ..post.settings import feature_settings
from ._conversion import report
from ._dataset import add_dataset_argument, dataset_folder

NAME = "melspec"
HELP = "compute log-mel spectrograms (MetaAudio defaults: 16 kHz, n_fft 1024, hop 512, 128 mels, dB)"
DESCRIPTION = """\
Compute the log-mel spectrogram of every clip of the manifest of DIR (default
paths.output_dir) into postprocess.features_dir, mirroring the class folders; index.csv and
params.json go to the sibling folder <features_dir>_meta, so the root holds class folders only.
Equal to librosa.feature.melspectrogram + librosa.power_to_db with the same settings;
postprocess.melspec.style: metaaudio gives MetaAudio's features instead (z-normalised
waveform, 10*log10(mel + eps), no top_db). A clip's array is the same bytes whatever the
batch size or worker count.
postprocess.melspec.chunk_seconds cuts clips into fixed-length chunks.
Settings: postprocess.melspec.*, postprocess.workers, postprocess.batch_clips."""
CONFIG = "optional"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset folder; every other setting lives in control.yaml (or --set)."""
    add_dataset_argument(parser)


def run(args: argparse.Namespace, config: Config) -> int:
    return report(
        compute_melspecs(
            dataset_folder(args, config, NAME).absolute(),
            config.postprocess.features_dir,
            feature_settings(config),
            workers=config.postprocess.workers,
            batch_clips=config.postprocess.batch_clips,
        )
    )
