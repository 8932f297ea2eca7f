"""The request queue: arrivals, policies and the serving loop, in virtual and real time.

Virtual-time tests use a service-time function, so every latency is exact arithmetic.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from wattwise._errors import ConfigError
from wattwise.infer import (
    BatchPolicy,
    RealClock,
    VirtualClock,
    make_arrivals,
    parse_policies,
    serve_queue,
)


def _service(n: int) -> float:
    return 0.010 + 0.001 * n  # 10 ms fixed cost + 1 ms per request


def _noop(n: int) -> None:
    pass


def test_jittered_arrivals_keep_every_gap_within_the_jitter() -> None:
    arr = make_arrivals(16.0, 500, jitter=0.2, seed=3)
    gaps = np.diff((0.0, *arr))
    assert len(arr) == 500
    assert gaps.min() >= 0.8 / 16 and gaps.max() <= 1.2 / 16
    assert gaps.mean() == pytest.approx(1 / 16, rel=0.02)
    assert make_arrivals(16.0, 500, jitter=0.2, seed=3) == arr
    assert make_arrivals(16.0, 500, jitter=0.2, seed=4) != arr


def test_poisson_arrivals_have_the_rate_on_average() -> None:
    arr = make_arrivals(50.0, 4000, process="poisson", seed=1)
    gaps = np.diff((0.0, *arr))
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.05)
    assert gaps.std() == pytest.approx(1 / 50, rel=0.1)  # exponential: sd = mean


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate_rps": 0.0, "n": 5}, "rate"),
        ({"rate_rps": 1.0, "n": 0}, "number of requests"),
        ({"rate_rps": 1.0, "n": 5, "jitter": 1.0}, "jitter"),
        ({"rate_rps": 1.0, "n": 5, "process": "bursty"}, "unknown arrival"),
    ],
)
def test_bad_arrival_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_arrivals(**kwargs)  # type: ignore[arg-type]


def test_policies_from_a_list_combine_sizes_and_waits() -> None:
    got = parse_policies("1, 4,greedy,4", max_wait_s=(0.01, None), greedy_max=32)
    assert [p.label for p in got] == [
        "batch=1",
        "batch=4 wait=10ms",
        "batch=4",
        "greedy<=32",
    ]
    with pytest.raises(ConfigError, match="bad batch size 'x'"):
        parse_policies("1,x")
    with pytest.raises(ConfigError, match=">= 1"):
        parse_policies("0")
    with pytest.raises(ConfigError, match="no batch sizes"):
        parse_policies(" , ")


def test_batch_of_one_serves_each_request_on_arrival() -> None:
    arrivals = (0.1, 0.2, 0.3)
    trace = serve_queue(arrivals, BatchPolicy(1), VirtualClock(_service), _noop)
    assert [b.size for b in trace.batches] == [1, 1, 1]
    assert trace.latencies_s.tolist() == pytest.approx([0.011] * 3)
    assert trace.busy_s == pytest.approx(0.033)
    assert trace.end_s == pytest.approx(0.311)
    assert trace.idle_s == pytest.approx(0.311 - 0.033)


def test_a_fixed_batch_waits_to_fill_and_the_last_one_is_flushed() -> None:
    arrivals = (0.1, 0.2, 0.3, 0.4, 0.5)
    trace = serve_queue(arrivals, BatchPolicy(4), VirtualClock(_service), _noop)
    assert [b.size for b in trace.batches] == [4, 1]
    end1 = 0.4 + _service(4)
    assert trace.completions_s[:4] == pytest.approx((end1,) * 4)
    assert trace.latencies_s[0] == pytest.approx(end1 - 0.1)
    assert trace.completions_s[4] == pytest.approx(0.5 + _service(1))


def test_max_wait_releases_a_batch_before_it_is_full() -> None:
    arrivals = (0.0, 0.1, 0.2)
    policy = BatchPolicy(4, max_wait_s=0.05)
    trace = serve_queue(arrivals, policy, VirtualClock(_service), _noop)
    assert [b.size for b in trace.batches] == [1, 1, 1]
    assert trace.latencies_s.tolist() == pytest.approx([0.05 + _service(1)] * 2 + [_service(1)])
    # the last request: no more arrivals, so it is served at once


def test_greedy_takes_what_waits_up_to_its_cap() -> None:
    arrivals = (0.0, 0.0, 0.0, 0.0, 0.0)
    trace = serve_queue(arrivals, BatchPolicy(3, greedy=True), VirtualClock(_service), _noop)
    assert [b.size for b in trace.batches] == [3, 2]
    assert trace.batches[1].start_s == pytest.approx(_service(3))


def test_an_overloaded_server_builds_a_backlog() -> None:
    arrivals = tuple(0.005 * i for i in range(1, 21))  # 200 req/s, service 11 ms each
    trace = serve_queue(arrivals, BatchPolicy(1), VirtualClock(_service), _noop)
    lat = trace.latencies_s
    assert lat[-1] > lat[0] + 0.1  # each request waits longer than the one before
    assert trace.idle_s == pytest.approx(0.005)  # only before the first arrival
    greedy = serve_queue(arrivals, BatchPolicy(64, greedy=True), VirtualClock(_service), _noop)
    assert greedy.percentile_s(95) < trace.percentile_s(95)


def test_the_loop_calls_the_server_with_each_batch_size() -> None:
    sizes: list[int] = []
    arrivals = (0.0, 0.0, 0.0, 0.3)
    serve_queue(arrivals, BatchPolicy(2), VirtualClock(_service), sizes.append)
    assert sizes == [2, 2]  # the third request waits (no max wait) for the fourth
    sizes.clear()
    serve_queue(arrivals, BatchPolicy(2, max_wait_s=0.1), VirtualClock(_service), sizes.append)
    assert sizes == [2, 1, 1]


def test_the_virtual_clock_measures_service_time_when_none_is_given() -> None:
    trace = serve_queue((0.5,), BatchPolicy(1), VirtualClock(), lambda n: time.sleep(0.02))
    assert 0.02 <= trace.batches[0].service_s < 0.2
    assert trace.batches[0].start_s == pytest.approx(0.5)


def test_the_real_clock_sleeps_until_arrivals() -> None:
    arrivals = (0.02, 0.04, 0.06)
    t = time.perf_counter()
    trace = serve_queue(arrivals, BatchPolicy(1), RealClock(), lambda n: time.sleep(0.001))
    wall = time.perf_counter() - t
    assert wall >= 0.06
    assert trace.end_s >= 0.061
    assert all(b.start_s >= a - 1e-9 for b, a in zip(trace.batches, arrivals, strict=True))
    assert trace.latencies_s.min() >= 0.001


def test_unsorted_or_missing_arrivals_are_refused() -> None:
    with pytest.raises(ConfigError, match="sorted"):
        serve_queue((0.2, 0.1), BatchPolicy(1), VirtualClock(_service), _noop)
    with pytest.raises(ConfigError, match="no requests"):
        serve_queue((), BatchPolicy(1), VirtualClock(_service), _noop)
    with pytest.raises(ConfigError, match="max wait"):
        BatchPolicy(2, max_wait_s=-1.0)


def test_a_deadline_reached_exactly_in_virtual_time_releases_the_batch() -> None:
    a = 0.40309273233720366
    assert (a + 0.05) - a < 0.05  # one rounding error short: the loop must not spin on it
    trace = serve_queue((a, 0.9), BatchPolicy(4, max_wait_s=0.05), VirtualClock(_service), _noop)
    assert trace.batches[0].start_s == pytest.approx(a + 0.05)
    assert [b.size for b in trace.batches] == [1, 1]
