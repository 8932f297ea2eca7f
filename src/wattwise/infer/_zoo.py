"""The model-zoo trend: energy per image of torchvision's classifiers, 2012 to 2022.

Models are built with random weights: the energy of a forward pass does not depend on the
weights' values (the same operations run on the same shapes; dense fp32 kernels do not
skip zeros), so nothing is downloaded. Accuracy, GFLOPs and parameter counts come from the
metadata of torchvision's DEFAULT weights, which ships inside torchvision.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from wattwise._errors import ConfigError
from wattwise._pareto import pareto_mask
from wattwise._units import format_energy
from wattwise.infer._records import ZooEntry, ZooResult
from wattwise.protocol import LeverContext, Protocol, measure, tracking
from wattwise.tracking._tracker import Tracker

__all__ = [
    "DEFAULT_ZOO",
    "FAMILY_YEARS",
    "ZOO_PROTOCOL",
    "ModelInfo",
    "measure_zoo",
    "model_info",
    "pareto_front",
    "zoo_models",
]

#: Architecture family -> (year of its paper's first version, the paper). Longest prefix
#: wins (``swin_v2`` before ``swin``).
FAMILY_YEARS: dict[str, tuple[int, str]] = {
    "alexnet": (2012, "Krizhevsky et al., NeurIPS 2012"),
    "vgg": (2014, "Simonyan & Zisserman, arXiv:1409.1556"),
    "googlenet": (2014, "Szegedy et al., arXiv:1409.4842"),
    "inception_v3": (2015, "Szegedy et al., arXiv:1512.00567"),
    "resnet": (2015, "He et al., arXiv:1512.03385"),
    "squeezenet": (2016, "Iandola et al., arXiv:1602.07360"),
    "wide_resnet": (2016, "Zagoruyko & Komodakis, arXiv:1605.07146"),
    "densenet": (2016, "Huang et al., arXiv:1608.06993"),
    "resnext": (2016, "Xie et al., arXiv:1611.05431"),
    "mobilenet_v2": (2018, "Sandler et al., arXiv:1801.04381"),
    "shufflenet_v2": (2018, "Ma et al., arXiv:1807.11164"),
    "mnasnet": (2018, "Tan et al., arXiv:1807.11626"),
    "mobilenet_v3": (2019, "Howard et al., arXiv:1905.02244"),
    "efficientnet": (2019, "Tan & Le, arXiv:1905.11946"),
    "regnet": (2020, "Radosavovic et al., arXiv:2003.13678"),
    "vit": (2020, "Dosovitskiy et al., arXiv:2010.11929"),
    "efficientnet_v2": (2021, "Tan & Le, arXiv:2104.00298"),
    "swin": (2021, "Liu et al., arXiv:2103.14030"),
    "swin_v2": (2021, "Liu et al., arXiv:2111.09883"),
    "convnext": (2022, "Liu et al., arXiv:2201.03545"),
    "maxvit": (2022, "Tu et al., arXiv:2204.01697"),
}

#: The default set: one or two models per family, 2012-2022, that together run in a few
#: minutes on two CPU cores at batch size 1.
DEFAULT_ZOO = (
    "alexnet",
    "vgg11",
    "googlenet",
    "resnet18",
    "resnet50",
    "squeezenet1_1",
    "densenet121",
    "mobilenet_v2",
    "shufflenet_v2_x1_0",
    "mnasnet1_0",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_y_400mf",
    "vit_b_32",
    "convnext_tiny",
)


@dataclass(frozen=True)
class ModelInfo:
    """What torchvision's metadata and the year table say about a model.

    Attributes:
        model: torchvision name.
        family: architecture family (a :data:`FAMILY_YEARS` key).
        year: year of the family's paper.
        paper: the paper.
        top1: ImageNet-1K top-1 of the DEFAULT weights, in %.
        gflops: GFLOPs per image at ``input_size``, in GFLOP.
        params: parameter count.
        input_size: side of the evaluation crop, in pixels.
    """

    model: str
    family: str
    year: int
    paper: str
    top1: float
    gflops: float
    params: int
    input_size: int


def _family(name: str) -> str | None:
    found = [f for f in FAMILY_YEARS if name.startswith(f)]
    return max(found, key=len) if found else None


def zoo_models() -> list[str]:
    """torchvision classification models whose family has a year in :data:`FAMILY_YEARS`."""
    from torchvision import models  # type: ignore[import-untyped,unused-ignore]

    return [n for n in models.list_models(module=models) if _family(n) is not None]


def model_info(name: str) -> ModelInfo:
    """Year, accuracy, GFLOPs, parameters and input size of a torchvision model, without
    downloading anything.

    Raises:
        ConfigError: not a torchvision classification model, or no year is known for it.
    """
    from torchvision import models  # type: ignore[import-untyped,unused-ignore]

    if name not in models.list_models(module=models):
        raise ConfigError(f"{name!r} is not a torchvision classification model")
    family = _family(name)
    if family is None:
        raise ConfigError(f"no year is known for {name!r}'s architecture family")
    weights = models.get_model_weights(name).DEFAULT
    meta: dict[str, Any] = weights.meta
    crop = getattr(weights.transforms(), "crop_size", [224])
    year, paper = FAMILY_YEARS[family]
    return ModelInfo(
        model=name,
        family=family,
        year=year,
        paper=paper,
        top1=float(meta["_metrics"]["ImageNet-1K"]["acc@1"]),
        gflops=float(meta["_ops"]),
        params=int(meta["num_params"]),
        input_size=int(crop[0]),
    )


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each ``(energy, accuracy)``: whether it is on the Pareto front (see
    :func:`wattwise._pareto.pareto_mask`)."""
    return pareto_mask([p[0] for p in points], [p[1] for p in points])


