"""Window edges wait for every CUDA device the process uses, and never initialise CUDA.

This machine has no GPU, so ``torch.cuda`` is replaced by a stand-in of just the calls
``sync_cuda`` (tracking/_cuda.py) makes, which behaves as PyTorch documents them:
``synchronize`` initialises CUDA lazily and creates a context on the device it is given
(the current one by default).
"""

from __future__ import annotations

import sys
import types

import pytest

from wattwise.meters._base import Component, ComponentKind, Method, Source
from wattwise.meters._replay import ReplayMeter, TraceInterval
from wattwise.tracking._tracker import Tracker

CPU = Component("cpu:package-0", ComponentKind.CPU, Source(Method.MEASURED, "rapl-powercap"))


class FakeCuda:
    """``torch.cuda`` with ``devices`` GPUs, of which ``used`` hold allocator memory."""

    def __init__(self, *, devices: int, used: set[int], initialised: bool) -> None:
        self.devices, self.used, self.initialised = devices, used, initialised
        self.current = min(used, default=0)
        self.synchronised: list[int] = []
        self.contexts: set[int] = set(used) if initialised else set()

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return self.initialised

    def device_count(self) -> int:
        return self.devices

    def _lazy_init(self) -> None:
        if not self.initialised:
            self.initialised = True
            self.contexts.add(self.current)

    def current_device(self) -> int:
        self._lazy_init()
        return self.current

    def memory_reserved(self, device: int | None = None) -> int:
        if not self.initialised:
            return 0
        index = self.current if device is None else device
        return 2**20 if index in self.used else 0

    def synchronize(self, device: int | None = None) -> None:
        self._lazy_init()
        index = self.current if device is None else device
        self.contexts.add(index)  # a context is created on a device not used before
        self.synchronised.append(index)


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    torch = types.SimpleNamespace(cuda=None)
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


def _tracker() -> Tracker:
    return Tracker(
        "cuda",
        meters=[ReplayMeter([CPU], [TraceInterval(CPU.name, 0.0, 3600.0, 3600.0)])],
        store=False,
        interval_s=10.0,
    )


def test_window_edges_synchronise_every_device_in_use(
    fake_torch: types.SimpleNamespace,
) -> None:
    cuda = FakeCuda(devices=4, used={0, 2, 3}, initialised=True)
    fake_torch.cuda = cuda
    with _tracker() as t:
        cuda.synchronised.clear()
        with t.window("step"):
            opened = list(cuda.synchronised)
            cuda.synchronised.clear()
        closed = list(cuda.synchronised)
    # Was [0] at each edge: only the current device.
    assert sorted(opened) == sorted(closed) == [0, 2, 3]
    assert cuda.contexts == {0, 2, 3}  # no context made on the unused device 1


def test_nothing_initialises_cuda_when_the_process_has_not(
    fake_torch: types.SimpleNamespace,
) -> None:
    cuda = FakeCuda(devices=2, used=set(), initialised=False)
    fake_torch.cuda = cuda
    with _tracker() as t, t.window("step"):
        pass
    assert not cuda.initialised
    assert cuda.synchronised == []
    assert cuda.contexts == set()
