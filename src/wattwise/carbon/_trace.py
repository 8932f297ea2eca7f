"""Time series of grid carbon intensity: loading, resampling, lookup.

Two CSV layouts are read (and the same columns from Parquet when pyarrow is importable):

* two columns ``Time``, ``Carbon Intensity`` (gCO2e/kWh), as in the "Let's Wait Awhile"
  data (Wiesner et al. 2021);
* Electricity Maps' export: ``Datetime (UTC)`` and ``Carbon Intensity gCO₂eq/kWh (LCA)``
  or ``(life cycle)`` and ``... (direct)``; ``Zone Id`` names the zone.

A trace is a step function: the value of a row holds from its timestamp to the next one;
the last row holds for the median step. A step longer than 1.5 median steps is a gap:
its row holds for one median step and the rest has no data (a NaN step), so missing
hours are never forward-filled. Naive timestamps are UTC unless a time zone is
given; then a local time that occurs twice (the autumn DST change) is read as the first
occurrence until the clock is seen to go back, and a local time that does not exist (the
spring DST gap) is an error naming the line.

Why one module of ~500 lines: loading (the two CSV layouts, Parquet, time zones, gaps) and
the trace it builds are one format; the bundled traces are two lines at the end.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from wattwise._errors import ConfigError, DataFileError
from wattwise.carbon._base import IntensityProvider

__all__ = [
    "BUNDLED_TRACES",
    "IntensityTrace",
    "TraceIntensity",
    "bundled_trace",
    "load_trace",
    "parse_timezone",
]

FloatArray = npt.NDArray[np.float64]

#: Highest grid intensity a trace may hold: coal alone is about 1,000-1,200. Units: gCO2e/kWh.
MAX_INTENSITY_G_PER_KWH = 2000.0

_TIME_COLUMNS = ("time", "datetime (utc)", "datetime")
_SIMPLE_VALUE = "carbon intensity"


@dataclass(frozen=True, eq=False)
class IntensityTrace:
    """Grid intensity of one zone over time, as a step function.

    Attributes:
        zone: zone label.
        times_s: start of each step, s since the Unix epoch (UTC), strictly increasing.
        values_g_per_kwh: intensity of each step, in gCO2e/kWh; NaN for a step without
            data (a gap).
        end_s: end of the last step, s since the epoch.
        source: where the trace came from (file and column).
    """

    zone: str
    times_s: FloatArray
    values_g_per_kwh: FloatArray
    end_s: float
    source: str
    _cumulative: FloatArray = field(init=False, repr=False)
    _missing: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=np.float64)
        values = np.asarray(self.values_g_per_kwh, dtype=np.float64)
        if times.ndim != 1 or times.shape != values.shape or times.size == 0:
            raise ConfigError("a trace needs equally long, non-empty times and values")
        edges = np.append(times, self.end_s)
        if not np.all(np.diff(edges) > 0):
            raise ConfigError("trace times must be strictly increasing and end after the last")
        if np.any(np.isinf(values)) or np.any(values < 0):
            raise ConfigError("trace values must be finite and >= 0 (NaN: no data)")
        gap = np.isnan(values)
        if gap.all():
            raise ConfigError("a trace needs at least one step with data")
        widths = np.diff(edges)
        cumulative = np.concatenate(([0.0], np.cumsum(np.where(gap, 0.0, values) * widths)))
        missing = np.concatenate(([0.0], np.cumsum(np.where(gap, widths, 0.0))))
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "values_g_per_kwh", values)
        object.__setattr__(self, "_cumulative", cumulative)
        object.__setattr__(self, "_missing", missing)

    @property
    def edges_s(self) -> FloatArray:
        """Step boundaries: the start times and the end, s since the epoch."""
        return np.append(self.times_s, self.end_s)

    @property
    def start(self) -> datetime:
        """First instant covered (UTC)."""
        return datetime.fromtimestamp(float(self.times_s[0]), UTC)

    @property
    def end(self) -> datetime:
        """End of the coverage (UTC)."""
        return datetime.fromtimestamp(self.end_s, UTC)

    @property
    def step_s(self) -> float:
        """Median step length, in s."""
        return float(np.median(np.diff(self.edges_s)))

    def integral(self, t_s: FloatArray | float) -> FloatArray:
        """∫ intensity dt from the trace start to ``t_s``, in (gCO2e/kWh)·s.

        Exact for the step function (it is piecewise linear between edges). Gaps count
        as zero: check :meth:`missing_s` before trusting an integral across one.
        """
        return np.interp(np.asarray(t_s, dtype=np.float64), self.edges_s, self._cumulative)

    def missing_s(self, start_s: FloatArray | float, end_s: FloatArray | float) -> FloatArray:
        """Seconds without data (in gaps) between ``start_s`` and ``end_s``, in s."""
        edges = self.edges_s
        end = np.interp(np.asarray(end_s, dtype=np.float64), edges, self._missing)
        return end - np.interp(np.asarray(start_s, dtype=np.float64), edges, self._missing)

    @functools.cached_property
    def gaps_s(self) -> tuple[tuple[float, float], ...]:
        """The (start, end) of every stretch without data, s since the epoch."""
        gap = np.isnan(self.values_g_per_kwh)
        padded = np.concatenate(([False], gap, [False])).astype(np.int8)
        changes = np.flatnonzero(np.diff(padded))
        edges = self.edges_s
        return tuple(
            (float(edges[a]), float(edges[b]))
            for a, b in zip(changes[::2], changes[1::2], strict=True)
        )

    def gaps_between(self, start_s: float, end_s: float) -> tuple[tuple[float, float], ...]:
        """The gaps overlapping (start_s, end_s), clipped to it, s since the epoch."""
        return tuple(
            (max(a, start_s), min(b, end_s)) for a, b in self.gaps_s if a < end_s and b > start_s
        )

    def covers(self, start_s: float, end_s: float) -> bool:
        """Whether [start_s, end_s] lies inside the trace."""
        return bool(self.times_s[0] <= start_s and end_s <= self.end_s)

    def value_at(self, t_s: float) -> float:
        """Intensity at an instant (s since the epoch), in gCO2e/kWh.

        Raises:
            ConfigError: outside the trace.
        """
        if not self.times_s[0] <= t_s < self.end_s:
            when = datetime.fromtimestamp(t_s, UTC).isoformat()
            raise ConfigError(
                f"trace {self.zone} ({self.source}) covers {self.start.isoformat()} to "
                f"{self.end.isoformat()}, not {when}"
            )
        index = int(np.searchsorted(self.times_s, t_s, side="right")) - 1
        value = float(self.values_g_per_kwh[index])
        if math.isnan(value):
            when = datetime.fromtimestamp(t_s, UTC).isoformat()
            raise ConfigError(f"trace {self.zone} ({self.source}) has no data at {when} (a gap)")
        return value

    @functools.cached_property
    def _regular(self) -> IntensityTrace:
        diffs = np.diff(self.edges_s)
        step = float(np.median(diffs))
        if np.all(np.abs(diffs - step) <= 1e-6 * step):
            return self
        return self.resample(step)

    def regular(self) -> IntensityTrace:
        """This trace if its steps are all equal, else it resampled to its median step."""
        return self._regular

    def resample(self, step_s: float) -> IntensityTrace:
        """The time-weighted mean over regular steps aligned to the epoch (UTC).

        Only steps that the trace covers entirely are kept; the integral over each kept
        step is preserved exactly. A step that overlaps a gap has no data (NaN).

        Raises:
            ConfigError: non-positive step, or a trace shorter than one step.
        """
        if not step_s > 0 or not math.isfinite(step_s):
            raise ConfigError(f"resampling step {step_s!r} s must be a positive number")
        first = math.ceil(float(self.times_s[0]) / step_s) * step_s
        last = math.floor(self.end_s / step_s) * step_s
        count = round((last - first) / step_s)
        if count < 1:
            raise ConfigError(
                f"trace {self.zone} is shorter than one {step_s:g} s step once aligned"
            )
        starts = first + step_s * np.arange(count, dtype=np.float64)
        totals = self.integral(starts + step_s) - self.integral(starts)
        missing = self.missing_s(starts, starts + step_s) > 1e-9 * step_s
        return IntensityTrace(
            zone=self.zone,
            times_s=starts,
            values_g_per_kwh=np.where(missing, np.nan, totals / step_s),
            end_s=float(starts[-1] + step_s),
            source=f"{self.source}, resampled to {step_s:g} s",
        )


class TraceIntensity(IntensityProvider):
    """A time-varying intensity provider backed by a trace."""

    def __init__(self, trace: IntensityTrace, *, pue: float = 1.0) -> None:
        self._trace = trace
        self._pue = pue

    @property
    def trace(self) -> IntensityTrace:
        """The trace."""
        return self._trace

    @property
    def zone(self) -> str:
        return self._trace.zone

    @property
    def pue(self) -> float:
        return self._pue

    @property
    def source(self) -> str:
        trace = self._trace
        return f"trace: {trace.source}; {trace.start.year}-{trace.end.year}"

    def intensity_at(self, when: datetime) -> float:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return self._trace.value_at(when.timestamp())

    def __repr__(self) -> str:
        return f"TraceIntensity(zone={self.zone!r}, source={self._trace.source!r})"


def parse_timezone(name: str | None) -> tzinfo | None:
    """A zoneinfo time zone from an IANA name (``Europe/Berlin``), or None.

    Raises:
        ConfigError: unknown time zone.
    """
    if name is None:
        return None
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin "
            "(on Windows, install the tzdata package)"
        ) from None


class _Localizer:
    """Turns naive local times of a file, in order, into UTC (DST-aware)."""

    def __init__(self, tz: tzinfo | None) -> None:
        self._tz = tz
        self._previous: datetime | None = None
        self._second_pass = False

    def to_utc(self, naive: datetime) -> datetime | str:
        """UTC instant, or a message saying why the local time is impossible."""
        tz = self._tz
        if tz is None or tz is UTC:
            self._previous = naive
            return naive.replace(tzinfo=UTC)
        early = naive.replace(tzinfo=tz, fold=0)
        late = naive.replace(tzinfo=tz, fold=1)
        ambiguous = early.utcoffset() != late.utcoffset()
        if ambiguous:
            round_trip = early.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
            if round_trip != naive:
                return f"local time {naive} does not exist in {tz} (DST gap)"
            if self._previous is not None and naive <= self._previous:
                self._second_pass = True
        else:
            self._second_pass = False
        self._previous = naive
        chosen = late if (ambiguous and self._second_pass) else early
        return chosen.astimezone(UTC)


def _parse_time(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _pick_columns(header: list[str], basis: str | None) -> tuple[int, int, int | None, str]:
    """Indexes of the time column, the value column and the zone column, and its name."""
    norm = [h.strip().lower() for h in header]
    time_index = next((norm.index(c) for c in _TIME_COLUMNS if c in norm), None)
    lca = [
        i
        for i, h in enumerate(norm)
        if h.startswith("carbon intensity") and ("(lca)" in h or "life cycle" in h)
    ]
    direct = [i for i, h in enumerate(norm) if h.startswith("carbon intensity") and "direct" in h]
    zone_index = norm.index("zone id") if "zone id" in norm else None
    if basis not in (None, "lca", "direct"):
        raise ConfigError(f"basis {basis!r} must be 'lca' or 'direct'")
    value_index: int | None
    if basis == "direct":
        value_index = direct[0] if direct else None
    elif basis == "lca":
        value_index = lca[0] if lca else None
    else:
        value_index = lca[0] if lca else (direct[0] if direct else None)
    if value_index is None and _SIMPLE_VALUE in norm and basis is None:
        value_index = norm.index(_SIMPLE_VALUE)
    if time_index is None or value_index is None:
        wanted = "'Time' and 'Carbon Intensity', or 'Datetime (UTC)' and 'Carbon Intensity "
        wanted += "gCO₂eq/kWh (LCA)' / '(direct)'"
        if basis is not None:
            wanted += f" (basis {basis})"
        raise ValueError(f"columns {header} are not a known trace layout: expected {wanted}")
    return time_index, value_index, zone_index, header[value_index].strip()


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """Header and (line, cells) of a CSV or Parquet file."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise DataFileError(
                f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or use CSV"
            ) from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises its own many types
            raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from None
        header = [str(name) for name in table.column_names]
        columns = [table.column(i).to_pylist() for i in range(len(header))]
        rows = [(i + 1, [col[i] for col in columns]) for i in range(table.num_rows)]
        return header, rows
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            first = next(reader, None)
            if first is None:
                raise DataFileError(f"{path}:1: the file is empty")
            body: list[tuple[int, list[Any]]] = []
            start = reader.line_num + 1  # a quoted field may span lines: name the first
            for row in reader:
                if any(c.strip() for c in row):
                    body.append((start, row))
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{path}: cannot read as UTF-8 CSV ({exc})") from None
    return first, body


