"""Faults found by a hostile trial (issue 9): ownership, changed selections, locks,
read-only copies, hostile manifest text, changed samples. End to end through the CLI
against the local media server, real yt-dlp and real ffmpeg.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audioset_tools.cli import main
from audioset_tools.download.ledger import LEDGER_NAME
from audioset_tools.manifest import MANIFEST_NAME, read_manifest
from test_download_helpers import audio_files
from test_rebuild_e2e import _scripts_on_path, downloaded  # noqa: F401  (fixtures)


def _someone_elses_manifest(tmp_path: Path, out: Path) -> Path:
    """Half of the dataset's rows: the same class folders, other clip lists."""
    shared = tmp_path / "someone_else.csv"
    read_manifest(out / MANIFEST_NAME).iloc[[0, 2]].to_csv(shared, index=False)
    return shared


@pytest.mark.parametrize("lost", ["manifest", "manifest_and_ledger"])
def test_rebuild_never_deletes_clips_it_does_not_own(downloaded, tmp_path, media_server, capsys, lost):  # noqa: F811
    config, out = downloaded
    shared = _someone_elses_manifest(tmp_path, out)
    before = audio_files(out)
    assert len(before) == 4
    # After a crash (or by hand) the folder's own manifest is gone; the clips are not.
    (out / MANIFEST_NAME).unlink()
    if lost == "manifest_and_ledger":
        for path in out.glob(LEDGER_NAME + "*"):
            path.unlink()
    code = main(["rebuild", "--manifest", str(shared), "--output", str(out), "--config", str(config), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "rebuilding would delete them" in err and "Traceback" not in err
    assert "2 clip(s)" in err
    assert audio_files(out) == before
    assert media_server.total_requests() == 0
