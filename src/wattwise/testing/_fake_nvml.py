"""A faithful fake of the ``pynvml`` module, backed by a small simulated NVML driver.

Use it to test code that talks to NVML on a machine without an NVIDIA GPU::

    from wattwise.testing import FakeGpu, make_fake_nvml

    fake = make_fake_nvml([FakeGpu(name="Tesla V100"), FakeGpu(energy_counter=False)])
    meter = NvmlMeter(nvml=fake.module)      # fake.module stands in for `import pynvml`
    meter.start(0.0)
    fake.advance(1.0, power_w=200.0)         # both GPUs draw 200 W for 1 s
    meter.read(1.0)                          # -> 200 J each
    fake.fail(0, pynvml.NVMLError_GpuIsLost) # GPU 0 falls off the bus: calls on it raise
    fake.recover(0)
    fake.reset(1)                            # driver reload: GPU 1's counter restarts at 0
    fake.set_processes(0, {4242: 0.6, 4343: 0.2})  # two processes share GPU 0's SMs
    fake.advance(1.0)                        # -> 6 per-process utilisation samples each

How faithful it is:

* ``fake.module`` has exactly pynvml's names. Constants (``NVML_*``), the ``NVMLError``
  classes and the ctypes structures are pynvml's own objects. Every function is built with
  :func:`unittest.mock.create_autospec` from the real one, so a misspelt function raises
  ``AttributeError`` and a call with the wrong arguments raises ``TypeError``, as with the
  real module; and each records its calls (``fake.module.nvmlShutdown.call_count``).
* The functions listed in :data:`SIMULATED` answer from the simulated driver, with NVML's
  units (energy in mJ as an ``int``, power in mW as an ``int``) and NVML's errors:
  ``NVMLError_Uninitialized`` before ``nvmlInit`` and after the matching ``nvmlShutdown``
  (initialisation is reference-counted, as in NVML), ``NVMLError_InvalidArgument`` for a bad
  index or a handle from elsewhere, ``NVMLError_NotFound`` for an unknown UUID,
  ``NVMLError_NotSupported`` for a counter or sensor the GPU lacks.
* Per-process utilisation (``nvmlDeviceGetProcessUtilization``) as the driver keeps it: a
  sample every ``FakeGpu.utilisation_sample_s`` of simulated time (1/6 s, the fastest
  documented period), one ``c_nvmlProcessUtilizationSample_t`` per process with non-zero
  utilisation in it, stamped with a CPU timestamp in µs; a call returns the samples newer
  than its ``timeStamp`` argument, ``NVMLError_NotFound`` when there are none (an idle GPU),
  ``NVMLError_NotSupported`` where the GPU does not give them (``process_samples=False``),
  in MIG mode and on MIG device handles, as real drivers do; the driver keeps only the
  latest :data:`PROCESS_SAMPLE_BUFFER` samples. In MIG mode ``nvmlDeviceGetUtilizationRates``
  is ``NotSupported`` too.
* Any other function raises ``NotImplementedError`` naming itself; give it behaviour with
  ``fake.module.nvmlDeviceGetClockInfo.side_effect = ...`` (or ``.return_value``).

Functions are autospec'd one by one, on first use, rather than by autospeccing the whole
module: the whole module (about 450 functions) takes ~0.1 s per fake, which adds up to
seconds over a test suite, and would turn the constants and error classes into mocks.

Needs ``nvidia-ml-py`` (``pip install wattwise[nvidia]``); no NVIDIA driver or GPU.

Why one module of ~650 lines: it is one simulated driver, :class:`FakeNvml`, with one
method per simulated NVML function; they share the driver's state and its lock.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from unittest import mock

import pynvml

__all__ = ["PROCESS_SAMPLE_BUFFER", "SIMULATED", "FakeGpu", "FakeMig", "FakeNvml", "make_fake_nvml"]

#: The pynvml functions the simulated driver answers.
SIMULATED = (
    "nvmlInit",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetProcessUtilization",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceIsMigDeviceHandle",
    "nvmlDeviceGetAttributes",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetComputeInstanceId",
    "nvmlDeviceGetGpuInstanceProfileInfo",
)

# Slice counts of the base GPU instance profiles (the REV/GFX/NO_ME variants are not simulated).
_PROFILE_SLICES = {
    pynvml.NVML_GPU_INSTANCE_PROFILE_1_SLICE: 1,
    pynvml.NVML_GPU_INSTANCE_PROFILE_2_SLICE: 2,
    pynvml.NVML_GPU_INSTANCE_PROFILE_3_SLICE: 3,
    pynvml.NVML_GPU_INSTANCE_PROFILE_4_SLICE: 4,
    pynvml.NVML_GPU_INSTANCE_PROFILE_7_SLICE: 7,
    pynvml.NVML_GPU_INSTANCE_PROFILE_8_SLICE: 8,
    pynvml.NVML_GPU_INSTANCE_PROFILE_6_SLICE: 6,
}

#: How many per-process utilisation samples the simulated driver keeps per GPU.
PROCESS_SAMPLE_BUFFER = 120

_UUID_NAMESPACE = uuidlib.UUID("4f2d1c1e-8a7b-4f6e-9a51-3c0de0a11b7e")

ErrorSpec = type[Exception] | Exception
"""An error to raise: an exception class (a fresh instance each time) or an instance."""


@dataclass(frozen=True)
class FakeMig:
    """One MIG device (a GPU instance with one compute instance) on a simulated GPU.

    Attributes:
        profile: the profile name NVML puts in the device name, e.g. ``"3g.40gb"``.
        slices: the GPU instance's slice count (``gpuInstanceSliceCount``).
        gpu_instance_id: its GPU instance id (``nvmlDeviceGetGpuInstanceId``).
        compute_instance_id: its compute instance id.
        uuid: ``MIG-<uuid>``; empty: a fixed UUID derived from the parent and instance ids.
    """

    profile: str = "3g.40gb"
    slices: int = 3
    gpu_instance_id: int = 1
    compute_instance_id: int = 0
    uuid: str = ""


@dataclass
class FakeGpu:
    """One simulated GPU and its state.

    Attributes:
        name: the model name NVML reports.
        uuid: ``GPU-<uuid>``; empty: a fixed UUID derived from the NVML index.
        energy_counter: whether ``nvmlDeviceGetTotalEnergyConsumption`` is supported
            (Volta and newer); False raises ``NVMLError_NotSupported`` as pre-Volta boards do.
        power_sensor: whether ``nvmlDeviceGetPowerUsage`` is supported.
        power_w: the board's current power draw, in W.
        energy_mj: the energy counter, in mJ since the (simulated) driver load.
        counter_update_s: how often the energy counter is updated, in s; 0 (the default):
            continuously. Real boards step it every ~20-100 ms: between updates a read
            returns the last published value.
        sampled_fraction: the part of each update period in which the power sensor samples
            (0..1]. A100 and H100 sample only about a quarter of the time (Yang et al.,
            arXiv 2312.02741): each update adds the mean power of the period's last
            ``sampled_fraction * counter_update_s`` seconds times the whole period, so what
            happens in the unsampled part is never seen. Only used with ``counter_update_s``.
        mig_mode: ``nvmlDeviceGetMigMode``'s current mode: None for a GPU without MIG
            (``NVMLError_NotSupported``), False for MIG disabled, True for enabled.
        mig_devices: the MIG devices (only listed while ``mig_mode`` is True).
        total_slices: the GPU's slice count (7 on A100/H100, 4 on A30).
        utilisation_frac: the share of the last sample period a kernel ran (0..1), what
            ``nvmlDeviceGetUtilizationRates`` reports as whole percent.
        power_limit_w: the enforced power limit, in W.
        memory_total_bytes: the board's memory, in bytes.
        memory_used_bytes: the memory in use, in bytes.
        processes: the processes running on it: pid -> the share of each sample period
            their kernels ran on the SMs (0..1); what per-process samples report.
        process_samples: whether the GPU gives per-process utilisation samples (Maxwell
            and newer); False raises ``NVMLError_NotSupported``.
        utilisation_sample_s: the driver's utilisation sample period, in s.
    """

    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = ""
    energy_counter: bool = True
    power_sensor: bool = True
    power_w: float = 50.0
    energy_mj: float = 1_000_000.0
    counter_update_s: float = 0.0
    sampled_fraction: float = 1.0
    mig_mode: bool | None = None
    mig_devices: tuple[FakeMig, ...] = ()
    total_slices: int = 7
    utilisation_frac: float = 0.0
    power_limit_w: float = 400.0
    memory_total_bytes: int = 40 * 2**30
    memory_used_bytes: int = 0
    processes: dict[int, float] = dataclasses.field(default_factory=dict)
    process_samples: bool = True
    utilisation_sample_s: float = 1.0 / 6.0
    # Per-process samples kept by the driver: (timestamp µs, pid, SM %, memory %).
    _samples: list[tuple[int, int, int, int]] = dataclasses.field(
        default_factory=list, init=False, repr=False, compare=False
    )
    _since_sample_s: float = dataclasses.field(default=0.0, init=False, repr=False, compare=False)
    # Power drawn so far in the current counter update period: (seconds, W) segments.
    _period: list[tuple[float, float]] = dataclasses.field(
        default_factory=list, init=False, repr=False, compare=False
    )


@dataclass(frozen=True)
class _FakeHandle:
    """Stands in for pynvml's ``c_nvmlDevice_t`` pointer."""

    owner: int
    index: int
    mig: int | None = None  # position in the GPU's mig_devices, for a MIG device handle


