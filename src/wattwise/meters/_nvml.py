"""NVIDIA GPU energy through NVML (the ``pynvml`` module of ``nvidia-ml-py``).

Each GPU visible to CUDA is one component, ``gpu:<cuda index>``, measured one of two ways:

* ``nvml-energy-counter``: ``nvmlDeviceGetTotalEnergyConsumption``, the board's energy in mJ
  since the driver was loaded (Volta and newer). Reads are differences of the counter.
* ``nvml-power-sampling``: where the counter is not supported (``NVMLError_NotSupported``,
  pre-Volta), ``nvmlDeviceGetPowerUsage`` in mW is sampled at every read and integrated with
  the trapezoid rule between consecutive samples.

This module is the only place that talks to NVML: raw units are converted here, once
(mJ -> J, mW -> W), and every ``NVMLError`` is turned into a :class:`~wattwise.MeterError`
(``start``), an unavailable :class:`Probe` (``probe``) or a gap reading (``read``).

Which GPUs are visible follows ``CUDA_VISIBLE_DEVICES`` as the CUDA runtime documents it (CUDA
C Programming Guide, "CUDA Environment Variables"): a comma-separated list of device indices
or ``GPU-<uuid>`` prefixes long enough to be unique; the list is enumerated in its order; an
invalid entry hides itself and every entry after it (``0,2,-1,1`` shows devices 0 and 2); an
empty value shows no device. Integer entries are read as NVML indices, which NVML orders by
PCI bus id; CUDA numbers devices fastest-first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so on
a machine with mixed GPU models the two can differ (the probe's reason then says so). The
resolution is ``_cuda_visible.py``'s. Where ``CUDA_VISIBLE_DEVICES`` is unset, SLURM's GPU
list is used the same way (``_allocation.py``).

Process scope: each board's per-process utilisation samples give the process tree's share
of it (:meth:`NvmlMeter.process_shares`, ``_gpu_share.py``); the whole device where the
driver gives none, and the component's detail says which.

MIG: NVML meters boards, not MIG instances. A ``MIG-<uuid>`` entry (or the older
``MIG-GPU-<uuid>/<gi>/<ci>``) is metered as its slice share of the parent board and labelled
so, with the split's uncertainty added; a board in MIG mode seen whole (no MIG entry, e.g.
``CUDA_VISIBLE_DEVICES`` unset under the Kubernetes device plugin) is charged whole, and the
probe and the component say so. See docs/meters-nvml.md.

Why one module of ~610 lines: discovery (devices, MIG instances, channels), the two ways of
metering (counter, power sampling) and the probe's reasons share the NVML handles and error
handling; ``CUDA_VISIBLE_DEVICES`` resolution, which does not, is in ``_cuda_visible.py``.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from wattwise._errors import MeterError, MeterPermissionError, MeterUnavailable
from wattwise.meters._allocation import Allocation, read_allocation
from wattwise.meters._base import Component, ComponentKind, Meter, Method, Probe, Reading, Source
from wattwise.meters._cuda_visible import MigInstance, _visible_targets, visible_nvml_indices
from wattwise.meters._gpu_share import ProcessUtilisationShare

__all__ = ["MigInstance", "NvmlMeter", "visible_nvml_indices"]

SENSOR_COUNTER = "nvml-energy-counter"
SENSOR_SAMPLING = "nvml-power-sampling"

_J_PER_MJ = 1e-3  # NVML energy counter unit: mJ
_W_PER_MW = 1e-3  # NVML power usage unit: mW

# NVML API reference, nvmlDeviceGetPowerUsage: "On Fermi and Kepler GPUs the reading is
# accurate to within +/- 5% of current power draw." That is the only accuracy NVIDIA
# documents, and only for those two generations (which current drivers no longer support).
# For Volta and newer (every board with the energy counter) nothing is documented, and Yang
# et al. ("Part-time power measurements: nvidia-smi's lack of attention", arXiv 2312.02741)
# found, on 70+ GPUs against an external meter, that A100 and H100 sample power only about
# 25% of the time, so a workload whose power changes faster than the sampling is under- or
# over-counted; their mitigations cut the energy error by 35% on average and up to 65%,
# i.e. the raw error is well above 5% in those cases. 10% one-sigma is used for every NVML
# reading: twice the only documented bound, for boards whose sampling is known to be partial.
NVML_RELATIVE_UNCERTAINTY = 0.10

# The energy counter is published in steps of about 20-100 ms (Yang et al.): a read returns
# the value of the last update, so each edge of a span can be up to one step stale. The
# counter's components carry the upper end, 0.1 s, as their edge uncertainty: a window
# shorter than a few steps gets an uncertainty of the order of its whole energy.
COUNTER_UPDATE_S = 0.1

# nvmlDeviceGetPowerUsage returns, on Ampere (except GA100) and newer, the power averaged
# over the last 1 s (NVML reference), and on older boards a value refreshed every 1/6-1 s:
# a sample describes the power about 0.5 s before it is taken. Rather than shift sample times
# (right only for the averaging boards), the sampling components carry 0.5 s as their edge
# uncertainty, which covers both.
SAMPLING_EDGE_S = 0.5

# Power sampling loses whatever happens between two samples, so reads must be frequent. The
# NVML documentation (nvmlDeviceGetSamples, and torch.cuda.power_draw quoting it) says the
# board's power sample period is between 1/6 s and 1 s depending on the product: polling much
# faster than 1/6 s mostly re-reads the same value, polling slower drops sensor updates on the
# fastest boards. 0.2 s is just above the fastest period; one NVML call per GPU five times a
# second costs the sampler thread well under 1% of a core.
SAMPLING_MAX_INTERVAL_S = 0.2

# The energy counter is an unsigned 64-bit count of mJ: at 1 kW it wraps after ~585 000
# years, so no read interval loses energy; the sampler's own period decides the resolution.
COUNTER_MAX_INTERVAL_S = float("inf")

_INSTALL_HINT = "pynvml is not installed: install wattwise[nvidia]"

# Why nvmlInit fails, keyed by pynvml's error class name, and what to do about it.
_INIT_FAILURES = {
    "NVMLError_LibraryNotFound": (
        "NVML library (libnvidia-ml.so.1 / nvml.dll) not found: no NVIDIA driver is installed"
    ),
    "NVMLError_DriverNotLoaded": (
        "NVIDIA driver not loaded: no NVIDIA GPU, or the kernel module is missing "
        "(check `nvidia-smi`)"
    ),
    "NVMLError_LibRmVersionMismatch": (
        "NVML library and kernel driver versions differ: reboot or reload the nvidia module"
    ),
    "NVMLError_NoPermission": "no permission to use NVML: check access to /dev/nvidia*",
}


def _describe(error: BaseException) -> str:
    """One line for an NVML error: its message and its pynvml class name."""
    return f"{error} ({type(error).__name__})"


@dataclass(frozen=True)
class _Device:
    """What NVML says about one device at discovery (handle None when it could not be opened)."""

    nvml_index: int
    handle: Any
    name: str
    uuid: str | None
    error: str | None = None
    mig_mode: bool = False
    migs: tuple[MigInstance, ...] = ()


class _Channel(abc.ABC):
    """The reading logic of one GPU component."""

    def __init__(self, nvml: ModuleType, device: _Device, component: Component) -> None:
        self._nvml = nvml
        self._handle = device.handle
        self.device = device
        self.component = component
        self.share = 1.0  # the part of the board's energy charged (a MIG instance's slices)
        # Per-process utilisation samples for process scope (None on a MIG instance).
        self.processes: ProcessUtilisationShare | None = None

    @abc.abstractmethod
    def read(self, now_s: float) -> Reading:
        """The energy since the previous read, or a gap; never raises an NVMLError."""


class _CounterChannel(_Channel):
    """Differences of the board's cumulative energy counter (mJ since driver load)."""

    def __init__(
        self,
        nvml: ModuleType,
        device: _Device,
        component: Component,
        first_mj: int,
        now_s: float,
    ) -> None:
        super().__init__(nvml, device, component)
        self._last_mj = first_mj
        self._last_s = now_s
        self._failing = False

    def read(self, now_s: float) -> Reading:
        name = self.component.name
        try:
            mj = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError as error:
            self._failing = True
            return Reading(name, None, note=f"NVML energy counter unreadable: {_describe(error)}")
        previous_mj, previous_s, was_failing = self._last_mj, self._last_s, self._failing
        self._last_mj, self._last_s, self._failing = mj, now_s, False
        if mj < previous_mj:
            # The counter only restarts when the driver is reloaded: what was used between
            # the last good read and the reload is lost.
            return Reading(
                name,
                None,
                note=(
                    f"NVML energy counter went backwards ({previous_mj} -> {mj} mJ): driver "
                    "reset; energy since the last good read unknown, counter re-based"
                ),
            )
        energy_j = (mj - previous_mj) * _J_PER_MJ * self.share
        if was_failing:
            # Still monotonic: the counter kept counting while it could not be read, so the
            # whole energy since the last good read is known (a reload that happened in the
            # gap and counted back past the old value is not detectable; see the docs).
            return Reading(
                name,
                energy_j,
                note="NVML energy counter readable again: energy since the last good read",
                since_s=previous_s,
            )
        return Reading(name, energy_j)


