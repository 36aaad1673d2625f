"""The archive source writes its clips through the file descriptor: the same bytes as soundfile.write."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from audioset_tools.atomic import is_temporary
from audioset_tools.sources.archive.source import write_clip
from audioset_tools.sources.output_spec import OutputSpec


@pytest.mark.parametrize("audio_format", ["wav", "flac"])
@pytest.mark.parametrize("channels", [1, 2])
def test_written_clip_is_byte_for_byte_what_soundfile_writes(tmp_path, audio_format, channels):
    samples = (np.random.default_rng(channels).standard_normal((48_000, channels)) * 3000).astype(np.int16)
    target = tmp_path / "out" / f"clip.{audio_format}"
    target.parent.mkdir()
    target.write_bytes(b"an older, longer file under the final name" * 100_000)  # replaced whole
    write_clip(target, samples, OutputSpec(16000, channels, audio_format))
    reference = io.BytesIO()
    soundfile.write(reference, samples, 16000, format=audio_format.upper(), subtype="PCM_16")
    assert target.read_bytes() == reference.getvalue()
    assert [p.name for p in target.parent.iterdir() if is_temporary(p)] == []
