"""int8 quantization against fp32: energy per inference, latency, size and accuracy.

The supported path in PyTorch 2.10+ is torchao's PT2E flow (``torch.ao.quantization`` is
deprecated and warns on every call): the model is exported with ``torch.export``,
annotated by torchao's ``X86InductorQuantizer``, calibrated, converted, and lowered to
oneDNN int8 kernels with ``lower_pt2e_quantized_to_x86`` (no ``torch.compile`` needed).

* ``int8-dynamic``: Linear layers' weights int8, activations quantized per batch at run
  time (no calibration). LSTM/GRU layers stay fp32: the PT2E X86 quantizer does not cover
  them (``torch.ao.quantization.quantize_dynamic`` did, and is deprecated).
* ``int8-static``: post-training static quantization of Conv and Linear layers, with
  activation ranges calibrated on training images.

The lowered graph is specialised to one batch shape, so every variant is measured and
evaluated at the same fixed batch size. Where lowering is impossible (a CPU that is not
x86, an operator the lowering does not know), the converted *reference* model is used and
says so: it computes int8's results with quantize/dequantize around fp32 kernels, so its
accuracy is int8's but its latency and energy are not.
"""

from __future__ import annotations

import copy
import logging
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.infer._pt2e import (
    flatten_linear_inputs,
    kernel_census,
    reshape_views,
    split_reused_modules,
)
from wattwise.infer._records import QuantizationResult, QuantVariant
from wattwise.protocol import LeverContext, Protocol, measure, tracking
from wattwise.tracking._tracker import Tracker

__all__ = [
    "INT8_VARIANTS",
    "QUANTIZE_PROTOCOL",
    "PreparedModel",
    "applicable_variants",
    "measure_quantization",
    "prepare_variant",
    "tensor_bytes",
]

#: The int8 variants :func:`prepare_variant` can make.
INT8_VARIANTS = ("int8-dynamic", "int8-static")

_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: What torch logs (not warns) when torchao registers its ``KernelPreference`` enum as a
#: pytree constant on import: a deprecation notice between the two libraries, nothing a
#: wattwise user can act on.
_ENUM_CONSTANT_NOTICE = "is an Enum subclass and is now natively supported by torch.compile"


#: What torch warns while lowering a transformer (its freezing passes read ``.grad`` of
#: non-leaf constants).
_NON_LEAF_GRAD_NOTICE = "The .grad attribute of a Tensor that is not a leaf Tensor"


class _DropEnumConstantNotice(logging.Filter):
    """Drops exactly torch's Enum-registration notice from ``torch.utils._pytree``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _ENUM_CONSTANT_NOTICE not in record.getMessage()


def _quiet_torchao_import() -> None:
    """Silence the notice torch logs while torchao is imported (once per process)."""
    logger = logging.getLogger("torch.utils._pytree")
    if not any(isinstance(f, _DropEnumConstantNotice) for f in logger.filters):
        logger.addFilter(_DropEnumConstantNotice())


@dataclass(frozen=True)
class PreparedModel:
    """A variant ready to measure.

    Attributes:
        variant: ``fp32``, ``int8-dynamic`` or ``int8-static``.
        forward: runs one batch of the fixed shape.
        method: how it was made.
        kernels: what runs it (see :class:`~wattwise.infer.QuantVariant`).
        size_bytes: bytes of the tensors it computes with, in B.
        notes: layers left in fp32, fallbacks.
    """

    variant: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    method: str
    kernels: str
    size_bytes: int
    notes: tuple[str, ...] = ()


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of the tensors a model computes with, in B.

    For an ``nn.Module``: its parameters and buffers. For a graph module: the tensors its
    graph reads (``get_attr``), so weights a conversion left behind unused are not counted.
    """
    graph = getattr(model, "graph", None)
    if isinstance(model, torch.fx.GraphModule) and graph is not None:
        seen: dict[int, int] = {}
        for node in graph.nodes:
            if node.op != "get_attr":
                continue
            value: Any = model
            for part in str(node.target).split("."):
                value = getattr(value, part)
            if isinstance(value, torch.Tensor) and value.layout == torch.strided:
                seen[id(value)] = value.numel() * value.element_size()
        return sum(seen.values())
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def applicable_variants(model: nn.Module) -> tuple[list[str], dict[str, str]]:
    """Which int8 variants fit a model, and why the others do not.

    ``int8-dynamic`` needs a Linear (or recurrent) layer, ``int8-static`` a Conv or Linear
    layer.
    """
    mods = list(model.modules())
    has_linear = any(isinstance(m, nn.Linear) for m in mods)
    has_conv = any(isinstance(m, _CONV) for m in mods)
    has_rnn = any(isinstance(m, _RECURRENT) for m in mods)
    chosen: list[str] = []
    skipped: dict[str, str] = {}
    if has_linear or has_rnn:
        chosen.append("int8-dynamic")
    else:
        skipped["int8-dynamic"] = "the model has no Linear or recurrent layer"
    if has_conv or has_linear:
        chosen.append("int8-static")
    else:
        skipped["int8-static"] = "the model has no Conv or Linear layer"
    return chosen, skipped


