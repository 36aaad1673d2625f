"""Clips that cleaning quarantined are never fetched again by a download; a rebuild still fetches its rows."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import soundfile
from test_download_e2e import FAST, _settings
from test_download_helpers import (
    assert_manifests_equal_disk,
    candidate_frame,
    suitable_frame,
    youtube_run,
)

from audioset_tools.config import Config
from audioset_tools.dataset.layout import QUARANTINE_DIR
from audioset_tools.dataset.manifest import MANIFEST_NAME, read_manifest
from audioset_tools.dataset.quarantine import QUARANTINE_LIST, quarantined_segments
from audioset_tools.download.ledger import LEDGER_NAME, QUARANTINED
from audioset_tools.download.plan import plan_download
from audioset_tools.download.preview import preview_download
from audioset_tools.download.rebuild import rebuild_dataset
from audioset_tools.post.clean import CleanSettings, clean_dataset

CLASSES = [("/m/a", "Speech")]
IDS = [f"quar{n:07d}" for n in range(4)]
ROWS = {"/m/a": [(yt, 2.0 * n, 2.0 * n + 2.0) for n, yt in enumerate(IDS)]}


def _plans(settings):
    return plan_download(suitable_frame(CLASSES), candidate_frame(ROWS, CLASSES), start_index=0, end_index=None,
                         samples_per_class=2, audio_format="wav")


def _download(out, settings, **options):
    return youtube_run(_plans(settings), settings, out, pacing=FAST, **options)


def _silence(path):
    info = soundfile.info(path)
    soundfile.write(path, np.zeros((info.frames, info.channels)), info.samplerate, subtype="PCM_16")


def test_quarantined_clip_is_replaced_by_the_next_candidate_and_never_fetched_again(
    tmp_path, media_server, tone_sources, ffmpeg_exe
):
    for yt in IDS:
        media_server.add(yt, tone_sources.webm)
    settings = _settings(media_server.url_template(), ffmpeg_exe)
    out = tmp_path / "out"
    assert _download(out, settings).exit_code == 0
    before = assert_manifests_equal_disk(out)
    assert list(before["ytid"]) == IDS[:2]
    old_manifest = tmp_path / "before_clean.csv"
    shutil.copy(out / MANIFEST_NAME, old_manifest)

    _silence(out / before["file"][0])
    assert clean_dataset(out, CleanSettings(), workers=1).quarantined == {"silent": 1}
    assert quarantined_segments(out) == {("/m/a", IDS[0], 0)}
    preview = preview_download(_plans(settings), out, retry_failed=True)[0]
    assert (preview.quarantined, preview.done, [c.ytid for c in preview.to_fetch]) == (1, 1, [IDS[2]])

    media_server.reset_stats()
    summary = _download(out, settings)
    assert media_server.stats(IDS[0]).requests == 0
    assert summary.exit_code == 0 and summary.quarantined == 1
    assert media_server.stats(IDS[2]).requests > 0
    after = assert_manifests_equal_disk(out)
    assert list(after["ytid"]) == [IDS[1], IDS[2]]
    with sqlite3.connect(out / LEDGER_NAME) as db:
        events = db.execute("SELECT ytid FROM attempts WHERE outcome = ?", (QUARANTINED,)).fetchall()
    assert events == [(IDS[0],)]

    # Judged bad on its content: --retry-failed does not bring it back either.
    media_server.reset_stats()
    summary = _download(out, settings, retry_failed=True)
    assert summary.quarantined == 1 and media_server.stats(IDS[0]).requests == 0
    assert list(assert_manifests_equal_disk(out)["ytid"]) == [IDS[1], IDS[2]]
    assert (out / QUARANTINE_DIR / before["file"][0]).is_file()

    # A rebuild fetches exactly its manifest's rows, even one this folder's quarantine lists.
    rebuilt = tmp_path / "rebuilt"
    (rebuilt / QUARANTINE_DIR).mkdir(parents=True)
    shutil.copy(out / QUARANTINE_DIR / QUARANTINE_LIST, rebuilt / QUARANTINE_DIR / QUARANTINE_LIST)
    assert quarantined_segments(rebuilt) == {("/m/a", IDS[0], 0)}
    config = Config.model_validate({"download": {"url_template": media_server.url_template(), "max_retries": 1}})
    result = rebuild_dataset(old_manifest, rebuilt, config, progress=False)
    assert result.exit_code == 0
    assert list(read_manifest(rebuilt / MANIFEST_NAME)["ytid"]) == IDS[:2]