def load_trace(
    path: str | Path,
    *,
    zone: str | None = None,
    tz: str | tzinfo | None = None,
    basis: str | None = None,
) -> IntensityTrace:
    """Load an intensity time series from CSV (or Parquet when pyarrow is importable).

    Args:
        path: the file.
        zone: zone label; default: the file's ``Zone Id`` column, else the file stem.
        tz: time zone of naive timestamps (IANA name or tzinfo); default UTC.
        basis: ``lca`` or ``direct`` for Electricity Maps exports (default: LCA when
            present, the one present otherwise).

    Raises:
        DataFileError: unreadable file, unknown layout, bad timestamp or value (the
            message names the file and line), times not increasing, fewer than 2 rows.
        ConfigError: unknown time zone or basis.
    """
    path = Path(path)
    zone_tz = parse_timezone(tz) if isinstance(tz, str) else tz
    if path.is_dir():
        raise DataFileError(f"{path}: is a directory, not a trace file")
    if path.exists() and not path.is_file():
        raise DataFileError(f"{path}: not a regular file (a trace is a CSV or Parquet file)")
    if not path.is_file():
        raise DataFileError(f"{path}: no such trace file")
    header, rows = _read_rows(path)
    try:
        t_col, v_col, z_col, column = _pick_columns(header, basis)
    except ValueError as exc:
        raise DataFileError(f"{path}:1: {exc}") from None
    # A column that declares UTC ("Datetime (UTC)") is UTC whatever tz says.
    localizer = _Localizer(UTC if "utc" in header[t_col].lower() else zone_tz)
    times: list[float] = []
    values: list[float] = []
    file_zone: str | None = None
    for line, cells in rows:
        if len(cells) <= max(t_col, v_col):
            raise DataFileError(f"{path}:{line}: expected {len(header)} columns, got {len(cells)}")
        raw_time, raw_value = cells[t_col], cells[v_col]
        when = raw_time if isinstance(raw_time, datetime) else _parse_time(str(raw_time or ""))
        if when is None:
            raise DataFileError(f"{path}:{line}: bad timestamp {raw_time!r} (ISO 8601 expected)")
        if when.tzinfo is None:
            converted = localizer.to_utc(when)
            if isinstance(converted, str):
                raise DataFileError(f"{path}:{line}: {converted}")
            when = converted
        try:
            value = float(raw_value)
        except (TypeError, ValueError):
            raise DataFileError(
                f"{path}:{line}: bad intensity {raw_value!r} (a number in gCO2e/kWh expected)"
            ) from None
        if not 0 <= value <= MAX_INTENSITY_G_PER_KWH:  # also refuses NaN
            raise DataFileError(
                f"{path}:{line}: intensity {raw_value!r} is not plausible: grids lie between 0 "
                f"and {MAX_INTENSITY_G_PER_KWH:g} gCO2e/kWh (is the column in other units?)"
            )
        stamp = when.timestamp()
        if times and stamp <= times[-1]:
            previous = datetime.fromtimestamp(times[-1], UTC).isoformat()
            raise DataFileError(
                f"{path}:{line}: time {when.astimezone(UTC).isoformat()} does not come after "
                f"the previous row's {previous} (times must increase)"
            )
        if z_col is not None and file_zone is None and cells[z_col]:
            file_zone = str(cells[z_col]).strip()
        times.append(stamp)
        values.append(value)
    if len(times) < 2:
        raise DataFileError(f"{path}: a trace needs at least 2 rows, found {len(times)}")
    times_array, values_array, step = _with_gaps(
        np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)
    )
    return IntensityTrace(
        zone=zone or file_zone or path.stem,
        times_s=times_array,
        values_g_per_kwh=values_array,
        end_s=float(times_array[-1] + step),
        source=f"{path.name} ({column})",
    )