class _SamplingChannel(_Channel):
    """Trapezoid integration of sampled board power (mW)."""

    def __init__(
        self,
        nvml: ModuleType,
        device: _Device,
        component: Component,
        first_w: float,
        now_s: float,
    ) -> None:
        super().__init__(nvml, device, component)
        self._last_w: float | None = first_w
        self._last_s = now_s

    def read(self, now_s: float) -> Reading:
        name = self.component.name
        try:
            power_w = int(self._nvml.nvmlDeviceGetPowerUsage(self._handle)) * _W_PER_MW
        except self._nvml.NVMLError as error:
            self._last_w = None
            return Reading(name, None, note=f"NVML power reading failed: {_describe(error)}")
        previous_w, previous_s = self._last_w, self._last_s
        self._last_w, self._last_s = power_w, now_s
        if previous_w is None:
            return Reading(
                name,
                None,
                note="NVML power readable again, but no sample opens this interval: unknown",
            )
        return Reading(name, 0.5 * (previous_w + power_w) * (now_s - previous_s) * self.share)


@dataclass
class _Discovery:
    """The outcome of opening NVML and the visible devices."""

    channels: list[_Channel]
    reason: str


class NvmlMeter(Meter):
    """Energy of the NVIDIA GPUs visible to CUDA, measured by NVML.

    Args:
        nvml: a module with pynvml's API; None imports ``pynvml`` when the meter is probed or
            started. Tests pass :func:`wattwise.testing.make_fake_nvml`'s module.
        environ: the environment (``CUDA_VISIBLE_DEVICES``, SLURM's GPUs); default
            ``os.environ``, read at each probe and start.
        allocation: what the job was given (:attr:`Allocation.gpus` names its GPUs);
            default: :func:`read_allocation` of ``environ``.

    The constructor only stores its argument; NVML is opened by :meth:`probe` (and closed
    again) and by :meth:`start` (closed by :meth:`close`).
    """

    name = "nvml"

    def __init__(
        self,
        *,
        nvml: ModuleType | None = None,
        environ: Mapping[str, str] | None = None,
        allocation: Allocation | None = None,
    ) -> None:
        self._nvml_given = nvml
        self._environ = environ
        self._allocation = allocation
        self._nvml: ModuleType | None = None
        self._channels: list[_Channel] = []
        self._initialised = False

    # -- contract -----------------------------------------------------------------------

    def probe(self) -> Probe:
        """Open NVML, find the visible GPUs and how each is metered, then close NVML."""
        try:
            nvml = self._load()
        except ImportError:
            return Probe(self.name, False, _INSTALL_HINT)
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            return Probe(self.name, False, _init_failure(error))
        try:
            found = _discover(nvml, 0.0, *self._gpus())
        except nvml.NVMLError as error:
            return Probe(self.name, False, f"NVML could not list the GPUs: {_describe(error)}")
        finally:
            _shutdown_quietly(nvml)
        names = tuple(c.component.name for c in found.channels)
        return Probe(self.name, bool(found.channels), found.reason, names)

    def start(self, now_s: float) -> list[Component]:
        """Open NVML and take the first reading of every visible GPU.

        Raises:
            MeterUnavailable: pynvml, the driver or any readable visible GPU is missing.
            MeterPermissionError: NVML refuses this process.
        """
        if self._initialised:
            self.close()
        try:
            nvml = self._load()
        except ImportError as error:
            raise MeterUnavailable(_INSTALL_HINT) from error
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            kind = (
                MeterPermissionError
                if type(error).__name__ == "NVMLError_NoPermission"
                else MeterUnavailable
            )
            raise kind(_init_failure(error)) from None
        self._initialised = True
        try:
            found = _discover(nvml, now_s, *self._gpus())
        except nvml.NVMLError as error:
            self.close()
            raise MeterUnavailable(f"NVML could not list the GPUs: {_describe(error)}") from None
        if not found.channels:
            self.close()
            raise MeterUnavailable(found.reason)
        self._channels = found.channels
        return [c.component for c in self._channels]

    def read(self, now_s: float) -> list[Reading]:
        """One reading per GPU; an NVML failure is a gap for that GPU only."""
        if not self._initialised:
            raise MeterError("NvmlMeter.read() called before start() or after close()")
        return [channel.read(now_s) for channel in self._channels]

    def process_shares(self, pids: Collection[int]) -> dict[str, float]:
        """Each shared GPU's share used by ``pids``, from NVML's per-process utilisation
        samples (``_gpu_share.py``); GPUs without samples (MIG, older boards) are left out,
        so process scope charges them whole."""
        return {
            c.component.name: c.processes.read(pids)
            for c in self._channels
            if c.processes is not None and c.processes.supported
        }

    def close(self) -> None:
        """Shut NVML down (once; further calls do nothing)."""
        if self._initialised and self._nvml is not None:
            self._initialised = False
            _shutdown_quietly(self._nvml)

    @property
    def max_interval_s(self) -> float:
        """0.2 s while any GPU is power-sampled (or before start, when that is unknown);
        unlimited when every GPU has an energy counter. Units: s."""
        if self._channels and all(isinstance(c, _CounterChannel) for c in self._channels):
            return COUNTER_MAX_INTERVAL_S
        return SAMPLING_MAX_INTERVAL_S

    # -- helpers ------------------------------------------------------------------------

    def _gpus(self) -> tuple[str | None, str, Mapping[str, str]]:
        """The ``CUDA_VISIBLE_DEVICES``-form list of the job's GPUs, its origin, the env."""
        env = os.environ if self._environ is None else self._environ
        allocation = self._allocation or read_allocation(environ=env)
        return allocation.gpus, allocation.gpus_from, env

    def _load(self) -> ModuleType:
        if self._nvml is None:
            if self._nvml_given is not None:
                self._nvml = self._nvml_given
            else:
                self._nvml = _import_pynvml()
        return self._nvml


