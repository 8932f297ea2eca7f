"""The record of a batching sweep (every policy at every arrival rate) and the parsing of
its rates; no PyTorch needed, so a stored sweep loads back (reports) without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from wattwise._errors import ConfigError
from wattwise._records.base import Record
from wattwise._records.charts import BarData, ChartData
from wattwise.infer._records import BatchingResult

__all__ = ["BatchingSweep", "parse_rates"]


def parse_rates(spec: str) -> list[float]:
    """Arrival rates from a comma list such as ``2,8,32,128``, in requests/s.

    Raises:
        ConfigError: an item that is not a positive number, or no rate at all.
    """
    rates: list[float] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            value = float(item)
        except ValueError:
            value = float("nan")
        if not (value > 0 and value < float("inf")):
            raise ConfigError(
                f"bad rate {item!r}: give positive requests/s, comma-separated, e.g. 2,8,32"
            )
        rates.append(value)
    if not rates:
        raise ConfigError("no arrival rates given (e.g. --rates 2,8,32)")
    return sorted(set(rates))


@dataclass(frozen=True)
class BatchingSweep(Record):
    """Every policy under every arrival rate, and the tuner's pick at each.

    Attributes:
        model: the model spec.
        clock: ``real`` or ``virtual``.
        slo_s: the p95 latency SLO the tuner used, in s, or None.
        results: one batching result per rate, lowest rate first.
        run_id: the tracker run holding every rate's windows.
        plots: files written.
    """

    model: str
    clock: str
    slo_s: float | None
    results: tuple[BatchingResult, ...]
    run_id: str
    plots: tuple[str, ...] = ()

    kind: ClassVar[str] = "batching-sweep"
    derived: ClassVar[tuple[str, ...]] = ("rows",)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Per rate: load, the pick, and its J/request (net of idle where measured)
        against ``batch=1``'s."""
        out = []
        for r in self.results:
            one = next((p for p in r.policies if p.policy == "batch=1"), None)
            best = r.best_policy
            out.append(
                {
                    "rate_rps": r.rate_rps,
                    "batch1_busy_share": r.batch1_busy_share,
                    "best": r.best,
                    "best_mean_batch_size": None if best is None else best.mean_batch_size,
                    "best_p95_ms": None if best is None else best.p95_ms,
                    "batch1_p95_ms": None if one is None else one.p95_ms,
                    "batch1_net_energy_per_item_j": None
                    if one is None
                    else one.net_energy_per_item_j,
                    "best_net_energy_per_item_j": None
                    if best is None
                    else best.net_energy_per_item_j,
                    "net_ratio_to_batch1": r.net_ratio_to_batch1,
                    "ratio_to_batch1": r.ratio_to_batch1,
                    "tuned_for": r.tuned_for["text"],
                }
            )
        return out

    def charts(self) -> tuple[ChartData, ...]:
        """The pick's J/request over ``batch=1``'s at each rate (net of idle if measured)."""
        labels, values = [], []
        for r in self.results:
            ratio = r.net_ratio_to_batch1 if r.measured_idle is not None else r.ratio_to_batch1
            if ratio is not None:
                labels.append(f"{r.rate_rps:g} req/s")
                values.append(ratio)
        if not values:
            return ()
        return (
            BarData(
                tuple(labels),
                tuple(values),
                "tuned / batch=1 energy per request",
                "Energy per request of the tuned policy over batch=1's, at each arrival rate.",
            ),
        )
