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
* Any other function raises ``NotImplementedError`` naming itself; give it behaviour with
  ``fake.module.nvmlDeviceGetClockInfo.side_effect = ...`` (or ``.return_value``).

Functions are autospec'd one by one, on first use, rather than by autospeccing the whole
module: the whole module (about 450 functions) takes ~0.1 s per fake, which adds up to
seconds over a test suite, and would turn the constants and error classes into mocks.

Needs ``nvidia-ml-py`` (``pip install wattwise[nvidia]``); no NVIDIA driver or GPU.
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

__all__ = ["SIMULATED", "FakeGpu", "FakeNvml", "make_fake_nvml"]

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
)

_UUID_NAMESPACE = uuidlib.UUID("4f2d1c1e-8a7b-4f6e-9a51-3c0de0a11b7e")

ErrorSpec = type[Exception] | Exception
"""An error to raise: an exception class (a fresh instance each time) or an instance."""


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
    """

    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = ""
    energy_counter: bool = True
    power_sensor: bool = True
    power_w: float = 50.0
    energy_mj: float = 1_000_000.0


@dataclass(frozen=True)
class _FakeHandle:
    """Stands in for pynvml's ``c_nvmlDevice_t`` pointer."""

    owner: int
    index: int


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
            dataclasses.replace(g, uuid=g.uuid or f"GPU-{uuidlib.uuid5(_UUID_NAMESPACE, str(i))}")
            for i, g in enumerate(given)
        ]
        self.init_error = init_error
        self.driver_version = driver_version
        self._errors: dict[int, ErrorSpec] = {}
        self._init_count = 0
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
            for gpu in self._targets(device):
                if power_w is not None:
                    gpu.power_w = power_w
                gpu.energy_mj += gpu.power_w * seconds * 1000.0

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
            raise pynvml.NVMLError_NotFound()

    def _nvmlDeviceGetIndex(self, handle: object) -> int:
        with self._lock:
            return self._device(handle)[0]

    def _nvmlDeviceGetName(self, handle: object) -> str:
        with self._lock:
            return self._device(handle)[1].name

    def _nvmlDeviceGetUUID(self, handle: object) -> str:
        with self._lock:
            return self._device(handle)[1].uuid

    def _nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        with self._lock:
            gpu = self._device(handle)[1]
            if not gpu.energy_counter:
                _raise(pynvml.NVMLError_NotSupported)
            return int(gpu.energy_mj)  # NVML's counter is a whole number of mJ

    def _nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        with self._lock:
            gpu = self._device(handle)[1]
            if not gpu.power_sensor:
                _raise(pynvml.NVMLError_NotSupported)
            return round(gpu.power_w * 1000.0)  # NVML reports whole mW

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