def _import_pynvml() -> ModuleType:
    """The real ``pynvml`` (raises ImportError without ``wattwise[nvidia]``)."""
    # An optional dependency: imported on use so that wattwise imports without it.
    import pynvml

    module: ModuleType = pynvml
    return module


def _init_failure(error: BaseException) -> str:
    known = _INIT_FAILURES.get(type(error).__name__)
    return known or f"nvmlInit failed: {_describe(error)}"


def _shutdown_quietly(nvml: ModuleType) -> None:
    # A failed shutdown cannot be retried and loses nothing measured: nothing to report.
    with contextlib.suppress(nvml.NVMLError):
        nvml.nvmlShutdown()


def _discover(
    nvml: ModuleType, now_s: float, spec: str | None, origin: str, env: Mapping[str, str]
) -> _Discovery:
    """List NVML's devices, apply the job's GPU list and open a channel per visible GPU.

    Args:
        spec: the GPUs in ``CUDA_VISIBLE_DEVICES`` form (None: all), from ``origin``.

    Raises:
        NVMLError: only when the device count itself cannot be read.
    """
    devices = [_open_device(nvml, i) for i in range(int(nvml.nvmlDeviceGetCount()))]
    migs = [m for d in devices for m in d.migs]
    visible, stop_note = _visible_targets(spec, [d.uuid for d in devices], migs)
    notes = [stop_note] if stop_note else []
    channels: list[_Channel] = []
    for cuda_index, (nvml_index, mig) in enumerate(visible):
        device = devices[nvml_index]
        label = f"gpu:{cuda_index} (nvml {nvml_index})"
        if device.error is not None:
            notes.append(f"{label} skipped: {device.error}")
            continue
        channel, problem = _open_channel(nvml, device, f"gpu:{cuda_index}", now_s, mig)
        if channel is None:
            notes.append(f"{label} skipped: {problem}")
            continue
        channels.append(channel)
        if channel.processes is not None and not channel.processes.supported:
            notes.append(f"{label}: process scope charges the whole device ({_NO_SAMPLES})")
        if mig is not None:
            notes.append(f"{label}: {_mig_label(device, mig)}")
        elif device.mig_mode:
            notes.append(f"{label}: {_WHOLE_BOARD}")
    if spec is None or not spec.upper().startswith(("GPU-", "MIG-")):
        models = {d.name for d in devices if d.error is None}
        if len(models) > 1 and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
            notes.append(
                "GPU models differ and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA may number "
                "them fastest-first, unlike NVML; set CUDA_DEVICE_ORDER=PCI_BUS_ID"
            )
    reason = _reason(devices, [i for i, _ in visible], channels, (spec, origin), notes)
    return _Discovery(channels, reason)


