"""Apple silicon CPU, GPU and Neural Engine power from macOS's ``powermetrics``.

``powermetrics --samplers cpu_power,gpu_power,ane_power -f plist -i <ms>`` runs in the
background for as long as the meter is started and writes one property list per sample
period, each followed by a NUL byte. Each sample's ``processor`` dictionary gives the
power of the CPU clusters, the GPU and the ANE over the sample (``cpu_power``,
``gpu_power``, ``ane_power``, in mW; where a macOS release gives only ``*_energy`` in mJ,
that is used instead) and the sample's length (``elapsed_ns``). Energy = power x elapsed
time, summed over the samples that arrived since the previous read; plists are parsed with
:mod:`plistlib`.

Components: ``cpu`` (kind ``cpu``), ``gpu:0`` (``gpu``) and ``ane`` (``ane``), all
``measured`` by sensors named ``powermetrics-cpu-power`` and so on, all counted (their sum
is powermetrics' "combined power"). A sample that cannot be parsed, a power figure missing
from a sample, or no sample for three sample periods (and a second) is a gap, never zero;
``powermetrics`` exiting makes every later read a gap with its last stderr line.

``powermetrics`` needs root ("powermetrics must be invoked as the superuser"): without it
the probe says so in one line and detection estimates the CPU (the Apple-silicon power
table, ``_apple_table.py``). See docs/meters-apple.md.
"""

from __future__ import annotations

import contextlib
import os
import platform
import plistlib
import shutil
import subprocess
import sys
import xml.parsers.expat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from wattwise._errors import MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Probe, Reading, Source

__all__ = ["PowermetricsMeter", "PowermetricsSample", "parse_powermetrics_sample"]

SAMPLERS = "cpu_power,gpu_power,ane_power"
#: The parts powermetrics reports: component name, kind, plist key stem, sensor.
PARTS = (
    ("cpu", ComponentKind.CPU, "cpu", "powermetrics-cpu-power"),
    ("gpu:0", ComponentKind.GPU, "gpu", "powermetrics-gpu-power"),
    ("ane", ComponentKind.ANE, "ane", "powermetrics-ane-power"),
)
# Apple documents no accuracy for these figures, which come from the SoC's own power
# telemetry, not an external meter: 15 % one-sigma is a judgement (wider than the 10 %
# used for NVML, for which at least an old bound is documented).
POWERMETRICS_RELATIVE_UNCERTAINTY = 0.15
# The pipe holds about ten samples of a few kB: reading every 5 s never blocks powermetrics.
MAX_INTERVAL_S = 5.0
_NOT_ROOT = (
    "powermetrics needs root: run the tracked command as root (sudo wattwise run -- CMD); "
    "until then the CPU is estimated"
)


@dataclass(frozen=True)
class PowermetricsSample:
    """One ``powermetrics`` sample: its length and each part's mean power.

    Attributes:
        elapsed_s: the sample period, in s (``elapsed_ns``).
        power_w: mean power over the period by part (``"cpu"``, ``"gpu"``, ``"ane"``), in
            W; a part the sample does not report is absent.
    """

    elapsed_s: float
    power_w: dict[str, float]


