"""The pacer of one identity, in virtual time: budgets, learned limits, Retry-After, give-up.

Nothing here sleeps: the pacer's clock and its wait are injected, so a simulated hour
takes milliseconds and every assertion holds however loaded the machine is.
"""

import heapq
import math
import random
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError
from rate_limit_server import SlidingWindowLimit

from audioset_tools.config import DownloadConfig
from audioset_tools.sources.pacing import Pacer, PacingSettings

UNPACED = {"sleep_between_requests": 0.0, "sleep_jitter": 0.0}


class VirtualClock:
    """A clock that only moves when someone waits on it (monotone, like time.monotonic)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def wait(self, condition, timeout):
        # Called with the pacer's lock held: move time on, then let other threads in.
        self.now += timeout
        condition.wait(timeout=0)


def _pacer(**kw):
    clock = VirtualClock()
    return Pacer(PacingSettings(**kw), clock=clock, rng=random.Random(0), wait=clock.wait), clock


def _take(pacer, clock):
    """Wait (in virtual time) for a slot and take it."""
    wait = pacer.try_acquire()
    if wait:
        clock.now += wait
        assert pacer.try_acquire() == 0.0


def _max_in_window(times, window):
    """Most requests in any half-open window [t, t + window) (also any (t - window, t])."""
    times = sorted(times)
    best, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        best = max(best, last - first + 1)
    return best


# -- spacing and budget ------------------------------------------------------------------


def test_slots_are_spaced_with_jitter():
    pacer, clock = _pacer(sleep_between_requests=2.0, sleep_jitter=1.0)
    assert pacer.try_acquire() == 0.0
    wait = pacer.try_acquire()
    assert 2.0 <= wait <= 3.0
    clock.now += wait
    assert pacer.try_acquire() == 0.0


def test_hourly_budget_spreads_requests_with_a_safety_margin():
    pacer, clock = _pacer(max_requests_per_hour=360, rate_safety_margin=0.05, **UNPACED)
    assert pacer.try_acquire() == 0.0
    assert pacer.try_acquire() == pytest.approx(3600 / (360 * 0.95))
    clock.now += 3600 / (360 * 0.95)
    assert pacer.try_acquire() == 0.0


@pytest.mark.parametrize("jitter", [0.0, 300.0])
def test_budget_holds_in_every_sliding_window_under_four_threads_even_after_idle(jitter):
    budget = 20
    pacer, clock = _pacer(max_requests_per_hour=budget, sleep_between_requests=0.0, sleep_jitter=jitter)
    barrier = threading.Barrier(4)

    def worker(rounds):
        barrier.wait()
        for _ in range(rounds):
            assert pacer.acquire()

    def burst(rounds):
        threads = [threading.Thread(target=worker, args=(rounds,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)

    burst(15)
    clock.now += 10 * 3600  # a long idle time must not let a burst through afterwards
    burst(15)
    grants = pacer.recent_requests()
    assert len(grants) == 120
    assert _max_in_window(grants, 3600.0) <= budget
    # Evenly spread, so no shorter window of the server's can be overrun either.
    interval = 3600 / (budget * (1 - PacingSettings().rate_safety_margin))
    gaps = [b - a for a, b in zip(grants, grants[1:])]
    assert min(gaps) >= interval - 1e-9
    # A server enforcing the budget itself would never have refused one of them.
    server = SlidingWindowLimit(budget, 3600.0)
    assert all(server.check(t) is None for t in grants)


# -- learning the limit from throttled answers -----------------------------------------


def simulate(pacer, clock, server, *, clips, workers=4, send=0.05, answer=0.05, clip_seconds=0.6,
             retry_after_decimals=0, send_retry_after=True):
    """Run ``workers`` simulated download workers against ``server`` in virtual time.

    A worker takes a slot, its extraction request reaches the server ``send`` s later, the
    answer comes back ``answer`` s after that; a throttle is reported at once (as the runner
    does), a success after ``clip_seconds`` more (the clip's ffmpeg read). Returns the times
    the server accepted a request and the number of throttled answers.
    """
    events = [(clock.now, n, "free", None) for n in range(workers)]
    heapq.heapify(events)
    order = workers
    accepted, throttled, done = [], 0, 0
    while events and done < clips:
        at, _, kind, payload = heapq.heappop(events)
        clock.now = max(clock.now, at)
        if kind == "free":
            wait = pacer.try_acquire()
            if wait is None:
                break
            follow = (clock.now + wait, "free", None) if wait > 0 else (clock.now + send, "arrive", None)
        elif kind == "arrive":
            refused = server.check(clock.now)
            if refused is None:
                accepted.append(clock.now)
                follow = (clock.now + answer + clip_seconds, "done", None)
            else:
                scale = 10 ** retry_after_decimals
                retry_after = math.ceil(refused * scale) / scale if send_retry_after else None
                follow = (clock.now + answer, "throttled", retry_after)
        elif kind == "throttled":
            throttled += 1
            pacer.throttled(payload)
            follow = (clock.now, "free", None)
        else:
            done += 1
            pacer.succeeded()
            follow = (clock.now, "free", None)
        order += 1
        heapq.heappush(events, (follow[0], order, follow[1], follow[2]))
    return accepted, throttled


@pytest.mark.parametrize(
    ("limit", "window", "decimals", "clips"),
    [(10, 5.0, 0, 300), (10, 5.0, 2, 300), (300, 3600.0, 0, 900), (3, 1.0, 1, 200)],
)
def test_learned_rate_converges_just_under_a_sliding_window_limit(limit, window, decimals, clips):
    pacer, clock = _pacer(**UNPACED)
    start = clock.now
    accepted, throttled = simulate(pacer, clock, SlidingWindowLimit(limit, window), clips=clips,
                                   retry_after_decimals=decimals)
    allowed = limit / window
    assert len(accepted) >= clips
    learned = pacer.learned_rate_per_hour / 3600
    # Never above the real limit (it settles under it), and not far below.
    assert 0.75 * allowed <= learned <= allowed
    assert throttled <= 5
    # Over the whole run, throttles and the learning included.
    assert len(accepted) / (clock.now - start) >= 0.7 * allowed
    # Once learned, it stays learned: the second half of the run has no throttle at all.
    half = accepted[len(accepted) // 2]
    again, more = simulate(pacer, clock, SlidingWindowLimit(limit, window), clips=20,
                           retry_after_decimals=decimals)
    assert more == 0 and half < again[0]


def test_without_retry_after_the_rate_still_settles_under_the_limit():
    pacer, clock = _pacer(backoff_base_seconds=5.0, max_consecutive_rate_limits=20, **UNPACED)
    accepted, throttled = simulate(pacer, clock, SlidingWindowLimit(10, 5.0), clips=400, send_retry_after=False)
    learned = pacer.learned_rate_per_hour / 3600
    assert learned <= 2.0
    assert throttled <= 10
    tail = accepted[-100:]
    assert _max_in_window(tail, 5.0) <= 10 and len(tail) / (tail[-1] - tail[0]) >= 0.4 * 2.0


def test_a_budget_above_the_real_limit_is_corrected_and_never_exceeded():
    pacer, clock = _pacer(max_requests_per_hour=7200, **UNPACED)  # the server allows 3600/hour
    accepted, throttled = simulate(pacer, clock, SlidingWindowLimit(5, 5.0), clips=300)
    assert throttled <= 5
    assert pacer.learned_rate_per_hour <= 3600
    assert pacer.paced_interval() >= 3600 / 7200
    tail = accepted[-100:]
    assert len(tail) / (tail[-1] - tail[0]) >= 0.7 * 1.0


@pytest.mark.parametrize(("margin", "step"), [(0.05, 0.05), (0.0, 0.02)])
def test_a_throttle_just_over_the_pace_costs_one_more_safety_margin_not_a_new_estimate(margin, step):
    pacer, clock = _pacer(max_requests_per_hour=7200, rate_safety_margin=margin, **UNPACED)
    interval = pacer.paced_interval()
    assert interval == pytest.approx(0.5 / (1 - margin))
    for _ in range(12):
        _take(pacer, clock)
    # The server frees a slot within a second: a request left late, the budget is about right.
    assert pacer.throttled(1.0) == 1.0
    assert pacer.paced_interval() == pytest.approx(interval / (1 - step))
    # Far over the limit (a long wait for a free slot): a real estimate, a bigger step down.
    for _ in range(3):
        _take(pacer, clock)
    pacer.succeeded()
    pacer.throttled(30.0)
    assert pacer.paced_interval() > 2 * interval


# -- pauses, Retry-After and giving up ---------------------------------------------------


def test_retry_after_is_honoured_exactly_instead_of_the_backoff():
    pacer, clock = _pacer(backoff_base_seconds=30.0, **UNPACED)
    assert pacer.try_acquire() == 0.0
    assert pacer.throttled(2.0) == 2.0
    assert pacer.paused_for() == 2.0
    assert pacer.try_acquire() == 2.0
    clock.now += 1.0
    # An answer to a request sent before the pause: the pause follows its Retry-After, the streak stays.
    assert pacer.throttled(4.0) == 4.0
    assert pacer.consecutive_throttles == 1 and pacer.throttle_count == 2
    clock.now += 3.999
    assert pacer.try_acquire() > 0
    clock.now += 0.001
    assert pacer.try_acquire() == 0.0


def test_backoff_without_retry_after_doubles_and_is_capped():
    pacer, clock = _pacer(backoff_base_seconds=1.0, backoff_max_seconds=3.0, max_consecutive_rate_limits=10,
                          **UNPACED)
    for expected in (1.0, 2.0, 3.0, 3.0):
        assert pacer.throttled(None) == expected
        clock.now += expected
    assert pacer.consecutive_throttles == 4
    pacer.succeeded()
    assert pacer.consecutive_throttles == 0
    assert pacer.throttled(None) == 1.0


@pytest.mark.parametrize("retry_after", [None, 3.0])
def test_a_real_wall_gives_up_after_max_consecutive_rate_limits(retry_after):
    pacer, clock = _pacer(backoff_base_seconds=1.0, max_consecutive_rate_limits=3, **UNPACED)
    episodes = 0
    while True:
        wait = pacer.try_acquire()
        if wait is None:
            break
        if wait:
            clock.now += wait
            continue
        episodes += 1
        assert not pacer.exhausted
        # Four workers' requests were in flight; all come back refused.
        for _ in range(4):
            pacer.throttled(retry_after)
        clock.now += 0.01
        assert episodes <= 3
    assert episodes == 3 and pacer.exhausted and pacer.throttle_count == 12
    assert not pacer.acquire()


def test_cancel_releases_waiting_threads():
    pacer = Pacer(PacingSettings(sleep_between_requests=1000.0, sleep_jitter=0.0))
    assert pacer.acquire()
    results = []
    waiter = threading.Thread(target=lambda: results.append(pacer.acquire()))
    waiter.start()
    pacer.cancel()
    waiter.join(timeout=30)
    assert results == [False]


def test_settings_come_from_the_download_config():
    config = DownloadConfig(sleep_between_requests=0.25, max_requests_per_hour=300, rate_safety_margin=0.1,
                            learned_rate_fraction=0.8, backoff_base_seconds=7.0)
    settings = PacingSettings.from_config(config)
    assert settings == PacingSettings(sleep_between_requests=0.25, max_requests_per_hour=300, rate_safety_margin=0.1,
                                      learned_rate_fraction=0.8, backoff_base_seconds=7.0)
    assert PacingSettings() == PacingSettings.from_config(DownloadConfig())
    for bad in ({"rate_safety_margin": 0.6}, {"rate_safety_margin": -0.1}, {"learned_rate_fraction": 0.0},
                {"learned_rate_fraction": 1.5}):
        with pytest.raises(ValidationError):
            DownloadConfig(**bad)


def test_the_download_run_takes_every_pacing_key_from_the_config():
    """A key set in control.yaml reaches the pacer (a hand-written copy once dropped new keys)."""
    from audioset_tools.config import Config
    from audioset_tools.sources.configured import open_sources

    config = Config.model_validate({"download": {
        "rate_safety_margin": 0.2, "learned_rate_fraction": 0.5, "max_requests_per_hour": 300,
        "sleep_between_requests": 0.25, "backoff_base_seconds": 7.0,
    }})
    [youtube] = open_sources(config, "ffmpeg", Path("unused"))
    pacing = youtube.pacer.settings
    assert pacing == PacingSettings.from_config(config.download)
    assert (pacing.rate_safety_margin, pacing.learned_rate_fraction, pacing.max_requests_per_hour) == (0.2, 0.5, 300)
    assert (pacing.sleep_between_requests, pacing.backoff_base_seconds) == (0.25, 7.0)


def test_a_throttle_pauses_only_the_address_that_got_it():
    """One pacer per identity: a 429 on 127.0.0.2 leaves 127.0.0.3 running; the run stops only when both are walled."""
    import dataclasses

    from audioset_tools.sources.base import ClipResult, Slot
    from audioset_tools.sources.outcomes import Outcome
    from audioset_tools.sources.youtube.settings import FetchSettings
    from audioset_tools.sources.youtube.source import YoutubeSource

    settings = FetchSettings(url_template="http://h/{ytid}", ffmpeg="ffmpeg")
    pacing = PacingSettings(sleep_between_requests=0.0, sleep_jitter=0.0, backoff_base_seconds=30.0,
                            max_consecutive_rate_limits=2)
    source = YoutubeSource(settings, pacing=pacing)
    slots = [Slot(0, "127.0.0.2", bind="127.0.0.2"), Slot(1, "127.0.0.3", bind="127.0.0.3")]
    with source.prepare(slots) as per_slot:
        assert [s.source_address for s in per_slot] == ["127.0.0.2", "127.0.0.3"]
        assert sorted(source.pacers) == ["127.0.0.2", "127.0.0.3"]
        limited = ClipResult(Outcome.RATE_LIMITED, "429", 1, retry_after=30.0, identity="127.0.0.2")
        source.observe(limited)
        assert source.pacers["127.0.0.2"].paused_for() > 20
        assert source.pacers["127.0.0.3"].paused_for() == 0 and source.pacers["127.0.0.3"].try_acquire() == 0.0
        assert [p.throttle_count for p in source.pacers.values()] == [1, 0]
        # A wall on one address is not a reason to stop; on every address it is.
        source.observe(dataclasses.replace(limited, retry_after=None))
        source.pacers["127.0.0.2"]._pause_until = 0  # the pause is over; the next throttle starts a new episode
        source.observe(dataclasses.replace(limited, retry_after=None))
        assert source.pacers["127.0.0.2"].exhausted and source.stop_reason is None
        other = dataclasses.replace(limited, identity="127.0.0.3")
        source.observe(other)
        source.pacers["127.0.0.3"]._pause_until = 0
        source.observe(other)
        assert source.stop_reason is not None and "every address" in source.stop_reason
