"""Whether a GPU is oversized for the model, from the samples of its probe.

del Rey et al. found that GPU power should match model complexity: a large GPU running a
small model idles most of the time while drawing its idle power. The environment study
samples the GPU with :class:`wattwise.meters.GpuMonitor` during each run;
:func:`summarize_gpu` and :func:`assess_gpu` turn the samples into a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wattwise.meters._gpu import GpuSample
from wattwise.studies._records import GpuFit, GpuUsage

__all__ = ["assess_gpu", "summarize_gpu"]

#: Below this median utilisation (and power share) a GPU counts as oversized.
BUSY_THRESHOLD_FRAC = 0.5
POWER_THRESHOLD_FRAC = 0.5


def summarize_gpu(device: str, gpu_name: str, samples: Sequence[GpuSample]) -> GpuUsage | None:
    """Usage over the samples of one or more runs (None without samples)."""
    if not samples:
        return None
    util = np.array([s.utilisation_frac for s in samples])
    return GpuUsage(
        device=device,
        gpu_name=gpu_name,
        samples=len(samples),
        utilisation_frac=float(np.median(util)),
        utilisation_p90_frac=float(np.percentile(util, 90)),
        power_w=float(np.mean([s.power_w for s in samples])),
        power_limit_w=max(s.power_limit_w for s in samples),
        memory_used_frac=max(s.memory_used_frac for s in samples),
    )


def assess_gpu(
    usage: GpuUsage,
    *,
    busy_threshold_frac: float = BUSY_THRESHOLD_FRAC,
    power_threshold_frac: float = POWER_THRESHOLD_FRAC,
) -> GpuFit:
    """Whether the GPU is oversized: its median utilisation is below ``busy_threshold_frac``
    and its mean power below ``power_threshold_frac`` of its limit (it idled and drew
    little of what it could: a smaller GPU, a larger batch or several jobs would use it
    better). Either figure high means the work keeps it busy."""
    power_share = usage.power_w / usage.power_limit_w if usage.power_limit_w > 0 else 0.0
    figures = (
        f"{usage.gpu_name} busy {usage.utilisation_frac:.0%} of the time (median, p90 "
        f"{usage.utilisation_p90_frac:.0%}), drawing {usage.power_w:.0f} W = {power_share:.0%} "
        f"of its {usage.power_limit_w:.0f} W limit, memory {usage.memory_used_frac:.0%} used"
    )
    if usage.utilisation_frac < busy_threshold_frac and power_share < power_threshold_frac:
        return GpuFit(
            True,
            f"oversized: {figures}; a smaller GPU, larger batches or sharing it between jobs "
            "would spend less energy idling",
        )
    return GpuFit(False, f"matched: {figures}")