def _trend(entries: Sequence[ZooEntry]) -> tuple[float, float] | None:
    """Least-squares line of log10(J/image) on year: (slope, intercept), or None."""
    years = np.array([e.year for e in entries], dtype=float)
    if len(set(years.tolist())) < 2:
        return None
    logs = np.log10([e.energy_per_item_j for e in entries])
    slope, intercept = np.polyfit(years, logs, 1)
    return float(slope), float(intercept)


def _shufflenet(entries: Sequence[ZooEntry], trend: tuple[float, float] | None) -> dict[str, Any]:
    """ShuffleNetV2 against the trend line and against the models of its time."""
    found: dict[str, Any] = {}
    for s in (e for e in entries if e.family == "shufflenet_v2"):
        item: dict[str, Any] = {
            "energy_per_item_j": s.energy_per_item_j,
            "top1": s.top1,
            "on_pareto_front": s.on_pareto_front,
        }
        if trend is not None:
            expected = 10 ** (trend[0] * s.year + trend[1])
            item["trend_energy_per_item_j"] = expected
            item["ratio_to_trend"] = s.energy_per_item_j / expected
        later = [e for e in entries if e.year >= s.year and e.family != "shufflenet_v2"]
        if later:
            lower = sum(e.energy_per_item_j < s.energy_per_item_j for e in later)
            item["models_since_with_less_energy"] = lower
            item["models_since"] = len(later)
        below = trend is not None and item["ratio_to_trend"] < 1.0
        lowest = later and item["models_since_with_less_energy"] == 0
        item["summary"] = (
            f"{s.model}: {format_energy(s.energy_per_item_j)}/image"
            + (f", {item['ratio_to_trend']:.2f}x the trend line" if trend is not None else "")
            + (
                f"; {item['models_since_with_less_energy']} of {item['models_since']} models "
                f"from {s.year} on use less"
                if later
                else ""
            )
            + ("; below the trend" if below else "; not below the trend")
            + (" and the lowest of its time" if lowest else "")
        )
        found[s.model] = item
    return found


#: The default protocol of :func:`measure_zoo`: two warm-up batches per model, then one
#: window of at least 1 s and 3 forward passes.
ZOO_PROTOCOL = Protocol(repeats=1, warmup=2, min_time_s=1.0, min_calls=3)


