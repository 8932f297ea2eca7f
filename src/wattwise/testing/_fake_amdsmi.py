"""A faithful fake of AMD's ``amdsmi`` Python module, backed by a small simulated driver.

``amdsmi`` (AMD SMI, the library behind ``amd-smi``) is a ctypes wrapper of ROCm's
``libamd_smi.so``: without ROCm it cannot even be imported (its wrapper prints "Could not
load libamd_smi.so" and fails with a ``KeyError``), so the real module cannot be autospec'd
here. Instead :class:`AmdSmiApi` writes down, for the functions wattwise uses, the real
interface of ``amdsmi`` 7.0 (``amdsmi/amdsmi_interface.py``): the same names, the same
parameters, the same return shapes (dicts with AMD's keys, ``"N/A"`` for an unsupported
field) and the same exception classes (:class:`AmdSmiLibraryException` carrying AMD's
``amdsmi_status_t`` code, :class:`AmdSmiParameterException` for a foreign handle). The
module tests use is ``mock.create_autospec(AmdSmiApi, instance=True)``: a misspelt function
raises ``AttributeError`` and a wrong call raises ``TypeError``, as the real module would,
and every call is recorded.

Use it::

    from wattwise.testing._fake_amdsmi import FakeAmdGpu, make_fake_amdsmi

    fake = make_fake_amdsmi([FakeAmdGpu(), FakeAmdGpu(energy_counter=False)])
    meter = AmdSmiMeter(amdsmi=fake.module)
    meter.start(0.0)
    fake.advance(1.0, power_w=300.0)          # both GPUs draw 300 W for 1 s
    fake.fail(0, STATUS_DRIVER_NOT_LOADED)    # calls about GPU 0 raise; fake.recover(0)
    fake.reset(1)                             # driver reload: GPU 1's accumulator restarts
    fake.set_processes(0, {101: 0.6, 202: 0.2})  # two processes keep gfx 60 % / 20 % busy
    fake.set_processes(0, {101: 0.5}, engine="kfd")  # ROCm compute: CUs occupied, no gfx time

Simulated: the energy accumulator (``amdsmi_get_energy_count``: an integer count of
``counter_resolution`` µJ steps, AMD's documented unit, and a ns timestamp), the power
reading (``amdsmi_get_power_info``: whole watts; MI300 and newer fill
``current_socket_power``, MI200 and Navi ``average_socket_power``), ASIC, UUID and HIP
enumeration info. ``AMDSMI_STATUS_NOT_INIT`` (32) before ``amdsmi_init`` and after the
matching ``amdsmi_shut_down``; ``AMDSMI_STATUS_NOT_SUPPORTED`` (2) for a counter a board
lacks (AMD: "not supported on virtual machine guest").

The process list (``amdsmi_get_gpu_process_list``), in three shapes chosen by ``api``:
``"7.0"`` (a dict per process with ``engine_usage`` and ``cu_occupancy``), ``"6.2"`` (the
same dicts without ``cu_occupancy``, as amdsmi 6.1.2 to at least 6.2 give them) and
``"6.1"`` (a list of ``amdsmi_process_handle_t``, a ``ctypes.c_uint32`` pid, each passed
to ``amdsmi_get_gpu_process_info``). Each process has a cumulative gfx engine counter in ns
that :meth:`FakeAmdSmi.advance` grows by its busy share of the elapsed time, as the kernel's
``drm-engine-gfx`` grows; ``engine="kfd"`` processes model ROCm compute, which the DRM
counters do not see: their gfx time stays 0 and ``cu_occupancy`` is their busy share of the
GPU's compute units. ``FakeAmdGpu.process_list_status`` makes the list fail with that
status (``AMDSMI_STATUS_NOT_SUPPORTED`` in VM guests, ``AMDSMI_STATUS_NO_PERM`` where
another user's process cannot be read). Simplified: every set process is listed whatever
its engine (amdsmi 6.2 and newer list only KFD processes).
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from unittest import mock

__all__ = [
    "STATUS_DRIVER_NOT_LOADED",
    "STATUS_INIT_ERROR",
    "STATUS_NOT_INIT",
    "STATUS_NOT_SUPPORTED",
    "STATUS_NO_PERM",
    "AmdSmiApi",
    "AmdSmiApi61",
    "AmdSmiException",
    "AmdSmiInitFlags",
    "AmdSmiLibraryException",
    "AmdSmiParameterException",
    "FakeAmdGpu",
    "FakeAmdSmi",
    "make_fake_amdsmi",
]

# amdsmi_status_t codes (amdsmi.h, as amdsmi_wrapper.py defines them).
STATUS_INVAL = 1
STATUS_NOT_SUPPORTED = 2
STATUS_NO_PERM = 10
STATUS_INIT_ERROR = 18
STATUS_NOT_FOUND = 31
STATUS_NOT_INIT = 32
STATUS_DRIVER_NOT_LOADED = 34

_STATUS_TEXT = {
    STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    STATUS_NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    STATUS_NOT_FOUND: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
    STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}


class AmdSmiException(Exception):
    """amdsmi's base exception class."""


