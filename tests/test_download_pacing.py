import random
import threading

from audioset_tools.download.pacing import Pacer, PacingSettings


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _pacer(**kw):
    clock = FakeClock()
    return Pacer(PacingSettings(**kw), clock=clock, rng=random.Random(0)), clock


def test_slots_are_spaced_with_jitter():
    pacer, clock = _pacer(sleep_between_requests=2.0, sleep_jitter=1.0)
    assert pacer.try_acquire() == 0.0
    wait = pacer.try_acquire()
    assert 2.0 <= wait <= 3.0
    clock.now += wait
    assert pacer.try_acquire() == 0.0


def test_hourly_cap_spreads_requests():
    pacer, clock = _pacer(sleep_between_requests=0.0, sleep_jitter=0.0, max_requests_per_hour=360)
    assert pacer.try_acquire() == 0.0
    assert pacer.try_acquire() == 10.0
    clock.now += 10.0
    assert pacer.try_acquire() == 0.0


def test_backoff_doubles_is_capped_and_honours_retry_after():
    pacer, clock = _pacer(sleep_between_requests=0.0, sleep_jitter=0.0, backoff_base_seconds=1.0,
                          backoff_max_seconds=3.0, max_consecutive_rate_limits=10)
    assert pacer.throttled(None) == 1.0
    assert pacer.try_acquire() == 1.0
    assert pacer.throttled(None) == 2.0
    assert pacer.throttled(None) == 3.0
    assert pacer.throttled(7.0) == 7.0
    assert pacer.consecutive_throttles == 4
    pacer.succeeded()
    assert pacer.consecutive_throttles == 0
    assert pacer.throttled(None) == 1.0


def test_stops_after_max_consecutive_and_on_cancel():
    pacer, clock = _pacer(sleep_between_requests=0.0, sleep_jitter=0.0, backoff_base_seconds=0.01,
                          max_consecutive_rate_limits=2)
    pacer.throttled(None)
    assert not pacer.exhausted
    pacer.throttled(None)
    assert pacer.exhausted
    assert pacer.try_acquire() is None
    other, _ = _pacer(sleep_between_requests=1000.0, sleep_jitter=0.0)
    assert other.acquire()
    results = []
    waiter = threading.Thread(target=lambda: results.append(other.acquire()))
    waiter.start()
    other.cancel()
    waiter.join(timeout=30)
    assert results == [False]
