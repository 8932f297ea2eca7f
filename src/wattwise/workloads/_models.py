"""Classification models: small built-in families (MLP, 2-D and 1-D CNN, GRU, LSTM, a
per-frame CNN for clips) and torchvision's by name.

Built-in models name their classifier layer ``head`` and everything before it
``features``, so ``--freeze 'features.*'`` freezes the backbone. For any model,
:func:`find_head` finds the classifier: the last ``nn.Linear`` in registration order.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.workloads._spec import parse_options, split_spec

__all__ = [
    "BUILTIN_MODELS",
    "CNN",
    "CNN1D",
    "GRU",
    "LSTM",
    "MLP",
    "FrameCNN",
    "build_model",
    "find_head",
    "set_submodule",
    "torchvision_models",
]

#: Built-in model names, with their options.
BUILTIN_MODELS = {
    "mlp": "fully connected; options depth= (hidden layers, default 2), width= (default 128)",
    "cnn": "convolutional, for images (C, H, W); options depth= (conv blocks, default 2), "
    "width= (channels of the first block, doubled per block, default 16)",
    "cnn1d": "convolutional, for sequences (C, L) such as mnist1d; options depth= (conv "
    "blocks, default 3), width= (channels, default 32), kernel= (odd, default 5)",
    "gru": "recurrent, for sequences (C, L) such as mnist1d; options hidden= (units, "
    "default 64), layers= (stacked GRU layers, default 1)",
    "lstm": "recurrent, for sequences (C, L) such as gesture keypoints; options hidden= "
    "(units, default 64), layers= (stacked LSTM layers, default 1)",
    "framecnn": "for clips of frames (T, C, H, W) such as gesture frames: a 2-D CNN on every "
    "frame, then a temporal convolution and pooling over time; options depth= (conv "
    "blocks, default 2), width= (channels of the first block, default 8), temporal= "
    "(channels of the temporal convolution, default 32)",
}

#: Options of each built-in model with their defaults, and the smallest value each takes.
_OPTIONS: dict[str, dict[str, tuple[int, int]]] = {
    "mlp": {"depth": (2, 0), "width": (128, 1)},
    "cnn": {"depth": (2, 1), "width": (16, 1)},
    "cnn1d": {"depth": (3, 1), "width": (32, 1), "kernel": (5, 1)},
    "gru": {"hidden": (64, 1), "layers": (1, 1)},
    "lstm": {"hidden": (64, 1), "layers": (1, 1)},
    "framecnn": {"depth": (2, 1), "width": (8, 1), "temporal": (32, 1)},
}


class MLP(nn.Module):
    """Flatten, ``depth`` hidden layers of ``width`` units with ReLU, a linear head
    (``depth=0``: logistic regression).

    Args:
        input_shape: the shape of one input, any: ``(C, H, W)``, ``(C, L)``.
        num_classes: output width.
        depth: number of hidden layers (>= 0).
        width: units per hidden layer.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 128
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(n_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


class CNN(nn.Module):
    """``depth`` blocks of 3x3 convolution and ReLU (channels ``width * 2**i``), each
    followed by 2x2 max-pooling while the image is larger than 2x2, then an adaptive 2x2
    average pool and a linear head.

    Args:
        input_shape: ``(C, H, W)`` of one input.
        num_classes: output width.
        depth: number of convolution blocks (>= 1).
        width: channels of the first block.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, *, depth: int = 2, width: int = 16
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"cnn takes images (C, H, W), not inputs of shape {tuple(input_shape)}; "
                "for sequences (C, L) use cnn1d or gru"
            )
        c, h, w = input_shape
        layers: list[nn.Module] = []
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
            if min(h, w) > 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def _sequence_shape(input_shape: tuple[int, ...], name: str) -> tuple[int, int]:
    if len(input_shape) != 2:
        raise ConfigError(
            f"{name} takes sequences (C, L), not inputs of shape {tuple(input_shape)}; "
            "for images (C, H, W) use cnn or mlp"
        )
    return input_shape[0], input_shape[1]


class CNN1D(nn.Module):
    """``depth`` blocks of 1-D convolution and ReLU, ``width`` channels each; every block
    after the first has stride 2 (halving the length), then flatten and a linear head.

    Flattening keeps where along the sequence a feature was found; the shared kernels
    find it wherever it is, which is what an MLP lacks on shifted signals (mnist1d).

    Args:
        input_shape: ``(C, L)`` of one input.
        num_classes: output width.
        depth: number of convolution blocks (>= 1).
        width: channels of every block.
        kernel: kernel size (odd, so that padding keeps the length).
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        depth: int = 3,
        width: int = 32,
        kernel: int = 5,
    ) -> None:
        super().__init__()
        c, length = _sequence_shape(input_shape, "cnn1d")
        if kernel % 2 == 0:
            raise ConfigError(f"cnn1d needs an odd kernel (it keeps the length), got {kernel}")
        layers: list[nn.Module] = []
        for i in range(depth):
            stride = 1 if i == 0 or length < 2 else 2
            layers += [nn.Conv1d(c, width, kernel, stride=stride, padding=kernel // 2), nn.ReLU()]
            length = (length - 1) // stride + 1
            c = width
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * length, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


class _Recurrent(nn.Module):
    """A recurrent layer reading the sequence one step at a time (the ``C`` values of each
    step as its input), its last hidden state into a linear head."""

    def __init__(
        self,
        cell: type[nn.GRU] | type[nn.LSTM],
        name: str,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden: int,
        layers: int,
    ) -> None:
        super().__init__()
        c, _ = _sequence_shape(input_shape, name)
        self.features = cell(c, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, _ = self.features(x.transpose(1, 2))
        out: torch.Tensor = self.head(steps[:, -1])
        return out


class GRU(_Recurrent):
    """A GRU reading the sequence one step at a time (the ``C`` values of each step as its
    input), its last hidden state into a linear head.

    Args:
        input_shape: ``(C, L)`` of one input.
        num_classes: output width.
        hidden: units of each GRU layer.
        layers: stacked GRU layers.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, *, hidden: int = 64, layers: int = 1
    ) -> None:
        super().__init__(nn.GRU, "gru", input_shape, num_classes, hidden, layers)


class LSTM(_Recurrent):
    """An LSTM reading the sequence one step at a time (the ``C`` values of each step as
    its input), its last hidden state into a linear head: the lean network of the sAIn
    pattern, on keypoint sequences.

    Args:
        input_shape: ``(C, L)`` of one input.
        num_classes: output width.
        hidden: units of each LSTM layer.
        layers: stacked LSTM layers.
    """

    def __init__(
        self, input_shape: tuple[int, ...], num_classes: int, *, hidden: int = 64, layers: int = 1
    ) -> None:
        super().__init__(nn.LSTM, "lstm", input_shape, num_classes, hidden, layers)


class FrameCNN(nn.Module):
    """A clip classifier: the same 2-D CNN on every frame (``depth`` blocks of 3x3
    convolution, ReLU and 2x2 max-pooling, channels ``width * 2**i``, then a 2x2 average
    pool that keeps where in the frame things are), a temporal convolution (kernel 3) over
    the frames' features, ReLU, and max-pooling over time into a linear head.

    The temporal convolution is what keeps the order of the frames: pooling the frames'
    features alone could not tell a swipe left from a swipe right.

    Args:
        input_shape: ``(T, C, H, W)`` of one clip.
        num_classes: output width.
        depth: convolution blocks per frame (>= 1).
        width: channels of the first block.
        temporal: channels of the temporal convolution.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        *,
        depth: int = 2,
        width: int = 8,
        temporal: int = 32,
    ) -> None:
        super().__init__()
        if len(input_shape) != 4:
            raise ConfigError(
                f"framecnn takes clips of frames (T, C, H, W), not inputs of shape "
                f"{tuple(input_shape)}; for images (C, H, W) use cnn"
            )
        _, c, h, w = input_shape
        layers: list[nn.Module] = []
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
            if min(h, w) > 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten()]
        self.frames = nn.Sequential(*layers)
        self.features = nn.Sequential(
            nn.Conv1d(c * 4, temporal, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool1d(1)
        )
        self.head = nn.Linear(temporal, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        per_frame = self.frames(x.flatten(0, 1)).view(b, t, -1).transpose(1, 2)
        out: torch.Tensor = self.head(self.features(per_frame).flatten(1))
        return out


_BUILTIN_CLASSES: dict[str, Any] = {
    "mlp": MLP,
    "cnn": CNN,
    "cnn1d": CNN1D,
    "gru": GRU,
    "lstm": LSTM,
    "framecnn": FrameCNN,
}


def _builtin_model(
    name: str, options: str, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    spec = _OPTIONS[name]
    opts = parse_options(options, what=f"model {name}", allowed=dict.fromkeys(spec, int))
    values = {k: int(opts.get(k, default)) for k, (default, _) in spec.items()}
    bad = {k: v for k, v in values.items() if v < spec[k][1]}
    if bad:
        given = ", ".join(f"{k}={v}" for k, v in values.items())
        least = ", ".join(f"{k} >= {spec[k][1]}" for k in bad)
        raise ConfigError(f"bad {'/'.join(spec)} for {name}: {given} (needs {least})")
    model: nn.Module = _BUILTIN_CLASSES[name](input_shape, num_classes, **values)
    return model


def torchvision_models() -> list[str]:
    """Names of torchvision's classification models (empty without torchvision)."""
    try:
        import torchvision  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return []
    return sorted(torchvision.models.list_models(module=torchvision.models))


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the sub-module at dotted path ``name`` (``classifier.3``, ``fc``)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def find_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The classifier layer: the last ``nn.Linear`` registered in the model.

    Raises:
        ConfigError: the model has no linear layer.
    """
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ConfigError(f"{type(model).__name__} has no linear classifier layer to extend")
    return found[-1]


def _adapt_input_channels(model: nn.Module, channels: int, pretrained: bool) -> None:
    """Make the first convolution take ``channels`` input channels (grayscale digits)."""
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or first[1].in_channels == channels:
        return
    name, conv = first
    new = nn.Conv2d(
        channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    if pretrained and channels == 1:
        # Grayscale = the sum of the RGB filters: keeps what the pretrained filters detect.
        with torch.no_grad():
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
            if conv.bias is not None and new.bias is not None:
                new.bias.copy_(conv.bias)
    set_submodule(model, name, new)


def _torchvision_model(
    name: str, options: str, input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    import torchvision  # type: ignore[import-untyped,unused-ignore]

    opts = parse_options(options, what=f"model {name}", allowed={"pretrained": bool})
    pretrained = bool(opts.get("pretrained", False))
    try:
        if pretrained:
            # Only when asked: torchvision fetches the weights on first use.
            model: nn.Module = torchvision.models.get_model(name, weights="DEFAULT")
            head_name, head = find_head(model)
            set_submodule(model, head_name, nn.Linear(head.in_features, num_classes))
        else:
            model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except (ValueError, TypeError, RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot build torchvision model {name}: {exc}") from None
    _adapt_input_channels(model, input_shape[0], pretrained)
    return model


def build_model(spec: str, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build a classifier from a spec: ``mlp``, ``cnn:depth=3,width=32``,
    ``cnn1d:kernel=7``, ``gru:hidden=128``, ``lstm:hidden=32``, ``framecnn:width=16``,
    ``resnet18``, ``mobilenet_v3_small:pretrained=1``.

    The model is tried once on a dummy batch so that a model that cannot take this input
    size fails here, with its reason, rather than in the middle of a run.

    Args:
        spec: ``NAME[:OPTIONS]``: a built-in name (:data:`BUILTIN_MODELS`) or a torchvision
            classification model.
        input_shape: ``(C, H, W)`` of one image, ``(C, L)`` of one sequence, or
            ``(T, C, H, W)`` of one clip of frames.
        num_classes: output width.

    Raises:
        ConfigError: an unknown model, bad options, or an input the model cannot take.
    """
    name, options = split_spec(spec)
    model: nn.Module
    if name in BUILTIN_MODELS:
        model = _builtin_model(name, options, input_shape, num_classes)
    elif name in torchvision_models():
        model = _torchvision_model(name, options, input_shape, num_classes)
    else:
        known = ", ".join(BUILTIN_MODELS)
        hint = " or any torchvision classification model" if torchvision_models() else ""
        raise ConfigError(f"unknown model {name!r} (known: {known}{hint})")
    _try_once(model, name, input_shape, num_classes)
    return model


def _try_once(model: nn.Module, name: str, input_shape: tuple[int, ...], n_out: int) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"model {name} cannot take inputs of shape {tuple(input_shape)}: {first}"
        ) from None
    finally:
        model.train(was_training)
    logits = getattr(out, "logits", out)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, n_out):
        raise ConfigError(f"model {name} does not output {n_out} class scores per input")
