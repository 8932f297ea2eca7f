"""The layer study: where a model's training energy goes, module by module.

The energy of training steps is *measured* over whole windows of steps (the tracker cannot
see inside a step); it is *attributed* to modules by their share of the profiled step time
(:mod:`wattwise.studies._profile`). Profiling slows a step down, so the two passes are
separate: measured windows without the profiler, profiled steps between them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from wattwise._errors import ConfigError
from wattwise._records import Provenance
from wattwise.protocol import (
    LeverContext,
    StudySession,
    Summary,
    measure_calls,
    schedule,
    study_session,
    summarize,
)
from wattwise.studies._costs import ModelCost, count_costs
from wattwise.studies._method import (
    Budget,
    StudyMethod,
    TrainConfig,
    method_notes,
    run_trials,
    threads_set,
    versus,
)
from wattwise.studies._profile import StepProfile, _train_step, profile_steps
from wattwise.studies._records import LayerRow, LayerStudy, VariantResult
from wattwise.train import StopRule, resolve_device, seed_everything
from wattwise.workloads._datasets import DataSplit
from wattwise.workloads._models import CNN, MLP, build_model
from wattwise.workloads._spec import split_spec

__all__ = ["auto_variants", "study_layers"]

#: Fewest training steps in a measured window.
MIN_WINDOW_STEPS = 3


def auto_variants(
    model: str, *, input_shape: tuple[int, ...], num_classes: int
) -> list[tuple[str, str]]:
    """Smaller variants of a built-in model: narrower and shallower conv (``cnn``) or dense
    (``mlp``) blocks.

    Returns:
        ``(spec, what changed)`` pairs.

    Raises:
        ConfigError: not a built-in model (give variants explicitly for other models).
    """
    name, _ = split_spec(model)
    built = build_model(model, input_shape=input_shape, num_classes=num_classes)
    out: list[tuple[str, str]] = []
    if isinstance(built, CNN):
        convs = [m for m in built.modules() if isinstance(m, nn.Conv2d)]
        depth, width, kind = len(convs), convs[0].out_channels, "conv"
    elif isinstance(built, MLP):
        dense = [m for m in built.features if isinstance(m, nn.Linear)]
        depth, width, kind = len(dense), (dense[0].out_features if dense else 0), "dense"
    else:
        raise ConfigError(
            f"variants are generated for the built-in cnn and mlp only, not {name!r}: give "
            "the variants to train as model specs"
        )
    if width >= 2 and depth >= 1:
        change = f"{kind} width {width} -> {width // 2}"
        out.append((f"{name}:depth={depth},width={width // 2}", change))
    if depth >= (2 if kind == "conv" else 1):
        change = f"last {kind} block dropped ({depth} -> {depth - 1})"
        out.append((f"{name}:depth={depth - 1},width={width}", change))
    return out


def _make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ConfigError(f"unknown optimizer {name!r} (use adam, adamw or sgd)")


def _batch(
    data: DataSplit | None,
    input_shape: tuple[int, ...],
    num_classes: int,
    batch_size: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch: real samples when the data has this shape, else random ones."""
    if data is not None and tuple(data.input_shape) == tuple(input_shape):
        loader: DataLoader[tuple[torch.Tensor, torch.Tensor]] = DataLoader(
            data.train, batch_size=batch_size
        )
        x, y = next(iter(loader))
        if len(y) == batch_size:
            return x, y
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=gen)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen)
    return x, y


def _merge(profiles: Sequence[StepProfile]) -> StepProfile:
    """Profiles of several passes as one (step-weighted means)."""
    steps = sum(p.steps for p in profiles)

    def mean(get: object) -> float:
        assert callable(get)
        return sum(float(get(p)) * p.steps for p in profiles) / steps

    names = {n for p in profiles for n in (*p.forward_s, *p.backward_s)}
    kinds = {k for p in profiles for k in p.outside_s}
    return StepProfile(
        steps=steps,
        step_s=mean(lambda p: p.step_s),
        forward_s={n: mean(lambda p, n=n: p.forward_s.get(n, 0.0)) for n in names},
        backward_s={n: mean(lambda p, n=n: p.backward_s.get(n, 0.0)) for n in names},
        outside_s={k: mean(lambda p, k=k: p.outside_s.get(k, 0.0)) for k in kinds},
        untraced_s=mean(lambda p: p.untraced_s),
        device_time=profiles[0].device_time,
    )


