"""The request queue: arrival processes, batching policies, clocks and the serving loop.

Nothing here needs PyTorch: the loop is handed a ``run_batch(n)`` callable that does the
real work. A :class:`RealClock` runs the loop in wall-clock time (the server sleeps between
arrivals, as a real server idles); a :class:`VirtualClock` runs it in simulated time, where
waiting costs nothing and each batch advances the clock by its *measured* service time (or
by a given service-time function, for tests).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from wattwise._errors import ConfigError

__all__ = [
    "ARRIVAL_PROCESSES",
    "BatchPolicy",
    "Clock",
    "QueueTrace",
    "RealClock",
    "RequestStream",
    "ServedBatch",
    "VirtualClock",
    "make_arrivals",
    "parse_policies",
    "serve_queue",
]

_EPS_S = 1e-9

#: Arrival processes :func:`make_arrivals` knows.
ARRIVAL_PROCESSES = ("jitter", "poisson")


@dataclass(frozen=True)
class BatchPolicy:
    """How the server forms batches from the queue.

    * fixed size ``b`` (``greedy=False``): serve when ``b`` requests wait, or when the oldest
      has waited ``max_wait_s``, or when no more requests will come; at most ``b`` per batch.
    * greedy: serve whatever waits (up to ``max_batch_size``) as soon as the server is free.

    Attributes:
        max_batch_size: the largest batch served (>= 1).
        max_wait_s: longest a request waits for its batch to fill, in s; None: no limit
            (a fixed-size batch waits until it is full). Ignored by greedy policies.
        greedy: serve whatever is queued without waiting.
    """

    max_batch_size: int
    max_wait_s: float | None = None
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"a batch size must be >= 1, got {self.max_batch_size}")
        if self.max_wait_s is not None and not self.max_wait_s >= 0:
            raise ConfigError(f"max wait must be >= 0 s, got {self.max_wait_s}")

    @property
    def label(self) -> str:
        """Short name: ``batch=1``, ``batch=16 wait=50ms``, ``greedy<=64``."""
        if self.greedy:
            return f"greedy<={self.max_batch_size}"
        if self.max_batch_size == 1 or self.max_wait_s is None:
            return f"batch={self.max_batch_size}"
        return f"batch={self.max_batch_size} wait={self.max_wait_s * 1e3:g}ms"

    @property
    def waits(self) -> bool:
        """Whether the policy may hold queued requests back to fill a batch."""
        return not self.greedy and self.max_batch_size > 1

    def ready(self, queued: int, oldest_wait_s: float, arrivals_done: bool) -> bool:
        """Whether to serve a batch now.

        Args:
            queued: requests waiting.
            oldest_wait_s: how long the oldest has waited, in s.
            arrivals_done: no more requests will arrive.
        """
        if queued == 0:
            return False
        if not self.waits or queued >= self.max_batch_size or arrivals_done:
            return True
        # The tolerance keeps a virtual clock that sleeps exactly to the deadline from
        # seeing (arrival + wait) - arrival fall one rounding error short of the wait.
        return self.max_wait_s is not None and oldest_wait_s >= self.max_wait_s - _EPS_S


def parse_policies(
    spec: str, *, max_wait_s: Sequence[float | None] = (None,), greedy_max: int = 64
) -> list[BatchPolicy]:
    """Policies from a comma list such as ``1,4,16,64,greedy``.

    Every fixed size above 1 is combined with every max wait; ``greedy`` serves up to
    ``greedy_max`` at once.

    Raises:
        ConfigError: an item that is neither a positive integer nor ``greedy``.
    """
    policies: list[BatchPolicy] = []
    for raw in spec.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        if item == "greedy":
            policies.append(BatchPolicy(greedy_max, None, greedy=True))
            continue
        try:
            size = int(item)
        except ValueError:
            raise ConfigError(
                f"bad batch size {raw.strip()!r}: give positive integers or 'greedy', "
                "e.g. 1,4,16,64,greedy"
            ) from None
        if size == 1:
            policies.append(BatchPolicy(1))
        else:
            policies.extend(BatchPolicy(size, w) for w in max_wait_s)
    if not policies:
        raise ConfigError("no batch sizes given")
    return list(dict.fromkeys(policies))  # drop repeats, keep the order


def make_arrivals(
    rate_rps: float,
    n: int,
    *,
    process: str = "jitter",
    jitter: float = 0.2,
    seed: int = 0,
) -> tuple[float, ...]:
    """Arrival times of ``n`` requests, in s from the start (the first arrives at its gap).

    ``jitter``: gaps are ``(1 / rate) * U(1 - jitter, 1 + jitter)`` (Yarally's 16 req/s
    +-20 % is ``rate_rps=16, jitter=0.2``). ``poisson``: exponential gaps of mean ``1 / rate``.

    Raises:
        ConfigError: a non-positive rate or count, a jitter outside [0, 1), an unknown
            process.
    """
    if not (math.isfinite(rate_rps) and rate_rps > 0):
        raise ConfigError(f"the arrival rate must be > 0 requests/s, got {rate_rps}")
    if n < 1:
        raise ConfigError(f"the number of requests must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    mean = 1.0 / rate_rps
    if process == "jitter":
        if not 0.0 <= jitter < 1.0:
            raise ConfigError(f"jitter must be in [0, 1), got {jitter}")
        gaps = mean * rng.uniform(1.0 - jitter, 1.0 + jitter, size=n)
    elif process == "poisson":
        gaps = rng.exponential(mean, size=n)
    else:
        raise ConfigError(
            f"unknown arrival process {process!r} (known: {', '.join(ARRIVAL_PROCESSES)})"
        )
    return tuple(float(t) for t in np.cumsum(gaps))


@dataclass(frozen=True)
class RequestStream:
    """The simulated requests every batching policy serves: how many, how fast, how
    irregular (drawn once, the same for every policy).

    Attributes:
        rate_rps: mean arrival rate, in requests/s.
        requests: requests per policy.
        arrival: ``jitter`` or ``poisson`` (see :func:`make_arrivals`).
        jitter: relative jitter of the gaps, in [0, 1) (``jitter`` arrivals only).
        seed: seed of the arrival times (and of the random inputs served).

    Raises:
        ConfigError: a non-positive rate or count, a jitter outside [0, 1), an unknown
            process.
    """

    rate_rps: float
    requests: int
    arrival: str = "jitter"
    jitter: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        self.arrivals_s()  # refuses bad settings when the stream is made

    def arrivals_s(self) -> tuple[float, ...]:
        """The arrival times, in s from the start (see :func:`make_arrivals`)."""
        return make_arrivals(
            self.rate_rps, self.requests, process=self.arrival, jitter=self.jitter, seed=self.seed
        )


class Clock(Protocol):
    """Time as the serving loop sees it. Units: s from the loop's start."""

    def start(self) -> None:
        """Set time zero."""

    def now(self) -> float:
        """Current time, in s."""

    def sleep_until(self, t: float) -> None:
        """Let time pass until ``t`` (no-op when ``t`` is past)."""

    def serve(self, run: Callable[[], None], size: int) -> None:
        """Run one batch of ``size`` requests; time advances by its service time."""


