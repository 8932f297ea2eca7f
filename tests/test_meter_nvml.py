"""The NVML meter against the simulated driver of wattwise.testing._fake_nvml."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pynvml
import pytest

from wattwise._errors import MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._base import ComponentKind, Method
from wattwise.meters._nvml import (
    COUNTER_UPDATE_S,
    NVML_RELATIVE_UNCERTAINTY,
    SAMPLING_EDGE_S,
    SAMPLING_MAX_INTERVAL_S,
    SENSOR_COUNTER,
    SENSOR_SAMPLING,
    NvmlMeter,
    visible_nvml_indices,
)
from wattwise.testing._fake_nvml import FakeGpu, FakeMig, FakeNvml, make_fake_nvml
from wattwise.testing._meter_contract import MeterContract, MeterEnv
from wattwise.tracking._accumulate import Accumulator

UUIDS = [
    "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
    "GPU-12ab0000-0000-0000-0000-000000000001",
    "GPU-12cd0000-0000-0000-0000-000000000002",
]


@pytest.fixture(autouse=True)
def _clean_cuda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine running the tests must not decide which fake GPUs are visible.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def three_gpus() -> FakeNvml:
    return make_fake_nvml([FakeGpu(uuid=u) for u in UUIDS])


# -- the contract, in both modes ---------------------------------------------------------


def _contract_env(energy_counter: bool) -> Iterator[MeterEnv]:
    power_w = 250.0
    fake = make_fake_nvml([FakeGpu(energy_counter=energy_counter, power_w=power_w)] * 2)
    meter = NvmlMeter(nvml=fake.module)

    def advance(seconds: float) -> float:
        fake.advance(seconds, power_w)
        return 2 * power_w * seconds  # exact: constant power, whole mJ per step

    yield MeterEnv(meter=meter, advance=advance, tolerance_j=1e-9)
    meter.close()
    assert not fake.initialised, "every nvmlInit was matched by an nvmlShutdown"


class TestNvmlCounterContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> Iterator[MeterEnv]:
        yield from _contract_env(energy_counter=True)


class TestNvmlSamplingContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> Iterator[MeterEnv]:
        yield from _contract_env(energy_counter=False)


# -- CUDA_VISIBLE_DEVICES ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected", "stopped"),
    [
        (None, [0, 1, 2], False),
        ("", [], False),
        ("  ", [], False),
        ("-1", [], True),
        ("2,1", [2, 1], False),
        (" 1 , 0 ", [1, 0], False),
        ("0,2,-1,1", [0, 2], True),  # the CUDA guide's own example
        ("1,7,0", [1], True),  # out of range
        ("0,0", [0], True),  # repeated
        ("1,abc,0", [1], True),
        ("GPU-8932f937", [0], False),
        ("GPU-8932F937-D72C", [0], False),  # hex case does not matter
        ("GPU-12cd,GPU-12ab", [2, 1], False),
        ("GPU-12,0", [], True),  # ambiguous prefix
        ("GPU-ffff", [], True),  # no such GPU
        ("2,GPU-8932", [2, 0], False),
        ("MIG-GPU-8932f937/1/0", [], True),
    ],
)
def test_visible_devices_follow_cuda_rules(
    spec: str | None, expected: list[int], stopped: bool
) -> None:
    visible, note = visible_nvml_indices(spec, UUIDS)
    assert visible == expected
    assert (note is not None) == stopped, note


def test_visible_devices_skip_unknown_uuids_in_prefix_match() -> None:
    assert visible_nvml_indices("GPU-12", [None, UUIDS[1]]) == ([1], None)


def test_cuda_index_selects_and_renumbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    fake = three_gpus()
    components = NvmlMeter(nvml=fake.module).start(0.0)
    assert [(c.name, c.device) for c in components] == [("gpu:0", "2"), ("gpu:1", "0")]
    assert UUIDS[2] in components[0].source.detail
    assert "nvml index 2" in components[0].source.detail


def test_uuid_prefix_selects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-12cd")
    meter = NvmlMeter(nvml=three_gpus().module)
    probe = meter.probe()
    assert probe.available and probe.components == ("gpu:0",)
    assert [c.device for c in meter.start(0.0)] == ["2"]


@pytest.mark.parametrize("spec", ["", "-1"])
def test_no_visible_gpu_makes_meter_unavailable(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", spec)
    fake = three_gpus()
    meter = NvmlMeter(nvml=fake.module)
    probe = meter.probe()
    assert not probe.available
    assert probe.components == ()
    assert "hides all 3" in probe.reason
    with pytest.raises(MeterUnavailable, match="CUDA_VISIBLE_DEVICES"):
        meter.start(0.0)
    assert not fake.initialised


def test_invalid_entry_truncates_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,5,0")
    probe = NvmlMeter(nvml=three_gpus().module).probe()
    assert probe.available
    assert probe.components == ("gpu:0",)
    assert "'5' is out of range" in probe.reason


def test_mixed_models_warn_about_cuda_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = make_fake_nvml([FakeGpu(name="Tesla V100"), FakeGpu(name="NVIDIA A100")])
    assert "CUDA_DEVICE_ORDER" in NvmlMeter(nvml=fake.module).probe().reason
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert "CUDA_DEVICE_ORDER" not in NvmlMeter(nvml=fake.module).probe().reason


# -- readings, units, failures -----------------------------------------------------------


def test_units_are_converted_once() -> None:
    fake = make_fake_nvml([FakeGpu(), FakeGpu(energy_counter=False, power_w=123.456)])
    meter = NvmlMeter(nvml=fake.module)
    meter.start(10.0)
    fake.advance(1.5, power_w=123.456)
    counter, sampled = meter.read(11.5)
    assert counter.energy_j == pytest.approx(123.456 * 1.5, abs=1e-3)  # whole mJ
    assert sampled.energy_j == pytest.approx(123.456 * 1.5, abs=1e-9)


def test_sampling_integrates_with_the_trapezoid_rule() -> None:
    fake = make_fake_nvml([FakeGpu(energy_counter=False, power_w=100.0)])
    meter = NvmlMeter(nvml=fake.module)
    meter.start(0.0)
    fake.advance(2.0, power_w=300.0)  # the sample at t=2 reads 300 W
    assert meter.read(2.0)[0].energy_j == pytest.approx((100.0 + 300.0) / 2 * 2.0)


def test_counter_mode_and_sampling_fallback_per_gpu() -> None:
    fake = make_fake_nvml(
        [FakeGpu(name="Tesla V100"), FakeGpu(name="Tesla P100", energy_counter=False)]
    )
    meter = NvmlMeter(nvml=fake.module)
    components = meter.start(0.0)
    assert [c.source.sensor for c in components] == [SENSOR_COUNTER, SENSOR_SAMPLING]
    for c in components:
        assert c.kind is ComponentKind.GPU
        assert c.source.method is Method.MEASURED
        assert c.relative_uncertainty == NVML_RELATIVE_UNCERTAINTY == 0.10
    assert [c.edge_uncertainty_s for c in components] == [COUNTER_UPDATE_S, SAMPLING_EDGE_S]
    assert meter.max_interval_s == SAMPLING_MAX_INTERVAL_S
    probe = meter.probe()
    assert "Tesla P100 (nvml 1, nvml-power-sampling)" in probe.reason


def test_counter_only_has_no_interval_limit() -> None:
    meter = NvmlMeter(nvml=make_fake_nvml(2).module)
    assert meter.max_interval_s == SAMPLING_MAX_INTERVAL_S  # unknown before start
    meter.start(0.0)
    assert meter.max_interval_s == float("inf")


def test_driver_reset_is_a_gap_then_counting_resumes() -> None:
    fake = make_fake_nvml(2)
    meter = NvmlMeter(nvml=fake.module)
    meter.start(0.0)
    fake.advance(1.0, power_w=100.0)
    fake.reset(0)
    fake.advance(0.5, power_w=100.0)  # counter 0 now 50 000 mJ, far below before
    gap, other = meter.read(1.5)
    assert gap.is_gap and gap.energy_j is None
    assert "went backwards" in (gap.note or "") and "driver reset" in (gap.note or "")
    assert other.energy_j == pytest.approx(150.0)
    fake.advance(1.0, power_w=200.0)
    after, _ = meter.read(2.5)
    assert after.energy_j == pytest.approx(200.0)
    assert after.since_s is None


def test_lost_gpu_is_a_gap_then_recovers_with_since() -> None:
    fake = make_fake_nvml(2)
    meter = NvmlMeter(nvml=fake.module)
    meter.start(0.0)
    fake.advance(1.0, power_w=100.0)
    assert meter.read(1.0)[0].energy_j == pytest.approx(100.0)
    fake.fail(0, pynvml.NVMLError_GpuIsLost)
    for t in (2.0, 3.0):
        fake.advance(1.0)
        lost, healthy = meter.read(t)
        assert lost.is_gap and "GpuIsLost" in (lost.note or "")
        assert healthy.energy_j == pytest.approx(100.0)
    fake.recover(0)
    fake.advance(1.0)
    recovered, _ = meter.read(4.0)
    assert recovered.energy_j == pytest.approx(300.0)  # everything since t=1.0
    assert recovered.since_s == 1.0
    fake.advance(1.0)
    normal, _ = meter.read(5.0)
    assert normal.energy_j == pytest.approx(100.0) and normal.since_s is None


def test_reset_during_a_failure_stays_a_gap() -> None:
    fake = make_fake_nvml(1)
    meter = NvmlMeter(nvml=fake.module)
    meter.start(0.0)
    fake.fail(0, pynvml.NVMLError_Unknown)
    fake.advance(1.0, power_w=100.0)
    assert meter.read(1.0)[0].is_gap
    fake.reset(0)
    fake.recover(0)
    fake.advance(1.0)
    reading = meter.read(2.0)[0]
    assert reading.is_gap and "went backwards" in (reading.note or "")
    fake.advance(1.0)
    assert meter.read(3.0)[0].energy_j == pytest.approx(100.0)


def test_sampling_failure_is_a_gap_until_a_new_sample_opens_an_interval() -> None:
    fake = make_fake_nvml([FakeGpu(energy_counter=False, power_w=100.0)])
    meter = NvmlMeter(nvml=fake.module)
    meter.start(0.0)
    fake.fail(0, pynvml.NVMLError_GpuIsLost)
    fake.advance(0.2)
    failed = meter.read(0.2)[0]
    assert failed.is_gap and "GpuIsLost" in (failed.note or "")
    fake.recover(0)
    fake.advance(0.2)
    resumed = meter.read(0.4)[0]
    assert resumed.is_gap and "no sample opens this interval" in (resumed.note or "")
    fake.advance(0.2)
    assert meter.read(0.6)[0].energy_j == pytest.approx(20.0)


def test_gpu_without_any_power_reading_is_left_out_with_a_reason() -> None:
    fake = make_fake_nvml([FakeGpu(), FakeGpu(energy_counter=False, power_sensor=False)])
    meter = NvmlMeter(nvml=fake.module)
    probe = meter.probe()
    assert probe.components == ("gpu:0",)
    assert "gpu:1 (nvml 1) skipped: no energy counter and no power reading" in probe.reason
    assert [c.name for c in meter.start(0.0)] == ["gpu:0"]


def test_gpu_lost_before_start_is_left_out() -> None:
    fake = make_fake_nvml(2)
    fake.fail(1, pynvml.NVMLError_GpuIsLost)
    meter = NvmlMeter(nvml=fake.module)
    assert "gpu:1 (nvml 1) skipped: GPU is lost" in meter.probe().reason
    assert [c.name for c in meter.start(0.0)] == ["gpu:0"]
    fake.fail(0, pynvml.NVMLError_GpuIsLost)
    meter.close()
    with pytest.raises(MeterUnavailable, match="none of the 2 visible"):
        meter.start(0.0)


# -- NVML missing, init, close -----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (pynvml.NVMLError_LibraryNotFound, "libnvidia-ml"),
        (pynvml.NVMLError_DriverNotLoaded, "driver not loaded"),
        (pynvml.NVMLError_Unknown, "nvmlInit failed: Unknown Error"),
    ],
)
def test_init_failure_makes_probe_unavailable(error: type[Exception], words: str) -> None:
    fake = make_fake_nvml(1, init_error=error)
    meter = NvmlMeter(nvml=fake.module)
    probe = meter.probe()
    assert not probe.available
    assert words in probe.reason
    assert "\n" not in probe.reason
    with pytest.raises(MeterUnavailable, match=words):
        meter.start(0.0)
    meter.close()
    assert fake.module.nvmlShutdown.call_count == 0


def test_init_refused_is_a_permission_error() -> None:
    fake = make_fake_nvml(1, init_error=pynvml.NVMLError_NoPermission)
    with pytest.raises(MeterPermissionError, match="permission"):
        NvmlMeter(nvml=fake.module).start(0.0)


def test_missing_pynvml_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    meter = NvmlMeter()
    probe = meter.probe()
    assert not probe.available
    assert "wattwise[nvidia]" in probe.reason
    with pytest.raises(MeterUnavailable, match=r"wattwise\[nvidia\]"):
        meter.start(0.0)


def test_probe_leaves_nvml_as_it_found_it() -> None:
    fake = make_fake_nvml(1)
    NvmlMeter(nvml=fake.module).probe()
    assert fake.module.nvmlInit.call_count == 1
    assert not fake.initialised


def test_close_shuts_down_once() -> None:
    fake = make_fake_nvml(1)
    meter = NvmlMeter(nvml=fake.module)
    meter.start(0.0)
    assert fake.initialised
    meter.close()
    meter.close()
    assert fake.module.nvmlShutdown.call_count == 1
    assert not fake.initialised


def test_read_before_start_is_an_error() -> None:
    with pytest.raises(MeterError, match="before start"):
        NvmlMeter(nvml=make_fake_nvml(1).module).read(0.0)


def test_constructor_touches_nothing() -> None:
    fake = make_fake_nvml(1, init_error=pynvml.NVMLError_DriverNotLoaded)
    NvmlMeter(nvml=fake.module)
    assert fake.module.nvmlInit.call_count == 0


# -- the fake itself ---------------------------------------------------------------------


def test_fake_rejects_what_pynvml_would_reject() -> None:
    module = make_fake_nvml(1).module
    with pytest.raises(TypeError):
        module.nvmlDeviceGetPowerUsage()  # missing the handle
    with pytest.raises(TypeError):
        module.nvmlDeviceGetCount(0)  # takes no argument
    with pytest.raises(AttributeError):
        _ = module.nvmlDeviceGetEnergy  # no such function
    with pytest.raises(AttributeError):
        module.nvmlDeviceGetEnergy = lambda handle: 0  # type: ignore[attr-defined]
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        module.nvmlDeviceGetCount()  # before nvmlInit
    module.nvmlInit()
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        module.nvmlDeviceGetPowerUsage(0)  # not a handle
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        module.nvmlDeviceGetHandleByIndex(1)
    module.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        module.nvmlShutdown()


def test_fake_keeps_pynvml_constants_and_errors() -> None:
    module = make_fake_nvml(1).module
    assert module.NVMLError is pynvml.NVMLError
    assert module.NVMLError_GpuIsLost is pynvml.NVMLError_GpuIsLost
    assert module.NVML_ERROR_GPU_IS_LOST == 15


def test_fake_refuses_unsimulated_functions_by_name() -> None:
    module = make_fake_nvml(1).module
    module.nvmlInit()
    handle = module.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(NotImplementedError, match="nvmlDeviceGetTemperature"):
        module.nvmlDeviceGetTemperature(handle, 0)
    module.nvmlDeviceGetTemperature.side_effect = None
    module.nvmlDeviceGetTemperature.return_value = 41
    assert module.nvmlDeviceGetTemperature(handle, 0) == 41


def test_fake_driver_answers_in_nvml_units() -> None:
    fake = make_fake_nvml([FakeGpu(name="Tesla T4", uuid=UUIDS[0], power_w=70.0, energy_mj=5.0)])
    module = fake.module
    module.nvmlInit()
    handle = module.nvmlDeviceGetHandleByUUID(UUIDS[0])
    assert module.nvmlDeviceGetIndex(handle) == 0
    assert module.nvmlDeviceGetName(handle) == "Tesla T4"
    fake.advance(0.5)
    assert module.nvmlDeviceGetTotalEnergyConsumption(handle) == 35_005  # mJ
    assert module.nvmlDeviceGetPowerUsage(handle) == 70_000  # mW
    with pytest.raises(pynvml.NVMLError_NotFound):
        module.nvmlDeviceGetHandleByUUID("GPU-nope")
    fake.fail(0, pynvml.NVMLError_GpuIsLost())
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        module.nvmlDeviceGetPowerUsage(handle)


# -- MIG (issue 12) ----------------------------------------------------------------------

MIG_UUID = "MIG-4a1b2c3d-0000-5000-8000-000000000003"


def h100_in_mig_mode() -> FakeNvml:
    """An H100 split into a 3g.40gb (this job's), a 2g.20gb and a 1g.10gb instance."""
    migs = (
        FakeMig(profile="3g.40gb", slices=3, gpu_instance_id=2, uuid=MIG_UUID),
        FakeMig(profile="2g.20gb", slices=2, gpu_instance_id=3),
        FakeMig(profile="1g.10gb", slices=1, gpu_instance_id=9),
    )
    gpu = FakeGpu(name="NVIDIA H100 80GB HBM3", uuid=UUIDS[0], mig_mode=True, mig_devices=migs)
    return make_fake_nvml([gpu, FakeGpu(uuid=UUIDS[1], mig_mode=False)])


def test_mig_uuid_is_metered_as_its_share_of_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: the MIG entry hid the GPU ("names a MIG instance, which NVML cannot meter: CUDA
    # ignores it"), so the meter was unavailable and the job's GPU energy was 0 J / missing.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIG_UUID)
    fake = h100_in_mig_mode()
    meter = NvmlMeter(nvml=fake.module)
    probe = meter.probe()
    assert probe.available and probe.components == ("gpu:0",)
    assert "MIG 3g.40gb: 3/7 of GPU 0's board energy, attributed by slices" in probe.reason
    assert "CUDA ignores" not in probe.reason
    (component,) = meter.start(0.0)
    assert component.device == "0"
    assert "MIG 3g.40gb: 3/7 of GPU 0's board energy, attributed by slices" in (
        component.source.detail
    )
    assert MIG_UUID in component.source.detail
    # The split is a model: its uncertainty is far above the sensor's.
    assert component.relative_uncertainty == pytest.approx((0.10**2 + (4 / 7) ** 2) ** 0.5)
    fake.advance(1.0, power_w=700.0, device=0)  # the whole board draws 700 W
    (reading,) = meter.read(1.0)
    assert reading.energy_j == pytest.approx(300.0)  # 3/7 of 700 J
    meter.close()


def test_mig_legacy_spelling_and_unknown_mig_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"MIG-{UUIDS[0]}/3/0")  # pre-R470 form
    fake = h100_in_mig_mode()
    probe = NvmlMeter(nvml=fake.module).probe()
    assert "MIG 2g.20gb: 2/7 of GPU 0's board energy" in probe.reason
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-ffffffff")
    probe = NvmlMeter(nvml=fake.module).probe()
    assert not probe.available
    assert "matches no MIG device NVML lists" in probe.reason


def test_two_mig_instances_of_one_board_each_get_their_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = h100_in_mig_mode()
    legacy_1g = f"MIG-{UUIDS[0]}/9/0"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{MIG_UUID},{legacy_1g}")
    meter = NvmlMeter(nvml=fake.module)
    assert [c.device for c in meter.start(0.0)] == ["0", "0"]
    fake.advance(1.0, power_w=700.0)
    assert [r.energy_j for r in meter.read(1.0)] == [pytest.approx(300.0), pytest.approx(100.0)]


def test_mig_mode_with_nothing_named_charges_the_whole_board_and_says_so() -> None:
    # Before: 700 J charged for the board with no word that other MIG instances share it.
    fake = h100_in_mig_mode()
    meter = NvmlMeter(nvml=fake.module)
    probe = meter.probe()
    assert "gpu:0 (nvml 0): MIG mode is on" in probe.reason
    assert "whole board's energy" in probe.reason
    assert "gpu:1 (nvml 1): MIG" not in probe.reason  # MIG-capable but off: nothing to say
    components = meter.start(0.0)
    assert "MIG mode is on" in components[0].source.detail
    assert "MIG" not in components[1].source.detail
    assert components[0].relative_uncertainty == NVML_RELATIVE_UNCERTAINTY
    fake.advance(1.0, power_w=700.0)
    assert meter.read(1.0)[0].energy_j == pytest.approx(700.0)


def test_fake_mig_devices_answer_like_nvml() -> None:
    module = h100_in_mig_mode().module
    module.nvmlInit()
    parent = module.nvmlDeviceGetHandleByIndex(0)
    assert module.nvmlDeviceGetMigMode(parent) == [1, 1]
    mig = module.nvmlDeviceGetHandleByUUID(MIG_UUID)
    assert module.nvmlDeviceIsMigDeviceHandle(mig)
    assert module.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig) == parent
    assert module.nvmlDeviceGetAttributes(mig).gpuInstanceSliceCount == 3
    assert module.nvmlDeviceGetName(mig) == "NVIDIA H100 80GB HBM3 MIG 3g.40gb"
    with pytest.raises(pynvml.NVMLError_NotSupported):
        module.nvmlDeviceGetTotalEnergyConsumption(mig)  # per board only
    with pytest.raises(pynvml.NVMLError_NotFound):
        module.nvmlDeviceGetMigDeviceHandleByIndex(parent, 3)  # an unused slot
    assert module.nvmlDeviceGetMigMode(module.nvmlDeviceGetHandleByIndex(1)) == [0, 0]
    module.nvmlShutdown()
    plain = make_fake_nvml(1).module  # a GPU without MIG
    plain.nvmlInit()
    with pytest.raises(pynvml.NVMLError_NotSupported):
        plain.nvmlDeviceGetMigMode(plain.nvmlDeviceGetHandleByIndex(0))