_NO_SAMPLES = "the driver gives no per-process utilisation samples"

_WHOLE_BOARD = (
    "MIG mode is on and no MIG device is named in CUDA_VISIBLE_DEVICES: the whole board's "
    "energy, every MIG instance's (other jobs' too), is charged to this job; set "
    "CUDA_VISIBLE_DEVICES to this job's MIG UUID (`nvidia-smi -L`) to attribute by slices"
)


def _open_device(nvml: ModuleType, index: int) -> _Device:
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = str(nvml.nvmlDeviceGetName(handle))
        uuid = str(nvml.nvmlDeviceGetUUID(handle))
    except nvml.NVMLError as error:
        return _Device(index, None, "?", None, error=_describe(error))
    try:
        mig_mode = nvml.nvmlDeviceGetMigMode(handle)[0] == nvml.NVML_DEVICE_MIG_ENABLE
    except nvml.NVMLError:
        mig_mode = False  # NotSupported: a GPU without MIG
    migs = _list_migs(nvml, index, handle, uuid) if mig_mode else ()
    return _Device(index, handle, name, uuid, mig_mode=mig_mode, migs=migs)


def _list_migs(nvml: ModuleType, index: int, handle: Any, uuid: str) -> tuple[MigInstance, ...]:
    """The MIG devices of a GPU in MIG mode (unreadable ones left out)."""
    total = _total_slices(nvml, handle)
    found: list[MigInstance] = []
    try:
        count = int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))
    except nvml.NVMLError:
        return ()
    for slot in range(count):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            mig_uuid = str(nvml.nvmlDeviceGetUUID(mig))
            name = str(nvml.nvmlDeviceGetName(mig))
            slices = int(nvml.nvmlDeviceGetAttributes(mig).gpuInstanceSliceCount)
        except nvml.NVMLError:
            continue  # NotFound: an unused slot
        keys = [mig_uuid]
        try:
            gi = int(nvml.nvmlDeviceGetGpuInstanceId(mig))
            ci = int(nvml.nvmlDeviceGetComputeInstanceId(mig))
            keys.append(f"MIG-{uuid}/{gi}/{ci}")  # the pre-R470 spelling
        except nvml.NVMLError:
            pass
        profile = name.rsplit(" MIG ", 1)[1] if " MIG " in name else f"{slices} slice(s)"
        found.append(MigInstance(index, mig_uuid, tuple(keys), profile, slices, total))
    return tuple(found)


