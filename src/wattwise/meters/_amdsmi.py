"""AMD GPU energy through AMD SMI (the ``amdsmi`` Python module of ROCm's ``libamd_smi``).

Each AMD GPU visible to HIP is one component, ``gpu:<HIP index>``, measured one of two ways:

* ``amdsmi-energy-counter``: ``amdsmi_get_energy_count``, the board's energy accumulator
  (a 64-bit count of ``counter_resolution`` µJ steps, since the driver was loaded; 15.3 µJ
  on MI-series boards). Reads are differences of the count times the resolution.
* ``amdsmi-power-sampling``: where the accumulator is not supported (AMD: "not supported on
  virtual machine guest"), ``amdsmi_get_power_info``'s socket power in whole W
  (``socket_power``, else ``current_socket_power`` on MI300 and newer, else
  ``average_socket_power`` on MI200 and Navi) is sampled at every read and integrated with
  the trapezoid rule.

Like the NVML meter, a counter that goes backwards (a driver reload; ROCm/amdsmi issue 115
reports backward steps too) is a gap and is re-based; a counter that can be read again and
has not gone back covers the whole failure (a recovered gap, ``since_s``).

Which GPUs: as the ROCm runtimes choose them (ROCm "GPU isolation techniques").
``ROCR_VISIBLE_DEVICES`` (indices or ``GPU-<uuid>`` prefixes, applied by ROCr to every
GPU) first; then ``HIP_VISIBLE_DEVICES``, or where it is unset ``CUDA_VISIBLE_DEVICES``
(which HIP honours as the same), indexing into what ROCr left. Both are read with the CUDA
rules (``_cuda_visible.py``): the first invalid entry hides itself and what follows.
Devices are in HIP order (``amdsmi_get_gpu_enumeration_info``'s ``hip_id``, or AMD SMI's
handle order, PCI bus order, where that call is missing). See docs/meters-amd.md.

Process scope: each GPU's per-process engine time (``amdsmi_get_gpu_process_list``) gives
the process tree's share of it (:meth:`AmdSmiMeter.process_shares`, ``_amd_share.py``);
the whole device, labelled, where AMD SMI gives none this process can match.

``import amdsmi`` needs ROCm's ``libamd_smi.so``: without it the module prints "Could not
load libamd_smi.so" and fails with a ``KeyError``; the probe says which is missing.
"""

from __future__ import annotations

import abc
import contextlib
import io
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from wattwise._errors import MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._amd_share import ProcessEngineShare, own_pid_namespace
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Probe, Reading, Source
from wattwise.meters._cuda_visible import _resolve_gpu_entry

__all__ = ["AmdSmiMeter", "visible_amd_indices"]

SENSOR_COUNTER = "amdsmi-energy-counter"
SENSOR_SAMPLING = "amdsmi-power-sampling"

_J_PER_UJ = 1e-6  # amdsmi_get_energy_count: counts x counter_resolution, in µJ

# AMD documents no accuracy for the energy accumulator or the power reading. As for NVML
# (docs/meters-nvml.md), 10 % one-sigma is a judgement, not a datasheet figure.
AMDSMI_RELATIVE_UNCERTAINTY = 0.10
# The accumulator is updated by the SMU firmware (gpu_metrics, about every 1 ms on MI300,
# not documented for older boards); 0.1 s of staleness at each edge is the NVML meter's
# figure, kept as an upper bound.
COUNTER_UPDATE_S = 0.1
# average_socket_power is a moving average (about 1 s); a sample lags by ~0.5 s.
SAMPLING_EDGE_S = 0.5
# AMD documents no power sample period: the NVML meter's 0.2 s keeps the sampler fast
# enough for a 1 s average and costs one library call per GPU five times a second.
SAMPLING_MAX_INTERVAL_S = 0.2