# -- stepped counter, partial sampling, edge uncertainty (issue 12) ----------------------


def test_fake_counter_steps_and_samples_part_of_each_period() -> None:
    fake = make_fake_nvml(
        [FakeGpu(counter_update_s=0.1, sampled_fraction=0.25, power_w=100.0, energy_mj=0.0)]
    )
    module = fake.module
    module.nvmlInit()
    handle = module.nvmlDeviceGetHandleByIndex(0)
    fake.advance(0.05)
    assert module.nvmlDeviceGetTotalEnergyConsumption(handle) == 0  # no update yet
    fake.advance(0.05)
    assert module.nvmlDeviceGetTotalEnergyConsumption(handle) == 10_000  # 100 W x 0.1 s
    # 400 W for the first 75 ms of a period, 100 W in the sampled last 25 ms: the counter
    # extrapolates the sampled 100 W over the whole period, missing 22.5 J of the true 32.5 J.
    fake.advance(0.075, power_w=400.0)
    fake.advance(0.025, power_w=100.0)
    assert module.nvmlDeviceGetTotalEnergyConsumption(handle) == 20_000


def test_window_shorter_than_the_counter_step_gets_the_larger_uncertainty() -> None:
    # Before: a 50 ms window on a stepped counter read 0 J or a whole step with 5% of that
    # as its uncertainty (0 J +- 0 J, 20 J +- 1 J). Now the edge term, mean power x the
    # 0.1 s step, dominates: 20 J +- 40 J.
    fake = make_fake_nvml([FakeGpu(counter_update_s=0.1, power_w=200.0)])
    meter = NvmlMeter(nvml=fake.module)
    (component,) = meter.start(0.0)
    fake.advance(0.05)
    short = Accumulator()
    (r,) = meter.read(0.05)
    assert r.energy_j == 0.0  # the counter has not stepped: a short window can miss it all
    fake.advance(0.05)
    (r2,) = meter.read(0.1)
    short.add("gpu:0", r2.energy_j, 0.05, recovered=False)
    (energy,) = short.energies([component])
    assert energy.energy_j == pytest.approx(20.0)  # the whole 0.1 s step, read in 0.05 s
    assert energy.uncertainty_j == pytest.approx((2.0**2 + 40.0**2) ** 0.5)
    assert energy.uncertainty_j >= energy.energy_j  # says it could be off by all of it
    long_window = Accumulator()
    for i in range(2, 102):
        fake.advance(0.1)
        (r,) = meter.read(i * 0.1)
        long_window.add("gpu:0", r.energy_j, 0.1, recovered=False)
    (energy,) = long_window.energies([component])
    assert energy.energy_j == pytest.approx(2000.0)
    # 10 s: the edge term (200 W x 0.1 s = 20 J) is small beside 10% of 2000 J.
    assert energy.uncertainty_j == pytest.approx((200.0**2 + 20.0**2) ** 0.5)
