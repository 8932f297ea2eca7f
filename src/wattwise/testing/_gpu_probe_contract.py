"""A contract test class that every GPU probe must pass, like :class:`MeterContract`.

Subclass :class:`GpuProbeContract` in a test module and provide the ``probe_env`` fixture::

    class TestMyProbe(GpuProbeContract):
        @pytest.fixture
        def probe_env(self):
            yield GpuProbeEnv(
                probe=MyProbe(...),              # available here, not opened yet
                gpu_name="NVIDIA H100",          # what open() returns
                expected=GpuSample(...),         # what sample() reads now
                fail=..., recover=...,           # make readings fail, then work again
                unavailable=MyProbe(broken),     # a probe whose open() must refuse
            )
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from wattwise._errors import MeterError
from wattwise.meters._gpu import GpuMonitor, GpuProbe, GpuSample

__all__ = ["GpuProbeContract", "GpuProbeEnv"]


def _nothing() -> None:
    return None


@dataclass
class GpuProbeEnv:
    """What a GPU probe's contract test needs.

    Attributes:
        probe: a probe that can open in this environment, not opened yet.
        gpu_name: the name its ``open`` returns.
        expected: what every ``sample`` reads while the GPU works (the tests do not change
            the GPU's state between samples).
        fail: makes the following readings fail (the GPU falls off the bus, say).
        recover: makes readings work again.
        unavailable: a probe whose ``open`` must raise a :class:`~wattwise.MeterError`.
    """

    probe: GpuProbe
    gpu_name: str
    expected: GpuSample
    unavailable: GpuProbe
    fail: Callable[[], None] = _nothing
    recover: Callable[[], None] = _nothing


class GpuProbeContract:
    """The tests every GPU probe must pass. Subclasses provide the ``probe_env`` fixture."""

    @pytest.fixture
    def probe_env(self) -> GpuProbeEnv:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses provide the probe_env fixture")

    def test_open_names_the_gpu_and_sample_reads_it_in_si_units(
        self, probe_env: GpuProbeEnv
    ) -> None:
        probe = probe_env.probe
        assert probe.open() == probe_env.gpu_name
        try:
            s = probe.sample()
            assert s == probe_env.expected
            assert s is not None
            assert 0.0 <= s.utilisation_frac <= 1.0 and 0.0 <= s.memory_used_frac <= 1.0
            assert math.isfinite(s.power_w) and s.power_w >= 0.0 and s.power_limit_w > 0.0
        finally:
            probe.close()

    def test_a_failed_reading_is_none_never_zeros_and_the_next_one_recovers(
        self, probe_env: GpuProbeEnv
    ) -> None:
        probe = probe_env.probe
        probe.open()
        try:
            assert probe.sample() == probe_env.expected
            probe_env.fail()
            assert probe.sample() is None
            probe_env.recover()
            assert probe.sample() == probe_env.expected
        finally:
            probe.close()

    def test_a_probe_that_cannot_open_says_why(self, probe_env: GpuProbeEnv) -> None:
        with pytest.raises(MeterError) as info:
            probe_env.unavailable.open()
        assert str(info.value).strip()

    def test_the_monitor_samples_on_entry_and_exit_and_reports_a_refusal(
        self, probe_env: GpuProbeEnv
    ) -> None:
        with GpuMonitor(probe_env.probe, interval_s=3600.0) as monitor:
            pass  # no wait: the samples on entry and exit are enough
        assert monitor.error is None and monitor.gpu_name == probe_env.gpu_name
        assert monitor.samples == [probe_env.expected, probe_env.expected]
        with GpuMonitor(probe_env.unavailable) as refused:
            pass
        assert refused.samples == [] and refused.error

    def test_close_twice_is_harmless(self, probe_env: GpuProbeEnv) -> None:
        probe_env.probe.open()
        probe_env.probe.close()
        probe_env.probe.close()