# amdsmi_status_t codes (amdsmi.h).
_NOT_SUPPORTED = 2
_NO_PERM = 10
_INIT_ERROR = 18
_DRIVER_NOT_LOADED = 34
_INIT_FAILURES = {
    _DRIVER_NOT_LOADED: "amdgpu driver not loaded: no AMD GPU, or the kernel module is missing",
    _INIT_ERROR: "AMD SMI could not initialise (check `amd-smi list`)",
    _NO_PERM: "no permission to use AMD SMI: check access to /dev/kfd and /dev/dri/*",
}
_NOT_INSTALLED = "amdsmi is not installed: install wattwise[amd] (and ROCm's amd-smi-lib)"
_NO_LIBRARY = (
    "amdsmi is installed but ROCm's libamd_smi.so was not found: install amd-smi-lib "
    "or set ROCM_PATH"
)


def _describe(error: BaseException) -> str:
    """One line for an AMD SMI error: its status text (and class name)."""
    info = getattr(error, "err_info", None)
    return f"{info or str(error).strip()} ({type(error).__name__})"


def _code(error: BaseException) -> int | None:
    code = getattr(error, "err_code", None)
    return code if isinstance(code, int) else None


def visible_amd_indices(
    environ: Mapping[str, str], uuids: Sequence[str | None]
) -> tuple[list[int], str, list[str]]:
    """The devices (positions in ``uuids``, HIP order) a HIP process would see.

    Args:
        environ: the environment (``ROCR_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``,
            ``CUDA_VISIBLE_DEVICES``).
        uuids: each device's ``GPU-<uuid>``, None where unknown.

    Returns:
        The visible devices in HIP index order, which variables chose them ("" for none),
        and notes on entries that stopped a list early.
    """
    chosen = list(range(len(uuids)))
    named: list[str] = []
    notes: list[str] = []
    hip_name = "HIP_VISIBLE_DEVICES" if "HIP_VISIBLE_DEVICES" in environ else "CUDA_VISIBLE_DEVICES"
    for variable in ("ROCR_VISIBLE_DEVICES", hip_name):
        spec = environ.get(variable)
        if spec is None:
            continue
        named.append(f"{variable}={spec!r}")
        kept: list[int] = []
        for raw in spec.split(",") if spec.strip() else []:
            entry = raw.strip()
            position, why = _resolve_gpu_entry(entry, [uuids[i] for i in chosen])
            if position is not None and chosen[position] in kept:
                position, why = None, "repeats a device"
            if position is None:
                notes.append(f"{variable} entry {entry!r} {why}: ignored with every entry after it")
                break
            kept.append(chosen[position])
        chosen = kept
    return chosen, ", ".join(named), notes


@dataclass(frozen=True)
class _Device:
    position: int  # in HIP order
    handle: Any
    name: str
    uuid: str | None


class _Channel(abc.ABC):
    def __init__(self, amdsmi: Any, device: _Device, component: Component) -> None:
        self._amdsmi = amdsmi
        self.device = device
        self.component = component
        # Per-process engine time for process scope (set by _open_channel).
        self.processes: ProcessEngineShare | None = None

    @abc.abstractmethod
    def read(self, now_s: float) -> Reading:
        """The energy since the previous read, or a gap; never raises an AMD SMI error."""


class _CounterChannel(_Channel):
    """Differences of the energy accumulator (counts x resolution µJ)."""

    def __init__(
        self, amdsmi: Any, device: _Device, component: Component, first_uj: float, now_s: float
    ) -> None:
        super().__init__(amdsmi, device, component)
        self._last_uj, self._last_s, self._failing = first_uj, now_s, False

    def read(self, now_s: float) -> Reading:
        name = self.component.name
        try:
            uj = _counter_uj(self._amdsmi.amdsmi_get_energy_count(self.device.handle))
        except self._amdsmi.AmdSmiException as error:
            self._failing = True
            return Reading(
                name, None, note=f"AMD SMI energy counter unreadable: {_describe(error)}"
            )
        previous_uj, previous_s, was_failing = self._last_uj, self._last_s, self._failing
        self._last_uj, self._last_s, self._failing = uj, now_s, False
        if uj < previous_uj:
            return Reading(
                name,
                None,
                note=(
                    f"AMD SMI energy counter went backwards ({previous_uj:.0f} -> {uj:.0f} µJ): "
                    "driver reset; energy since the last good read unknown, counter re-based"
                ),
            )
        energy_j = (uj - previous_uj) * _J_PER_UJ
        if was_failing:
            return Reading(
                name,
                energy_j,
                note="AMD SMI energy counter readable again: energy since the last good read",
                since_s=previous_s,
            )
        return Reading(name, energy_j)


