"""Classification models: a small built-in MLP/CNN family and torchvision's by name.

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
    "MLP",
    "build_model",
    "find_head",
    "set_submodule",
    "torchvision_models",
]

#: Built-in model names, with their options.
BUILTIN_MODELS = {
    "mlp": "fully connected; options depth= (hidden layers, default 2), width= (default 128)",
    "cnn": "convolutional; options depth= (conv blocks, default 2), width= (channels of the "
    "first block, doubled per block, default 16)",
}


class MLP(nn.Module):
    """Flatten, ``depth`` hidden layers of ``width`` units with ReLU, a linear head.

    Args:
        input_shape: ``(C, H, W)`` of one input.
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
    """Build a classifier from a spec: ``mlp``, ``cnn:depth=3,width=32``, ``resnet18``,
    ``mobilenet_v3_small:pretrained=1``.

    The model is tried once on a dummy batch so that a model that cannot take this input
    size fails here, with its reason, rather than in the middle of a run.

    Args:
        spec: ``NAME[:OPTIONS]``: a built-in name (:data:`BUILTIN_MODELS`) or a torchvision
            classification model.
        input_shape: ``(C, H, W)`` of one input.
        num_classes: output width.

    Raises:
        ConfigError: an unknown model, bad options, or an input the model cannot take.
    """
    name, options = split_spec(spec)
    model: nn.Module
    if name in BUILTIN_MODELS:
        opts = parse_options(options, what=f"model {name}", allowed={"depth": int, "width": int})
        depth = int(opts.get("depth", 2))
        width = int(opts.get("width", 128 if name == "mlp" else 16))
        if width < 1 or depth < (0 if name == "mlp" else 1):
            raise ConfigError(f"bad depth/width for {name}: depth={depth}, width={width}")
        cls: Any = MLP if name == "mlp" else CNN
        model = cls(input_shape, num_classes, depth=depth, width=width)
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
