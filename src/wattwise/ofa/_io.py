"""Saving and loading a trained elastic network: one file, no code in it.

The file is a :func:`torch.save` of a plain dict: a format name and version, the network's
:class:`~wattwise.ofa.ElasticArch` as JSON-ready data (shape, classes, widths, the space) and
its state dict. It is read back with ``torch.load(weights_only=True)``, which unpickles only
tensors and plain containers, never arbitrary objects or code.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from wattwise._errors import ConfigError, DataFileError
from wattwise.ofa._net import ElasticArch, ElasticCNN

__all__ = ["ELASTIC_FORMAT", "ELASTIC_FORMAT_VERSION", "load_elastic", "save_elastic"]

#: The format name written in every saved elastic network.
ELASTIC_FORMAT = "wattwise-ofa-elastic"
#: The version of that format this wattwise writes and reads.
ELASTIC_FORMAT_VERSION = 1


def save_elastic(net: ElasticCNN, path: str | Path) -> Path:
    """Write ``net`` (architecture and weights) to ``path``; returns the path.

    Raises:
        ConfigError: the file cannot be written.
    """
    path = Path(path)
    document = {
        "format": ELASTIC_FORMAT,
        "version": ELASTIC_FORMAT_VERSION,
        "arch": net.arch.to_dict(),
        "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
    }
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as out:
            torch.save(document, out)
        partial.replace(path)  # a failed save leaves no half-written network behind
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the elastic network to {path}: {exc.strerror}") from exc
    return path


def _read(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"no elastic network file at {path} (train one with wattwise ofa train)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as exc:
        raise DataFileError(
            f"{path} is not a saved elastic network (it cannot be read as one: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def load_elastic(path: str | Path) -> ElasticCNN:
    """The elastic network saved at ``path`` (its largest sub-network active).

    Raises:
        ConfigError: no file there, or it cannot be read.
        DataFileError: the file is not a saved elastic network of this format version, or its
            weights do not fit its architecture.
    """
    path = Path(path)
    document = _read(path)
    if not isinstance(document, dict) or document.get("format") != ELASTIC_FORMAT:
        raise DataFileError(f"{path} is not a saved elastic network (no {ELASTIC_FORMAT} header)")
    if document.get("version") != ELASTIC_FORMAT_VERSION:
        raise DataFileError(
            f"{path} is an elastic network of format version {document.get('version')!r}; "
            f"this wattwise reads version {ELASTIC_FORMAT_VERSION}"
        )
    try:
        arch = ElasticArch.from_dict(document.get("arch", {}))
    except DataFileError as exc:
        raise DataFileError(f"{path}: its architecture cannot be read ({exc})") from exc
    net = ElasticCNN(arch)
    state = document.get("state")
    if not isinstance(state, dict):
        raise DataFileError(f"{path} holds no weights (the file is damaged)")
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
        raise DataFileError(
            f"{path}: the weights do not fit the saved architecture (the file is damaged)"
        ) from exc
    return net
