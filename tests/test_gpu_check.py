"""benchmarks/gpu_check.py (issue 19 §4): its logic on the faithful fake NVML.

The script itself needs an NVIDIA GPU; what it computes from NVML's readings (the energy
of a span three ways, their agreement, the sampler's overhead, the JSON, the summary, the
no-GPU line) is tested here with the fake NVML of ``wattwise.testing`` and a real tracker.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pynvml
import pytest

import wattwise
from wattwise.meters import NvmlMeter
from wattwise.testing import FakeGpu, FakeNvml, make_fake_nvml

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gc = _load()


# -- no GPU -----------------------------------------------------------------------------


def test_why_there_is_no_gpu_is_one_reason() -> None:
    assert "pynvml is not installed" in gc.gpu_unavailable(None, 0)
    broken = make_fake_nvml(1, init_error=pynvml.NVMLError_LibraryNotFound)
    assert "NVML did not start (NVMLError_LibraryNotFound" in gc.gpu_unavailable(broken.module, 0)
    none = make_fake_nvml(0)
    assert gc.gpu_unavailable(none.module, 0) == "NVML lists no GPU"
    two = make_fake_nvml(2)
    assert gc.gpu_unavailable(two.module, 2) == "NVML lists 2 GPU(s), no device 2"
    assert gc.gpu_unavailable(two.module, 1) is None
    assert not two.initialised and not none.initialised  # every init is shut down


def test_main_without_a_gpu_prints_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    broken = make_fake_nvml(1, init_error=pynvml.NVMLError_DriverNotLoaded)
    assert gc.main(["--json", str(out)], nvml=broken.module) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert len(lines) == 1 and printed.err == ""
    assert lines[0].startswith("gpu_check: no NVIDIA GPU here: NVML did not start")
    assert lines[0].endswith("; nothing was measured")
    assert not out.exists()


def test_the_script_on_this_gpu_less_machine_says_so_in_one_line(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", str(out)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "no NVIDIA GPU here" not in proc.stdout:
        pytest.skip("this machine has an NVIDIA GPU: run the check itself")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1, proc.stdout
    assert "Traceback" not in proc.stderr
    assert not out.exists()


# -- reading the GPU --------------------------------------------------------------------


def _drive(fake: FakeNvml, sampler: Any, profile: list[tuple[float, float]], step_s: float) -> None:
    """Sample, then let the fake draw each (seconds, W) of ``profile`` in ``step_s`` steps."""
    t = 0.0
    sampler.sample(t)
    for seconds, power_w in profile:
        for _ in range(round(seconds / step_s)):
            fake.advance(step_s, power_w=power_w)
            t = round(t + step_s, 9)  # no float drift past the profile's end
            sampler.sample(t)


def test_counter_and_power_sampling_agree_as_the_trapezoid_rule_predicts() -> None:
    fake = make_fake_nvml([FakeGpu(power_w=60.0)])
    fake.module.nvmlInit()
    sampler = gc.NvmlSampler(fake.module, 0)
    # idle 60 W for 2 s, busy 300 W for 3 s, idle 60 W for 2 s; sampled every 0.1 s
    _drive(fake, sampler, [(2.0, 60.0), (3.0, 300.0), (2.0, 60.0)], 0.1)
    fake.module.nvmlShutdown()
    assert sampler.counter[0][1] == pytest.approx(1000.0)  # the fake starts at 1e6 mJ
    busy = gc.phase_figures(sampler.counter, sampler.power, [], (2.0, 5.0))
    assert busy["energy_j"]["nvml_counter"] == pytest.approx(900.0)
    # A reading after a step reports that step's power, so the trapezoid spreads each edge
    # over one step: half a step of the 240 W jump is lost at the rise (inside the busy
    # span) and gained at the fall (just after it); over the whole profile they cancel.
    assert busy["energy_j"]["nvml_power_sampling"] == pytest.approx(900.0 - 0.1 * 240 / 2)
    whole = gc.phase_figures(sampler.counter, sampler.power, [], (0.0, 7.0))
    assert whole["energy_j"]["nvml_counter"] == pytest.approx(4 * 60 + 900.0)
    assert whole["energy_j"]["nvml_power_sampling"] == pytest.approx(4 * 60 + 900.0)
    rising = gc.phase_figures(sampler.counter, sampler.power, [], (1.5, 2.5))
    assert rising["energy_j"]["nvml_counter"] == pytest.approx(0.5 * 60 + 0.5 * 300)
    expected = 0.5 * 60 + 0.5 * 300 - 0.1 * 240 / 2
    assert rising["energy_j"]["nvml_power_sampling"] == pytest.approx(expected)
    rel = rising["agreement"]["relative_to_counter"]["nvml_power_sampling"]
    assert rel == pytest.approx(expected / 180.0 - 1)
    assert rising["agreement"]["relative_to_counter"]["nvidia_smi"] is None  # none sampled
    assert busy["mean_power_w"]["nvml_counter"] == pytest.approx(300.0)


def test_a_gpu_without_the_counter_gives_power_only() -> None:
    fake = make_fake_nvml([FakeGpu(energy_counter=False, power_w=100.0)])
    fake.module.nvmlInit()
    sampler = gc.NvmlSampler(fake.module, 0)
    _drive(fake, sampler, [(1.0, 100.0)], 0.25)
    fake.module.nvmlShutdown()
    assert sampler.counter == []
    figures = gc.phase_figures(sampler.counter, sampler.power, [], (0.0, 1.0))
    assert figures["energy_j"]["nvml_counter"] is None
    assert figures["energy_j"]["nvml_power_sampling"] == pytest.approx(100.0)
    assert figures["agreement"] == {
        "relative_to_counter": {"nvml_power_sampling": None, "nvidia_smi": None},
        "spread": None,
    }


def test_a_counter_reset_inside_a_span_gives_no_counter_figure() -> None:
    fake = make_fake_nvml(1)
    fake.module.nvmlInit()
    sampler = gc.NvmlSampler(fake.module, 0)
    sampler.sample(0.0)
    fake.advance(1.0, power_w=100.0)
    sampler.sample(1.0)
    fake.reset(0)  # a driver reload: the counter restarts at 0
    fake.advance(1.0, power_w=100.0)
    sampler.sample(2.0)
    fake.module.nvmlShutdown()
    assert gc.counter_energy_j(sampler.counter, 0.0, 1.0) == pytest.approx(100.0)
    assert gc.counter_energy_j(sampler.counter, 0.0, 2.0) is None


# -- the analysis -----------------------------------------------------------------------


def test_integration_needs_readings_that_span_the_window() -> None:
    ramp = [(0.0, 0.0), (1.0, 10.0), (2.0, 20.0)]
    assert gc.integrate_power_j(ramp, 0.0, 2.0) == pytest.approx(20.0)
    assert gc.integrate_power_j(ramp, 0.5, 1.5) == pytest.approx(10.0)  # interpolated ends
    assert gc.integrate_power_j(ramp, -0.1, 1.0) is None
    assert gc.integrate_power_j(ramp, 1.0, 1.0) is None
    assert gc.counter_energy_j([(0.0, 5.0), (2.0, 9.0)], 0.5, 1.5) == pytest.approx(2.0)


def test_agreement_is_relative_to_the_counter() -> None:
    figures = gc.agreement(
        {"nvml_counter": 100.0, "nvml_power_sampling": 95.0, "nvidia_smi": 110.0}
    )
    assert figures["relative_to_counter"]["nvml_power_sampling"] == pytest.approx(-0.05)
    assert figures["relative_to_counter"]["nvidia_smi"] == pytest.approx(0.10)
    assert figures["spread"] == pytest.approx(0.15)
    lone = gc.agreement({"nvml_counter": 100.0, "nvml_power_sampling": None, "nvidia_smi": None})
    assert lone["spread"] is None
    assert gc.relative_difference(5.0, 0.0) is None


def test_overhead_is_the_median_slowdown_and_its_worst_pair() -> None:
    figures = gc.overhead([100.0, 102.0, 98.0], [99.0, 100.0, 98.0])
    assert figures["slowdown"] == pytest.approx(1 - 99.0 / 100.0)
    assert figures["worst_slowdown"] == pytest.approx(1 - 100.0 / 102.0)
    with pytest.raises(ValueError, match="one tracked round per bare round"):
        gc.overhead([1.0, 2.0], [1.0])


def test_the_parser_reads_nvidia_smis_power_draw() -> None:
    assert gc.parse_power_draw("71.43\n") == pytest.approx(71.43)
    assert gc.parse_power_draw(" 71.43 W") == pytest.approx(71.43)
    for junk in ("[N/A]", "[Not Supported]", "", "nan", "-3"):
        assert gc.parse_power_draw(junk) is None


def _phases() -> dict[str, dict[str, object]]:
    def phase(counter: float, sampled: float, smi: float, seconds: float) -> dict[str, object]:
        energy = {"nvml_counter": counter, "nvml_power_sampling": sampled, "nvidia_smi": smi}
        return {
            "duration_s": seconds,
            "energy_j": energy,
            "mean_power_w": {k: v / seconds for k, v in energy.items()},
            "agreement": gc.agreement(energy),
        }

    return {
        "idle_before": phase(600.0, 610.0, 590.0, 10.0),
        "busy": phase(6000.0, 5900.0, 6200.0, 20.0),
        "idle_after": phase(700.0, 700.0, 700.0, 10.0),
    }


def test_the_report_has_its_shape_and_headline_figures(tmp_path: Path) -> None:
    report = gc.build_report(
        gpu={"index": 0, "name": "NVIDIA H100", "driver": "550.54.15"},
        settings={"busy_s": 20.0},
        meters={"probe_order": ["rapl", "nvml", "estimate"]},
        phases=_phases(),
        overhead_figures=gc.overhead([10.0], [9.9]),
        training=None,
    )
    back = json.loads(json.dumps(report))  # plain JSON all the way down
    assert back["schema"] == "wattwise-gpu-check/1"
    assert set(back) == {
        "schema",
        "gpu",
        "settings",
        "wattwise_meters",
        "phases",
        "power_w",
        "agreement_busy",
        "overhead",
        "training",
    }
    assert list(back["phases"]) == ["idle_before", "busy", "idle_after"]
    assert back["power_w"] == {"idle": pytest.approx(65.0), "busy": pytest.approx(300.0)}
    assert back["agreement_busy"]["relative_to_counter"]["nvidia_smi"] == pytest.approx(200 / 6000)
    lines = gc.summary_lines(back)
    assert lines[0] == "GPU 0: NVIDIA H100 (driver 550.54.15)"
    assert "power: idle 65 W, busy 300 W" in lines
    assert any(line.startswith("busy: counter 6000 J") and "+3.3%" in line for line in lines)
    assert any("sampler overhead on the GPU loop: +1.0% median" in line for line in lines)
    with pytest.raises(ValueError, match="phases must be exactly"):
        gc.build_report(
            gpu={}, settings={}, meters=None, phases={}, overhead_figures=None, training=None
        )


def test_a_tracked_run_with_windows_is_compared_with_the_raw_counter() -> None:
    fake = make_fake_nvml([FakeGpu(power_w=100.0)])
    fake.module.nvmlInit()  # the raw sampler's own session, as in the script
    sampler = gc.NvmlSampler(fake.module, 0)
    sampler.sample(0.0)
    meter = NvmlMeter(nvml=fake.module, environ={})
    with wattwise.Tracker("train", meters=[meter], store=False) as t:
        with t.window("epoch-0"):
            fake.advance(1.0, power_w=100.0)
        with t.window("epoch-1"):
            fake.advance(2.0, power_w=150.0)
    sampler.sample(3.0)
    fake.module.nvmlShutdown()
    figures = gc.training_figures(t.result, sampler.counter, (0.0, 3.0))
    assert figures["counter_energy_j"] == pytest.approx(400.0)
    assert figures["gpu_energy_j"] == pytest.approx(400.0)
    assert figures["relative_to_counter"] == pytest.approx(0.0, abs=1e-9)
    assert figures["gpu_sensors"] == ["nvml-energy-counter"]
    assert [w["name"] for w in figures["windows"]] == ["epoch-0", "epoch-1"]
    assert [w["energy_j"] for w in figures["windows"]] == [
        pytest.approx(100.0),
        pytest.approx(300.0),
    ]
    assert figures["windows_energy_j"] == pytest.approx(400.0)
    report = gc.build_report(
        gpu={"index": 0, "name": "x", "driver": "y"},
        settings={},
        meters=None,
        phases=_phases(),
        overhead_figures=None,
        training=figures,
    )
    assert any("training: run 400 J on the GPU" in line for line in gc.summary_lines(report))
