"""The spiking-network study: SNNs at a few T against the ANN of the same shape, with
operation-count energy (an estimate of dedicated hardware) and the tracker's energy for
running each in PyTorch here, side by side, and where their operation-count energies cross.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.protocol import (
    LeverContext,
    Protocol,
    Repeated,
    StudySession,
    measure,
    study_session,
    tracking,
)
from wattwise.studies._method import Budget, StudyMethod, TrainConfig, method_notes, run_trials
from wattwise.studies._opcount import PRICES, SRAM_8KB_64BIT_PJ, OpCount, count_ops, price_ops
from wattwise.studies._opcount import crossover_rate as _crossover
from wattwise.studies._records import RepeatedRuns
from wattwise.studies._snn_net import SnnSpec, build_snn, is_neuron
from wattwise.studies._snn_records import Crossover, SnnStudy, SnnVariant
from wattwise.train import resolve_device
from wattwise.workloads._datasets import DataSplit
from wattwise.workloads._models import build_model

__all__ = ["study_snn"]

#: The ANN is priced at these precisions; the SNN at fp32 and int8 accumulates.
ANN_PRECISIONS = ("fp32", "int8")


def study_snn(
    data: DataSplit,
    *,
    steps: Sequence[int] = (2, 4, 8),
    family: str = "mlp",
    width: int = 256,
    depth: int = 1,
    coding: str = "rate",
    readout: str = "membrane",
    beta: float = 0.9,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    device: str = "cpu",
    threads: int | None = None,
    memory: bool = True,
    count_items: int = 512,
    infer_batch: int = 256,
    infer_window_s: float = 1.0,
    method: StudyMethod | None = None,
    name: str | None = None,
    context: LeverContext | None = None,
) -> SnnStudy:
    """Train the ANN and, for each T in ``steps``, the spiking network of the same shape;
    count and price their operations; measure their inference with the tracker.

    Per network: accuracy and training energy (repeated under ``method``), each spiking
    layer's firing rate, operation-count energy per inference (ANN at fp32 and int8, SNN
    at fp32 and int8; estimated, Horowitz ISSCC 2014, 45 nm) and, beside it, the tracker's
    energy per inference running it in PyTorch here (measured or estimated, as its source
    says). Per T, the input firing rate at which the SNN's operation-count energy equals
    the ANN's.

    Args:
        data: the dataset.
        steps: the T of each spiking network (distinct, >= 1).
        family: ``mlp`` or ``cnn1d`` (sequences).
        width: hidden units or channels.
        depth: hidden layers or conv blocks.
        coding: ``rate`` or ``direct``.
        readout: ``membrane`` or ``count``.
        beta: membrane decay.
        epochs: training epochs of every network.
        batch_size: training batch size.
        lr: learning rate (Adam).
        device: where to train (inference is counted and measured on the CPU).
        threads: PyTorch threads (None: as is).
        memory: count SRAM weight and membrane traffic in the operation-count energy.
        count_items: validation inputs the operations are counted on.
        infer_batch: inputs per measured inference call.
        infer_window_s: shortest measured inference window, in s.
        method: the measurement protocol (repeats, warm-up, order) and test.
        name: the study's name.
        context: meters, store, scope and progress.

    Raises:
        ConfigError: bad arguments.
        MissingExtra: snntorch is not installed (the ``snn`` extra).
    """
    method = method or StudyMethod()
    context = context or LeverContext()
    if epochs < 1 or batch_size < 1 or count_items < 1 or infer_batch < 1:
        raise ConfigError("epochs, batch size, counted items and inference batch must be >= 1")
    lo, hi = _input_range(data)
    base = SnnSpec(family, 1, width, depth, coding, readout, beta)
    specs = _specs(data, steps, base, lo, hi)
    dev = str(resolve_device(device))
    configs = [TrainConfig("ann", next(iter(specs.values())).ann_spec, batch_size, dev, threads)]
    configs += [TrainConfig(label, s.spec, batch_size, dev, threads) for label, s in specs.items()]
    trained: dict[str, nn.Module] = {}  # by label: the last repeat's network, trained by fit
    budget = Budget(epochs, (), lr, "adam")
    settings: dict[str, Any] = {
        **budget.to_dict(), **asdict(base), "steps": [s.steps for s in specs.values()],
        "rate_range": [lo, hi], "batch_size": batch_size, "device": dev, "threads": threads,
        "memory": memory, "count_items": count_items, "infer_batch": infer_batch,
    }  # fmt: skip
    study_name = name or f"snn on {data.name}"
    x_val = _count_inputs(data, count_items)
    with study_session(
        context,
        kind="snn",
        name=study_name,
        params={"dataset": data.name, **settings, "method": method.to_dict(context.scope)},
    ) as session:
        session.begin(len(configs) * method.repeats)
        builder = _builder(specs, lo, hi, trained)
        runs = run_trials(session, method, configs, data, budget, builder=builder)
        how = _Evaluation(session, specs, method, memory, x_val, infer_batch, infer_window_s)
        variants = _evaluate(how, configs, runs, trained)
        study = _study(how, study_name, data.name, settings, variants, coding)
        session.finish(study.to_dict())
    return study


def _study(
    how: _Evaluation,
    name: str,
    dataset: str,
    settings: dict[str, Any],
    variants: tuple[SnnVariant, ...],
    coding: str,
) -> SnnStudy:
    """The study's record: the variants, their crossovers, the memory model and notes."""
    session, method, scope = how.session, how.method, how.session.context.scope
    return SnnStudy(
        study_id=session.study_id,
        name=name,
        dataset=dataset,
        settings=settings,
        method=method.to_dict(scope),
        variants=variants,
        crossovers=_crossovers(variants, how.memory),
        memory_model=_memory_text(how.memory),
        notes=(*method_notes(method, scope, session.sources), *_notes(coding)),
        stored=session.stored,
    )


