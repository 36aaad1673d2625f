"""From the validated config to the post-processing library's settings and folders."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .clean import CleanSettings
from .features import FeatureSettings
from .melspec import MelParams
from .npy import NpySettings

# The command that writes each kind of derived folder, for "run X first" messages.
MAKERS = {"melspec": "audioset-tools melspec", "npy": "audioset-tools to-npy"}


def clean_settings(config: Config) -> CleanSettings:
    return CleanSettings(**config.postprocess.clean.model_dump())


def npy_settings(config: Config) -> NpySettings:
    return NpySettings(**config.postprocess.npy.model_dump())


def feature_settings(config: Config) -> FeatureSettings:
    section = config.postprocess.melspec.model_dump()
    chunk_seconds = section.pop("chunk_seconds")
    chunk_remainder = section.pop("chunk_remainder")
    if section["style"] == "metaaudio":
        section["top_db"] = None  # MetaAudio clips nothing; recorded so in params.json
    return FeatureSettings(MelParams(**section), chunk_seconds, chunk_remainder)


def source_folder(config: Config, source: str) -> tuple[Path, str]:
    """The derived folder of ``source`` (melspec | npy) and the command that makes it."""
    folder = config.postprocess.features_dir if source == "melspec" else config.postprocess.npy_dir
    return folder, MAKERS[source]