def measure_zoo(
    models: Sequence[str] = DEFAULT_ZOO,
    *,
    batch_size: int = 1,
    protocol: Protocol = ZOO_PROTOCOL,
    device: str | torch.device = "cpu",
    seed: int = 0,
    out_dir: str | None = None,
    tracker: Tracker | None = None,
    context: LeverContext | None = None,
) -> ZooResult:
    """Measure J/image and latency of torchvision models on random weights.

    Each model: built with random weights, warmed up with the protocol's warm-up batches,
    then run on one fixed random batch inside its own window (one per repeat) until the
    protocol's window is complete. Models are measured one after the other, each built
    just before its turn and freed after it.

    Args:
        models: torchvision names.
        batch_size: images per forward pass.
        protocol: warm-up, repeats and window length per model (default:
            :data:`ZOO_PROTOCOL`).
        device: where inference runs.
        seed: seed of the weights and inputs.
        out_dir: write the plots here (needs matplotlib); None: no plots.
        tracker: a tracker to measure with; default: a new one from ``context``.
        context: meters, store and scope of a new tracker, and the progress told
            ``(models done, models, next model)`` before each model (None:
            ``LeverContext()``).

    Raises:
        ConfigError: an unknown model, an empty list, a bad batch size.
    """
    if not models:
        raise ConfigError("no model to measure")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    context = context or LeverContext()
    infos = [model_info(n) for n in dict.fromkeys(models)]
    dev = torch.device(device)
    entries: list[ZooEntry] = []
    with tracking("zoo", context, tracker) as t:
        for i, info in enumerate(infos):
            if context.progress is not None:
                context.progress(i, len(infos), info.model)
            call = _forward(info, batch_size, dev, seed)
            measured = measure(
                {info.model: call},
                protocol,
                tracker=t,
                items_per_call=batch_size,
                window=lambda label, r: label if protocol.repeats == 1 else f"{label} #{r}",
            )
            del call  # frees the model before the next one is built
            entries.append(
                ZooEntry(
                    model=info.model,
                    family=info.family,
                    year=info.year,
                    top1=info.top1,
                    gflops=info.gflops,
                    params=info.params,
                    input_size=info.input_size,
                    measurement=measured[info.model].total,
                )
            )
        run_id = t.run_id
    return _result(entries, batch_size, run_id, out_dir)


def _forward(info: ModelInfo, batch_size: int, dev: torch.device, seed: int) -> Callable[[], None]:
    """One forward pass of the model with seeded random weights on a seeded random batch."""
    from torchvision import models as tvm  # type: ignore[import-untyped,unused-ignore]

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # GoogLeNet and Inception v3 warn that their default init will change: the init
        # does not matter here (energy does not depend on weight values).
        warnings.filterwarnings("ignore", "The default weight initialization", FutureWarning)
        net = tvm.get_model(info.model, weights=None).to(dev).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, info.input_size, info.input_size, generator=gen).to(dev)
    sync = dev.type == "cuda"

    def call() -> None:
        with torch.inference_mode():
            net(x)
        if sync:
            torch.cuda.synchronize(dev)

    return call


def _result(
    entries: list[ZooEntry], batch_size: int, run_id: str, out_dir: str | None
) -> ZooResult:
    """The result: the Pareto front, the trend, ShuffleNet against both, the plots."""
    front = pareto_front([(e.energy_per_item_j, e.top1) for e in entries])
    entries = [replace(e, on_pareto_front=f) for e, f in zip(entries, front, strict=True)]
    entries.sort(key=lambda e: (e.year, e.model))
    trend = _trend(entries)
    plots: tuple[str, ...] = ()
    result = ZooResult(
        entries=tuple(entries),
        batch_size=batch_size,
        trend_per_year=None if trend is None else 10 ** trend[0] - 1.0,
        shufflenet=_shufflenet(entries, trend),
        plots=plots,
        run_id=run_id,
        source=entries[0].measurement.source,
        notes=(
            "random weights: a forward pass costs the same whatever the weights' values",
            "top-1, GFLOPs and parameters: torchvision's DEFAULT weights metadata; year: "
            "the architecture paper's first version",
            f"inputs: one random batch of {batch_size} at each model's evaluation crop size",
        ),
    )
    if out_dir is not None:
        from wattwise.infer._plots import plot_zoo

        result = replace(result, plots=tuple(str(p) for p in plot_zoo(result, out_dir, trend)))
    return result