def prepare_variant(
    model: nn.Module,
    variant: str,
    *,
    example: torch.Tensor,
    calibration: Sequence[torch.Tensor] = (),
    lower: bool | None = None,
) -> PreparedModel:
    """Make one variant of a model, on the CPU.

    Args:
        model: the fp32 model (not changed: int8 variants work on a copy).
        variant: ``fp32``, ``int8-dynamic`` or ``int8-static``.
        example: a batch of the shape every call will have.
        calibration: batches of that shape for ``int8-static``'s activation ranges.
        lower: lower to oneDNN int8 kernels; default: on x86 CPUs.

    Raises:
        ConfigError: an unknown variant, torchao missing, no calibration batch for the
            static variant, or a model ``torch.export`` cannot capture.
    """
    model = model.eval()
    if variant == "fp32":
        return PreparedModel(
            "fp32", model, "none (the trained fp32 model)", "fp32 eager", tensor_bytes(model)
        )
    if variant not in INT8_VARIANTS:
        known = ", ".join(("fp32", *INT8_VARIANTS))
        raise ConfigError(f"unknown variant {variant!r} (known: {known})")
    _quiet_torchao_import()
    try:
        from torchao.quantization.pt2e.quantize_pt2e import (  # type: ignore[import-untyped,unused-ignore]
            convert_pt2e,
            prepare_pt2e,
        )
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (  # type: ignore[import-untyped,unused-ignore]
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError as exc:
        raise ConfigError(f"int8 quantization needs torchao ({exc}): pip install torchao") from None
    static = variant == "int8-static"
    if static and not calibration:
        raise ConfigError("static quantization needs calibration batches")
    notes: list[str] = []
    rnn = sum(isinstance(m, _RECURRENT) for m in model.modules())
    if rnn:
        notes.append(
            f"{rnn} recurrent layer(s) left in fp32: the PT2E X86 quantizer covers Linear "
            "and Conv layers only"
        )
    try:
        exported = torch.export.export(copy.deepcopy(model), (example,)).module()
    except Exception as exc:  # export raises many types; its message says what failed
        raise ConfigError(
            f"torch.export cannot capture the model for {variant}: {_first(exc)}"
        ) from None
    split_reused_modules(exported)
    flatten_linear_inputs(exported)
    quantizer = X86InductorQuantizer()
    config = get_default_x86_inductor_quantization_config(is_dynamic=not static)
    if static:
        quantizer.set_global(config)
    else:
        quantizer.set_module_type_qconfig(nn.Linear, config)
    try:
        prepared = prepare_pt2e(exported, quantizer)
        with torch.no_grad():
            for batch in calibration if static else (example,):
                prepared(batch)
        converted = convert_pt2e(prepared)
    except Exception as exc:  # the quantizer raises many types; its message says what failed
        raise ConfigError(
            f"torchao cannot quantize the model for {variant}: {_first(exc)}"
        ) from None
    size = tensor_bytes(converted)
    layers = kernel_census(converted).reference
    method = (
        f"torchao PT2E, X86InductorQuantizer, {'static' if static else 'dynamic'}"
        + (f", {sum(len(b) for b in calibration)} calibration inputs" if static else "")
        + f"; {layers} weight layer(s) int8"
    )
    if lower is None:
        lower = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
        if not lower:
            notes.append(
                f"not lowered: oneDNN x86 int8 kernels need an x86 CPU ({platform.machine()})"
            )
    forward: Callable[[torch.Tensor], torch.Tensor] = converted
    kernels = "reference (quantize/dequantize around fp32 kernels: not int8 speed or energy)"
    if lower:
        try:
            from torchao.quantization.pt2e.lowering import (  # type: ignore[import-untyped,unused-ignore]
                lower_pt2e_quantized_to_x86,
            )

            with warnings.catch_warnings():
                # torch's freezing passes read .grad of the graph's constants: a notice
                # about torch internals, which -W error would turn into a failed lowering
                warnings.filterwarnings("ignore", message=_NON_LEAF_GRAD_NOTICE)
                lowered = lower_pt2e_quantized_to_x86(converted, (example,))
            reshape_views(lowered)
            with torch.no_grad():
                lowered(example)
            forward = lowered
            kernels, more = _lowered_kernels(lowered)
            notes += more
        except Exception as exc:  # lowering is best effort; the fallback says why
            notes.append(
                f"lowering to x86 int8 kernels failed ({_first(exc)}): reference model used"
            )
    return PreparedModel(variant, forward, method, kernels, size, tuple(notes))


def _first(exc: BaseException) -> str:
    """The first line of an exception's message (or its type's name)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _lowered_kernels(lowered: torch.fx.GraphModule) -> tuple[str, list[str]]:
    """What a lowered graph runs its weight layers on, and notes for those not on int8."""
    census = kernel_census(lowered)
    kernels = f"x86 oneDNN int8 (lowered: {census.int8} layer(s) on int8 kernels)"
    notes = []
    if census.reference:
        kernels = (
            f"x86 oneDNN int8, partly (lowered: {census.int8} layer(s) on int8 kernels, "
            f"{census.reference} on reference kernels)"
        )
        notes.append(
            f"{census.reference} int8 layer(s) not lowered: their weights are dequantized "
            "to fp32 at every call (slower than fp32)"
        )
    if census.fp32:
        notes.append(f"{census.fp32} Linear/Conv layer(s) left in fp32 (not quantized)")
    return kernels, notes


def _batches(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """``x`` in batches of exactly ``size``; the last one is padded by repeating inputs."""
    out = []
    for i in range(0, len(x), size):
        b = x[i : i + size]
        if len(b) < size:
            reps = -(-size // len(b))
            b = b.repeat(reps, *([1] * (b.dim() - 1)))[:size]
        out.append(b.contiguous())
    return out


def _accuracy(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
) -> float:
    right = 0
    with torch.no_grad():
        for i, b in enumerate(_batches(x, batch_size)):
            n = min(batch_size, len(x) - i * batch_size)
            out = forward(b)
            logits = getattr(out, "logits", out)
            right += int((logits[:n].argmax(1) == y[i * batch_size : i * batch_size + n]).sum())
    return right / len(x)


#: The default protocol of :func:`measure_quantization`: every variant warmed up with two
#: batches (the first calls build kernels), then three interleaved rounds of at least 1 s
#: and 3 batches each.
QUANTIZE_PROTOCOL = Protocol(repeats=3, warmup=2, min_time_s=1.0, min_calls=3)


def measure_quantization(
    model: nn.Module,
    *,
    val: tuple[torch.Tensor, torch.Tensor],
    calibration: torch.Tensor,
    batch_size: int = 64,
    variants: Sequence[str] | None = None,
    protocol: Protocol = QUANTIZE_PROTOCOL,
    max_accuracy_drop: float = 0.01,
    model_name: str = "model",
    dataset: str = "",
    tracker: Tracker | None = None,
    context: LeverContext | None = None,
) -> QuantizationResult:
    """Measure fp32 and its int8 variants on the same inputs, interleaved.

    Each round (a repeat of the protocol) measures every variant once, in turn, for at
    least the protocol's window; a variant's figures are the sums over rounds, so a machine
    that slows down for a while hits every variant alike. Runs on the CPU.

    Args:
        model: the trained fp32 classifier.
        val: validation inputs ``N x ...`` and labels ``N``: accuracy, and the inputs the
            energy is measured on.
        calibration: inputs for static quantization's activation ranges.
        batch_size: inputs per forward pass (each variant is specialised to it).
        variants: int8 variants to try; default: those that fit the model.
        protocol: rounds (``repeats``), warm-up batches, window length, order and
            cool-down (default: :data:`QUANTIZE_PROTOCOL`).
        max_accuracy_drop: the largest accuracy loss (0..1) the pick may have.
        model_name: for the result.
        dataset: for the result.
        tracker: a tracker to measure with; default: a new one from ``context``.
        context: meters, store and scope of a new tracker (None: ``LeverContext()``).

    A variant that cannot be made (torchao missing, a model ``torch.export`` cannot
    capture) is left out and listed in ``skipped`` with the reason; fp32 is always measured.

    Raises:
        ConfigError: bad arguments (batch size, empty or mismatched data, an unknown
            variant).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    x, y = val
    if len(x) == 0 or len(x) != len(y):
        raise ConfigError("validation inputs and labels must be non-empty and match")
    model = model.cpu().eval()
    prepared, skipped, wanted = _prepare_all(model, variants, x, calibration, batch_size)
    inputs = _batches(x, batch_size)
    with tracking(f"quantize {model_name}", context or LeverContext(), tracker) as t:
        measured = measure(
            {p.variant: _cycling(p.forward, inputs) for p in prepared},
            protocol,
            tracker=t,
            items_per_call=batch_size,
            warm_ups={p.variant: _cycling(p.forward, inputs[:1]) for p in prepared},
            window=lambda variant, r: f"{variant} round-{r}",
        )
        run_id = t.run_id
    results = [
        QuantVariant(
            variant=p.variant,
            method=p.method,
            kernels=p.kernels,
            measurement=measured[p.variant].total,
            size_bytes=p.size_bytes,
            accuracy=_accuracy(p.forward, x, y, batch_size),
            notes=p.notes,
            rounds_energy_per_item_j=tuple(
                m.energy_per_item_j for m in measured[p.variant].measurements
            ),
        )
        for p in prepared
    ]
    fp32 = results[0]
    ok = [v for v in results if fp32.accuracy - v.accuracy <= max_accuracy_drop + 1e-12]
    best = min(ok, key=lambda v: v.energy_per_item_j).variant
    notes = [
        "every variant runs on the CPU at the same fixed batch size, on the validation "
        "inputs, interleaved over rounds; energy per inference = window energy / inputs",
        "size = bytes of the tensors each variant computes with (weights, biases, scales)",
    ]
    if len(results) == 1 and wanted:
        notes.append("no int8 variant could be made: " + "; ".join(skipped.values()))
    return QuantizationResult(
        model=model_name,
        dataset=dataset,
        batch_size=batch_size,
        variants=tuple(results),
        skipped=skipped,
        max_accuracy_drop=max_accuracy_drop,
        best=best,
        run_id=run_id,
        source=fp32.measurement.source,
        notes=tuple(notes),
    )


def _prepare_all(
    model: nn.Module,
    variants: Sequence[str] | None,
    x: torch.Tensor,
    calibration: torch.Tensor,
    batch_size: int,
) -> tuple[list[PreparedModel], dict[str, str], list[str]]:
    """fp32 and every wanted int8 variant that can be made; why the others were not.

    Returns:
        ``(prepared, skipped, wanted)``.

    Raises:
        ConfigError: an unknown variant.
    """
    fits, skipped = applicable_variants(model)
    wanted = list(variants) if variants is not None else fits
    for v in wanted:
        if v not in INT8_VARIANTS:
            raise ConfigError(f"unknown variant {v!r} (known: {', '.join(INT8_VARIANTS)})")
    skipped = {k: r for k, r in skipped.items() if k in wanted}
    example = _batches(x, batch_size)[0]
    calib = _batches(calibration, batch_size)
    prepared = [prepare_variant(model, "fp32", example=example)]
    for v in wanted:
        if v in skipped:
            continue
        try:
            prepared.append(prepare_variant(model, v, example=example, calibration=calib))
        except ConfigError as exc:
            skipped[v] = str(exc)
    return prepared, skipped, wanted


def _cycling(
    forward: Callable[[torch.Tensor], torch.Tensor], inputs: Sequence[torch.Tensor]
) -> Callable[[], None]:
    """One forward pass per call, without gradients, on the next of ``inputs`` in turn."""
    state = {"i": 0}

    def call() -> None:
        with torch.no_grad():
            forward(inputs[state["i"] % len(inputs)])
        state["i"] += 1

    return call
