"""Waiting for queued CUDA work at a window's edges, without ever initialising CUDA."""

from __future__ import annotations

import logging
import sys

__all__ = ["sync_cuda"]

log = logging.getLogger("wattwise")


def sync_cuda() -> None:
    """Wait for queued CUDA work on every device this process uses, so a window edge falls
    after the work it closes.

    Never initialises CUDA, and makes no context on a device the process has not used: a
    device is waited for when it is the current one or PyTorch's allocator holds memory
    on it (``memory_reserved``), as on every device a kernel has run on.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        cuda = torch.cuda
        if not cuda.is_initialized():
            return
        current, count = cuda.current_device(), cuda.device_count()
    except Exception:
        log.debug("torch.cuda could not be queried at a window edge", exc_info=True)
        return
    for index in range(count):
        try:
            if index == current or cuda.memory_reserved(index) > 0:
                cuda.synchronize(index)
        except Exception:
            log.debug("torch.cuda.synchronize(%d) failed at a window edge", index, exc_info=True)