def _raise(error: ErrorSpec) -> NoReturn:
    raise error() if isinstance(error, type) else error


def _unsimulated(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"FakeNvml does not simulate {name}; set fake.module.{name}.side_effect "
            "or .return_value in your test"
        )

    return refuse


class _FakeModule(types.ModuleType):
    """pynvml's namespace: real constants and classes, autospec'd functions."""

    def __init__(self, simulated: dict[str, Callable[..., Any]]) -> None:
        super().__init__("pynvml", "A fake of pynvml backed by wattwise's simulated driver.")
        self.__dict__["_simulated"] = simulated

    def __getattr__(self, name: str) -> Any:
        # Only called for names not set yet: resolve them against the real module.
        if name.startswith("__"):
            raise AttributeError(name)
        original = getattr(pynvml, name)  # AttributeError for a name pynvml lacks
        if isinstance(original, types.FunctionType):
            behaviour = self.__dict__["_simulated"].get(name) or _unsimulated(name)
            value: Any = mock.create_autospec(original, side_effect=behaviour)
        else:
            value = original
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # As with spec_set: only names the real module has may be (re)placed.
        if not hasattr(pynvml, name):
            raise AttributeError(f"pynvml has no attribute {name!r}")
        super().__setattr__(name, value)


class FakeNvml:
    """A simulated NVML driver and the fake ``pynvml`` module (:attr:`module`) it backs.

    Args:
        gpus: how many default GPUs, or their descriptions (copied), in NVML index order.
        init_error: makes ``nvmlInit`` raise this, e.g. ``pynvml.NVMLError_DriverNotLoaded``
            or ``pynvml.NVMLError_LibraryNotFound`` (can be changed later).
        driver_version: what ``nvmlSystemGetDriverVersion`` returns.

    Attributes:
        module: use it wherever ``pynvml`` is expected.
        gpus: the simulated GPUs, by NVML index; their fields may be changed directly.
        init_error: see above.
    """

    def __init__(
        self,
        gpus: int | Sequence[FakeGpu] = 1,
        *,
        init_error: ErrorSpec | None = None,
        driver_version: str = "550.54.15",
    ) -> None:
        given = [FakeGpu() for _ in range(gpus)] if isinstance(gpus, int) else gpus
        self.gpus = [
            dataclasses.replace(
                g,
                uuid=g.uuid or f"GPU-{uuidlib.uuid5(_UUID_NAMESPACE, str(i))}",
                mig_devices=tuple(
                    dataclasses.replace(
                        m,
                        uuid=m.uuid
                        or f"MIG-{uuidlib.uuid5(_UUID_NAMESPACE, f'{i}/{m.gpu_instance_id}')}",
                    )
                    for m in g.mig_devices
                ),
            )
            for i, g in enumerate(given)
        ]
        self.init_error = init_error
        self.driver_version = driver_version
        self._errors: dict[int, ErrorSpec] = {}
        self._init_count = 0
        #: The simulated CPU clock the driver stamps samples with, in µs since the epoch.
        self.time_us = 1_700_000_000_000_000
        self._lock = threading.Lock()
        self.module: types.ModuleType = _FakeModule(
            {name: getattr(self, "_" + name) for name in SIMULATED}
        )

    # -- controlling the simulation -----------------------------------------------------

    @property
    def initialised(self) -> bool:
        """True between an ``nvmlInit`` and its matching ``nvmlShutdown``."""
        return self._init_count > 0

    def advance(
        self, seconds: float, power_w: float | None = None, *, device: int | None = None
    ) -> None:
        """Let time pass: each GPU (or only ``device``) draws its power for ``seconds``.

        Args:
            seconds: duration, in s (>= 0).
            power_w: the power drawn during that time and read afterwards, in W; None keeps
                each GPU's current ``power_w``.
            device: an NVML index, or None for every GPU.
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        with self._lock:
            start_us = self.time_us
            for gpu in self._targets(device):
                if power_w is not None:
                    gpu.power_w = power_w
                _draw(gpu, seconds)
                _sample_processes(gpu, start_us, seconds)
            self.time_us = start_us + round(seconds * 1e6)

    def set_processes(self, device: int, utilisation: dict[int, float]) -> None:
        """Say which processes run on ``device`` and how busy each keeps its SMs (0..1)
        from now on; an empty mapping: none."""
        with self._lock:
            self._targets(device)[0].processes = dict(utilisation)

    def reset(self, device: int, *, energy_mj: float = 0.0) -> None:
        """Simulate a driver reload: the GPU's energy counter restarts from ``energy_mj``."""
        with self._lock:
            self._targets(device)[0].energy_mj = energy_mj

    def fail(self, device: int, error: ErrorSpec) -> None:
        """Make every call about ``device`` raise ``error`` until :meth:`recover`.

        Args:
            device: NVML index.
            error: e.g. ``pynvml.NVMLError_GpuIsLost`` or ``pynvml.NVMLError_Unknown``.

        The GPU keeps drawing power (and its counter keeps counting) while it fails.
        """
        with self._lock:
            self._targets(device)
            self._errors[device] = error

    def recover(self, device: int) -> None:
        """Make calls about ``device`` succeed again."""
        with self._lock:
            self._errors.pop(device, None)

    def _targets(self, device: int | None) -> list[FakeGpu]:
        if device is None:
            return self.gpus
        if not 0 <= device < len(self.gpus):
            raise IndexError(f"no simulated GPU {device} (there are {len(self.gpus)})")
        return [self.gpus[device]]

    # -- the simulated driver, one method per function in SIMULATED -----------------------

    def _nvmlInit(self) -> None:
        self._nvmlInitWithFlags(0)

    def _nvmlInitWithFlags(self, flags: int) -> None:
        with self._lock:
            if self.init_error is not None:
                _raise(self.init_error)
            self._init_count += 1

    def _nvmlShutdown(self) -> None:
        with self._lock:
            self._require_init()
            self._init_count -= 1

    def _nvmlSystemGetDriverVersion(self) -> str:
        with self._lock:
            self._require_init()
            return self.driver_version

    def _nvmlDeviceGetCount(self) -> int:
        with self._lock:
            self._require_init()
            return len(self.gpus)

    def _nvmlDeviceGetHandleByIndex(self, index: int) -> _FakeHandle:
        with self._lock:
            self._require_init()
            if not isinstance(index, int) or not 0 <= index < len(self.gpus):
                _raise(pynvml.NVMLError_InvalidArgument)
            self._check_device(index)
            return _FakeHandle(id(self), index)

    def _nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _FakeHandle:
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        with self._lock:
            self._require_init()
            for index, gpu in enumerate(self.gpus):
                if gpu.uuid == text:
                    self._check_device(index)
                    return _FakeHandle(id(self), index)
                for position, mig in enumerate(self._migs(gpu)):
                    if mig.uuid == text:
                        self._check_device(index)
                        return _FakeHandle(id(self), index, position)
            raise pynvml.NVMLError_NotFound()

    def _nvmlDeviceGetIndex(self, handle: object) -> int:
        with self._lock:
            return self._device(handle)[0]

    def _nvmlDeviceGetName(self, handle: object) -> str:
        with self._lock:
            gpu, mig = self._device(handle)[1], self._mig(handle)
            return gpu.name if mig is None else f"{gpu.name} MIG {mig.profile}"

    def _nvmlDeviceGetUUID(self, handle: object) -> str:
        with self._lock:
            gpu, mig = self._device(handle)[1], self._mig(handle)
            return gpu.uuid if mig is None else mig.uuid

    def _nvmlDeviceGetMigMode(self, handle: object) -> list[int]:
        with self._lock:
            gpu = self._board(handle)
            if gpu.mig_mode is None:
                _raise(pynvml.NVMLError_NotSupported)
            mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig_mode else pynvml.NVML_DEVICE_MIG_DISABLE
            return [mode, mode]

    def _nvmlDeviceGetMaxMigDeviceCount(self, handle: object) -> int:
        with self._lock:
            gpu = self._board(handle)
            if gpu.mig_mode is None:
                _raise(pynvml.NVMLError_NotSupported)
            return gpu.total_slices

    def _nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int) -> _FakeHandle:
        with self._lock:
            gpu = self._board(handle)
            assert isinstance(handle, _FakeHandle)
            if gpu.mig_mode is None:
                _raise(pynvml.NVMLError_NotSupported)
            if not 0 <= index < gpu.total_slices:
                _raise(pynvml.NVMLError_InvalidArgument)
            if index >= len(self._migs(gpu)):
                _raise(pynvml.NVMLError_NotFound)  # an unused MIG slot
            return _FakeHandle(id(self), handle.index, index)

    def _nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: object) -> _FakeHandle:
        with self._lock:
            index = self._device(handle)[0]
            if self._mig(handle) is None:
                _raise(pynvml.NVMLError_InvalidArgument)
            return _FakeHandle(id(self), index)

    def _nvmlDeviceIsMigDeviceHandle(self, handle: object) -> bool:
        with self._lock:
            self._device(handle)
            return self._mig(handle) is not None

    def _nvmlDeviceGetAttributes(self, handle: object) -> pynvml.c_nvmlDeviceAttributes:
        with self._lock:
            gpu, mig = self._device(handle)[1], self._mig(handle)
            attributes = pynvml.c_nvmlDeviceAttributes()
            attributes.gpuInstanceSliceCount = gpu.total_slices if mig is None else mig.slices
            attributes.computeInstanceSliceCount = attributes.gpuInstanceSliceCount
            return attributes

    def _nvmlDeviceGetGpuInstanceId(self, handle: object) -> int:
        with self._lock:
            self._device(handle)
            mig = self._mig(handle)
            if mig is None:
                _raise(pynvml.NVMLError_InvalidArgument)
            return mig.gpu_instance_id

    def _nvmlDeviceGetComputeInstanceId(self, handle: object) -> int:
        with self._lock:
            self._device(handle)
            mig = self._mig(handle)
            if mig is None:
                _raise(pynvml.NVMLError_InvalidArgument)
            return mig.compute_instance_id

    def _nvmlDeviceGetGpuInstanceProfileInfo(
        self, handle: object, profile: int, version: int = 2
    ) -> pynvml.c_nvmlGpuInstanceProfileInfo_v2_t:
        with self._lock:
            gpu = self._board(handle)
            slices = _PROFILE_SLICES.get(profile)
            if gpu.mig_mode is None or slices is None or slices > gpu.total_slices:
                _raise(pynvml.NVMLError_NotSupported)
            info = pynvml.c_nvmlGpuInstanceProfileInfo_v2_t()
            info.id = profile
            info.sliceCount = slices
            info.instanceCount = gpu.total_slices // slices
            return info

    def _nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        with self._lock:
            gpu = self._board(handle)
            if not gpu.energy_counter:
                _raise(pynvml.NVMLError_NotSupported)
            return int(gpu.energy_mj)  # NVML's counter is a whole number of mJ

    def _nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        with self._lock:
            gpu = self._board(handle)
            if not gpu.power_sensor:
                _raise(pynvml.NVMLError_NotSupported)
            return round(gpu.power_w * 1000.0)  # NVML reports whole mW

    def _nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        with self._lock:
            return round(self._board(handle).power_limit_w * 1000.0)  # whole mW

    def _nvmlDeviceGetUtilizationRates(self, handle: object) -> pynvml.c_nvmlUtilization_t:
        with self._lock:
            gpu = self._board(handle)
            if gpu.mig_mode:
                _raise(pynvml.NVMLError_NotSupported)  # no utilisation counters in MIG mode
            return pynvml.c_nvmlUtilization_t(gpu=round(gpu.utilisation_frac * 100), memory=0)

    def _nvmlDeviceGetProcessUtilization(
        self, handle: object, timeStamp: int
    ) -> list[pynvml.c_nvmlProcessUtilizationSample_t]:
        with self._lock:
            gpu = self._board(handle)  # a MIG device handle: NotSupported
            if not gpu.process_samples or gpu.mig_mode:
                _raise(pynvml.NVMLError_NotSupported)
            found = [
                pynvml.c_nvmlProcessUtilizationSample_t(
                    pid=pid, timeStamp=ts, smUtil=sm, memUtil=mem, encUtil=0, decUtil=0
                )
                for ts, pid, sm, mem in gpu._samples
                if ts > timeStamp
            ]
            if not found:
                _raise(pynvml.NVMLError_NotFound)  # no sample since timeStamp
            return found

    def _nvmlDeviceGetMemoryInfo(
        self, handle: object, version: int | None = None
    ) -> pynvml.c_nvmlMemory_t:
        with self._lock:
            gpu = self._board(handle)
            free = gpu.memory_total_bytes - gpu.memory_used_bytes
            return pynvml.c_nvmlMemory_t(
                total=gpu.memory_total_bytes, free=free, used=gpu.memory_used_bytes
            )

    def _require_init(self) -> None:
        if self._init_count == 0:
            _raise(pynvml.NVMLError_Uninitialized)

    def _check_device(self, index: int) -> None:
        error = self._errors.get(index)
        if error is not None:
            _raise(error)

    def _device(self, handle: object) -> tuple[int, FakeGpu]:
        self._require_init()
        if not isinstance(handle, _FakeHandle) or handle.owner != id(self):
            _raise(pynvml.NVMLError_InvalidArgument)
        self._check_device(handle.index)
        return handle.index, self.gpus[handle.index]

    def _board(self, handle: object) -> FakeGpu:
        """The GPU of a board handle; a MIG device handle is refused (NotSupported), as NVML
        refuses board-level queries (energy, power, MIG mode) on MIG devices."""
        gpu = self._device(handle)[1]
        if self._mig(handle) is not None:
            _raise(pynvml.NVMLError_NotSupported)
        return gpu

    def _mig(self, handle: object) -> FakeMig | None:
        assert isinstance(handle, _FakeHandle)
        if handle.mig is None:
            return None
        migs = self._migs(self.gpus[handle.index])
        if handle.mig >= len(migs):
            _raise(pynvml.NVMLError_InvalidArgument)  # MIG reconfigured since
        return migs[handle.mig]

    @staticmethod
    def _migs(gpu: FakeGpu) -> tuple[FakeMig, ...]:
        return gpu.mig_devices if gpu.mig_mode else ()