#: A step longer than this many median steps holds for one median step; the rest is a gap.
_GAP_FACTOR = 1.5


def _with_gaps(times: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Times and values with a NaN step inserted in every gap, and the median step in s.

    A row whose successor is more than 1.5 median steps later holds for one
    median step: the missing rows are not forward-filled.
    """
    diffs = np.diff(times)
    step = float(np.median(diffs))
    long = np.flatnonzero(diffs > _GAP_FACTOR * step)
    if long.size == 0:
        return times, values, step
    gap_starts = times[long] + step
    at = long + 1
    return np.insert(times, at, gap_starts), np.insert(values, at, np.nan), step


#: Zones with a bundled hourly trace of 2020 (see :func:`bundled_trace`).
BUNDLED_TRACES = ("DE", "FR")


def bundled_trace(zone: str) -> IntensityTrace:
    """The bundled hourly intensity trace of 2020 for ``DE`` or ``FR`` (times in UTC).

    Hourly means built by ``scripts/build_demo_traces.py`` from Wiesner et al., "Let's Wait
    Awhile: How Temporal Workload Shifting Can Reduce Carbon Emissions in the Cloud",
    Middleware 2021, doi:10.1145/3464298.3493399 (ENTSO-E production data, IPCC lifecycle
    emission factors).

    Raises:
        ConfigError: no trace is bundled for that zone.
    """
    from importlib.resources import as_file, files

    code = zone.strip().upper()
    if code not in BUNDLED_TRACES:
        raise ConfigError(
            f"no bundled trace for zone {zone!r}: bundled are {', '.join(BUNDLED_TRACES)}; "
            "load your own with --trace PATH"
        )
    resource = files("wattwise.carbon") / "data" / f"trace_{code.lower()}_2020_hourly.csv"
    with as_file(resource) as path:
        trace = load_trace(path, zone=code)
    return trace