class RealClock:
    """Wall-clock time: the loop really sleeps between events and really serves."""

    def __init__(self) -> None:
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            time.sleep(delay)

    def serve(self, run: Callable[[], None], size: int) -> None:
        run()


class VirtualClock:
    """Simulated time: waiting is free and instant; serving advances time by the batch's
    measured wall time, or by ``service_s(size)`` when given (then ``run`` is still called).

    Args:
        service_s: service time of a batch of ``size`` requests, in s; default: measured.
    """

    def __init__(self, service_s: Callable[[int], float] | None = None) -> None:
        self.service_s = service_s
        self._now = 0.0

    def start(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def sleep_until(self, t: float) -> None:
        self._now = max(self._now, t)

    def serve(self, run: Callable[[], None], size: int) -> None:
        t = time.perf_counter()
        run()
        took = time.perf_counter() - t
        self._now += self.service_s(size) if self.service_s is not None else took


@dataclass(frozen=True)
class ServedBatch:
    """One batch the server ran.

    Attributes:
        start_s: when serving began, s from the loop's start.
        end_s: when it ended, s.
        size: requests in it.
    """

    start_s: float
    end_s: float
    size: int

    @property
    def service_s(self) -> float:
        """Service time, in s."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class QueueTrace:
    """What happened to every request.

    Attributes:
        arrivals_s: arrival time of each request, s.
        completions_s: completion time of each request (its batch's end), s.
        batches: the batches served, in order.
        end_s: when the last batch ended, s.
    """

    arrivals_s: tuple[float, ...]
    completions_s: tuple[float, ...]
    batches: tuple[ServedBatch, ...]
    end_s: float

    @property
    def latencies_s(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Per-request latency, queueing plus service, in s."""
        done = np.asarray(self.completions_s, dtype=np.float64)
        arrived = np.asarray(self.arrivals_s, dtype=np.float64)
        return done - arrived

    @property
    def busy_s(self) -> float:
        """Time spent serving, in s."""
        return sum(b.service_s for b in self.batches)

    @property
    def idle_s(self) -> float:
        """Time the server was not serving, from the start to the last completion, in s."""
        return max(0.0, self.end_s - self.busy_s)

    def percentile_s(self, q: float) -> float:
        """Latency percentile ``q`` (0..100), linear interpolation, in s."""
        return float(np.percentile(self.latencies_s, q))


def serve_queue(
    arrivals_s: Sequence[float],
    policy: BatchPolicy,
    clock: Clock,
    run_batch: Callable[[int], None],
) -> QueueTrace:
    """Serve every request, in arrival order, one batch at a time.

    Args:
        arrivals_s: sorted arrival times, s from the start.
        policy: how batches are formed.
        clock: real or virtual time.
        run_batch: serves one batch of the given size (real inference).

    Raises:
        ConfigError: no requests, or arrival times out of order.
    """
    n = len(arrivals_s)
    if n == 0:
        raise ConfigError("no requests to serve")
    if any(b < a for a, b in itertools.pairwise(arrivals_s)):
        raise ConfigError("arrival times must be sorted")
    completions = [0.0] * n
    batches: list[ServedBatch] = []
    queue: deque[int] = deque()
    nxt = 0
    done = 0
    clock.start()
    while done < n:
        now = clock.now()
        while nxt < n and arrivals_s[nxt] <= now:
            queue.append(nxt)
            nxt += 1
        oldest = now - arrivals_s[queue[0]] if queue else 0.0
        if policy.ready(len(queue), oldest, nxt == n):
            size = min(len(queue), policy.max_batch_size)
            taken = [queue.popleft() for _ in range(size)]
            start = clock.now()
            clock.serve(functools.partial(run_batch, size), size)
            end = clock.now()
            for i in taken:
                completions[i] = end
            batches.append(ServedBatch(start, end, size))
            done += size
            continue
        wake = arrivals_s[nxt] if nxt < n else math.inf
        if queue and policy.max_wait_s is not None:
            wake = min(wake, arrivals_s[queue[0]] + policy.max_wait_s)
        clock.sleep_until(wake)
    return QueueTrace(tuple(arrivals_s), tuple(completions), tuple(batches), clock.now())
