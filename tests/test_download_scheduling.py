"""The runner's scheduling and resume rules, with a stand-in fetch so completion order can be shuffled.

The stand-in writes real WAV files (atomically, like fetch_clip) and returns real
ClipResults; end-to-end runs through yt-dlp and ffmpeg are in test_download_e2e.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import threading
import time
from collections import Counter

import numpy as np
import pytest
import soundfile
from test_download_helpers import (
    assert_manifests_equal_disk,
    candidate_frame,
    suitable_frame,
    youtube_run,
    ytid,
)

from audioset_tools.config import Config
from audioset_tools.download.ledger import LEDGER_NAME, Ledger
from audioset_tools.download.plan import plan_download
from audioset_tools.download.runner import LOCK_NAME, RunOptions
from audioset_tools.download.summary import EXIT_THROTTLED
from audioset_tools.errors import UserError
from audioset_tools.sources.base import ClipJob, ClipResult, is_partial_file, partial_path
from audioset_tools.sources.outcomes import Outcome
from audioset_tools.sources.pacing import PacingSettings
from audioset_tools.sources.youtube.settings import FetchSettings

CLASSES = [("/m/dog", "Dog"), ("/m/cat", "Cat"), ("/m/bird", "Bird, songbird")]
FAST = PacingSettings(sleep_between_requests=0.0, sleep_jitter=0.0, backoff_base_seconds=0.01,
                      backoff_max_seconds=0.02, max_consecutive_rate_limits=3)


class FakeFetch:
    """Outcome per ytid from ``behaviour`` (default ok); random short delays shuffle completions."""

    def __init__(self, behaviour: dict[str, list[str] | str] | None = None, seed: int = 0, jitter: float = 0.0):
        self.behaviour = behaviour or {}
        self.calls: Counter = Counter()
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.jitter = jitter

    def __call__(self, job, settings: FetchSettings) -> ClipResult:
        with self.lock:
            self.calls[job.ytid] += 1
            plan = self.behaviour.get(job.ytid, "ok")
            outcome = plan.pop(0) if isinstance(plan, list) and len(plan) > 1 else (
                plan[0] if isinstance(plan, list) else plan)
            delay = self.rng.uniform(0, self.jitter)
        time.sleep(delay)
        if outcome != "ok":
            return ClipResult(Outcome(outcome), f"simulated {outcome}", 1, None, None, None, None, None, None, 0)
        duration = job.end_seconds - job.start_seconds
        spec = job.spec
        frames = int(round(duration * spec.sample_rate))
        samples = np.full((frames, spec.channels), 0.1, dtype="float32")
        temp = job.target.with_name(f".{job.target.name}.fake.tmp")
        job.target.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(temp, samples, spec.sample_rate, format="WAV", subtype="PCM_16")
        os.replace(temp, job.target)
        digest = hashlib.sha256(job.target.read_bytes()).hexdigest()
        return ClipResult(Outcome.OK, "", 1, None, job.target, digest, frames / spec.sample_rate,
                          spec.sample_rate, spec.channels, 1000)


@pytest.fixture(scope="module")
def settings() -> FetchSettings:
    from audioset_tools.sources.ffmpeg_bin import find_ffmpeg

    return FetchSettings.from_config(Config(), find_ffmpeg())


def _plans(rows, target, **kw):
    return plan_download(suitable_frame(CLASSES), candidate_frame(rows, CLASSES), start_index=0, end_index=None,
                         samples_per_class=target, audio_format="wav", **kw)


def _rows(count=8):
    return {
        mid: [(ytid(mid[3:5], n), float(n), float(n) + 2.0) for n in range(count)]
        for mid, _ in CLASSES
    }


def _run(plans, settings, out, fetch, workers=1, **kw):
    return youtube_run(plans, settings, out, fetch=fetch, workers=workers, pacing=kw.pop("pacing", FAST), **kw)


def _behaviour():
    # Failures spread so that in-flight order matters: early ranks fail, later ones succeed.
    return {
        ytid("do", 0): "unavailable", ytid("do", 2): "transient", ytid("do", 3): "too_short",
        ytid("ca", 1): "forbidden", ytid("ca", 2): "decode_error", ytid("ca", 3): "unavailable",
        ytid("ca", 4): "truncated", ytid("ca", 5): "unavailable", ytid("ca", 6): "unavailable",
        ytid("bi", 0): "sign_in_required",
    }


def test_keeps_first_successes_in_rank_order_whatever_the_workers(tmp_path, settings):
    rows = _rows()
    expected = {
        "Dog": [ytid("do", n) for n in (1, 4, 5)],
        "Cat": [ytid("ca", n) for n in (0, 7)],  # runs out: only two successes
        "Bird_songbird": [ytid("bi", n) for n in (1, 2, 3)],
    }
    manifests = []
    for workers, seed in [(1, 0), (4, 1), (4, 2), (8, 3)]:
        out = tmp_path / f"w{workers}_{seed}"
        summary = _run(_plans(rows, 3), settings, out, FakeFetch(_behaviour(), seed=seed, jitter=0.02), workers)
        assert summary.exit_code == 0
        manifest = assert_manifests_equal_disk(out)
        got = {folder: list(g["ytid"]) for folder, g in manifest.groupby(manifest["file"].str.split("/").str[0])}
        assert got == expected
        manifests.append((out / "manifest.csv").read_text())
        cat = next(c for c in summary.classes if c.folder == "Cat")
        assert cat.short and cat.ok == 2
    assert all(m == manifests[0] for m in manifests)


def test_in_flight_never_exceeds_what_a_class_still_needs(tmp_path, settings):
    in_flight, peak = 0, 0
    lock = threading.Lock()
    inner = FakeFetch(jitter=0.01)

    def counting(job, s):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return inner(job, s)
        finally:
            with lock:
                in_flight -= 1

    plans = _plans(_rows(), 2)[:1]
    _run(plans, settings, tmp_path / "out", counting, workers=8)
    assert peak <= 2
    assert sum(inner.calls.values()) == 2  # every success is kept, nothing fetched in vain


def test_resume_rules(tmp_path, settings):
    out = tmp_path / "out"
    rows = _rows()
    first = FakeFetch(_behaviour())
    _run(_plans(rows, 3), settings, out, first)
    before = assert_manifests_equal_disk(out)

    second = FakeFetch()  # now everything would succeed
    summary = _run(_plans(rows, 3), settings, out, second)
    # ok clips are not fetched again, permanent failures are skipped, the transient one is retried.
    assert set(second.calls) == {ytid("do", 2), ytid("ca", 4)}
    assert summary.already_done == 7 and summary.known_failed == 8
    after = assert_manifests_equal_disk(out)
    # Dog: rank 2 (transient before) now succeeds and outranks rank 5.
    dog = list(after[after["class_name"] == "Dog"]["ytid"])
    assert dog == [ytid("do", n) for n in (1, 2, 4)]
    assert not (out / "Dog" / f"{ytid('do', 5)}_5000.wav").exists()
    assert len(after) == len(before) + 1  # Cat gained rank 4 (truncated before)

    third = FakeFetch()
    _run(_plans(rows, 3), settings, out, third, retry_failed=True)
    assert ytid("do", 0) in third.calls and ytid("bi", 0) in third.calls
    final = assert_manifests_equal_disk(out)
    assert list(final[final["class_name"] == "Dog"]["ytid"]) == [ytid("do", n) for n in (0, 1, 2)]


def test_vanished_files_are_fetched_again_and_extras_discarded(tmp_path, settings):
    out = tmp_path / "out"
    rows = _rows()
    _run(_plans(rows, 3), settings, out, FakeFetch())
    (out / "Dog" / f"{ytid('do', 1)}_1000.wav").unlink()
    again = FakeFetch()
    _run(_plans(rows, 3), settings, out, again)
    assert list(again.calls) == [ytid("do", 1)]
    assert_manifests_equal_disk(out)

    summary = _run(_plans(rows, 1), settings, out, FakeFetch())  # fewer clips per class now
    manifest = assert_manifests_equal_disk(out)
    assert len(manifest) == 3 and summary.discarded == 6
    with Ledger(out / LEDGER_NAME, read_only=True) as ledger:
        assert ledger.outcome_counts()["discarded"] == 6


def test_unrecorded_complete_file_is_adopted_and_broken_one_refetched(tmp_path, settings):
    out = tmp_path / "out"
    rows = _rows()
    plans = _plans(rows, 2)
    # What a run killed between os.replace and the ledger commit leaves behind.
    FakeFetch()(ClipJob(ytid("do", 0), 0.0, 2.0, out / "Dog" / f"{ytid('do', 0)}_0.wav"), settings)
    broken = out / "Dog" / f"{ytid('do', 1)}_1000.wav"
    broken.write_bytes(b"RIFF not really")
    partial = out / "Cat" / ".leftover.fake.tmp"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x")
    fetch = FakeFetch()
    summary = _run(plans, settings, out, fetch)
    assert summary.adopted == 1
    assert ytid("do", 0) not in fetch.calls and fetch.calls[ytid("do", 1)] == 1
    assert not partial.exists()
    assert_manifests_equal_disk(out)


def test_unrecorded_file_one_sample_short_is_not_adopted(tmp_path, settings):
    # A file left by a run of an older version (a few samples short) is fetched again, exact.
    out = tmp_path / "out"
    plans = _plans(_rows(), 2)
    target = out / "Dog" / f"{ytid('do', 0)}_0.wav"
    FakeFetch()(ClipJob(ytid("do", 0), 0.0, 2.0, target), settings)
    samples, rate = soundfile.read(target, dtype="int16")
    soundfile.write(target, samples[:-1], rate, subtype="PCM_16")
    fetch = FakeFetch()
    summary = _run(plans, settings, out, fetch)
    assert summary.adopted == 0 and fetch.calls[ytid("do", 0)] == 1
    assert soundfile.info(target).frames == 2 * 16000


def test_partial_files_written_after_the_start_sweep_are_gone_at_the_end(tmp_path, settings):
    out = tmp_path / "out"
    fake = FakeFetch({ytid("ca", 0): "unavailable"})
    orphans = []

    def fetch_beside_an_orphan(job, s):
        # An ffmpeg orphaned by a kill -9 of the previous run, still writing once this run has started.
        if not orphans:
            job.target.parent.mkdir(parents=True, exist_ok=True)
            orphans.append(partial_path(job.target))
            orphans[0].write_bytes(b"half a clip")
        return fake(job, s)

    summary = _run(_plans(_rows(), 2), settings, out, fetch_beside_an_orphan)
    assert summary.exit_code == 0 and is_partial_file(orphans[0])
    assert not orphans[0].exists()
    assert len(assert_manifests_equal_disk(out)) == 6


def test_rate_limits_pause_then_resume_the_same_clip(tmp_path, settings):
    fetch = FakeFetch({ytid("do", 0): ["rate_limited", "rate_limited", "ok"]})
    summary = _run(_plans(_rows(), 1)[:1], settings, tmp_path / "out", fetch)
    assert summary.exit_code == 0 and fetch.calls[ytid("do", 0)] == 3
    assert summary.outcomes["rate_limited"] == 2
    manifest = assert_manifests_equal_disk(tmp_path / "out")
    assert list(manifest["ytid"]) == [ytid("do", 0)]


def test_persistent_throttling_stops_cleanly_and_resumes(tmp_path, settings):
    out = tmp_path / "out"
    rows = _rows()
    good_first = {ytid("do", 0): "ok"}
    throttled = {y: "rate_limited" for segs in rows.values() for y, _, _ in segs} | good_first
    summary = _run(_plans(rows, 2), settings, out, FakeFetch(throttled), workers=2)
    assert summary.stopped_by_throttling and summary.exit_code == EXIT_THROTTLED
    assert "STOPPED" in summary.format() and "cookies" in summary.format()
    assert summary.outcomes["rate_limited"] >= 3
    manifest = assert_manifests_equal_disk(out)
    assert list(manifest["ytid"]) == [ytid("do", 0)]
    resumed = _run(_plans(rows, 2), settings, out, FakeFetch())
    assert resumed.exit_code == 0
    assert len(assert_manifests_equal_disk(out)) == 6


def test_a_second_run_in_the_same_folder_is_refused(tmp_path, settings):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another .* is running in"):
            _run(_plans(_rows(), 1), settings, out, FakeFetch())


def test_each_worker_gets_its_own_proxy_and_private_cookie_copy(tmp_path, settings):
    from audioset_tools.sources.base import Slot
    from audioset_tools.sources.youtube.source import YoutubeSource, redact_proxy

    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tTRUE\t0\tSID\tvalue\n")
    source = YoutubeSource(settings, cookies_file=cookies, proxies=("http://a:1", "http://b:2"))
    with source.prepare([Slot(0), Slot(1), Slot(2)]) as per_worker:
        assert [s.proxy for s in per_worker] == ["http://a:1", "http://b:2", "http://a:1"]
        copies = [s.cookies_file for s in per_worker]
        assert len(set(copies)) == 3 and cookies not in copies
        for copy in copies:
            assert copy.read_bytes() == cookies.read_bytes()
            assert copy.stat().st_mode & 0o777 == 0o600
    assert not any(copy.exists() for copy in copies)
    assert redact_proxy("http://user:pw@host:8080") == "http://***@host:8080"
    assert redact_proxy("http://host:8080") == "http://host:8080"


def test_classes_sharing_a_folder_are_refused(tmp_path, settings):
    from audioset_tools.download.plan import ClassPlan

    twins = [ClassPlan(i, f"/m/{i}", "Dog", "train", "Dog", 1, ()) for i in range(2)]
    with pytest.raises(UserError, match="share the folder"):
        _run(twins, settings, tmp_path / "out", FakeFetch())
    assert not (tmp_path / "out").exists()