def _builder(
    specs: dict[str, SnnSpec], lo: float, hi: float, trained: dict[str, nn.Module]
) -> Callable[[TrainConfig, DataSplit], nn.Module]:
    """Builds each configuration's network (the SNN of its label, else the ANN), keeping
    the last built of each label in ``trained``."""

    def builder(config: TrainConfig, split: DataSplit) -> nn.Module:
        shape, k = split.input_shape, split.num_classes
        model: nn.Module
        if config.label in specs:
            model = build_snn(specs[config.label], input_shape=shape, num_classes=k, lo=lo, hi=hi)
        else:
            model = build_model(config.model, input_shape=shape, num_classes=k)
        trained[config.label] = model  # the last built is the last repeat's, trained by fit
        return model

    return builder


def _count_inputs(data: DataSplit, count_items: int) -> torch.Tensor:
    """The first ``count_items`` validation inputs (all when fewer), stacked."""
    n_val = len(data.val)  # type: ignore[arg-type]  # the bundled sets are sized
    return torch.stack([data.val[i][0] for i in range(min(n_val, count_items))])


def _specs(
    data: DataSplit, steps: Sequence[int], base: SnnSpec, lo: float, hi: float
) -> dict[str, SnnSpec]:
    """The SNN of each T, by label; every model (the ANN too) built once, so a bad
    setting fails before anything trains."""
    ts = list(dict.fromkeys(int(t) for t in steps))
    if not ts or min(ts) < 1 or len(ts) != len(list(steps)):
        raise ConfigError("give distinct time steps T >= 1, e.g. 2,4,8")
    specs = {f"snn T={t}": replace(base, steps=t) for t in ts}
    shape, k = data.input_shape, data.num_classes
    build_model(base.ann_spec, input_shape=shape, num_classes=k)
    for s in specs.values():
        build_snn(s, input_shape=shape, num_classes=k, lo=lo, hi=hi)
    return specs


@dataclass(frozen=True)
class _Evaluation:
    """How the trained networks are counted, priced and measured."""

    session: StudySession
    specs: dict[str, SnnSpec]
    method: StudyMethod
    memory: bool
    x_val: torch.Tensor
    infer_batch: int
    window_s: float