def _total_slices(nvml: ModuleType, handle: Any) -> int | None:
    """A MIG-capable GPU's slice count: the largest GPU instance profile it supports."""
    counts = []
    for profile in range(int(nvml.NVML_GPU_INSTANCE_PROFILE_COUNT)):
        try:
            counts.append(int(nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, profile).sliceCount))
        except nvml.NVMLError:
            continue
    return max(counts, default=None)


def _mig_label(device: _Device, mig: MigInstance) -> str:
    share = mig.share
    if share is None:
        return (
            f"MIG {mig.profile}: GPU {device.nvml_index}'s whole board energy (its slice count "
            "is unknown), shared with every other MIG instance on it"
        )
    return (
        f"MIG {mig.profile}: {mig.slices}/{mig.total_slices} of GPU {device.nvml_index}'s "
        "board energy, attributed by slices (the board's energy is shared by its MIG instances)"
    )


def _open_channel(
    nvml: ModuleType,
    device: _Device,
    name: str,
    now_s: float,
    mig: MigInstance | None = None,
) -> tuple[_Channel | None, str]:
    """The channel for one device, preferring the energy counter, or None and why."""
    detail = f"{device.name}, nvml index {device.nvml_index}, uuid {device.uuid}"
    uncertainty = NVML_RELATIVE_UNCERTAINTY
    share = 1.0
    processes = None if mig is not None else ProcessUtilisationShare(nvml, device.handle)
    if mig is not None:
        detail = f"{_mig_label(device, mig)}; {mig.uuid} on {detail}"
        # What the other instances draw is not known: the instance's true part of the board
        # can be anywhere from nothing to all of it. (1 - share) one-sigma, added in
        # quadrature to the sensor's: a 3/7 instance is +-58%, a whole-GPU instance +-10%.
        share = mig.share if mig.share is not None else 1.0
        uncertainty = math.hypot(NVML_RELATIVE_UNCERTAINTY, 1.0 - share)
    elif device.mig_mode:
        detail = f"{_WHOLE_BOARD}; {detail}"
    detail = f"{detail}; process scope: {_process_basis(processes)}"

    def component(sensor: str, edge_s: float) -> Component:
        return Component(
            name=name,
            kind=ComponentKind.GPU,
            source=Source(Method.MEASURED, sensor, detail),
            device=str(device.nvml_index),
            relative_uncertainty=uncertainty,
            edge_uncertainty_s=edge_s,
        )

    channel: _Channel
    try:
        first_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(device.handle))
        channel = _CounterChannel(
            nvml, device, component(SENSOR_COUNTER, COUNTER_UPDATE_S), first_mj, now_s
        )
    except nvml.NVMLError_NotSupported:
        try:  # pre-Volta: fall back to sampling power
            first_w = int(nvml.nvmlDeviceGetPowerUsage(device.handle)) * _W_PER_MW
        except nvml.NVMLError as error:
            return None, f"no energy counter and no power reading: {_describe(error)}"
        channel = _SamplingChannel(
            nvml, device, component(SENSOR_SAMPLING, SAMPLING_EDGE_S), first_w, now_s
        )
    except nvml.NVMLError as error:
        return None, f"energy counter unreadable: {_describe(error)}"
    channel.share = share
    channel.processes = processes
    return channel, ""


