"""Elastic layers: one set of weights, many sizes (1-D and 2-D by one code path).

After Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient
Deployment", ICLR 2020, section 3.2:

* :class:`ElasticDepthwiseConv`: a depthwise convolution whose kernel ``k`` smaller than the
  largest ``K`` is the centre crop of the next larger kernel passed through a learned linear
  transform per kernel size (``K -> ... -> k``; each transform a ``k^d x k^d`` matrix shared
  by all channels, initialised to the identity), and which uses the first ``c`` channels;
* :class:`ElasticPointwiseConv`: a 1x1 convolution using the first ``c_in`` input and the
  first ``c_out`` output channels;
* :class:`ElasticNorm`: group normalisation with one group (each item normalised over its
  active channels and positions, a per-channel affine sliced to the first ``c``).

**Departure from the paper (the norm).** The paper uses batch normalisation and, for each
selected sub-network, re-computes its running statistics on a few training batches, since a
sub-network's channels see other statistics than the largest network's. A one-group
:class:`~torch.nn.GroupNorm` computes its statistics from the item itself, so every
sub-network is right as it is: no calibration step before measuring or deploying one, and a
sub-network's accuracy is its accuracy, not its accuracy *after* calibration. The price: at
inference the norm cannot be folded into the preceding convolution, so each norm costs a pass
over its activations (measured as part of every sub-network's energy, not hidden).

Every layer takes its active size as arguments of ``forward``; :meth:`plain` of each returns
an ordinary :mod:`torch.nn` layer of one size with its own copy of the weights, whose forward
is exactly the elastic layer's at that size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812 (torch's own convention)
from torch import nn

from wattwise._errors import ConfigError

__all__ = [
    "ElasticDepthwiseConv",
    "ElasticNorm",
    "ElasticPointwiseConv",
    "conv_class",
    "conv_function",
    "hidden_channels",
]


def conv_function(dims: int) -> Callable[..., torch.Tensor]:
    """``F.conv1d`` or ``F.conv2d`` for ``dims`` spatial dimensions."""
    if dims == 1:
        return F.conv1d
    if dims == 2:
        return F.conv2d
    raise ConfigError(f"elastic layers are 1-D or 2-D, not {dims}-D")


def conv_class(dims: int) -> type[nn.Conv1d] | type[nn.Conv2d]:
    """``nn.Conv1d`` or ``nn.Conv2d`` for ``dims`` spatial dimensions."""
    conv_function(dims)  # validates
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _centre_crop(weight: torch.Tensor, k: int, dims: int) -> torch.Tensor:
    """The centre ``k`` (per spatial dimension) of a ``(C, 1, K[, K])`` kernel."""
    big = weight.shape[-1]
    start = (big - k) // 2
    index = (slice(None), slice(None)) + (slice(start, start + k),) * dims
    return weight[index]


class ElasticDepthwiseConv(nn.Module):
    """A depthwise convolution with elastic kernel size and channels.

    Args:
        channels: most channels.
        kernel_sizes: the kernel sizes it runs (odd, distinct); the largest holds the weights.
        dims: spatial dimensions (1: sequences, 2: images).
        stride: the stride (the same for every kernel size; padding ``k // 2`` keeps the
            output length the same for every odd ``k``).
    """

    def __init__(
        self, channels: int, kernel_sizes: tuple[int, ...], *, dims: int, stride: int = 1
    ) -> None:
        super().__init__()
        self.conv = conv_function(dims)
        self.dims, self.stride, self.channels = dims, stride, channels
        self.kernel_sizes = tuple(sorted(kernel_sizes, reverse=True))
        self.max_kernel = self.kernel_sizes[0]
        self.weight = nn.Parameter(torch.empty(channels, 1, *(self.max_kernel,) * dims))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # One transform per smaller kernel size, identity at first (the paper's init).
        self.transforms = nn.ParameterDict(
            {str(k): nn.Parameter(torch.eye(k**dims)) for k in self.kernel_sizes[1:]}
        )

    def kernel(self, k: int, channels: int) -> torch.Tensor:
        """The ``(channels, 1, k[, k])`` kernel of size ``k``: the largest kernel cropped and
        transformed step by step down to ``k`` (first ``channels`` channels)."""
        if k not in self.kernel_sizes:
            raise ConfigError(f"kernel size {k} is not one of {self.kernel_sizes}")
        weight = self.weight[:channels]
        for size in self.kernel_sizes[1:]:
            if size < k:
                break
            crop = _centre_crop(weight, size, self.dims)
            flat = crop.reshape(channels, size**self.dims) @ self.transforms[str(size)]
            weight = flat.reshape(crop.shape)
        return weight

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        channels = x.shape[1]
        return self.conv(x, self.kernel(k, channels), None, self.stride, k // 2, 1, channels)

    def plain(self, k: int, channels: int) -> nn.Module:
        """An ordinary depthwise convolution with kernel ``k`` on ``channels`` channels."""
        layer = conv_class(self.dims)(
            channels,
            channels,
            k,
            stride=self.stride,
            padding=k // 2,
            groups=channels,
            bias=False,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(self.kernel(k, channels))
        return layer


class ElasticPointwiseConv(nn.Module):
    """A 1x1 convolution (no bias: a norm follows) on the first ``c_in`` input channels,
    giving the first ``c_out`` output channels.

    Args:
        in_channels: most input channels.
        out_channels: most output channels.
        dims: spatial dimensions.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dims: int) -> None:
        super().__init__()
        self.conv = conv_function(dims)
        self.dims = dims
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *(1,) * dims))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        return self.conv(x, self.weight[:out_channels, : x.shape[1]])

    def plain(self, in_channels: int, out_channels: int) -> nn.Module:
        """An ordinary 1x1 convolution of that size."""
        layer = conv_class(self.dims)(
            in_channels,
            out_channels,
            1,
            bias=False,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )
        with torch.no_grad():
            layer.weight.copy_(self.weight[:out_channels, :in_channels])
        return layer


class ElasticNorm(nn.Module):
    """Group normalisation with one group over the active channels (see the module's
    docstring: no per-sub-network calibration), a per-channel affine sliced to them.

    Args:
        channels: most channels.
        eps: added to the variance.
    """

    def __init__(self, channels: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        return F.group_norm(x, 1, self.weight[:c], self.bias[:c], self.eps)

    def plain(self, channels: int) -> nn.Module:
        """An ordinary ``nn.GroupNorm(1, channels)`` with this norm's first affine values."""
        layer = nn.GroupNorm(
            1, channels, eps=self.eps, device=self.weight.device, dtype=self.weight.dtype
        )
        with torch.no_grad():
            layer.weight.copy_(self.weight[:channels])
            layer.bias.copy_(self.bias[:channels])
        return layer


def hidden_channels(in_channels: int, expand_ratio: float) -> int:
    """Hidden channels of a block with ``in_channels`` inputs and that expand ratio (>= 1)."""
    return max(1, math.floor(in_channels * expand_ratio + 0.5))