class _SamplingChannel(_Channel):
    """Trapezoid integration of the sampled socket power (W)."""

    def __init__(
        self, amdsmi: Any, device: _Device, component: Component, first_w: float, now_s: float
    ) -> None:
        super().__init__(amdsmi, device, component)
        self._last_w: float | None = first_w
        self._last_s = now_s

    def read(self, now_s: float) -> Reading:
        name = self.component.name
        try:
            power_w = _socket_power_w(self._amdsmi.amdsmi_get_power_info(self.device.handle))
        except self._amdsmi.AmdSmiException as error:
            power_w, why = None, _describe(error)
        else:
            why = "no socket power field is filled"
        previous_w, previous_s = self._last_w, self._last_s
        self._last_w, self._last_s = power_w, now_s
        if power_w is None:
            return Reading(name, None, note=f"AMD SMI power reading failed: {why}")
        if previous_w is None:
            return Reading(
                name, None, note="AMD SMI power readable again, but no sample opens this interval"
            )
        return Reading(name, 0.5 * (previous_w + power_w) * (now_s - previous_s))


def _counter_uj(info: Mapping[str, Any]) -> float:
    return float(info["energy_accumulator"]) * float(info["counter_resolution"])


def _socket_power_w(info: Mapping[str, Any]) -> float | None:
    """The first filled socket power field, in W (amdsmi writes "N/A" for the others)."""
    for key in ("socket_power", "current_socket_power", "average_socket_power"):
        value = info.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0xFFFF:
            return float(value)
    return None