def parse_powermetrics_sample(data: bytes) -> PowermetricsSample:
    """Parse one plist sample of ``powermetrics -f plist``.

    Raises:
        ValueError: not a plist, or no ``elapsed_ns``.
    """
    try:
        document = plistlib.loads(data.strip())
    except (plistlib.InvalidFileException, ValueError, xml.parsers.expat.ExpatError) as error:
        raise ValueError(f"not a powermetrics plist: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("elapsed_ns"), int):
        raise ValueError("not a powermetrics sample: no elapsed_ns")
    elapsed_s = document["elapsed_ns"] * 1e-9
    processor = _dictionary(document.get("processor"))
    gpu = _dictionary(document.get("gpu"))
    power: dict[str, float] = {}
    for _, _, stem, _ in PARTS:
        mw = _number(processor.get(f"{stem}_power"))
        mj = _number(processor.get(f"{stem}_energy"))
        if mj is None and stem == "gpu":
            mj = _number(gpu.get("gpu_energy"))  # macOS 12 keeps it in the gpu dictionary
        if mw is not None:
            power[stem] = mw * 1e-3
        elif mj is not None and elapsed_s > 0:
            power[stem] = mj * 1e-3 / elapsed_s
    return PowermetricsSample(elapsed_s, power)


def _dictionary(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


class Stream(Protocol):
    """A running ``powermetrics``: its stdout to read without blocking, and its end."""

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def stop(self) -> str:
        """End it (if still running) and return its last stderr line."""
        ...


class _Process:
    """The real ``powermetrics`` subprocess."""

    def __init__(self, argv: Sequence[str]) -> None:
        self._popen = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self.stdout = self._popen.stdout
        self._last_line: str | None = None

    def poll(self) -> int | None:
        return self._popen.poll()

    def stop(self) -> str:
        if self._last_line is not None:
            return self._last_line
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        stderr = self._popen.stderr.read().decode(errors="replace") if self._popen.stderr else ""
        for pipe in (self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                pipe.close()
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        self._last_line = lines[-1] if lines else ""
        return self._last_line


class PowermetricsMeter(Meter):
    """CPU, GPU and ANE energy of an Apple-silicon Mac, from ``powermetrics``.

    Args:
        interval_s: powermetrics' sample period (``-i``), in s: the tracker's interval
            (1 s by default). Windows are exact to about one period (the edge uncertainty).
        executable: the ``powermetrics`` to run; default: the one on ``PATH``.
        system: ``sys.platform`` to assume (tests); default this one's.
        machine: ``platform.machine()`` to assume (tests); default this one's.
        is_root: whether this process runs as root (tests); default ``os.geteuid() == 0``.
        open_stream: starts the sampler from its argv (tests pass a pipe); default a
            subprocess.
    """

    name = "powermetrics"

    def __init__(
        self,
        *,
        interval_s: float = 1.0,
        executable: str | None = None,
        system: str | None = None,
        machine: str | None = None,
        is_root: bool | None = None,
        open_stream: Callable[[Sequence[str]], Stream] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._executable = executable
        self._system = system
        self._machine = machine
        self._is_root = is_root
        self._open = open_stream or _Process
        self._stream: Stream | None = None
        self._buffer = b""
        self._last_sample_s = 0.0
        self._ended: str | None = None
        self._components: list[Component] = []

    def argv(self) -> list[str]:
        """The command line the meter runs."""
        exe = self._executable or shutil.which("powermetrics") or "powermetrics"
        ms = str(max(1, round(self.interval_s * 1000)))
        return [exe, "--samplers", SAMPLERS, "-f", "plist", "-i", ms]

    def _why_not(self) -> tuple[str | None, bool]:
        """Why this meter cannot run here (None: it can), and whether it is permission."""
        system = self._system if self._system is not None else sys.platform
        machine = self._machine if self._machine is not None else platform.machine()
        if system != "darwin":
            return f"powermetrics is macOS's (this is {system})", False
        if machine != "arm64":
            return "powermetrics reports CPU/GPU/ANE power only on Apple silicon (arm64)", False
        if self._executable is None and shutil.which("powermetrics") is None:
            return "powermetrics not found on PATH (it ships with macOS in /usr/bin)", False
        root = self._is_root if self._is_root is not None else os.geteuid() == 0
        if not root:
            return _NOT_ROOT, True
        return None, False

    def probe(self) -> Probe:
        """Whether powermetrics can run here (macOS, Apple silicon, on PATH, root)."""
        why, _ = self._why_not()
        names = tuple(name for name, _, _, _ in PARTS)
        if why is not None:
            return Probe(self.name, False, why, names if why == _NOT_ROOT else ())
        return Probe(
            self.name,
            True,
            f"Apple silicon CPU, GPU and ANE power from `{' '.join(self.argv())}`",
            names,
        )

    def start(self, now_s: float) -> list[Component]:
        """Start powermetrics in the background.

        Raises:
            MeterUnavailable: not macOS on Apple silicon, or powermetrics missing.
            MeterPermissionError: not root.
        """
        why, permission = self._why_not()
        if why is not None:
            raise (MeterPermissionError if permission else MeterUnavailable)(why)
        self.close()
        try:
            stream = self._open(self.argv())
        except OSError as error:
            raise MeterUnavailable(f"powermetrics could not be started: {error}") from None
        if stream.stdout is not None:
            os.set_blocking(stream.stdout.fileno(), False)
        self._stream, self._buffer, self._ended = stream, b"", None
        self._last_sample_s = now_s
        detail = f"`{' '.join(self.argv())}`"
        self._components = [
            Component(
                name=name,
                kind=kind,
                source=Source(Method.MEASURED, sensor, detail),
                relative_uncertainty=POWERMETRICS_RELATIVE_UNCERTAINTY,
                # A sample reaches the meter at the end of its period: up to one period late.
                edge_uncertainty_s=self.interval_s,
            )
            for name, kind, _, sensor in PARTS
        ]
        return list(self._components)

    def read(self, now_s: float) -> list[Reading]:
        """The energy of the samples that arrived since the previous read, per part."""
        if self._stream is None:
            raise MeterError("PowermetricsMeter.read() called before start() or after close()")
        samples, bad = self._drain()
        if samples or bad:
            self._last_sample_s = now_s
        if bad:
            note = f"a powermetrics sample could not be read: {bad[0]}"
            return [Reading(c.name, None, note=note) for c in self._components]
        if not samples:
            if self._ended is not None:
                note = f"powermetrics stopped: {self._ended or 'no message'}"
                return [Reading(c.name, None, note=note) for c in self._components]
            if now_s - self._last_sample_s > 3 * self.interval_s + 1.0:
                note = f"no powermetrics sample for {now_s - self._last_sample_s:.1f} s"
                return [Reading(c.name, None, note=note) for c in self._components]
        readings = []
        for (name, _, stem, _), component in zip(PARTS, self._components, strict=True):
            if any(stem not in s.power_w for s in samples):
                readings.append(
                    Reading(component.name, None, note=f"powermetrics sample without {stem} power")
                )
                continue
            readings.append(Reading(name, sum(s.power_w[stem] * s.elapsed_s for s in samples)))
        return readings

    def _drain(self) -> tuple[list[PowermetricsSample], list[str]]:
        """Read what powermetrics wrote so far (without blocking) and parse whole samples."""
        assert self._stream is not None
        pipe = self._stream.stdout if self._ended is None else None
        while pipe is not None:
            try:
                chunk = os.read(pipe.fileno(), 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                if self._ended is None:
                    self._ended = self._stream.stop()
                break
            self._buffer += chunk
        *whole, self._buffer = self._buffer.split(b"\0")
        samples: list[PowermetricsSample] = []
        bad: list[str] = []
        for part in whole:
            if not part.strip():
                continue
            try:
                samples.append(parse_powermetrics_sample(part))
            except ValueError as error:
                bad.append(str(error))
        return samples, bad

    def close(self) -> None:
        """Stop powermetrics (once; further calls do nothing)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.stop()

    @property
    def max_interval_s(self) -> float:
        """5 s: powermetrics' pipe must be read before it fills. Units: s."""
        return MAX_INTERVAL_S
