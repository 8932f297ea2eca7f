"""A contract test class that every meter must pass.

Subclass :class:`MeterContract` in a test module and provide the ``meter_env`` fixture.
The same tests then run against that meter, as Optuna's storage test suite does for
storages. It is shipped in the package so that users who write their own meter can run it
too (it needs pytest, which is a test dependency only).

Example::

    class TestMyMeter(MeterContract):
        @pytest.fixture
        def meter_env(self, tmp_path):
            meter = MyMeter(...)
            def advance(seconds: float) -> float | None:
                ...  # make the sensor move on by `seconds`; return the counted energy in J
                     # it should now report, or None when that is not known exactly
            yield MeterEnv(meter=meter, advance=advance, tolerance_j=0.01)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from wattwise.meters._base import Component, Meter, Method, Probe, Reading

__all__ = ["MeterContract", "MeterEnv"]


@dataclass
class MeterEnv:
    """What a meter's contract test needs.

    Attributes:
        meter: a meter that is available in this environment, not started yet.
        advance: moves the sensor on by the given seconds (a fake counter is advanced, a
            clock is moved) and returns the counted energy in J the meter should report
            for that interval, or None when that is not known exactly.
        tolerance_j: absolute tolerance for comparing with ``advance``'s expectation, in J.
        clock_s: the monotonic time (s) handed to ``start``/``read``; ``advance`` moves it.
    """

    meter: Meter
    advance: Callable[[float], float | None]
    tolerance_j: float = 1e-6
    clock_s: float = 1000.0


def _counted_total(components: list[Component], readings: list[Reading]) -> float:
    counted = {c.name for c in components if c.counted}
    return sum(r.energy_j or 0.0 for r in readings if r.component in counted)


class MeterContract:
    """The tests every meter must pass. Subclasses provide the ``meter_env`` fixture."""

    @pytest.fixture
    def meter_env(self) -> MeterEnv:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses provide the meter_env fixture")

    def _step(self, env: MeterEnv, seconds: float) -> tuple[float | None, list[Reading]]:
        expected = env.advance(seconds)
        env.clock_s += seconds
        return expected, env.meter.read(env.clock_s)

    def test_probe_says_available_with_a_reason(self, meter_env: MeterEnv) -> None:
        probe = meter_env.meter.probe()
        assert isinstance(probe, Probe)
        assert probe.meter == meter_env.meter.name
        assert probe.available, probe.reason
        assert probe.reason.strip()

    def test_start_lists_unique_components_with_sources(self, meter_env: MeterEnv) -> None:
        components = meter_env.meter.start(meter_env.clock_s)
        try:
            assert components, "a started meter reports at least one component"
            names = [c.name for c in components]
            assert len(names) == len(set(names)), f"duplicate component names: {names}"
            assert any(c.counted for c in components)
            for c in components:
                assert isinstance(c.source.method, Method)
                assert c.source.sensor
                assert c.relative_uncertainty >= 0.0
                if c.source.method is Method.ESTIMATED:
                    assert c.relative_uncertainty > 0.0, f"estimate {c.name} lacks uncertainty"
        finally:
            meter_env.meter.close()

    def test_read_gives_one_reading_per_component(self, meter_env: MeterEnv) -> None:
        components = meter_env.meter.start(meter_env.clock_s)
        try:
            _, readings = self._step(meter_env, 1.0)
            assert sorted(r.component for r in readings) == sorted(c.name for c in components)
            for r in readings:
                if r.energy_j is not None:
                    assert math.isfinite(r.energy_j)
                    assert r.energy_j >= 0.0, f"{r.component}: negative energy {r.energy_j}"
                else:
                    assert r.note, "a gap must say why"
        finally:
            meter_env.meter.close()

    def test_energy_matches_what_the_sensor_did(self, meter_env: MeterEnv) -> None:
        components = meter_env.meter.start(meter_env.clock_s)
        try:
            total = 0.0
            expected_total: float | None = 0.0
            for seconds in (0.5, 1.0, 2.0):
                expected, readings = self._step(meter_env, seconds)
                total += _counted_total(components, readings)
                expected_total = (
                    None
                    if expected is None or expected_total is None
                    else expected_total + expected
                )
            assert total > 0.0, "three intervals of activity reported no energy"
            if expected_total is not None:
                assert total == pytest.approx(expected_total, abs=meter_env.tolerance_j)
        finally:
            meter_env.meter.close()

    def test_max_interval_is_positive(self, meter_env: MeterEnv) -> None:
        assert meter_env.meter.max_interval_s > 0.0

    def test_close_twice_is_harmless(self, meter_env: MeterEnv) -> None:
        meter_env.meter.start(meter_env.clock_s)
        meter_env.meter.close()
        meter_env.meter.close()
