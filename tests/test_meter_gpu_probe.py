"""The GPU probes (utilisation, power, memory) against their shipped contract: NVML on the
simulated driver of wattwise.testing._fake_nvml, and a replayed trace."""

from __future__ import annotations

from collections.abc import Iterator

import pynvml
import pytest

from wattwise._errors import MeterError, MeterUnavailable
from wattwise.meters import GpuSample, NvmlGpuProbe, ReplayGpuProbe
from wattwise.testing import FakeGpu, GpuProbeContract, GpuProbeEnv, make_fake_nvml

GIB = 2**30


@pytest.fixture(autouse=True)
def _clean_cuda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine running the tests must not decide which fake GPUs are visible.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _board(name: str, util: float, power_w: float, limit_w: float, used_gib: int) -> FakeGpu:
    return FakeGpu(
        name=name,
        utilisation_frac=util,
        power_w=power_w,
        power_limit_w=limit_w,
        memory_total_bytes=8 * GIB,
        memory_used_bytes=used_gib * GIB,
    )


class TestNvmlGpuProbeContract(GpuProbeContract):
    @pytest.fixture
    def probe_env(self) -> Iterator[GpuProbeEnv]:
        fake = make_fake_nvml([_board("NVIDIA H100", 0.42, 123.0, 301.0, 2)])
        yield GpuProbeEnv(
            probe=NvmlGpuProbe(0, nvml=fake.module),
            gpu_name="NVIDIA H100",
            expected=GpuSample(0.42, 123.0, 301.0, 0.25),
            fail=lambda: fake.fail(0, pynvml.NVMLError_GpuIsLost),
            recover=lambda: fake.recover(0),
            unavailable=NvmlGpuProbe(
                0, nvml=make_fake_nvml(1, init_error=pynvml.NVMLError_DriverNotLoaded).module
            ),
        )
        assert not fake.initialised, "every nvmlInit was matched by an nvmlShutdown"


class TestReplayGpuProbeContract(GpuProbeContract):
    @pytest.fixture
    def probe_env(self) -> GpuProbeEnv:
        s = GpuSample(0.1, 80.0, 400.0, 0.25)
        probe = ReplayGpuProbe([s], gpu_name="A100")  # past its end, the last one again

        def replay(samples: list[GpuSample | None]) -> None:
            probe.samples = samples

        return GpuProbeEnv(
            probe=probe,
            gpu_name="A100",
            expected=s,
            fail=lambda: replay([None]),
            recover=lambda: replay([s]),
            unavailable=ReplayGpuProbe([]),
        )


def test_nvml_probe_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml(
        [_board("board 0", 0.9, 250.0, 300.0, 1), _board("board 1", 0.42, 123.0, 301.0, 2)]
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    probe = NvmlGpuProbe(0, nvml=fake.module)
    assert probe.open() == "board 1"  # cuda:0 is NVML device 1 here
    assert probe.sample() == GpuSample(0.42, 123.0, 301.0, 0.25)
    probe.close()
    with pytest.raises(MeterUnavailable, match=r"no NVML device for cuda:1"):
        NvmlGpuProbe(1, nvml=fake.module).open()
    assert not fake.initialised, "a refused open shuts NVML down again"


def test_nvml_probe_says_why_nvml_cannot_start() -> None:
    fake = make_fake_nvml(1, init_error=pynvml.NVMLError_DriverNotLoaded)
    with pytest.raises(MeterUnavailable, match="NVML: NVIDIA driver not loaded"):
        NvmlGpuProbe(0, nvml=fake.module).open()
    with pytest.raises(MeterError, match="before open"):
        NvmlGpuProbe(0, nvml=fake.module).sample()
