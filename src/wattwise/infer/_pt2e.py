"""Graph passes that let torchao's PT2E flow quantize and lower real models.

Each fixes a shape of model that the X86 quantizer or the oneDNN lowering does not handle
as exported, found by measuring (issue 14):

* :func:`split_reused_modules`: a parameter-free module called more than once (torchvision's
  ResNet ``BasicBlock`` calls its one ``self.relu`` twice) makes one source partition with
  two outputs, and the quantizer refuses the whole model ("Input partition has more than
  one output node").
* :func:`flatten_linear_inputs`: a Linear on a 3-D input (a transformer's tokens) is
  quantized but not lowered: its weight stays a reference ``dequantize`` in front of an
  fp32 ``addmm``, slower than fp32. Run on 2-D inputs, it lowers to oneDNN int8.
* :func:`reshape_views`: oneDNN int8 convolutions return channels-last tensors, on which
  a later flatten's ``aten.view`` fails.
* :func:`kernel_census`: what a lowered graph really runs, so a layer left on reference
  or fp32 kernels is reported instead of silently counted as int8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "KernelCensus",
    "flatten_linear_inputs",
    "kernel_census",
    "reshape_views",
    "split_reused_modules",
]

_ATEN = torch.ops.aten


def split_reused_modules(gm: torch.fx.GraphModule) -> None:
    """Give each call of a module called several times its own source partition.

    The quantizer groups nodes into partitions by the innermost module's name in
    ``nn_module_stack``; calls of one module with the same operator become one partition
    with several outputs, which it cannot annotate. Only the partition key changes.
    """
    groups: dict[str, list[torch.fx.Node]] = {}
    for node in gm.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if node.op == "call_function" and stack:
            groups.setdefault(str(list(stack.values())[-1][0]), []).append(node)
    for fqn, nodes in groups.items():
        if len(nodes) < 2 or len({n.target for n in nodes}) != 1:
            continue
        for node in nodes:
            stack = dict(node.meta["nn_module_stack"])
            key = list(stack)[-1]
            stack[key] = (f"{fqn}@{node.name}", stack[key][1])
            node.meta["nn_module_stack"] = stack


def flatten_linear_inputs(gm: torch.fx.GraphModule) -> int:
    """Run every Linear on a 2-D input: reshape ``N x ... x in`` to ``(N...) x in`` and back.

    Returns:
        How many Linear calls were rewritten.
    """
    graph = gm.graph
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not _ATEN.linear.default:
            continue
        x = node.args[0]
        val: Any = x.meta.get("val") if isinstance(x, torch.fx.Node) else None
        out_val: Any = node.meta.get("val")
        if not isinstance(val, torch.Tensor) or val.dim() <= 2 or out_val is None:
            continue
        assert isinstance(x, torch.fx.Node)
        with graph.inserting_before(node):
            flat = graph.call_function(_ATEN.reshape.default, (x, [-1, int(val.shape[-1])]))
        flat.meta["val"] = val.reshape(-1, val.shape[-1])
        node.replace_input_with(x, flat)
        node.meta["val"] = out_val.reshape(-1, out_val.shape[-1])
        with graph.inserting_after(node):
            back = graph.call_function(_ATEN.reshape.default, (node, list(out_val.shape)))
        back.meta["val"] = out_val
        for user in list(node.users):
            if user is not back:
                user.replace_input_with(node, back)
        count += 1
    if count:
        graph.lint()
        gm.recompile()
    return count


def reshape_views(gm: torch.fx.GraphModule) -> None:
    """Replace ``aten.view`` by ``aten.reshape`` (which copies only when it must)."""
    changed = False
    for node in gm.graph.nodes:
        if node.op == "call_function" and node.target is _ATEN.view.default:
            node.target = _ATEN.reshape.default
            changed = True
    if changed:
        gm.recompile()


@dataclass(frozen=True)
class KernelCensus:
    """What the weight layers of a lowered graph run on.

    Attributes:
        int8: layers on oneDNN int8 kernels (``onednn.qlinear*``, ``onednn.qconv*``).
        reference: int8 weights still dequantized to fp32 at every call (not lowered).
        fp32: Linear/Conv layers on fp32 kernels (not quantized).
    """

    int8: int
    reference: int
    fp32: int


_FP32_WEIGHT_OPS = ("addmm", "aten.mm", "linear", "convolution", "conv1d", "conv2d")


def kernel_census(gm: torch.fx.GraphModule) -> KernelCensus:
    """Count the weight layers of a (lowered or converted) graph by the kernel they run on."""
    int8 = reference = fp32 = 0
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if name.startswith("onednn.q") and ("linear" in name or "conv" in name):
            int8 += 1
        elif "dequantize_per_channel" in name:
            reference += 1
        elif any(op in name for op in _FP32_WEIGHT_OPS) and "pointwise" not in name.split(".")[0]:
            fp32 += 1
    # A reference layer is a dequantize feeding an fp32 op: count that op once, not twice.
    return KernelCensus(int8=int8, reference=reference, fp32=max(0, fp32 - reference))
