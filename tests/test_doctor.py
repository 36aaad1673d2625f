import sys
from datetime import date
from pathlib import Path

from audioset_tools.download.doctor import (
    Status,
    check_cookies,
    check_ffmpeg,
    check_js_runtime,
    check_output_dir,
    check_ytdlp,
    run_checks,
    ytdlp_release_date,
)

SECRET = "SeCrEtVaLuE0123456789"


def _cookies(path: Path, broken: bool = False) -> Path:
    good = f".youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\t{SECRET}\n"
    bad = f".youtube.com\tMAYBE\t/\tTRUE\t1999999999\tSID\t{SECRET}\n"
    path.write_text("# Netscape HTTP Cookie File\n" + (bad if broken else good))
    path.chmod(0o600)
    return path


def _fake_ffmpeg(tmp_path: Path) -> Path:
    # An ffmpeg without TLS: answers -version and -protocols like a real build would.
    script = tmp_path / "ffmpeg"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "if '-protocols' in sys.argv:\n"
        "    print('Supported file protocols:\\nInput:\\n  file\\n  http\\nOutput:\\n  file\\n')\n"
        "else:\n"
        "    print('ffmpeg version 4.0-fake Copyright')\n"
    )
    script.chmod(0o755)
    return script


def test_everything_installed_passes(tmp_path):
    checks = run_checks(ffmpeg_path=None, js_runtime=None, cookies_file=_cookies(tmp_path / "c.txt"),
                        output_dir=tmp_path / "out" / "deeper")
    assert [c.name for c in checks] == [
        "ffmpeg", "yt-dlp", "yt-dlp-ejs", "yt-dlp plugins", "JavaScript runtime", "cookies", "output folder"
    ]
    hard = [c for c in checks if c.name != "yt-dlp"]
    assert all(c.status is Status.OK for c in hard), checks
    assert "https supported" in checks[0].detail
    assert not (tmp_path / "out").exists()  # doctor only looks
    assert not list(tmp_path.glob(".doctor-*"))


def test_ffmpeg_without_the_clip_filters_fails(tmp_path):
    # TLS, but built without astats (an ffmpeg trimmed down to a few filters).
    script = tmp_path / "ffmpeg"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "if '-protocols' in sys.argv:\n"
        "    print('Supported file protocols:\\nInput:\\n  file\\n  https\\nOutput:\\n  file\\n')\n"
        "elif '-filters' in sys.argv:\n"
        "    print('Filters:\\n  T.. = Timeline support\\n ------\\n'\n"
        "          ' T. apad              A->A       Pad audio with silence.\\n'\n"
        "          ' .. aresample         A->A       Resample audio data.\\n'\n"
        "          ' .. asetpts           A->A       Set PTS.\\n'\n"
        "          ' .. atrim             A->A       Pick one section.\\n')\n"
        "else:\n"
        "    print('ffmpeg version 4.0-fake Copyright')\n"
    )
    script.chmod(0o755)
    result = check_ffmpeg(script)
    assert result.status is Status.FAIL and "astats" in result.detail and "atrim" not in result.detail


def test_ffmpeg_without_https_or_missing_fails(tmp_path):
    result = check_ffmpeg(_fake_ffmpeg(tmp_path))
    assert result.status is Status.FAIL and "https" in result.detail
    assert check_ffmpeg(tmp_path / "no-such-ffmpeg").status is Status.FAIL


def test_old_ytdlp_warns():
    assert ytdlp_release_date("2026.10.26") == date(2026, 10, 26)
    assert ytdlp_release_date("2026.10.26.123456") == date(2026, 10, 26)
    assert ytdlp_release_date("garbage") is None
    released = ytdlp_release_date(__import__("yt_dlp.version").version.__version__)
    assert check_ytdlp(today=released).status is Status.OK
    old = check_ytdlp(today=date.fromordinal(released.toordinal() + 90))
    assert old.status is Status.WARN and "pip install -U" in old.detail


def test_js_runtime_problems_fail(tmp_path):
    assert check_js_runtime("perl").status is Status.FAIL
    assert check_js_runtime(f"node:{tmp_path / 'missing'}").status is Status.FAIL
    assert check_js_runtime(None).status is Status.OK


def test_cookie_problems_never_echo_values(tmp_path):
    bad = check_cookies(_cookies(tmp_path / "bad.txt", broken=True))
    assert bad.status is Status.FAIL and "line 2" in bad.detail and SECRET not in bad.detail
    shared = _cookies(tmp_path / "shared.txt")
    shared.chmod(0o644)
    assert check_cookies(shared).status is Status.WARN
    assert check_cookies(None).status is Status.OK


def test_output_dir_that_is_a_file_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert check_output_dir(blocker).status is Status.FAIL
    assert check_output_dir(blocker / "sub").status is Status.FAIL


def test_doctor_command_exit_codes(tmp_path, capsys):
    from audioset_tools.cli import run_script

    def main(argv):
        return run_script(argv[0], argv[1:], prog="audioset-tools doctor")

    config = tmp_path / "control.yaml"
    config.write_text(f"download:\n  cookies_file: {_cookies(tmp_path / 'c.txt', broken=True)}\n")
    assert main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] cookies" in out and SECRET not in out
    config.write_text(f"download:\n  cookies_file: {_cookies(tmp_path / 'c.txt')}\npaths:\n  output_dir: out\n")
    # --offline: this machine cannot reach the default source (test_offline.py covers the network check).
    assert main(["doctor", "--config", str(config), "--offline"]) == 0
    assert main(["doctor", "--config", str(config), "--offline", "--set", "download.js_runtime=perl"]) == 1


def test_doctor_without_control_yaml_takes_overrides(tmp_path, monkeypatch, capsys):
    """No control.yaml: defaults plus --set, so a bad cookies path named with --set is checked."""
    from audioset_tools.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nope.txt"
    code = cli_main(["doctor", "--set", f"download.cookies_file={missing}", "--output", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "no control.yaml here" in out
    assert str(missing) in out or "nope.txt" in out
    assert code == 1