class AmdSmiLibraryException(AmdSmiException):
    """A non-success ``amdsmi_status_t`` from the C library, as amdsmi raises it."""

    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _STATUS_TEXT.get(
            err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
        )

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_info(self, detailed: bool = True) -> str:
        return self.err_info if detailed else self.err_info.split(" - ")[0]

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiParameterException(AmdSmiException):
    """A parameter of the wrong type (amdsmi checks every processor handle)."""

    def __init__(self, received: object, expected: object) -> None:
        super().__init__(None)
        self.err_code = None
        self.err_msg = (
            f"Invalid parameter:\nActual type: {type(received)}\nExpected type: {expected}"
        )

    def __str__(self) -> str:
        return self.err_msg


class AmdSmiInitFlags(enum.IntEnum):
    """amdsmi's initialisation flags (``amdsmi_init(flag)``)."""

    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1
    INIT_NON_AMD_CPUS = 1 << 2
    INIT_NON_AMD_GPUS = 1 << 3
    INIT_AMD_APUS = (1 << 0) | (1 << 1)


_InitFlags = AmdSmiInitFlags


class AmdSmiApi:
    """The part of ``amdsmi``'s interface wattwise uses: names and signatures as in amdsmi
    7.0, for :func:`unittest.mock.create_autospec`. The bodies are never run."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiInitFlags = AmdSmiInitFlags

    def amdsmi_init(self, flag: _InitFlags = _InitFlags.INIT_AMD_GPUS) -> None:
        raise NotImplementedError

    def amdsmi_shut_down(self) -> None:
        raise NotImplementedError

    def amdsmi_get_processor_handles(self) -> list[Any]:
        raise NotImplementedError

    def amdsmi_get_gpu_device_uuid(self, processor_handle: Any) -> str:
        raise NotImplementedError

    def amdsmi_get_gpu_device_bdf(self, processor_handle: Any) -> str:
        raise NotImplementedError

    def amdsmi_get_gpu_enumeration_info(self, processor_handle: Any) -> dict[str, Any]:
        raise NotImplementedError

    def amdsmi_get_gpu_asic_info(self, processor_handle: Any) -> dict[str, Any]:
        raise NotImplementedError

    def amdsmi_get_energy_count(self, processor_handle: Any) -> dict[str, Any]:
        raise NotImplementedError

    def amdsmi_get_power_info(self, processor_handle: Any) -> dict[str, Any]:
        raise NotImplementedError

    def amdsmi_get_gpu_process_list(self, processor_handle: Any) -> list[Any]:
        raise NotImplementedError


class AmdSmiApi61(AmdSmiApi):
    """amdsmi 6.1.1 and older: the process list gives handles, and this gives each one's
    information (removed from the Python module in 6.1.2)."""

    def amdsmi_get_gpu_process_info(self, processor_handle: Any, process: Any) -> dict[str, Any]:
        raise NotImplementedError


_APIS = {"7.0": AmdSmiApi, "6.2": AmdSmiApi, "6.1": AmdSmiApi61}


@dataclass
class _FakeProcess:
    busy: float  # share of the GPU it keeps busy (0..1)
    engine: str  # "gfx" (DRM submissions, counted) or "kfd" (ROCm compute, not)
    gfx_ns: float = 0.0


@dataclass
class FakeAmdGpu:
    """One simulated AMD GPU.

    Attributes:
        name: the ASIC's market name (``amdsmi_get_gpu_asic_info``).
        hip_uuid: the HIP / ROCr UUID (``GPU-`` and 16 hex digits); empty: derived from
            the index.
        energy_counter: whether ``amdsmi_get_energy_count`` is supported (not in VM guests).
        power_field: which field of ``amdsmi_get_power_info`` the board fills:
            ``"current"`` (MI300 and newer) or ``"average"`` (MI200, Navi); ``None``: none.
        power_w: the board's power draw, in W (reported in whole W, as amdsmi does).
        energy_uj: the accumulated energy, in µJ since the driver load.
        counter_resolution_uj: µJ per accumulator count (15.259 µJ on MI-series boards).
        compute_units: the GPU's compute units (304 on an MI300X), for ``cu_occupancy``.
        process_list_status: an ``amdsmi_status_t`` the process list fails with, or None.
    """

    name: str = "AMD Instinct MI300X"
    hip_uuid: str = ""
    energy_counter: bool = True
    power_field: str | None = "current"
    power_w: float = 100.0
    energy_uj: float = 5.0e9
    counter_resolution_uj: float = 15.259
    compute_units: int = 304
    process_list_status: int | None = None


@dataclass(frozen=True)
class _Handle:
    """Stands in for amdsmi's ``amdsmi_processor_handle`` (a ctypes pointer)."""

    owner: int
    index: int


