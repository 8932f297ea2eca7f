"""Test helpers shipped for wattwise's own tests and for users' tests.

* :class:`MeterContract` / :class:`MeterEnv`: the contract test every meter passes (needs
  pytest).
* :class:`GpuProbeContract` / :class:`GpuProbeEnv`: the contract test every GPU probe
  passes (needs pytest).
* :func:`make_fake_amdsmi` / :class:`FakeAmdSmi` / :class:`FakeAmdGpu`: a faithful stand-in
  for AMD's ``amdsmi`` module (autospec'd from :class:`AmdSmiApi`; needs nothing).
* :class:`FakeClock`: a clock for the tracker that moves only when the test advances it.
* :class:`FakePowercap` / :class:`PowerDriver`: a real powercap sysfs tree on disk whose
  RAPL counters can be advanced, wrapped, made unreadable or root-only.
* :func:`make_fake_nvml` / :class:`FakeNvml` / :class:`FakeGpu` / :class:`FakeMig`: a faithful
  stand-in for the ``pynvml`` module (needs ``wattwise[nvidia]``).

Names are imported on first use, so ``import wattwise.testing`` needs neither pytest nor
pynvml.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wattwise.testing._fake_amdsmi import AmdSmiApi, FakeAmdGpu, FakeAmdSmi, make_fake_amdsmi
    from wattwise.testing._fake_clock import FakeClock
    from wattwise.testing._fake_nvml import FakeGpu, FakeMig, FakeNvml, make_fake_nvml
    from wattwise.testing._fake_powercap import FakePowercap, PowerDriver
    from wattwise.testing._gpu_probe_contract import GpuProbeContract, GpuProbeEnv
    from wattwise.testing._meter_contract import MeterContract, MeterEnv

__all__ = [
    "AmdSmiApi",
    "FakeAmdGpu",
    "FakeAmdSmi",
    "FakeClock",
    "FakeGpu",
    "FakeMig",
    "FakeNvml",
    "FakePowercap",
    "GpuProbeContract",
    "GpuProbeEnv",
    "MeterContract",
    "MeterEnv",
    "PowerDriver",
    "make_fake_amdsmi",
    "make_fake_nvml",
]

_WHERE = {
    "AmdSmiApi": "_fake_amdsmi",
    "FakeAmdGpu": "_fake_amdsmi",
    "FakeAmdSmi": "_fake_amdsmi",
    "make_fake_amdsmi": "_fake_amdsmi",
    "FakeClock": "_fake_clock",
    "FakeGpu": "_fake_nvml",
    "FakeMig": "_fake_nvml",
    "FakeNvml": "_fake_nvml",
    "make_fake_nvml": "_fake_nvml",
    "FakePowercap": "_fake_powercap",
    "PowerDriver": "_fake_powercap",
    "GpuProbeContract": "_gpu_probe_contract",
    "GpuProbeEnv": "_gpu_probe_contract",
    "MeterContract": "_meter_contract",
    "MeterEnv": "_meter_contract",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'wattwise.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"wattwise.testing.{module}"), name)
