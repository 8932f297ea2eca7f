"""The AMD SMI meter against the simulated driver of wattwise.testing._fake_amdsmi."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wattwise._errors import MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._amdsmi import (
    AMDSMI_RELATIVE_UNCERTAINTY,
    SAMPLING_MAX_INTERVAL_S,
    SENSOR_COUNTER,
    SENSOR_SAMPLING,
    AmdSmiMeter,
    visible_amd_indices,
)
from wattwise.meters._base import ComponentKind, Method
from wattwise.meters._registry import detect_meters
from wattwise.testing._fake_amdsmi import (
    STATUS_DRIVER_NOT_LOADED,
    STATUS_NO_PERM,
    STATUS_NOT_INIT,
    AmdSmiLibraryException,
    AmdSmiParameterException,
    FakeAmdGpu,
    make_fake_amdsmi,
)
from wattwise.testing._fake_clock import FakeClock
from wattwise.testing._meter_contract import MeterContract, MeterEnv
from wattwise.tracking import Tracker

UUIDS = ["GPU-4b2c1a9f8d3e6f7a", "GPU-12ab000000000001", "GPU-12cd000000000002"]


def three() -> list[FakeAmdGpu]:
    return [FakeAmdGpu(hip_uuid=u) for u in UUIDS]


# -- the contract, in both modes ---------------------------------------------------------


def _contract_env(energy_counter: bool) -> Iterator[MeterEnv]:
    power_w = 300.0
    gpus = [FakeAmdGpu(energy_counter=energy_counter, power_w=power_w) for _ in range(2)]
    fake = make_fake_amdsmi(gpus)
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})

    def advance(seconds: float) -> float:
        fake.advance(seconds, power_w)
        return 2 * power_w * seconds

    # The accumulator counts 15.259 µJ steps: each read is within one step of the truth.
    yield MeterEnv(meter=meter, advance=advance, tolerance_j=1e-3)
    meter.close()
    assert not fake.initialised, "every amdsmi_init was matched by an amdsmi_shut_down"


class TestAmdSmiCounterContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> Iterator[MeterEnv]:
        yield from _contract_env(energy_counter=True)


class TestAmdSmiSamplingContract(MeterContract):
    @pytest.fixture
    def meter_env(self) -> Iterator[MeterEnv]:
        yield from _contract_env(energy_counter=False)


# -- visible devices ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected", "stopped"),
    [
        ({}, [0, 1, 2], False),
        ({"ROCR_VISIBLE_DEVICES": "2,0"}, [2, 0], False),
        ({"ROCR_VISIBLE_DEVICES": "GPU-12cd"}, [2], False),
        ({"HIP_VISIBLE_DEVICES": "1"}, [1], False),
        ({"CUDA_VISIBLE_DEVICES": "1,2"}, [1, 2], False),  # HIP honours it
        # HIP indexes what ROCr left: ROCr shows 2,1, HIP's 1 is physical device 1.
        ({"ROCR_VISIBLE_DEVICES": "2,1", "HIP_VISIBLE_DEVICES": "1"}, [1], False),
        # HIP_VISIBLE_DEVICES wins over CUDA_VISIBLE_DEVICES.
        ({"HIP_VISIBLE_DEVICES": "0", "CUDA_VISIBLE_DEVICES": "2"}, [0], False),
        ({"ROCR_VISIBLE_DEVICES": ""}, [], False),
        ({"ROCR_VISIBLE_DEVICES": "0,7,1"}, [0], True),
        ({"HIP_VISIBLE_DEVICES": "1,1"}, [1], True),
        ({"ROCR_VISIBLE_DEVICES": "GPU-12"}, [], True),  # ambiguous prefix
    ],
)
def test_visible_devices_follow_rocr_then_hip(
    env: dict[str, str], expected: list[int], stopped: bool
) -> None:
    visible, _, notes = visible_amd_indices(env, UUIDS)
    assert visible == expected
    assert bool(notes) == stopped, notes


def test_meter_renumbers_in_hip_order_and_names_the_variables() -> None:
    fake = make_fake_amdsmi(three())
    meter = AmdSmiMeter(amdsmi=fake.module, environ={"ROCR_VISIBLE_DEVICES": "2,0"})
    probe = meter.probe()
    assert probe.available and probe.components == ("gpu:0", "gpu:1")
    assert "ROCR_VISIBLE_DEVICES='2,0'" in probe.reason and "3 GPU(s) present" in probe.reason
    components = meter.start(0.0)
    assert [(c.name, c.device) for c in components] == [("gpu:0", "2"), ("gpu:1", "0")]
    assert UUIDS[2] in components[0].source.detail
    meter.close()


def test_everything_hidden_makes_the_meter_unavailable() -> None:
    fake = make_fake_amdsmi(three())
    meter = AmdSmiMeter(amdsmi=fake.module, environ={"HIP_VISIBLE_DEVICES": ""})
    probe = meter.probe()
    assert not probe.available and "hides all 3 AMD GPU(s)" in probe.reason
    with pytest.raises(MeterUnavailable, match="HIP_VISIBLE_DEVICES"):
        meter.start(0.0)
    assert not fake.initialised


def test_an_older_amdsmi_without_enumeration_info_keeps_handle_order() -> None:
    fake = make_fake_amdsmi(three())
    del fake.module.amdsmi_get_gpu_enumeration_info  # not in amdsmi before 6.4
    meter = AmdSmiMeter(amdsmi=fake.module, environ={"ROCR_VISIBLE_DEVICES": "1"})
    (component,) = meter.start(0.0)
    assert component.device == "1" and "uuid None" in component.source.detail
    meter.close()


# -- units, modes, failures ------------------------------------------------------------


def test_counter_is_counts_times_resolution_in_microjoules() -> None:
    fake = make_fake_amdsmi([FakeAmdGpu(counter_resolution_uj=1000.0, energy_uj=0.0)])
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    (component,) = meter.start(0.0)
    assert component.source.sensor == SENSOR_COUNTER
    assert component.kind is ComponentKind.GPU and component.source.method is Method.MEASURED
    assert component.relative_uncertainty == AMDSMI_RELATIVE_UNCERTAINTY
    assert "counter resolution 1000 µJ" in component.source.detail
    fake.advance(2.0, power_w=123.4567)  # 246.9134 J -> 246913 whole mJ counts
    (reading,) = meter.read(2.0)
    assert reading.energy_j == pytest.approx(246.913)
    assert meter.max_interval_s == float("inf")


def test_sampling_integrates_whole_watts_with_the_trapezoid_rule() -> None:
    fake = make_fake_amdsmi([FakeAmdGpu(energy_counter=False, power_field="average")])
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    (component,) = meter.start(0.0)
    assert component.source.sensor == SENSOR_SAMPLING
    assert meter.max_interval_s == SAMPLING_MAX_INTERVAL_S
    fake.gpus[0].power_w = 200.4  # amdsmi reports whole watts: 200
    (reading,) = meter.read(2.0)
    assert reading.energy_j == pytest.approx(0.5 * (100 + 200) * 2.0)


def test_driver_reset_is_a_gap_then_counting_resumes() -> None:
    fake = make_fake_amdsmi(1)
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    meter.start(0.0)
    fake.advance(1.0, 100.0)
    fake.reset(0)
    (gap,) = meter.read(1.0)
    assert gap.energy_j is None and "went backwards" in (gap.note or "")
    fake.advance(1.0, 100.0)
    (after,) = meter.read(2.0)
    assert after.energy_j == pytest.approx(100.0, abs=1e-3) and after.since_s is None


def test_unreadable_counter_is_a_gap_then_recovers_the_whole_gap() -> None:
    fake = make_fake_amdsmi(2)
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    meter.start(0.0)
    fake.fail(0, STATUS_DRIVER_NOT_LOADED)
    fake.advance(1.0, 100.0)
    first, second = meter.read(1.0)
    assert first.energy_j is None and "Driver not loaded" in (first.note or "")
    assert second.energy_j == pytest.approx(100.0, abs=1e-3)
    fake.recover(0)
    fake.advance(1.0, 100.0)
    first, _ = meter.read(2.0)
    assert first.energy_j == pytest.approx(200.0, abs=1e-3)
    assert first.since_s == 0.0


def test_sampling_failure_is_a_gap_until_a_sample_opens_an_interval() -> None:
    fake = make_fake_amdsmi([FakeAmdGpu(energy_counter=False)])
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    meter.start(0.0)
    fake.fail(0, STATUS_DRIVER_NOT_LOADED)
    assert meter.read(1.0)[0].energy_j is None
    fake.recover(0)
    (reopened,) = meter.read(2.0)
    assert reopened.energy_j is None and "no sample opens" in (reopened.note or "")
    assert meter.read(3.0)[0].energy_j == pytest.approx(100.0)


def test_gpu_without_counter_or_power_is_left_out_with_a_reason() -> None:
    gpus = [FakeAmdGpu(), FakeAmdGpu(energy_counter=False, power_field=None)]
    meter = AmdSmiMeter(amdsmi=make_fake_amdsmi(gpus).module, environ={})
    probe = meter.probe()
    assert probe.components == ("gpu:0",)
    assert "gpu:1 skipped: no energy counter and no socket power field" in probe.reason


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (STATUS_DRIVER_NOT_LOADED, MeterUnavailable, "amdgpu driver not loaded"),
        (STATUS_NO_PERM, MeterPermissionError, "/dev/kfd"),
    ],
)
def test_init_failure_says_why(code: int, error: type[Exception], words: str) -> None:
    meter = AmdSmiMeter(amdsmi=make_fake_amdsmi(1, init_error=code).module, environ={})
    probe = meter.probe()
    assert not probe.available and words in probe.reason
    with pytest.raises(error, match=words):
        meter.start(0.0)


def test_no_gpu_is_unavailable_and_read_before_start_is_an_error() -> None:
    meter = AmdSmiMeter(amdsmi=make_fake_amdsmi(0).module, environ={})
    assert meter.probe().reason == "AMD SMI is running but found no AMD GPU"
    with pytest.raises(MeterError, match="before start"):
        meter.read(0.0)


def test_close_shuts_down_once_and_probe_leaves_it_closed() -> None:
    fake = make_fake_amdsmi(1)
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    meter.probe()
    assert not fake.initialised
    meter.start(0.0)
    meter.close()
    meter.close()
    assert fake.module.amdsmi_shut_down.call_count == 2  # one for the probe, one for close


# -- the fake is faithful ----------------------------------------------------------------


def test_fake_rejects_what_amdsmi_would_reject() -> None:
    fake = make_fake_amdsmi(1)
    with pytest.raises(AttributeError):
        _ = fake.module.amdsmi_get_energy_counter  # misspelt
    with pytest.raises(TypeError):
        fake.module.amdsmi_get_energy_count()  # missing the handle
    with pytest.raises(AmdSmiParameterException):
        fake.module.amdsmi_init(2)  # a plain int, not an AmdSmiInitFlags
    with pytest.raises(AmdSmiLibraryException) as caught:
        fake.module.amdsmi_get_processor_handles()  # before amdsmi_init
    assert caught.value.get_error_code() == STATUS_NOT_INIT
    assert "AMDSMI_STATUS_NOT_INIT" in str(caught.value)
    fake.module.amdsmi_init()
    (handle,) = fake.module.amdsmi_get_processor_handles()
    with pytest.raises(AmdSmiParameterException):
        fake.module.amdsmi_get_power_info(object())
    info = fake.module.amdsmi_get_power_info(handle)
    assert info["average_socket_power"] == "N/A" and info["current_socket_power"] == 100


# -- without the package or without ROCm -------------------------------------------------


def test_missing_amdsmi_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # type: ignore[arg-type]
    probe = AmdSmiMeter(environ={}).probe()
    assert not probe.available and "wattwise[amd]" in probe.reason


def _meters_json(env: dict[str, str]) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "wattwise", "meters", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {m["meter"]: m for m in json.loads(done.stdout)["meters"]}  # stdout is only JSON


def test_cli_meters_says_amdsmi_is_missing(child_env: dict[str, str]) -> None:
    found = _meters_json(child_env)["amdsmi"]
    assert not found["available"] and not found["used"]
    assert "wattwise[amd]" in str(found["reason"])


def test_cli_meters_says_rocm_is_missing(child_env: dict[str, str], tmp_path: Path) -> None:
    """The real package without libamd_smi.so prints to stdout and raises KeyError (its
    wrapper indexes an empty library table): one clean reason, and stdout stays JSON."""
    package = tmp_path / "amdsmi"
    package.mkdir()
    (package / "__init__.py").write_text(
        "_libraries = {}\nprint('Could not load libamd_smi.so')\n"
        "amdsmi_free_name_value_pairs = _libraries['libamd_smi.so']\n"
    )
    env = {**child_env, "PYTHONPATH": f"{child_env['PYTHONPATH']}:{tmp_path}"}
    found = _meters_json(env)["amdsmi"]
    assert not found["available"]
    assert "libamd_smi.so was not found" in str(found["reason"])


def test_detection_lists_the_amdsmi_probe(tmp_path: Path) -> None:
    fake = make_fake_amdsmi(1)
    found = detect_meters(powercap_root=str(tmp_path), environ={}, amdsmi=fake.module)
    probe = next(p for p in found.probes if p.meter == "amdsmi")
    assert probe.available and probe.components == ("gpu:0",)
    assert any(m.name == "amdsmi" for m in found.meters)


def test_a_tracked_run_keeps_a_driver_reset_as_a_gap() -> None:
    """Through the real Tracker (sampler thread on a fake clock)."""
    fake = make_fake_amdsmi(1)
    clock = FakeClock()
    meter = AmdSmiMeter(amdsmi=fake.module, environ={})
    tracker = Tracker("amd", meters=[meter], store=False, interval_s=1.0, clock=clock)
    with tracker:
        fake.advance(1.0, 300.0)
        clock.advance(1.0)
        fake.advance(1.0, 300.0)
        fake.reset(0)  # the driver reloads: this second's energy is lost
        clock.advance(1.0)
        fake.advance(1.0, 300.0)
        clock.advance(1.0)
    result = tracker.result
    assert result is not None
    assert result.energy_j == pytest.approx(600.0, abs=1e-2)
    assert result.energy_lost_s == pytest.approx(1.0)
    assert not fake.initialised