class FakeAmdSmi:
    """A simulated AMD SMI driver and the fake ``amdsmi`` module (:attr:`module`) it backs.

    Attributes:
        module: use it wherever ``amdsmi`` is expected.
        gpus: the simulated GPUs, in handle order; their fields may be changed directly.
        init_error: an ``amdsmi_status_t`` code ``amdsmi_init`` fails with, or None.
        api: the amdsmi version whose process list it gives: "7.0", "6.2" or "6.1".
    """

    def __init__(
        self,
        gpus: int | Sequence[FakeAmdGpu] = 1,
        *,
        init_error: int | None = None,
        api: str = "7.0",
    ):
        if api not in _APIS:
            raise ValueError(f"api must be one of {sorted(_APIS)}, got {api!r}")
        self.api = api
        given = [FakeAmdGpu() for _ in range(gpus)] if isinstance(gpus, int) else gpus
        self.gpus = [
            dataclasses.replace(g, hip_uuid=g.hip_uuid or f"GPU-{0x5A1E0000 + i:016x}")
            for i, g in enumerate(given)
        ]
        self.init_error = init_error
        self.time_ns = 1_700_000_000_000_000_000
        self._errors: dict[int, int] = {}
        self._processes: dict[int, dict[int, _FakeProcess]] = {i: {} for i in range(len(self.gpus))}
        self._init_count = 0
        self._lock = threading.Lock()
        spec = _APIS[api]
        module = mock.create_autospec(spec, instance=True)
        for name in ("AmdSmiException", "AmdSmiLibraryException", "AmdSmiParameterException"):
            setattr(module, name, getattr(AmdSmiApi, name))
        module.AmdSmiInitFlags = AmdSmiInitFlags
        for name in dir(spec):
            if name.startswith("amdsmi_") and callable(getattr(spec, name)):
                getattr(module, name).side_effect = getattr(self, "_" + name)
        self.module: Any = module

    # -- controlling the simulation -----------------------------------------------------

    @property
    def initialised(self) -> bool:
        """True between an ``amdsmi_init`` and its matching ``amdsmi_shut_down``."""
        return self._init_count > 0

    def advance(self, seconds: float, power_w: float | None = None) -> None:
        """Every GPU draws ``power_w`` (None: its own ``power_w``) for ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        with self._lock:
            for gpu in self.gpus:
                if power_w is not None:
                    gpu.power_w = power_w
                gpu.energy_uj += gpu.power_w * seconds * 1e6
            for processes in self._processes.values():
                for process in processes.values():
                    if process.engine == "gfx":
                        process.gfx_ns += process.busy * seconds * 1e9
            self.time_ns += round(seconds * 1e9)

    def set_processes(
        self, index: int, busy: Mapping[int, float], *, engine: str | Mapping[int, str] = "gfx"
    ) -> None:
        """The processes on GPU ``index`` from now on, each with the share (0..1) of the GPU
        it keeps busy; a process left out has ended, one kept keeps its counter.
        ``engine`` (one for all, or per pid): ``"gfx"``, its gfx engine counter grows;
        ``"kfd"``, ROCm compute, which the counter does not see (only ``cu_occupancy``)."""
        engines = {pid: engine if isinstance(engine, str) else engine[pid] for pid in busy}
        if not set(engines.values()) <= {"gfx", "kfd"}:
            raise ValueError(f"engine must be 'gfx' or 'kfd', got {engine!r}")
        with self._lock:
            before = self._processes[index]
            self._processes[index] = {
                pid: _FakeProcess(share, engines[pid], before[pid].gfx_ns if pid in before else 0.0)
                for pid, share in busy.items()
            }

    def restart_process(self, index: int, pid: int) -> None:
        """The pid on GPU ``index`` is now a new process (or reopened the device): its
        engine counter starts again at 0."""
        with self._lock:
            self._processes[index][pid].gfx_ns = 0.0

    def fail(self, index: int, code: int) -> None:
        """Every call about GPU ``index`` raises ``AmdSmiLibraryException(code)``."""
        self._errors[index] = code

    def recover(self, index: int) -> None:
        """Undo :meth:`fail`."""
        self._errors.pop(index, None)

    def reset(self, index: int) -> None:
        """A driver reload: the GPU's energy accumulator restarts at 0."""
        self.gpus[index].energy_uj = 0.0

    # -- the simulated functions ------------------------------------------------------------

    def _check(self, handle: Any) -> FakeAmdGpu:
        if not isinstance(handle, _Handle) or handle.owner != id(self):
            raise AmdSmiParameterException(handle, "amdsmi_processor_handle")
        if not self.initialised:
            raise AmdSmiLibraryException(STATUS_NOT_INIT)
        if handle.index in self._errors:
            raise AmdSmiLibraryException(self._errors[handle.index])
        return self.gpus[handle.index]

    def _amdsmi_init(self, flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        if not isinstance(flag, AmdSmiInitFlags):
            raise AmdSmiParameterException(flag, AmdSmiInitFlags)
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self._init_count += 1

    def _amdsmi_shut_down(self) -> None:
        if not self.initialised:
            raise AmdSmiLibraryException(STATUS_NOT_INIT)
        self._init_count -= 1

    def _amdsmi_get_processor_handles(self) -> list[Any]:
        if not self.initialised:
            raise AmdSmiLibraryException(STATUS_NOT_INIT)
        return [_Handle(id(self), i) for i in range(len(self.gpus))]

    def _amdsmi_get_gpu_device_uuid(self, processor_handle: Any) -> str:
        # amd-smi's own UUID spelling: 8-4-4-4-12 hex digits.
        hexa = self._check(processor_handle).hip_uuid[4:].rjust(32, "0")
        return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}"

    def _amdsmi_get_gpu_device_bdf(self, processor_handle: Any) -> str:
        self._check(processor_handle)
        return f"0000:{0x0C + 0x10 * processor_handle.index:02x}:00.0"

    def _amdsmi_get_gpu_enumeration_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check(processor_handle)
        index = processor_handle.index
        return {
            "drm_render": 128 + index,
            "drm_card": index,
            "hsa_id": index + 1,
            "hip_id": index,
            "hip_uuid": gpu.hip_uuid,
        }

    def _amdsmi_get_gpu_asic_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check(processor_handle)
        return {
            "market_name": gpu.name,
            "vendor_id": "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "device_id": "0x74a1",
            "target_graphics_version": "gfx942",
        }

    def _amdsmi_get_energy_count(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check(processor_handle)
        if not gpu.energy_counter:
            raise AmdSmiLibraryException(STATUS_NOT_SUPPORTED)
        with self._lock:
            return {
                "energy_accumulator": int(gpu.energy_uj / gpu.counter_resolution_uj),
                "counter_resolution": gpu.counter_resolution_uj,
                "timestamp": self.time_ns,
            }

    def _amdsmi_get_power_info(self, processor_handle: Any) -> dict[str, Any]:
        gpu = self._check(processor_handle)
        watts = round(gpu.power_w)
        current = watts if gpu.power_field == "current" else "N/A"
        average = watts if gpu.power_field == "average" else "N/A"
        return {
            "socket_power": watts if gpu.power_field is not None else "N/A",
            "current_socket_power": current,
            "average_socket_power": average,
            "gfx_voltage": "N/A",
            "soc_voltage": "N/A",
            "mem_voltage": "N/A",
            "power_limit": 750,
        }

    def _process_infos(self, processor_handle: Any) -> list[dict[str, Any]]:
        gpu = self._check(processor_handle)
        if gpu.process_list_status is not None:
            raise AmdSmiLibraryException(gpu.process_list_status)
        infos = []
        with self._lock:
            for pid, process in self._processes[processor_handle.index].items():
                info: dict[str, Any] = {
                    "name": f"python{pid}",
                    "pid": pid,
                    "mem": 2 << 30,
                    "engine_usage": {"gfx": int(process.gfx_ns), "enc": 0},
                    "memory_usage": {"gtt_mem": 0, "cpu_mem": 0, "vram_mem": 2 << 30},
                }
                if self.api == "7.0":
                    kfd = process.engine == "kfd"
                    info["cu_occupancy"] = round(process.busy * gpu.compute_units) if kfd else 0
                infos.append(info)
        return infos

    def _amdsmi_get_gpu_process_list(self, processor_handle: Any) -> list[Any]:
        infos = self._process_infos(processor_handle)
        if self.api == "6.1":
            return [ctypes.c_uint32(info["pid"]) for info in infos]
        return infos

    def _amdsmi_get_gpu_process_info(self, processor_handle: Any, process: Any) -> dict[str, Any]:
        if not isinstance(process, ctypes.c_uint32):
            raise AmdSmiParameterException(process, ctypes.c_uint32)
        for info in self._process_infos(processor_handle):
            if info["pid"] == process.value:
                return info
        # amdsmi 6.1: the process ended, its fdinfo is gone.
        raise AmdSmiLibraryException(STATUS_INVAL)


def make_fake_amdsmi(
    gpus: int | Sequence[FakeAmdGpu] = 1, *, init_error: int | None = None, api: str = "7.0"
) -> FakeAmdSmi:
    """A simulated AMD SMI driver; pass its ``.module`` wherever ``amdsmi`` is expected."""
    return FakeAmdSmi(gpus, init_error=init_error, api=api)