class AmdSmiMeter(Meter):
    """Energy of the AMD GPUs visible to HIP, measured by AMD SMI.

    Args:
        amdsmi: a module with amdsmi's API; None imports ``amdsmi`` when probed or started.
            Tests pass :func:`wattwise.testing._fake_amdsmi.make_fake_amdsmi`'s module.
        environ: the environment (the visible-device variables); default ``os.environ``.
        proc_root: where ``self/status`` tells whether this process is in a pid namespace of
            its own (process scope then charges each GPU whole); default ``/proc``.
    """

    name = "amdsmi"

    def __init__(
        self,
        *,
        amdsmi: Any = None,
        environ: Mapping[str, str] | None = None,
        proc_root: str | Path = "/proc",
    ) -> None:
        self._given = amdsmi
        self._environ = environ
        self._proc_root = proc_root
        self._amdsmi: Any = None
        self._channels: list[_Channel] = []
        self._initialised = False

    def probe(self) -> Probe:
        """Open AMD SMI, find the visible GPUs and how each is metered, then close it."""
        try:
            amdsmi = self._load()
        except ImportError as error:
            return Probe(self.name, False, str(error))
        try:
            amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
        except amdsmi.AmdSmiException as error:
            return Probe(self.name, False, _init_failure(error))
        try:
            channels, reason = self._discover(amdsmi, 0.0)
        except amdsmi.AmdSmiException as error:
            return Probe(self.name, False, f"AMD SMI could not list the GPUs: {_describe(error)}")
        finally:
            _shut_down_quietly(amdsmi)
        return Probe(self.name, bool(channels), reason, tuple(c.component.name for c in channels))

    def start(self, now_s: float) -> list[Component]:
        """Open AMD SMI and take the first reading of every visible GPU.

        Raises:
            MeterUnavailable: amdsmi, ROCm, the driver or any readable GPU is missing.
            MeterPermissionError: AMD SMI refuses this process.
        """
        if self._initialised:
            self.close()
        try:
            amdsmi = self._load()
        except ImportError as error:
            raise MeterUnavailable(str(error)) from error
        try:
            amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
        except amdsmi.AmdSmiException as error:
            kind = MeterPermissionError if _code(error) == _NO_PERM else MeterUnavailable
            raise kind(_init_failure(error)) from None
        self._initialised = True
        try:
            channels, reason = self._discover(amdsmi, now_s)
        except amdsmi.AmdSmiException as error:
            self.close()
            raise MeterUnavailable(f"AMD SMI could not list the GPUs: {_describe(error)}") from None
        if not channels:
            self.close()
            raise MeterUnavailable(reason)
        self._channels = channels
        return [c.component for c in channels]

    def read(self, now_s: float) -> list[Reading]:
        """One reading per GPU; an AMD SMI failure is a gap for that GPU only."""
        if not self._initialised:
            raise MeterError("AmdSmiMeter.read() called before start() or after close()")
        return [channel.read(now_s) for channel in self._channels]

    def process_shares(self, pids: Collection[int]) -> dict[str, float]:
        """Each GPU's share used by ``pids``, from AMD SMI's per-process engine time
        (``_amd_share.py``); GPUs without it are left out, so process scope charges them
        whole."""
        return {
            c.component.name: c.processes.read(pids)
            for c in self._channels
            if c.processes is not None and c.processes.supported
        }

    def close(self) -> None:
        """Shut AMD SMI down (once; further calls do nothing)."""
        if self._initialised and self._amdsmi is not None:
            self._initialised = False
            _shut_down_quietly(self._amdsmi)

    @property
    def max_interval_s(self) -> float:
        """0.2 s while any GPU is power-sampled (or before start); else unlimited (a 64-bit
        count of 15 µJ steps does not wrap in practice). Units: s."""
        if self._channels and all(isinstance(c, _CounterChannel) for c in self._channels):
            return float("inf")
        return SAMPLING_MAX_INTERVAL_S

    # -- helpers ------------------------------------------------------------------------

    def _load(self) -> Any:
        if self._amdsmi is None:
            self._amdsmi = self._given if self._given is not None else _import_amdsmi()
        return self._amdsmi

    def _discover(self, amdsmi: Any, now_s: float) -> tuple[list[_Channel], str]:
        env = os.environ if self._environ is None else self._environ
        devices = _list_devices(amdsmi)
        visible, named, notes = visible_amd_indices(env, [d.uuid for d in devices])
        channels: list[_Channel] = []
        own_namespace = own_pid_namespace(self._proc_root)
        for hip_index, position in enumerate(visible):
            processes = ProcessEngineShare(
                amdsmi, devices[position].handle, own_namespace=own_namespace
            )
            channel, problem = _open_channel(amdsmi, devices[position], hip_index, now_s, processes)
            if channel is None:
                notes.append(f"gpu:{hip_index} skipped: {problem}")
                continue
            channels.append(channel)
            if not processes.supported:
                notes.append(
                    f"gpu:{hip_index}: process scope charges the whole device ({processes.why_not})"
                )
        if not devices:
            head = "AMD SMI is running but found no AMD GPU"
        elif not visible:
            head = f"{named} hides all {len(devices)} AMD GPU(s)"
        elif not channels:
            head = f"none of the {len(visible)} visible AMD GPU(s) can be read"
        else:
            listed = ", ".join(
                f"{c.component.name} = {c.device.name} ({c.component.source.sensor})"
                for c in channels
            )
            head = f"{len(channels)} AMD GPU(s) measured by AMD SMI: {listed}"
            if named:
                head += f" ({named}, {len(devices)} GPU(s) present)"
        return channels, "; ".join([head, *notes])


