"""Transfer learning: checkpoints, freezing by name pattern, extending a classifier head.

A checkpoint holds the weights with what is needed to rebuild the model: the model spec,
the input shape and the class names in output-row order. Extending to new classes maps
rows by class *name*, so every class the checkpoint knew keeps its learned row wherever it
lands in the new order, and only the new classes start from fresh weights.

Fine-tuning an extended model pays when (measured in ``benchmarks/bench_train_transfer.py``):

- the new rows start *neutral* (zero weights, the mean learned bias): a randomly initialised
  row scores high on many inputs and takes predictions from the learned classes before any
  training (on digits 0-7 -> 0-9 it cut the learned classes' recall by up to 13 pp);
- the backbone trains at the from-scratch learning rate and the head at ten times it
  (:func:`fine_tune_lr_groups`): features learned for the old classes do not separate the
  new ones, so a backbone held at a tenth of the rate is what made fine-tuning crawl.
"""

from __future__ import annotations

import fnmatch
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from wattwise._errors import ConfigError, DataFileError
from wattwise.workloads._models import build_model, find_head, set_submodule

__all__ = [
    "HEAD_LR_FACTOR",
    "NEW_ROW_INITS",
    "Checkpoint",
    "extend_head",
    "fine_tune_lr_groups",
    "freeze",
    "load_checkpoint",
    "model_from_checkpoint",
    "save_checkpoint",
    "unfreeze",
]

#: How :func:`extend_head` starts the rows of new classes.
NEW_ROW_INITS = ("neutral", "random")

#: The head's learning rate over the backbone's when fine-tuning (:func:`fine_tune_lr_groups`).
HEAD_LR_FACTOR = 10.0