def _process_basis(processes: ProcessUtilisationShare | None) -> str:
    """How process scope attributes this GPU, for the component's detail."""
    if processes is None:
        return "the MIG instance's slice share (NVML gives no per-process utilisation for it)"
    if processes.supported:
        return "the process tree's share of NVML's per-process SM utilisation samples"
    return f"the whole device (the driver gives no per-process utilisation: {processes.why_not})"


def _reason(
    devices: list[_Device],
    visible: list[int],
    channels: list[_Channel],
    given: tuple[str | None, str],
    notes: list[str],
) -> str:
    """The probe's one line: what is measured and how, or why nothing is."""
    spec, origin = given
    if not devices:
        head = "NVML is running but found no NVIDIA GPU"
    elif not visible:
        head = f"{_given(spec, origin)} hides all {len(devices)} NVIDIA GPU(s)"
    elif not channels:
        head = f"none of the {len(visible)} visible NVIDIA GPU(s) can be read"
    else:
        listed = ", ".join(
            f"{c.component.name} = {c.device.name} "
            f"(nvml {c.device.nvml_index}, {c.component.source.sensor})"
            for c in channels
        )
        head = f"{len(channels)} NVIDIA GPU(s) measured by NVML: {listed}"
        if spec is not None:
            head += f" ({_given(spec, origin)}, {len(devices)} GPU(s) present)"
    return "; ".join([head, *notes])


def _given(spec: str | None, origin: str) -> str:
    """How the job's GPU list is named in a reason: the variable it comes from."""
    if origin == "CUDA_VISIBLE_DEVICES":
        return f"CUDA_VISIBLE_DEVICES={spec!r}"
    return f"{origin}: {spec!r}"
