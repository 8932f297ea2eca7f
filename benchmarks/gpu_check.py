"""A ready check for a real NVIDIA GPU: do NVML's energy figures agree? (issue 19 §4)

The NVML meter has only met fakes. On a machine with an NVIDIA GPU this script:

1. runs ``wattwise meters --json`` and keeps what it found;
2. runs a fixed GPU workload on one device: idle, then a loop of ``--matmul-n`` x
   ``--matmul-n`` float32 matrix products for ``--busy-s`` seconds, then idle again;
3. records the energy of each phase three ways, side by side: NVML's energy counter
   (``nvmlDeviceGetTotalEnergyConsumption``, differenced), NVML's power
   (``nvmlDeviceGetPowerUsage``) sampled every ``--interval-s`` and integrated with the
   trapezoid rule, and ``nvidia-smi --query-gpu=power.draw`` sampled by nvidia-smi itself
   (``-lms``) alongside, integrated the same way;
4. measures the wattwise sampler's overhead on the GPU loop: matmul iterations per second
   bare and inside ``wattwise.track()`` (default interval), ``--rounds`` interleaved pairs;
5. runs a short CUDA training (an MLP on random data) inside ``wattwise.track()`` with one
   window per epoch, and compares the run's GPU energy with the raw counter over the run;
6. writes one JSON of the figures (``--json``, default ``benchmarks/results-gpu-check.json``)
   and prints a summary.

Without an NVIDIA GPU (no ``pynvml``, no driver, no device, or no CUDA in torch) it prints
one line, ``gpu_check: no NVIDIA GPU here: <why>; nothing was measured``, and exits 0.

The analysis (integration, agreement, overhead, the JSON's shape, the summary) is in plain
functions tested on the fake NVML (``tests/test_gpu_check.py``); docs/gpu-check.md says
how to read the figures.

Why one file of ~580 lines: it is run by path on a bare GPU machine, so the analysis (pure
functions, first) travels with the runner that feeds it (last).

Run:  python benchmarks/gpu_check.py [--device 0] [--busy-s 20] [--idle-s 10]
      [--matmul-n 8192] [--interval-s 0.1] [--rounds 3] [--round-s 5] [--epochs 5]
      [--json benchmarks/results-gpu-check.json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

SCHEMA = "wattwise-gpu-check/1"
DEFAULT_JSON = Path(__file__).resolve().parent / "results-gpu-check.json"
#: The three ways energy is read, in the JSON's order; the counter is the reference.
METHODS = ("nvml_counter", "nvml_power_sampling", "nvidia_smi")
REFERENCE = "nvml_counter"
PHASES = ("idle_before", "busy", "idle_after")

Point = tuple[float, float]  # (time s, value)


def no_gpu_line(why: str) -> str:
    """The one line printed where there is nothing to check."""
    return f"gpu_check: no NVIDIA GPU here: {why}; nothing was measured"


def gpu_unavailable(nvml: ModuleType | None, device: int) -> str | None:
    """Why NVML cannot read ``device`` here (None when it can). Leaves NVML shut down.

    Args:
        nvml: the ``pynvml`` module (or the fake's), or None when it cannot be imported.
        device: the NVML index to check.
    """
    if nvml is None:
        return "pynvml is not installed (pip install wattwise[nvidia])"
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return f"NVML did not start ({type(exc).__name__}: {exc})"
    try:
        count = int(nvml.nvmlDeviceGetCount())
        if count == 0:
            return "NVML lists no GPU"
        if not 0 <= device < count:
            return f"NVML lists {count} GPU(s), no device {device}"
        return None
    finally:
        nvml.nvmlShutdown()


# -- reading the GPU ------------------------------------------------------------------------


@dataclass
class NvmlSampler:
    """Reads one GPU's energy counter and power through NVML at each :meth:`sample`.

    NVML must be initialised by the caller. A reading NVML refuses is left out (a GPU
    without the counter gives power only).

    Attributes:
        nvml: the ``pynvml`` module (or the fake's).
        device: the NVML index.
        counter: (time s, energy J) readings of the energy counter.
        power: (time s, power W) readings of the power sensor.
    """

    nvml: ModuleType
    device: int
    counter: list[Point] = field(default_factory=list)
    power: list[Point] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._handle = self.nvml.nvmlDeviceGetHandleByIndex(self.device)

    def sample(self, now_s: float) -> None:
        """Read the counter (mJ) and the power (mW) once, stamped ``now_s``."""
        with contextlib.suppress(self.nvml.NVMLError):
            mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.counter.append((now_s, mj / 1000.0))
        with contextlib.suppress(self.nvml.NVMLError):
            mw = self.nvml.nvmlDeviceGetPowerUsage(self._handle)
            self.power.append((now_s, mw / 1000.0))


def parse_power_draw(line: str) -> float | None:
    """A ``nvidia-smi --query-gpu=power.draw --format=csv,noheader[,nounits]`` line, in W.

    ``"71.43"``, ``"71.43 W"`` -> 71.43; ``"[N/A]"``, ``"[Not Supported]"``, junk -> None.
    """
    text = line.strip().removesuffix("W").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


# -- the analysis (pure) --------------------------------------------------------------------


def _value_at(points: Sequence[Point], t_s: float) -> float | None:
    """Linear interpolation of ``points`` (sorted by time) at ``t_s``; None outside them."""
    if not points or not points[0][0] <= t_s <= points[-1][0]:
        return None
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t_s <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)
    return points[-1][1]


def counter_energy_j(counter: Sequence[Point], t0_s: float, t1_s: float) -> float | None:
    """Energy between two times from an energy counter's readings (interpolated at both ends).

    None when the readings do not cover the span or the counter went backwards in it (a
    driver reload reset it).
    """
    inside = [v for t, v in counter if t0_s <= t <= t1_s]
    if any(b < a for a, b in itertools.pairwise(inside)):
        return None
    start, end = _value_at(counter, t0_s), _value_at(counter, t1_s)
    if start is None or end is None or end < start:
        return None
    return end - start


def integrate_power_j(power: Sequence[Point], t0_s: float, t1_s: float) -> float | None:
    """Trapezoid integral of power readings over ``[t0_s, t1_s]``; None if they do not span it."""
    start, end = _value_at(power, t0_s), _value_at(power, t1_s)
    if start is None or end is None or t1_s <= t0_s:
        return None
    points = [(t0_s, start), *((t, p) for t, p in power if t0_s < t < t1_s), (t1_s, end)]
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in itertools.pairwise(points))


def relative_difference(value: float | None, reference: float | None) -> float | None:
    """``(value - reference) / reference``; None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return (value - reference) / reference


def agreement(energy_j: Mapping[str, float | None]) -> dict[str, Any]:
    """How the methods' energies of one span agree, against the NVML counter.

    Returns:
        ``relative_to_counter``: each other method's relative difference from the counter
        (None where either is missing); ``spread``: (largest - smallest) / counter over the
        methods that gave a figure (None without the counter or with fewer than two).
    """
    reference = energy_j.get(REFERENCE)
    relative = {
        m: relative_difference(energy_j.get(m), reference) for m in METHODS if m != REFERENCE
    }
    given = [v for v in energy_j.values() if v is not None]
    spread = (
        (max(given) - min(given)) / reference
        if reference is not None and reference > 0 and len(given) >= 2
        else None
    )
    return {"relative_to_counter": relative, "spread": spread}


def phase_figures(
    sampler_counter: Sequence[Point],
    sampler_power: Sequence[Point],
    smi_power: Sequence[Point],
    span: tuple[float, float],
) -> dict[str, Any]:
    """Energy (J) and mean power (W) of one phase by each method, and their agreement."""
    t0, t1 = span
    energy: dict[str, float | None] = {
        "nvml_counter": counter_energy_j(sampler_counter, t0, t1),
        "nvml_power_sampling": integrate_power_j(sampler_power, t0, t1),
        "nvidia_smi": integrate_power_j(smi_power, t0, t1),
    }
    duration = t1 - t0
    power = {
        m: (e / duration if e is not None and duration > 0 else None) for m, e in energy.items()
    }
    return {
        "duration_s": duration,
        "energy_j": energy,
        "mean_power_w": power,
        "agreement": agreement(energy),
    }


def overhead(bare_rates: Sequence[float], tracked_rates: Sequence[float]) -> dict[str, Any]:
    """The sampler's slowdown of the GPU loop, from interleaved iterations-per-second rounds.

    Returns:
        medians of each, ``slowdown`` = 1 - median(tracked) / median(bare) (positive: the
        loop ran slower while tracked), and ``worst_slowdown`` over the pairs.
    """
    if not bare_rates or len(bare_rates) != len(tracked_rates):
        raise ValueError("give one tracked round per bare round, at least one")
    bare, tracked = statistics.median(bare_rates), statistics.median(tracked_rates)
    pairs = [1 - t / b for b, t in zip(bare_rates, tracked_rates, strict=True)]
    return {
        "bare_iterations_per_s": list(bare_rates),
        "tracked_iterations_per_s": list(tracked_rates),
        "bare_median": bare,
        "tracked_median": tracked,
        "slowdown": 1 - tracked / bare,
        "worst_slowdown": max(pairs),
    }


def build_report(
    *,
    gpu: Mapping[str, Any],
    settings: Mapping[str, Any],
    meters: Any,
    phases: Mapping[str, Mapping[str, Any]],
    overhead_figures: Mapping[str, Any] | None,
    training: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The JSON document: everything measured, and the headline figures derived from it."""
    if set(phases) != set(PHASES):
        raise ValueError(f"phases must be exactly {PHASES}, got {sorted(phases)}")
    idle = [phases[p]["mean_power_w"].get(REFERENCE) for p in ("idle_before", "idle_after")]
    idle_known = [p for p in idle if p is not None]
    return {
        "schema": SCHEMA,
        "gpu": dict(gpu),
        "settings": dict(settings),
        "wattwise_meters": meters,
        "phases": {p: dict(phases[p]) for p in PHASES},
        "power_w": {
            "idle": statistics.mean(idle_known) if idle_known else None,
            "busy": phases["busy"]["mean_power_w"].get(REFERENCE),
        },
        "agreement_busy": phases["busy"]["agreement"],
        "overhead": dict(overhead_figures) if overhead_figures is not None else None,
        "training": dict(training) if training is not None else None,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _num(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.4g} {unit}"


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A short human summary of a report (what :func:`main` prints)."""
    gpu = report["gpu"]
    lines = [f"GPU {gpu.get('index')}: {gpu.get('name')} (driver {gpu.get('driver')})"]
    power = report["power_w"]
    lines.append(f"power: idle {_num(power['idle'], 'W')}, busy {_num(power['busy'], 'W')}")
    for phase in PHASES:
        figures = report["phases"][phase]
        energy = figures["energy_j"]
        rel = figures["agreement"]["relative_to_counter"]
        lines.append(
            f"{phase}: counter {_num(energy['nvml_counter'], 'J')}, "
            f"power sampling {_num(energy['nvml_power_sampling'], 'J')} "
            f"({_pct(rel['nvml_power_sampling'])}), "
            f"nvidia-smi {_num(energy['nvidia_smi'], 'J')} ({_pct(rel['nvidia_smi'])})"
        )
    over = report.get("overhead")
    if over:
        lines.append(
            f"sampler overhead on the GPU loop: {_pct(over['slowdown'])} median, "
            f"{_pct(over['worst_slowdown'])} worst pair"
        )
    training = report.get("training")
    if training:
        lines.append(
            f"training: run {_num(training.get('gpu_energy_j'), 'J')} on the GPU vs counter "
            f"{_num(training.get('counter_energy_j'), 'J')} "
            f"({_pct(training.get('relative_to_counter'))}); windows sum to "
            f"{_num(training.get('windows_energy_j'), 'J')} "
            f"of {_num(training.get('energy_j'), 'J')}"
        )
    return lines


def training_figures(
    result: Any, counter: Sequence[Point], span: tuple[float, float]
) -> dict[str, Any]:
    """Compare a tracked run's GPU energy and windows with the raw counter over its span.

    Args:
        result: the run's :class:`wattwise.RunResult`.
        counter: the raw sampler's counter readings taken alongside.
        span: the run's start and end on the sampler's clock, in s.
    """
    gpu = [c for c in result.components if c.kind == "gpu" and c.counted]
    gpu_j = sum(c.energy_j for c in gpu) if gpu else None
    raw = counter_energy_j(counter, *span)
    top = [w for w in result.windows if "/" not in w.path]
    return {
        "run_id": result.run_id,
        "duration_s": result.duration_s,
        "energy_j": result.energy_j,
        "uncertainty_j": result.uncertainty_j,
        "gpu_energy_j": gpu_j,
        "gpu_sensors": sorted({c.source.sensor for c in gpu}),
        "counter_energy_j": raw,
        "relative_to_counter": relative_difference(gpu_j, raw),
        "windows": [{"name": w.name, "energy_j": w.energy_j} for w in top],
        "windows_energy_j": sum(w.energy_j for w in top),
    }


# -- running it on the GPU ------------------------------------------------------------------


@contextlib.contextmanager
def _sampling(
    sample: Callable[[float], None], interval_s: float, clock: Callable[[], float]
) -> Iterator[None]:
    """Call ``sample(clock())`` every ``interval_s`` in a thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            sample(clock())
            stop.wait(interval_s)

    thread = threading.Thread(target=loop, name="gpu-check-sampler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sample(clock())


@contextlib.contextmanager
def _nvidia_smi(
    device: int, interval_s: float, clock: Callable[[], float]
) -> Iterator[list[Point]]:
    """nvidia-smi's own power sampling, each line stamped on arrival; empty if it will not run."""
    points: list[Point] = []
    command = [
        "nvidia-smi",
        "--query-gpu=power.draw",
        "--format=csv,noheader,nounits",
        "-i",
        str(device),
        "-lms",
        str(max(1, round(interval_s * 1000))),
    ]
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)
    except OSError:
        yield points
        return

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            value = parse_power_draw(line)
            if value is not None:
                points.append((clock(), value))

    reader = threading.Thread(target=read, name="gpu-check-nvidia-smi", daemon=True)
    reader.start()
    try:
        yield points
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(timeout=10)


def _matmul_loop(torch: Any, a: Any, b: Any, seconds: float, clock: Callable[[], float]) -> float:
    """Matrix products for ``seconds``; returns completed iterations per second."""
    torch.cuda.synchronize()
    start = clock()
    done = 0
    while clock() - start < seconds:
        for _ in range(8):  # queue a few before checking the clock
            torch.matmul(a, b)
        torch.cuda.synchronize()
        done += 8
    return done / (clock() - start)


def _train(
    torch: Any,
    wattwise: ModuleType,
    store: str,
    epochs: int,
    device: str,
    clock: Callable[[], float],
) -> tuple[Any, tuple[float, float]]:
    """A short CUDA training run with one tracker window per epoch.

    Returns:
        Its RunResult, and its span on ``clock`` (stamped inside the tracked block).
    """
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(65536, 512, generator=gen).to(device)
    y = torch.randint(0, 10, (65536,), generator=gen).to(device)
    model = torch.nn.Sequential(
        torch.nn.Linear(512, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 10)
    ).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    with wattwise.track("gpu-check-train", store=store) as tracker:
        start = clock()
        for epoch in range(epochs):
            with tracker.window(f"epoch-{epoch}"):
                for i in range(0, len(x), 1024):
                    optimiser.zero_grad()
                    loss = torch.nn.functional.cross_entropy(
                        model(x[i : i + 1024]), y[i : i + 1024]
                    )
                    loss.backward()
                    optimiser.step()
                torch.cuda.synchronize()
        end = clock()
    return tracker.result, (start, end)


def _run(args: argparse.Namespace, nvml: ModuleType) -> dict[str, Any]:
    try:
        import torch  # only here: the no-GPU path and the tests need no torch
    except ImportError:
        raise LookupError("torch is not installed (pip install torch)") from None

    import wattwise

    if not torch.cuda.is_available():
        raise LookupError("torch sees no CUDA device")
    clock = time.monotonic
    meters = subprocess.run(
        [sys.executable, "-m", "wattwise", "meters", "--json"], capture_output=True, text=True
    )
    meters_json = json.loads(meters.stdout) if meters.returncode == 0 else meters.stderr.strip()
    nvml.nvmlInit()
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(args.device)
        gpu = {
            "index": args.device,
            "name": str(nvml.nvmlDeviceGetName(handle)),
            "driver": str(nvml.nvmlSystemGetDriverVersion()),
            "torch": torch.__version__,
            "host": platform.node(),
        }
        sampler = NvmlSampler(nvml, args.device)
        device = f"cuda:{args.device}"  # assumes CUDA and NVML number this GPU alike
        n = args.matmul_n
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        spans: dict[str, tuple[float, float]] = {}
        with (
            _nvidia_smi(args.device, args.interval_s, clock) as smi,
            _sampling(sampler.sample, args.interval_s, clock),
        ):
            time.sleep(1.0)  # let both samplers produce their first readings
            start = clock()
            time.sleep(args.idle_s)
            spans["idle_before"] = (start, clock())
            start = clock()
            rate = _matmul_loop(torch, a, b, args.busy_s, clock)
            spans["busy"] = (start, clock())
            start = clock()
            time.sleep(args.idle_s)
            spans["idle_after"] = (start, clock())
            time.sleep(1.0)
        phases = {
            p: phase_figures(sampler.counter, sampler.power, smi, s) for p, s in spans.items()
        }
        bare: list[float] = []
        tracked: list[float] = []
        for _ in range(args.rounds):  # interleaved, so drifts hit both alike
            bare.append(_matmul_loop(torch, a, b, args.round_s, clock))
            with wattwise.track("gpu-check-overhead", store=False):
                tracked.append(_matmul_loop(torch, a, b, args.round_s, clock))
        with tempfile.TemporaryDirectory() as tmp:
            train_sampler = NvmlSampler(nvml, args.device)
            with _sampling(train_sampler.sample, args.interval_s, clock):
                store = str(Path(tmp) / "runs.sqlite")
                result, span = _train(torch, wattwise, store, args.epochs, device, clock)
        training = training_figures(result, train_sampler.counter, span)
    finally:
        nvml.nvmlShutdown()
    settings = {k: getattr(args, k) for k in ("busy_s", "idle_s", "matmul_n", "interval_s")}
    settings |= {"rounds": args.rounds, "round_s": args.round_s, "epochs": args.epochs}
    settings["busy_tflop_per_s"] = rate * 2 * n**3 / 1e12
    return build_report(
        gpu=gpu,
        settings=settings,
        meters=meters_json,
        phases=phases,
        overhead_figures=overhead(bare, tracked),
        training=training,
    )


def _import_pynvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", type=int, default=0, help="NVML index of the GPU")
    parser.add_argument("--busy-s", type=float, default=20.0, help="matmul loop length, s")
    parser.add_argument("--idle-s", type=float, default=10.0, help="each idle phase, s")
    parser.add_argument("--matmul-n", type=int, default=8192, help="square matrix size")
    parser.add_argument("--interval-s", type=float, default=0.1, help="raw sampling period, s")
    parser.add_argument("--rounds", type=int, default=3, help="overhead pairs (bare, tracked)")
    parser.add_argument("--round-s", type=float, default=5.0, help="each overhead round, s")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (windows)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write")
    return parser


def main(argv: Sequence[str] | None = None, nvml: ModuleType | None = None) -> int:
    """Run the check; ``nvml`` stands in for ``pynvml`` (tests pass the fake's module)."""
    args = _parser().parse_args(argv)
    module = nvml if nvml is not None else _import_pynvml()
    why = gpu_unavailable(module, args.device)
    if why is not None or module is None:
        print(no_gpu_line(why or "pynvml is not installed"))
        return 0
    try:
        report = _run(args, module)
    except LookupError as exc:
        print(no_gpu_line(str(exc)))
        return 0
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for line in summary_lines(report):
        print(line)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
