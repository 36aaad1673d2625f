"""doctor on yt-dlp's side: versions, yt-dlp-ejs, installed plugins and PO-token providers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

from audioset_tools.download import doctor
from audioset_tools.download.doctor import (
    Status,
    check_ejs,
    check_ytdlp,
    check_ytdlp_plugins,
)
from audioset_tools.sources.youtube.ytdlp_tooling import (
    ejs_version_wanted,
    tooling_versions,
)

REPO = Path(__file__).resolve().parents[1]

EXTRACTOR_PLUGIN = '''
from yt_dlp.extractor.common import InfoExtractor


class AudiosetProbeIE(InfoExtractor):
    _VALID_URL = r"audiosetprobe:(?P<id>.+)"

    def _real_extract(self, url):
        return {"id": self._match_id(url), "url": "http://127.0.0.1:1/x.webm"}
'''
POT_PLUGIN = '''
from yt_dlp.extractor.youtube.pot.provider import PoTokenProvider, PoTokenResponse, register_provider


@register_provider
class AudiosetProbePTP(PoTokenProvider):
    PROVIDER_NAME = "audioset-probe"
    PROVIDER_VERSION = "1.2.3"
    BUG_REPORT_LOCATION = "nowhere"
    _SUPPORTED_CONTEXTS = None

    def is_available(self):
        return True

    def _real_request_pot(self, request):
        return PoTokenResponse("token")
'''


def _plugin_tree(root: Path) -> Path:
    package = root / "yt_dlp_plugins" / "extractor"
    package.mkdir(parents=True)
    (package / "audiosetprobe.py").write_text(textwrap.dedent(EXTRACTOR_PLUGIN))
    (package / "getpot_audiosetprobe.py").write_text(textwrap.dedent(POT_PLUGIN))
    return root


def _doctor(tmp_path: Path, extra_path: Path | None, config: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    paths = [str(extra_path)] if extra_path else []
    env["PYTHONPATH"] = os.pathsep.join(paths + [str(REPO)])
    # yt-dlp also looks in the user's config folders: keep the test's own world.
    env["HOME"] = str(tmp_path / "home")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "home" / ".config")
    if config is not None:
        (tmp_path / "control.yaml").write_text(config)
    return subprocess.run(
        [sys.executable, "-m", "audioset_tools", "doctor", "--offline", "--output", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_doctor_lists_installed_plugins_and_po_token_providers(tmp_path):
    completed = _doctor(tmp_path, _plugin_tree(tmp_path / "plugins"))
    line = next(line for line in completed.stdout.splitlines() if "yt-dlp plugins" in line)
    assert "PO-token providers: audioset-probe 1.2.3" in line
    assert "AudiosetProbeIE" in line and "[  ok]" in line


def test_doctor_says_when_no_plugin_is_installed(tmp_path):
    completed = _doctor(tmp_path, None)
    line = next(line for line in completed.stdout.splitlines() if "yt-dlp plugins" in line)
    assert "none installed" in line and "extractor_args" in line
    assert "yt-dlp-ejs: version" in completed.stdout


def test_a_plugin_api_yt_dlp_changed_is_a_warning_not_a_crash(monkeypatch):
    import yt_dlp.globals

    monkeypatch.delattr(yt_dlp.globals, "plugin_ies")
    check = check_ytdlp_plugins()
    assert check.status is Status.WARN and "cannot list yt-dlp plugins" in check.detail


def test_ejs_missing_or_mismatched_is_a_warning(monkeypatch):
    monkeypatch.setattr(doctor, "package_version", lambda name: None)
    assert check_ejs().status is Status.WARN and "yt-dlp-ejs" in check_ejs().detail
    monkeypatch.setattr(doctor, "package_version", lambda name: "0.0.1")
    monkeypatch.setattr(doctor, "ejs_version_wanted", lambda: "0.8.0")
    check = check_ejs()
    assert check.status is Status.WARN and "expects 0.8.0" in check.detail and "pip install -U" in check.detail
    monkeypatch.setattr(doctor, "package_version", lambda name: "0.8.0")
    assert check_ejs().status is Status.OK


def test_the_installed_yt_dlp_pins_the_installed_ejs():
    versions = tooling_versions()
    assert versions["yt_dlp"] and versions["yt_dlp_ejs"]
    assert ejs_version_wanted() == versions["yt_dlp_ejs"]


def test_old_yt_dlp_warns_with_the_update_command():
    from yt_dlp.version import __version__

    released = doctor.ytdlp_release_date(__version__)
    check = check_ytdlp(today=date.fromordinal(released.toordinal() + 61))
    assert check.status is Status.WARN and "61 days old" in check.detail and "yt-dlp-ejs" in check.detail
    assert check_ytdlp(today=date.fromordinal(released.toordinal() + 60)).status is Status.OK


def test_doctor_warns_about_po_token_options_for_a_provider_that_is_not_installed(tmp_path):
    plugins = _plugin_tree(tmp_path / "plugins")
    configured = "download:\n  youtube:\n    extractor_args:\n      youtubepot-audiosetprobe: {mode: [fast]}\n"
    line = next(line for line in _doctor(tmp_path, plugins, configured).stdout.splitlines() if "yt-dlp plugins" in line)
    assert line.startswith("[  ok]"), line
    missing = "download:\n  youtube:\n    extractor_args:\n      youtubepot-bgutilhttp: {base_url: [x]}\n"
    line = next(line for line in _doctor(tmp_path, plugins, missing).stdout.splitlines() if "yt-dlp plugins" in line)
    assert line.startswith("[warn]") and "youtubepot-bgutilhttp" in line and "no such PO-token provider" in line
