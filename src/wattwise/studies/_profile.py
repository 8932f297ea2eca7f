"""Per-module time of training steps, forward and backward, from the PyTorch profiler.

Why this way: the profiler's own module hierarchy (``with_modules``) only works for
TorchScript models, and full backward hooks on modules break on in-place operations
(torchvision's ``ReLU(inplace=True)``). So forward hooks open a profiler range named after
each module, and each backward operation is given to the module whose forward operation
created its autograd node: the profiler records the same autograd *sequence number* on
both. This works for any eager model, in-place operations included.

A module's time is the time of its own operations (a child module's are the child's); on
CUDA, the GPU time of the kernels they launched. Operations outside every module are split
into the optimizer, gradient accumulation, and the loss and the rest; step time no operation covers
(Python, framework and profiler overhead; on a GPU, idle time) is ``untraced``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.nn import functional as F  # noqa: N812 - the usual alias

__all__ = ["StepProfile", "profile_steps"]

_MODULE = "wattwise.module:"
_STEP = "wattwise.step"
_BACKWARD = "autograd::engine::evaluate_function: "
_US = 1e-6  # profiler times are in microseconds

# Kineto's native log lines ("USDT:2026-01-01 10:00:00 12:12 File.cpp:39] profiler_start",
# "ERROR:... gpuGetDeviceCount failed" on a CPU-only machine) go straight to file
# descriptor 2. They say nothing to a user of wattwise, so they are dropped; any other
# line written meanwhile is passed on.
_KINETO_LINE = re.compile(rb"^[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \S+:\d+\]")


@contextlib.contextmanager
def _quiet_kineto() -> Iterator[None]:
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing to quieten
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().splitlines(True) if not _KINETO_LINE.match(ln)]
            if kept:
                sys.stderr.write(b"".join(kept).decode(errors="replace"))
                sys.stderr.flush()


@dataclass(frozen=True)
class StepProfile:
    """Where the time of profiled training steps went. Times are per step, in s.

    Attributes:
        steps: steps profiled.
        step_s: wall time of a profiled step.
        forward_s: module name -> time of its own forward operations.
        backward_s: module name -> time of the backward operations of those.
        outside_s: operations outside every module, by kind: ``optimizer`` (its step and
            ``zero_grad``), ``gradient accumulation`` (into ``.grad``), ``loss and other``.
        untraced_s: step time no operation covers (never negative).
        device_time: True when operation times are GPU kernel times (CUDA).
    """

    steps: int
    step_s: float
    forward_s: dict[str, float]
    backward_s: dict[str, float]
    outside_s: dict[str, float]
    untraced_s: float
    device_time: bool

    def module_s(self, name: str) -> float:
        """Forward + backward time of a module per step, in s."""
        return self.forward_s.get(name, 0.0) + self.backward_s.get(name, 0.0)


class _Ranges:
    """Forward hooks that open a profiler range per module call."""

    def __init__(self, model: nn.Module) -> None:
        self.names = {m: n for n, m in model.named_modules()}
        self.open: dict[nn.Module, list[Any]] = {}
        self.handles = []
        for m in self.names:
            self.handles.append(m.register_forward_pre_hook(self._enter))
            self.handles.append(m.register_forward_hook(self._exit, always_call=True))

    def _enter(self, module: nn.Module, args: Any) -> None:
        rf = record_function(_MODULE + self.names[module])
        rf.__enter__()  # type: ignore[no-untyped-call]
        self.open.setdefault(module, []).append(rf)

    def _exit(self, module: nn.Module, args: Any, output: Any) -> None:
        stack = self.open.get(module)
        if stack:
            stack.pop().__exit__(None, None, None)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer
) -> None:
    opt.zero_grad(set_to_none=True)
    out = model(x)
    logits = getattr(out, "logits", out)
    F.cross_entropy(logits.float(), y).backward()  # type: ignore[no-untyped-call]
    opt.step()
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def profile_steps(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    steps: int = 10,
) -> StepProfile:
    """Profile ``steps`` training steps (forward, cross-entropy, backward, optimizer step)
    of ``model`` on the batch ``(x, y)`` and split their time by module.

    Args:
        model: the model, on the device of ``x``, in training mode.
        x: one input batch.
        y: its labels.
        optimizer: the optimizer of ``model``'s parameters.
        steps: steps to profile (>= 1).
    """
    from torch.profiler import ProfilerActivity, profile

    cuda = x.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    ranges = _Ranges(model)
    prof = profile(activities=activities)
    try:
        with _quiet_kineto():
            prof.start()
        try:
            for _ in range(steps):
                with record_function(_STEP):
                    _train_step(model, x, y, optimizer)
        finally:
            with _quiet_kineto():
                prof.stop()
    finally:
        ranges.remove()
    with _quiet_kineto():
        events = list(prof.events())  # type: ignore[no-untyped-call]
    return _split(events, steps, cuda)


def _outside_kind(name: str) -> str:
    if name.startswith("Optimizer."):
        return "optimizer"
    if "AccumulateGrad" in name:
        return "gradient accumulation"
    return "loss and other"


def _split(events: list[Any], steps: int, cuda: bool) -> StepProfile:
    def op_time(e: Any) -> float:
        return float(e.device_time_total if cuda else e.cpu_time_total) * _US

    def is_range(e: Any) -> bool:
        return bool(e.name.startswith(_MODULE) or e.name == _STEP)

    owner_of_seq: dict[int, str] = {}
    forward: dict[str, float] = {}
    backward: dict[str, float] = {}
    outside: dict[str, float] = {}
    step_total = sum(float(e.cpu_time_total) * _US for e in events if e.name == _STEP)

    def claim(e: Any, owner: str) -> None:
        if e.sequence_nr is not None and e.sequence_nr >= 0:
            owner_of_seq.setdefault(e.sequence_nr, owner)
        for c in e.cpu_children:
            claim(c, owner)

    top = [
        e for e in events if not is_range(e) and (e.cpu_parent is None or is_range(e.cpu_parent))
    ]
    for e in top:  # forward operations first: they name the owners of sequence numbers
        parent = e.cpu_parent
        if parent is not None and parent.name.startswith(_MODULE):
            owner = parent.name[len(_MODULE) :]
            forward[owner] = forward.get(owner, 0.0) + op_time(e)
            claim(e, owner)
    for e in top:
        parent = e.cpu_parent
        if parent is not None and parent.name.startswith(_MODULE):
            continue
        owner = owner_of_seq.get(e.sequence_nr) if e.name.startswith(_BACKWARD) else None
        if owner is not None:
            backward[owner] = backward.get(owner, 0.0) + op_time(e)
        else:
            kind = _outside_kind(e.name)
            outside[kind] = outside.get(kind, 0.0) + op_time(e)
    traced = sum(forward.values()) + sum(backward.values()) + sum(outside.values())
    n = max(steps, 1)
    return StepProfile(
        steps=steps,
        step_s=step_total / n,
        forward_s={k: v / n for k, v in forward.items()},
        backward_s={k: v / n for k, v in backward.items()},
        outside_s={k: v / n for k, v in outside.items()},
        untraced_s=max(step_total - traced, 0.0) / n,
        device_time=cuda,
    )
