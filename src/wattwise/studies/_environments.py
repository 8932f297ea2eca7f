"""The environment study: the same training work under several settings (threads, batch
size, precision, device), and the cheapest setting that keeps the baseline's accuracy."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch

from wattwise._errors import ConfigError
from wattwise.meters._gpu import GpuMonitor, GpuProbe, GpuSample, NvmlGpuProbe
from wattwise.protocol import LeverContext, study_session
from wattwise.studies._gpu_fit import assess_gpu, summarize_gpu
from wattwise.studies._method import (
    Budget,
    StudyMethod,
    TrainConfig,
    cheapest_within,
    method_notes,
    run_trials,
    versus,
)
from wattwise.studies._precision import check_precision
from wattwise.studies._records import EnvironmentResult, EnvironmentStudy, GpuUsage, Setting
from wattwise.train import StopRule, resolve_device
from wattwise.workloads._datasets import DataSplit
from wattwise.workloads._models import build_model

__all__ = ["study_environments"]

#: Makes the probe of a CUDA device (by CUDA index).
GpuProbeFactory = Callable[[int], GpuProbe]


def _settings(
    threads: Sequence[int | None],
    batch_sizes: Sequence[int],
    precisions: Sequence[str],
    devices: Sequence[str],
) -> list[Setting]:
    for name, values in (
        ("threads", threads),
        ("batch sizes", batch_sizes),
        ("precisions", precisions),
        ("devices", devices),
    ):
        if not values:
            raise ConfigError(f"give at least one value for {name}")
        if len(set(values)) != len(values):
            raise ConfigError(f"a value is listed twice in {name}: {list(values)}")
    for t in threads:
        if t is not None and t < 1:
            raise ConfigError(f"threads must be >= 1, got {t}")
    for b in batch_sizes:
        if b < 1:
            raise ConfigError(f"batch size must be >= 1, got {b}")
    for p in precisions:
        check_precision(p)
    resolved = [str(resolve_device(d)) for d in devices]  # raises for CUDA without a GPU
    if len(set(resolved)) != len(resolved):
        raise ConfigError(f"devices {list(devices)} name the same device twice")
    return [
        Setting(t, b, p, d)
        for t, b, p, d in itertools.product(threads, batch_sizes, precisions, resolved)
    ]


class _GpuWatch:
    """Samples the GPU of each CUDA run (entered around every measured run)."""

    def __init__(self, probe_factory: GpuProbeFactory) -> None:
        self.probe_factory = probe_factory
        self.samples: dict[str, list[GpuSample]] = {}
        self.names: dict[str, str] = {}
        self.errors: list[str] = []

    @contextmanager
    def around(self, config: TrainConfig) -> Iterator[None]:
        dev = torch.device(config.device)
        if dev.type != "cuda":
            yield
            return
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        with GpuMonitor(self.probe_factory(index)) as monitor:
            yield
        self.samples.setdefault(config.label, []).extend(monitor.samples)
        self.names[config.label] = monitor.gpu_name
        if monitor.error and monitor.error not in self.errors:
            self.errors.append(monitor.error)

    def usage(self, s: Setting) -> GpuUsage | None:
        return summarize_gpu(s.device, self.names.get(s.label, ""), self.samples.get(s.label, []))


def study_environments(
    model: str,
    data: DataSplit,
    *,
    threads: Sequence[int | None] = (None,),
    batch_sizes: Sequence[int] = (64,),
    precisions: Sequence[str] = ("fp32",),
    devices: Sequence[str] = ("auto",),
    epochs: int = 5,
    stop: Sequence[StopRule] = (),
    lr: float = 1e-3,
    optimizer: str = "adam",
    within_pp: float = 1.0,
    method: StudyMethod | None = None,
    name: str | None = None,
    context: LeverContext | None = None,
    gpu_probe: GpuProbeFactory | None = None,
) -> EnvironmentStudy:
    """Train the same model on the same data under every combination of the settings.

    The first value of each list makes the baseline; every other environment is compared
    with it (median change and significance), and the recommendation is the cheapest
    environment whose median accuracy is within ``within_pp`` percentage points of the
    baseline's, with the energy it saves against the baseline. On a CUDA device the GPU
    is sampled during each run and judged oversized or matched.

    Args:
        model: the model spec.
        data: the dataset.
        threads: PyTorch intra-op thread counts (None: PyTorch's default).
        batch_sizes: training batch sizes.
        precisions: ``fp32``, ``bf16``.
        devices: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        epochs: epochs planned.
        stop: stopping rules.
        lr: learning rate.
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        within_pp: accuracy tolerance of the recommendation, in percentage points.
        method: the measurement protocol (repeats, warm-up, cool-down, order) and test.
        name: the study's name.
        context: meters, store, scope and progress (default: detected meters, the default
            store, machine scope).
        gpu_probe: makes the probe of a CUDA device (default: NVML).

    Raises:
        ConfigError: bad settings, CUDA asked for without a GPU, a model that cannot take
            the data.
    """
    method = method or StudyMethod()
    context = context or LeverContext()
    settings = _settings(threads, batch_sizes, precisions, devices)
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    build_model(model, input_shape=data.input_shape, num_classes=data.num_classes)
    budget = Budget(epochs, tuple(stop), lr, optimizer)
    configs = [
        TrainConfig(s.label, model, s.batch_size, s.device, s.threads, s.precision, s.to_dict())
        for s in settings
    ]
    watch = _GpuWatch(gpu_probe or (lambda index: NvmlGpuProbe(index)))
    study_name = name or f"environments of {model} on {data.name}"
    with study_session(
        context,
        kind="environments",
        name=study_name,
        params={
            "model": model,
            "dataset": data.name,
            "threads": list(threads),
            "batch_sizes": list(batch_sizes),
            "precisions": list(precisions),
            "devices": list(devices),
            "within_pp": within_pp,
            **budget.to_dict(),
            "method": method.to_dict(context.scope),
        },
    ) as session:
        session.begin(len(configs) * method.repeats)
        runs = run_trials(session, method, configs, data, budget, around_run=watch.around)
        baseline = runs[configs[0].label]
        results = []
        for s in settings:
            r = runs[s.label]
            usage = watch.usage(s)
            results.append(
                EnvironmentResult(
                    setting=s,
                    runs=r,
                    versus=None if r is baseline else versus(baseline, r, method),
                    gpu=usage,
                    gpu_fit=assess_gpu(usage) if usage is not None else None,
                )
            )
        notes = method_notes(method, context.scope, session.sources)
        notes += [f"GPU usage not sampled: {e}" for e in watch.errors]
        notes += [
            f"{r.setting.label}: GPU {r.gpu_fit.reason}"
            for r in results
            if r.gpu_fit is not None and r.gpu_fit.oversized
        ]
        study = EnvironmentStudy(
            study_id=session.study_id,
            name=study_name,
            model=model,
            dataset=data.name,
            settings={**budget.to_dict()},
            method=method.to_dict(context.scope),
            environments=tuple(results),
            recommendation=cheapest_within(baseline, list(runs.values()), within_pp, method),
            notes=tuple(notes),
            stored=session.stored,
        )
        session.finish(study.to_dict())
    return study