def _draw(gpu: FakeGpu, seconds: float) -> None:
    """Let ``gpu`` draw its ``power_w`` for ``seconds`` and update its energy counter."""
    period = gpu.counter_update_s
    if period <= 0.0:
        gpu.energy_mj += gpu.power_w * seconds * 1000.0
        return
    remaining = seconds
    while remaining > 0.0:
        elapsed = sum(d for d, _ in gpu._period)
        step = min(period - elapsed, remaining)
        gpu._period.append((step, gpu.power_w))
        remaining -= step
        if elapsed + step >= period - 1e-12:
            gpu.energy_mj += _sampled_power_w(gpu._period, period * gpu.sampled_fraction) * (
                period * 1000.0
            )
            gpu._period.clear()


def _sample_processes(gpu: FakeGpu, start_us: int, seconds: float) -> None:
    """Take the driver's per-process utilisation samples due in ``seconds`` from ``start_us``."""
    period = gpu.utilisation_sample_s
    elapsed = 0.0
    while gpu._since_sample_s + (seconds - elapsed) >= period - 1e-12:
        elapsed += period - gpu._since_sample_s
        gpu._since_sample_s = 0.0
        stamp = start_us + round(elapsed * 1e6)
        for pid, busy in sorted(gpu.processes.items()):
            sm = round(min(1.0, max(0.0, busy)) * 100)
            if sm > 0:  # only processes that ran in the period are reported
                gpu._samples.append((stamp, pid, sm, sm // 2))
    gpu._since_sample_s += seconds - elapsed
    del gpu._samples[:-PROCESS_SAMPLE_BUFFER]


def _sampled_power_w(segments: list[tuple[float, float]], window_s: float) -> float:
    """Mean power over the last ``window_s`` seconds of ``segments`` ((seconds, W) pairs)."""
    energy_j = 0.0
    left = window_s
    for seconds, power_w in reversed(segments):
        take = min(seconds, left)
        energy_j += take * power_w
        left -= take
        if left <= 1e-15:
            break
    return energy_j / (window_s - max(left, 0.0))


def make_fake_nvml(
    gpus: int | Sequence[FakeGpu] = 1,
    *,
    init_error: ErrorSpec | None = None,
    driver_version: str = "550.54.15",
) -> FakeNvml:
    """A simulated NVML driver; pass its ``.module`` wherever ``pynvml`` is expected.

    See :class:`FakeNvml` for the arguments and the module docstring for an example.
    """
    return FakeNvml(gpus, init_error=init_error, driver_version=driver_version)