def _import_amdsmi() -> ModuleType:
    """The real ``amdsmi``; ImportError naming what is missing (the package, or ROCm)."""
    # An optional dependency: imported on use so that wattwise imports without it. Without
    # libamd_smi.so amdsmi prints to stdout and raises KeyError: keep stdout clean.
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import amdsmi
    except ModuleNotFoundError as error:
        raise ImportError(_NOT_INSTALLED) from error
    except (ImportError, OSError, KeyError, AttributeError) as error:
        raise ImportError(_NO_LIBRARY) from error
    module: ModuleType = amdsmi
    return module


def _init_failure(error: BaseException) -> str:
    known = _INIT_FAILURES.get(_code(error) or -1)
    return known or f"amdsmi_init failed: {_describe(error)}"


def _shut_down_quietly(amdsmi: Any) -> None:
    # A failed shut-down loses nothing measured: nothing to report.
    with contextlib.suppress(amdsmi.AmdSmiException):
        amdsmi.amdsmi_shut_down()


def _list_devices(amdsmi: Any) -> list[_Device]:
    """Every AMD GPU AMD SMI lists, in HIP order (raises only if the list itself fails)."""
    found: list[tuple[int, _Device]] = []
    # amdsmi_get_gpu_enumeration_info is new in amdsmi 6.4: older modules lack it.
    enumeration = getattr(amdsmi, "amdsmi_get_gpu_enumeration_info", None)
    for position, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
        order, uuid = position, None
        with contextlib.suppress(amdsmi.AmdSmiException):
            if enumeration is None:
                raise amdsmi.AmdSmiException("no enumeration info")
            info = enumeration(handle)
            if isinstance(info.get("hip_id"), int):
                order = info["hip_id"]
            text = str(info.get("hip_uuid") or "")
            uuid = text if text.upper().startswith("GPU-") else (f"GPU-{text}" if text else None)
        try:
            name = str(amdsmi.amdsmi_get_gpu_asic_info(handle).get("market_name") or "AMD GPU")
        except amdsmi.AmdSmiException:
            name = "AMD GPU"
        found.append((order, _Device(position, handle, name, uuid)))
    found.sort(key=lambda pair: pair[0])
    return [device for _, device in found]


def _open_channel(
    amdsmi: Any, device: _Device, hip_index: int, now_s: float, processes: ProcessEngineShare
) -> tuple[_Channel | None, str]:
    """The channel for one GPU, preferring the energy accumulator, or None and why."""
    detail = f"{device.name}, amdsmi handle {device.position}, uuid {device.uuid}"
    scope = f"process scope: {processes.basis}"

    def component(sensor: str, edge_s: float, extra: str) -> Component:
        return Component(
            name=f"gpu:{hip_index}",
            kind=ComponentKind.GPU,
            source=Source(Method.MEASURED, sensor, f"{detail}; {extra}; {scope}"),
            device=str(device.position),
            relative_uncertainty=AMDSMI_RELATIVE_UNCERTAINTY,
            edge_uncertainty_s=edge_s,
        )

    channel: _Channel
    try:
        info = amdsmi.amdsmi_get_energy_count(device.handle)
        resolution = float(info["counter_resolution"])
        extra = f"counter resolution {resolution:g} µJ"
        component_ = component(SENSOR_COUNTER, COUNTER_UPDATE_S, extra)
        channel = _CounterChannel(amdsmi, device, component_, _counter_uj(info), now_s)
    except amdsmi.AmdSmiException as error:
        if _code(error) != _NOT_SUPPORTED:
            return None, f"energy counter unreadable: {_describe(error)}"
        try:
            first_w = _socket_power_w(amdsmi.amdsmi_get_power_info(device.handle))
        except amdsmi.AmdSmiException as error:
            return None, f"no energy counter and no power reading: {_describe(error)}"
        if first_w is None:
            return None, "no energy counter and no socket power field"
        extra = "no energy counter (a VM guest?): socket power sampled"
        component_ = component(SENSOR_SAMPLING, SAMPLING_EDGE_S, extra)
        channel = _SamplingChannel(amdsmi, device, component_, first_w, now_s)
    channel.processes = processes
    return channel, ""