def _rows(cost: ModelCost, prof: StepProfile, energy_per_step_j: float) -> list[LayerRow]:
    """One row per module with parameters, FLOPs or time, then the pseudo rows."""
    pseudo = [
        (f"({kind})", "optimizer" if kind == "optimizer" else "outside", prof.outside_s[kind])
        for kind in sorted(prof.outside_s)
    ]
    pseudo.append(("(untraced)", "untraced", prof.untraced_s))
    total = sum(prof.module_s(m.name) for m in cost.modules) + sum(t for *_, t in pseudo)
    total = total if total > 0 else 1.0
    rows = []
    for m in cost.modules:
        t = prof.module_s(m.name)
        if t == 0 and m.params == 0 and m.flops == 0:
            continue  # a container with no operations of its own
        share = t / total
        rows.append(
            LayerRow(
                name=m.name or "(model)",
                type=m.type,
                module=m.module,
                params=m.params,
                flops=m.flops,
                train_flops=m.train_flops,
                forward_s=prof.forward_s.get(m.name, 0.0),
                backward_s=prof.backward_s.get(m.name, 0.0),
                time_share=share,
                energy_share=share,
                energy_per_step_j=energy_per_step_j * share,
            )
        )
    for name, kind, t in pseudo:
        share = t / total
        rows.append(
            LayerRow(name, kind, "", 0, 0, 0, t, 0.0, share, share, energy_per_step_j * share)
        )
    return rows


