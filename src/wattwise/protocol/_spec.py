"""The measurement protocol: how many repeats, what warms up, how long a window lasts, in
which order subjects are measured, and how long to cool down between them.

One spec serves every repeated measurement in wattwise (studies, search comparisons,
inference, the benchmarks), so the same words mean the same thing everywhere:

1. **warm-up**: before a subject's first measured repeat, ``warmup`` untracked calls
   (first-call allocation, kernel selection, caches), so repeat 1 is not penalised;
2. **windows**: a measured repeat makes calls until both ``min_calls`` were made and
   ``min_time_s`` has passed (or ``max_calls`` is reached): energy sensors and CPU-time
   counters resolve milliseconds, so a window much shorter than a second is mostly rounding;
3. **order**: ``round-robin`` (A1 B1 C1 A2 B2 C2 ...) spreads drift over the session
   (temperature, other processes' load) over every subject instead of biasing the ones
   measured last; ``blocked`` (A1 A2 B1 B2) is there for subjects that cannot interleave;
4. **cool-down**: ``cooldown_s`` seconds of sleep between consecutive measured repeats.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from wattwise._errors import ConfigError

__all__ = ["ORDERS", "Protocol", "schedule"]

#: The orders a protocol can measure its subjects in.
ORDERS = ("round-robin", "blocked")


@dataclass(frozen=True)
class Protocol:
    """How a set of subjects is measured (see the module's text for each step).

    Args:
        repeats: measured repeats per subject (>= 1).
        warmup: untracked calls (or training steps) before a subject's first repeat.
        min_time_s: shortest measured window, in s.
        min_calls: fewest calls in a measured window.
        max_calls: most calls in a measured window, or None.
        cooldown_s: sleep between consecutive measured repeats, in s.
        order: ``round-robin`` or ``blocked``.
        seed: seed of repeat 1; repeat ``r`` uses ``seed + r - 1``.
    """

    repeats: int = 5
    warmup: int = 2
    min_time_s: float = 1.0
    min_calls: int = 3
    max_calls: int | None = None
    cooldown_s: float = 0.0
    order: str = "round-robin"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError(f"repeats must be >= 1, got {self.repeats}")
        if self.warmup < 0:
            raise ConfigError(f"warm-up must be >= 0 calls, got {self.warmup}")
        if self.min_calls < 1 or (self.max_calls is not None and self.max_calls < self.min_calls):
            raise ConfigError("call counts must be >= 1, and the most >= the fewest")
        if not 0 <= self.min_time_s <= 3600:  # NaN or inf would never end the window
            raise ConfigError(
                f"the shortest window must be between 0 and 3600 s, got {self.min_time_s}"
            )
        if not 0 <= self.cooldown_s <= 3600:  # also refuses NaN (time.sleep(inf) overflows)
            raise ConfigError(f"cool-down must be between 0 and 3600 s, got {self.cooldown_s}")
        if self.order not in ORDERS:
            raise ConfigError(f"unknown order {self.order!r} (use {' or '.join(ORDERS)})")

    def seed_of(self, repeat: int) -> int:
        """The seed of 1-based ``repeat``."""
        return self.seed + repeat - 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def schedule(
    labels: Sequence[str],
    protocol: Protocol,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[tuple[int, str]]:
    """The measured repeats of ``labels`` in the protocol's order, as ``(repeat, label)``
    with 1-based repeats, sleeping ``cooldown_s`` between consecutive ones.

    Raises:
        ConfigError: two subjects with the same label.
    """
    if len(set(labels)) != len(labels):
        raise ConfigError("two subjects of one measurement have the same label")
    repeats = range(1, protocol.repeats + 1)
    if protocol.order == "round-robin":
        order = [(r, label) for r in repeats for label in labels]
    else:
        order = [(r, label) for label in labels for r in repeats]
    for i, item in enumerate(order):
        if i > 0 and protocol.cooldown_s > 0:
            sleep(protocol.cooldown_s)
        yield item