def _evaluate(
    how: _Evaluation,
    configs: Sequence[TrainConfig],
    runs: dict[str, RepeatedRuns],
    trained: dict[str, nn.Module],
) -> tuple[SnnVariant, ...]:
    """Each trained network's operation counts and prices, and its measured inference."""
    specs = how.specs
    models = {label: m.cpu().eval() for label, m in trained.items()}
    torch.manual_seed(how.method.seed)  # the rate coding's spikes
    counts = {
        c.label: count_ops(
            models[c.label], how.x_val, spiking=c.label in specs, is_neuron=is_neuron
        )
        for c in configs
    }
    x = how.x_val[: how.infer_batch]
    inference = _measure_inference(how.session, models, x, how.method, how.window_s)
    return tuple(
        SnnVariant(
            label=c.label,
            model=c.model,
            spiking=c.label in specs,
            steps=specs[c.label].steps if c.label in specs else 1,
            runs=runs[c.label],
            ops=counts[c.label],
            op_energy=tuple(price_ops(counts[c.label], p, memory=how.memory) for p in PRICES),
            inference=inference[c.label],
        )
        for c in configs
    )


def _input_range(data: DataSplit) -> tuple[float, float]:
    """The training inputs' min and max: rate coding maps them to probabilities 0 and 1."""
    lo, hi = float("inf"), float("-inf")
    for i in range(len(data.train)):  # type: ignore[arg-type]
        x = data.train[i][0]
        lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    if not hi > lo:
        raise ConfigError(f"the training inputs of {data.name} are constant: nothing to code")
    return lo, hi


def _measure_inference(
    session: StudySession,
    models: dict[str, nn.Module],
    x: torch.Tensor,
    method: StudyMethod,
    window_s: float,
) -> dict[str, Repeated]:
    """Each network's inference on ``x``, repeated round-robin in one tracked run."""
    protocol = Protocol(repeats=method.repeats, warmup=2, min_time_s=window_s, seed=method.seed)

    def call(model: nn.Module) -> Any:
        def run() -> None:
            with torch.no_grad():
                model(x)

        return run

    tracker = session.tracker("snn: inference")
    with tracking("snn: inference", session.context, tracker) as t:
        measured = measure(
            {label: call(m) for label, m in models.items()},
            protocol,
            tracker=t,
            items_per_call=len(x),
        )
        run_id = t.run_id
    session.link(run_id, "inference", {"networks": list(models), "items_per_call": len(x)})
    for label, rep in measured.items():
        session.run_done(f"inference {label}", rep.total.source)
    return measured


def _crossovers(variants: Sequence[SnnVariant], memory: bool) -> tuple[Crossover, ...]:
    ann = variants[0]
    out = []
    for v in variants[1:]:
        for snn_p in ANN_PRECISIONS:
            for ann_p in ANN_PRECISIONS:
                if snn_p == "fp32" or ann_p == "int8":  # int8 SNN vs fp32 ANN says nothing new
                    out.append(_crossover_of(v, ann, snn_p, ann_p, memory))
    return tuple(out)


def _crossover_of(
    v: SnnVariant, ann: SnnVariant, snn_p: str, ann_p: str, memory: bool
) -> Crossover:
    ann_pj = ann.op_pj(ann_p)
    count: OpCount = v.ops
    return Crossover(
        steps=v.steps,
        snn_precision=snn_p,
        against=f"ann {ann_p}",
        snn_pj=v.op_pj(snn_p),
        ann_pj=ann_pj,
        input_rate=count.input_rate,
        crossover_rate=_crossover(count, ann_pj, snn_p, memory=memory),
    )


def _memory_text(memory: bool) -> str:
    if not memory:
        return "compute only: no memory traffic counted"
    return (
        f"memory: every MAC and accumulate reads its weight from an 8 KB SRAM "
        f"({SRAM_8KB_64BIT_PJ:g} pJ per 64-bit word, pro rata by word size), every neuron "
        "update reads and writes its membrane potential there; activations, DRAM and "
        "larger caches are not counted"
    )


def _notes(coding: str) -> list[str]:
    notes = [
        "operation-count energy is an estimate of what dedicated hardware would spend "
        "(Horowitz ISSCC 2014, 45 nm); the tracker's energy is what running in PyTorch on "
        "this machine costs, where dense kernels do not exploit spike sparsity",
        "the crossover scales every spike-fed layer's input firing rate alike",
    ]
    if coding == "direct":
        notes.append("direct coding: the first layer multiplies analog inputs every step (MACs)")
    return notes