def study_layers(
    model: str,
    *,
    data: DataSplit | None = None,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    threads: int | None = None,
    window_s: float = 2.0,
    profile_steps_per_repeat: int = 10,
    variants: Sequence[str] | bool = False,
    epochs: int = 5,
    stop: Sequence[StopRule] = (),
    lr: float = 1e-3,
    optimizer: str = "adam",
    method: StudyMethod | None = None,
    name: str | None = None,
    context: LeverContext | None = None,
) -> LayerStudy:
    """Per-module FLOPs, parameters, time share and attributed energy share of training
    steps, grouped by layer type; optionally, smaller variants trained and compared.

    Each repeat is a measured window of training steps (at least ``window_s`` long, the
    same number of steps every repeat), stored as a run of the study; between windows,
    ``profile_steps_per_repeat`` steps are profiled to split the step time by module.

    Args:
        model: the model spec.
        data: the dataset (its first batch is the profiled batch; needed for variants).
        input_shape: ``(C, H, W)`` when profiling on random inputs of another shape.
        num_classes: classes of random labels (default: the data's, else 10).
        batch_size: training batch size.
        device: ``auto``, ``cpu``, ``cuda``...
        threads: PyTorch threads (None: as is).
        window_s: shortest measured window, in s (long enough for the meters' resolution).
        profile_steps_per_repeat: profiled steps after each measured window.
        variants: True for :func:`auto_variants`, or variant specs; each is trained with the
            base model under ``epochs``/``stop`` and compared with it.
        epochs: epochs planned for variant training.
        stop: stopping rules for variant training.
        lr: learning rate.
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        method: the measurement protocol (repeats, warm-up, cool-down, order) and test.
        name: the study's name.
        context: meters, store, scope and progress (default: detected meters, the default
            store, machine scope).

    Raises:
        ConfigError: bad arguments, or a model that cannot take the input.
    """
    method = method or StudyMethod()
    context = context or LeverContext()
    shape, classes, variant_specs = _layer_inputs(
        model, data, input_shape, num_classes, variants, batch_size
    )
    _check_window(window_s, profile_steps_per_repeat)
    dev = resolve_device(device)
    seed_everything(method.seed)
    net = build_model(model, input_shape=shape, num_classes=classes)
    cost = count_costs(net, shape)
    x, y = _batch(data, shape, classes, batch_size, method.seed)
    budget = Budget(epochs, tuple(stop), lr, optimizer)
    settings = {
        "batch_size": batch_size,
        "device": str(dev),
        "threads": threads,
        "window_s": window_s,
        "profile_steps_per_repeat": profile_steps_per_repeat,
        **_data_settings(data, shape, budget if variant_specs else None),
    }
    study_name = name or f"layers of {model}"
    params = {"model": model, "input_shape": list(shape), **settings}
    params["method"] = method.to_dict(context.scope)
    with (
        threads_set(threads),
        study_session(context, kind="layers", name=study_name, params=params) as session,
    ):
        net.to(dev).train()
        x, y = x.to(dev), y.to(dev)
        opt = _make_optimizer(optimizer, net, lr)
        n_variants = 1 + len(variant_specs) if variant_specs else 0
        session.begin(method.repeats * (1 + n_variants))
        windows = _measure_windows(
            session,
            method,
            model,
            step=lambda: _train_step(net, x, y, opt),
            profile=lambda: profile_steps(net, x, y, opt, steps=profile_steps_per_repeat),
            window_s=window_s,
        )
        variant_rows = (
            _variants(
                session, method, model, variant_specs, data, budget, batch_size, str(dev), threads
            )
            if variant_specs and data is not None
            else []
        )
        prof = windows.profile
        overhead = prof.step_s / windows.step_s.median - 1 if windows.step_s.median > 0 else 0.0
        study = LayerStudy(
            study_id=session.study_id,
            name=study_name,
            model=model,
            input_shape=tuple(shape),
            settings=settings,
            method=method.to_dict(context.scope),
            steps_per_window=windows.steps,
            energy_per_step_j=windows.energy_per_step_j,
            step_s=windows.step_s,
            energy_source=str(Provenance.combine(windows.sources)),
            profiler_overhead_frac=overhead,
            layers=tuple(_rows(cost, prof, windows.energy_per_step_j.median)),
            variants=tuple(variant_rows),
            notes=tuple(_layer_notes(method, context, session.sources, overhead, prof)),
            stored=session.stored,
        )
        session.finish(study.to_dict())
    return study


def _check_window(window_s: float, profile_steps: int) -> None:
    if not 0 < window_s <= 3600 or profile_steps < 1:  # also refuses NaN
        raise ConfigError(
            f"the window must be more than 0 and at most 3600 s (got {window_s}) and at least "
            "one step must be profiled"
        )


def _data_settings(
    data: DataSplit | None, shape: tuple[int, ...], variant_budget: Budget | None
) -> dict[str, Any]:
    """The settings of the layer study that say what it trained on."""
    return {
        "inputs": "dataset batch" if data is not None and data.input_shape == shape else "random",
        "dataset": data.name if data is not None else None,
        "variant_training": variant_budget.to_dict() if variant_budget is not None else None,
    }


def _layer_inputs(
    model: str,
    data: DataSplit | None,
    input_shape: tuple[int, ...] | None,
    num_classes: int | None,
    variants: Sequence[str] | bool,
    batch_size: int,
) -> tuple[tuple[int, ...], int, list[tuple[str, str]]]:
    """The input shape, the number of classes and the variants to train, checked."""
    if input_shape is None:
        if data is None:
            raise ConfigError("give a dataset or an input shape for the layer study")
        input_shape = tuple(data.input_shape)
    classes = num_classes or (data.num_classes if data is not None else 10)
    if batch_size < 2:
        raise ConfigError(f"batch size must be >= 2, got {batch_size}")
    if variants is True:
        variant_specs = auto_variants(model, input_shape=input_shape, num_classes=classes)
    elif variants is False:
        variant_specs = []
    else:
        variant_specs = [(v, "given") for v in variants]
    if variant_specs and (data is None or tuple(data.input_shape) != tuple(input_shape)):
        raise ConfigError("variants are trained on the dataset: use its input shape")
    return input_shape, classes, variant_specs