_FORMAT = "wattwise-checkpoint"
_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A saved model and what it was trained on.

    Attributes:
        path: where it was read from.
        model_spec: the spec to rebuild it (``cnn``, ``resnet18``).
        class_names: the class of each output row, in order.
        input_shape: the shape of one input: ``(C, H, W)`` of images, ``(C, L)`` of
            sequences (mnist1d).
        state_dict: its weights.
        dataset: the dataset it was trained on.
        metrics: figures saved with it (``val_accuracy``, ``energy_j``...).
    """

    path: Path
    model_spec: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    dataset: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    model_spec: str,
    class_names: Sequence[str],
    input_shape: Sequence[int],
    dataset: str = "",
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write a checkpoint (the weights on the CPU, and how to rebuild the model).

    Raises:
        ConfigError: the file cannot be written.
    """
    path = Path(path)
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "model_spec": model_spec,
        "class_names": list(class_names),
        "input_shape": [int(s) for s in input_shape],
        "dataset": dataset,
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, path)
    except OSError as exc:
        raise ConfigError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors only: no code runs).

    Raises:
        ConfigError: the file is missing.
        DataFileError: it is not a wattwise checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    payload = _read_payload(path)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise DataFileError(
            f"{path} is not a wattwise checkpoint: use a file written by `wattwise train --save`"
        )
    if payload.get("version") != _VERSION:
        raise DataFileError(f"{path}: checkpoint version {payload.get('version')} not supported")
    try:
        shape = tuple(int(s) for s in payload["input_shape"])
        if len(shape) not in (2, 3):
            raise ValueError("input_shape")
        return Checkpoint(
            path=path,
            model_spec=str(payload["model_spec"]),
            class_names=tuple(str(c) for c in payload["class_names"]),
            input_shape=shape,
            state_dict=dict(payload["state_dict"]),
            dataset=str(payload.get("dataset", "")),
            metrics={str(k): float(v) for k, v in payload.get("metrics", {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFileError(f"{path}: incomplete checkpoint ({exc})") from None


def _read_payload(path: Path) -> object:
    """The object ``torch.save`` wrote, tensors only; one line of ours for any bad file
    (torch's own messages run to several lines of advice that does not apply here)."""
    what = "use a file written by `wattwise train --save`"
    try:
        if path.stat().st_size == 0:
            raise DataFileError(f"checkpoint {path} is empty: {what}")
        if not zipfile.is_zipfile(path):  # torch.save has written zip archives since 1.6
            raise DataFileError(
                f"{path} is not a whole torch.save file (another format, or cut short): {what}"
            )
    except OSError as exc:
        raise DataFileError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    try:
        with warnings.catch_warnings():
            # torch warns about a pickle protocol it did not write before refusing or
            # reading the file; the outcome below says all there is to say.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found is None:
            raise DataFileError(
                f"checkpoint {path} is damaged (unreadable pickle); {what}"
            ) from None
        raise DataFileError(
            f"{path} holds Python objects ({found.group(1)}), not only tensors: not a wattwise "
            f"checkpoint (refused: loading it could run code); {what}"
        ) from None
    except Exception as exc:  # torch raises many kinds for a damaged archive
        text = re.sub(r"^\[enforce fail at [^\]]*\][\s.]*", "", str(exc).strip())  # C++ origin
        first = text.splitlines()[0] if text else type(exc).__name__
        raise DataFileError(f"checkpoint {path} is damaged ({first[:120]}); {what}") from None


def extend_head(
    model: nn.Module,
    old_classes: Sequence[str],
    new_classes: Sequence[str],
    *,
    init: str = "neutral",
) -> list[str]:
    """Give the classifier one output row per class of ``new_classes``, keeping the learned
    row (weights and bias) of every class of ``old_classes``.

    Args:
        model: the classifier, changed in place.
        old_classes: the class of each of its output rows now.
        new_classes: the classes it is to have, in output-row order.
        init: how new rows start: ``neutral`` (zero weights, the mean of the learned
            biases: they take no prediction from a learned class until trained) or
            ``random`` (PyTorch's default initialisation of a linear layer).

    Returns:
        the classes that got new rows.

    Raises:
        ConfigError: a known class is missing from ``new_classes``, the head's width
            does not match ``old_classes``, or an unknown ``init``.
    """
    if init not in NEW_ROW_INITS:
        raise ConfigError(f"unknown init {init!r} for new rows (use {' or '.join(NEW_ROW_INITS)})")
    name, head = find_head(model)
    if head.out_features != len(old_classes):
        raise ConfigError(
            f"the classifier {name} has {head.out_features} outputs but "
            f"{len(old_classes)} classes were given"
        )
    dropped = [c for c in old_classes if c not in new_classes]
    if dropped:
        raise ConfigError(
            f"cannot extend: class(es) {', '.join(dropped)} of the checkpoint are not in the "
            f"new class list {', '.join(new_classes)}"
        )
    new = nn.Linear(
        head.in_features,
        len(new_classes),
        bias=head.bias is not None,
        device=head.weight.device,
        dtype=head.weight.dtype,
    )
    old_index = {c: i for i, c in enumerate(old_classes)}
    with torch.no_grad():
        for row, cls in enumerate(new_classes):
            if cls in old_index:
                new.weight[row] = head.weight[old_index[cls]]
                if head.bias is not None and new.bias is not None:
                    new.bias[row] = head.bias[old_index[cls]]
            elif init == "neutral":
                new.weight[row] = 0.0
                if head.bias is not None and new.bias is not None:
                    new.bias[row] = head.bias.mean()
    set_submodule(model, name, new)
    return [c for c in new_classes if c not in old_index]


def fine_tune_lr_groups(
    model: nn.Module, lr: float, *, head_factor: float = HEAD_LR_FACTOR
) -> dict[str, float]:
    """Learning rates for fine-tuning: the head at ``head_factor`` x ``lr``; give ``lr``
    (the from-scratch rate) to ``fit`` for the backbone. Pass the result as ``lr_groups``.

    Raises:
        ConfigError: a rate that is not positive, or a model without a linear head.
    """
    if not (lr > 0 and head_factor > 0):
        raise ConfigError(f"learning rates must be > 0, got lr {lr} and factor {head_factor}")
    name, _ = find_head(model)
    return {f"{name}.*": lr * head_factor}


def model_from_checkpoint(
    ckpt: Checkpoint,
    *,
    class_names: Sequence[str] | None = None,
    input_shape: Sequence[int] | None = None,
    extend: bool = False,
) -> nn.Module:
    """Rebuild a checkpoint's model for data with ``class_names``.

    Args:
        ckpt: the checkpoint.
        class_names: the classes of the data to train on (default: the checkpoint's).
        input_shape: the shape of one of the data's inputs, checked against the
            checkpoint's.
        extend: allow new classes (:func:`extend_head`); without it the classes must be
            the checkpoint's, in the same order.

    Raises:
        ConfigError: a class or input-shape mismatch (saying what to do).
    """
    if input_shape is not None and tuple(input_shape) != ckpt.input_shape:
        raise ConfigError(
            f"checkpoint {ckpt.path} takes inputs of shape {ckpt.input_shape}, the data has "
            f"{tuple(input_shape)}"
        )
    model = build_model(
        ckpt.model_spec, input_shape=ckpt.input_shape, num_classes=len(ckpt.class_names)
    )
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise DataFileError(f"{ckpt.path}: weights do not fit {ckpt.model_spec}: {first}") from None
    wanted = tuple(class_names) if class_names is not None else ckpt.class_names
    if wanted != ckpt.class_names:
        if not extend:
            raise ConfigError(
                f"class mismatch: checkpoint {ckpt.path} was trained on classes "
                f"{_names(ckpt.class_names)}, the data has {_names(wanted)} "
                "(use --extend-classes to add new classes to its head)"
            )
        extend_head(model, ckpt.class_names, wanted)
    return model


def _names(names: Sequence[str]) -> str:
    shown = ",".join(names[:12])
    return f"[{shown}{',...' if len(names) > 12 else ''}]"


def _match(model: nn.Module, patterns: Iterable[str]) -> list[tuple[str, nn.Parameter]]:
    params = list(model.named_parameters())
    out: list[tuple[str, nn.Parameter]] = []
    for pattern in patterns:
        hits = [(n, p) for n, p in params if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            sample = ", ".join(n for n, _ in params[:6])
            raise ConfigError(
                f"pattern {pattern!r} matches no parameter (names look like: {sample}, ...)"
            )
        out.extend(hits)
    return out


def freeze(model: nn.Module, patterns: str | Iterable[str]) -> list[str]:
    """Stop training the parameters whose names match any pattern (fnmatch: ``features.*``).

    Returns:
        the names of the parameters frozen.

    Raises:
        ConfigError: a pattern matches nothing.
    """
    hits = _match(model, [patterns] if isinstance(patterns, str) else patterns)
    for _, p in hits:
        p.requires_grad_(False)
    return sorted({n for n, _ in hits})


def unfreeze(model: nn.Module, patterns: str | Iterable[str]) -> list[str]:
    """Train again the parameters whose names match any pattern.

    Returns:
        the names of the parameters unfrozen.

    Raises:
        ConfigError: a pattern matches nothing.
    """
    hits = _match(model, [patterns] if isinstance(patterns, str) else patterns)
    for _, p in hits:
        p.requires_grad_(True)
    return sorted({n for n, _ in hits})