@dataclass(frozen=True)
class _Windows:
    """The measured windows of the layer study and the merged profile between them."""

    steps: int
    energy_per_step_j: Summary
    step_s: Summary
    sources: tuple[str, ...]
    profile: StepProfile


def _measure_windows(
    session: StudySession,
    method: StudyMethod,
    model: str,
    *,
    step: Callable[[], object],
    profile: Callable[[], StepProfile],
    window_s: float,
) -> _Windows:
    """Warm up, size the window (the same number of steps, at least ``window_s`` long),
    then measure one window per repeat, each a stored run of its own, in the protocol's
    order and cool-down, profiling ``profile`` steps after each."""
    proto = method.protocol
    for _ in range(max(proto.warmup, MIN_WINDOW_STEPS) - MIN_WINDOW_STEPS):
        step()
    t0 = time.perf_counter()
    for _ in range(MIN_WINDOW_STEPS):  # warm too, and timed: a guess of one step's time
        step()
    step_guess = (time.perf_counter() - t0) / MIN_WINDOW_STEPS
    steps = max(MIN_WINDOW_STEPS, math.ceil(window_s / max(step_guess, 1e-9)))
    window = replace(proto, warmup=0, min_time_s=0.0, min_calls=steps, max_calls=steps)
    energies, times, sources, profiles = [], [], [], []
    for r, _ in schedule([model], proto):
        tracker = session.tracker(f"layers: {model} #{r}")
        with tracker:
            m = measure_calls(step, tracker=tracker, window="steps", protocol=window)
        sources.append(m.source)
        energies.append(m.energy_per_call_j)
        times.append(m.s_per_call)
        session.link(
            tracker.run_id,
            f"{model} #{r}",
            {
                "model": model,
                "repeat": r,
                "steps": steps,
                "energy_per_step_j": m.energy_per_call_j,
                "step_s": m.s_per_call,
                "energy_source": m.source,
            },
        )
        session.run_done(f"{model} window #{r}", m.source)
        profiles.append(profile())
    return _Windows(steps, summarize(energies), summarize(times), tuple(sources), _merge(profiles))


def _layer_notes(
    method: StudyMethod,
    context: LeverContext,
    sources: Sequence[str],
    overhead: float,
    prof: StepProfile,
) -> list[str]:
    notes = [
        *method_notes(method, context.scope, sources),
        "per-layer energy is attributed by profiled time share, not measured per layer",
        "FLOPs count matrix products and convolutions only (torch.utils.flop_counter); "
        "element-wise layers show 0 FLOPs but take time",
    ]
    if overhead > 0.5:
        notes.append(
            f"profiling made a step {overhead + 1:.1f}x slower: the per-operation cost of "
            "the profiler inflates the shares of cheap, numerous operations (and of "
            "untraced); a larger batch gives a truer split"
        )
    if prof.device_time:
        notes.append("on the GPU, layer times are kernel times; untraced includes GPU idle")
    return notes


def _variants(
    session: StudySession,
    method: StudyMethod,
    model: str,
    specs: Sequence[tuple[str, str]],
    data: DataSplit,
    budget: Budget,
    batch_size: int,
    device: str,
    threads: int | None,
) -> list[VariantResult]:
    configs = [
        TrainConfig(spec, spec, batch_size, device, threads, attributes={"change": change})
        for spec, change in [(model, "base"), *specs]
    ]
    runs = run_trials(session, method, configs, data, budget)
    base = runs[model]
    out = []
    for config, (_, change) in zip(configs, [(model, "base"), *specs], strict=True):
        built = build_model(
            config.model, input_shape=data.input_shape, num_classes=data.num_classes
        )
        cost = count_costs(built, data.input_shape)
        r = runs[config.label]
        out.append(
            VariantResult(
                model=config.model,
                change=change,
                params=cost.params,
                flops=cost.flops,
                runs=r,
                versus=None if r is base else versus(base, r, method),
            )
        )
    return out
