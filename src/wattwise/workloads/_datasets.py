"""Datasets for training workloads: bundled digits, generated MNIST-1D sequences,
synthetic images and hand gestures, torchvision sets.

Every loader returns a :class:`DataSplit`: a training and a validation set of
``(input, label)`` pairs with inputs as float tensors, images ``C x H x W``, sequences
(mnist1d, gesture keypoints) ``C x L`` and clips of frames (gesture frames)
``T x C x H x W``. A class subset keeps the order it was given in, and label ``i`` of the
split is the ``i``-th class of the subset, so ``classes=0-7`` and ``classes=0-9`` give the
first eight classes the same labels: a model trained on the first can be extended to the
second keeping its rows.

The validation split never depends on the training seed: the same images are held out
for every run, which is what makes runs with different seeds or levers comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from wattwise._errors import ConfigError
from wattwise.workloads._gestures import GESTURES, make_gestures, render_frames
from wattwise.workloads._mnist1d import make_mnist1d
from wattwise.workloads._spec import parse_options, split_spec

__all__ = ["DATASETS", "DataSplit", "load_dataset", "make_synthetic"]

#: Dataset names accepted by :func:`load_dataset`, with what follows the colon.
DATASETS = {
    "digits": "scikit-learn's bundled 8x8 digits (1,797 images, 10 classes); no path",
    "mnist1d": "generated 1-D sequences of 40 samples, 10 classes (Greydanus & Kobak 2024); "
    "options train= (default 4000), val= (default 1000), seed= (default 0)",
    "synthetic": "generated images; options samples=, classes=, size=, channels=, noise=, seed=",
    "gestures": "generated hand-gesture clips (21 keypoints x (x, y, z), T frames), as keypoint "
    "sequences (63 x T) or as the same clips drawn as frames (T x 1 x size x size); options "
    "clips= (default 1200), frames= (16), classes= (8, at most 10), size= (32), noise= "
    "(0.01), seed= (0), view=keypoints|frames (keypoints)",
    "cifar10": "CIFAR-10 from a local folder (cifar10:PATH); --download fetches it",
    "fashion-mnist": "Fashion-MNIST from a local folder (fashion-mnist:PATH); --download "
    "fetches it",
    "imagefolder": "one sub-folder per class (imagefolder:PATH), or PATH/train and PATH/val",
}

#: Seed of the train/validation split: fixed, so every run validates on the same images.
SPLIT_SEED = 0


@dataclass(frozen=True)
class DataSplit:
    """A training set and a validation set with the names of their classes.

    Attributes:
        name: the dataset spec it came from (``digits``, ``cifar10:/data``).
        train: training pairs ``(image tensor C x H x W, label)``.
        val: validation pairs, same form.
        class_names: the name of each label, in label order (``"0"``..``"9"`` for digits).
        input_shape: ``(channels, height, width)`` of one image, ``(channels, length)``
            of one sequence.
    """

    name: str
    train: Dataset[Any]
    val: Dataset[Any]
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        """Number of classes (the width of a classifier's output)."""
        return len(self.class_names)


class _Relabelled(Dataset[tuple[torch.Tensor, int]]):
    """A subset of a dataset with its labels mapped to ``0..k-1``."""

    def __init__(self, base: Dataset[Any], indices: Sequence[int], mapping: dict[int, int]):
        self.base = base
        self.indices = list(indices)
        self.mapping = mapping

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x, y = self.base[self.indices[i]]
        return x, self.mapping[int(y)]


def _check_classes(classes: Sequence[int] | None, names: Sequence[str], what: str) -> list[int]:
    if classes is None:
        return list(range(len(names)))
    bad = [c for c in classes if c >= len(names)]
    if bad:
        raise ConfigError(f"class {bad[0]} is not in {what}, whose classes are 0-{len(names) - 1}")
    if len(classes) < 2:
        raise ConfigError(f"a classifier needs at least two classes, got {list(classes)}")
    return list(classes)


def _stratified_split(
    labels: np.ndarray[Any, Any], val_fraction: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Indices of a per-class split, the same for any training seed."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = round(len(idx) * val_fraction)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _tensor_split(
    name: str,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    names: Sequence[str],
    classes: Sequence[int] | None,
    val_fraction: float,
) -> DataSplit:
    chosen = _check_classes(classes, names, name)
    tr, va = _stratified_split(y, val_fraction)
    lut = np.full(len(names), -1, dtype=np.int64)
    lut[chosen] = np.arange(len(chosen))

    def part(idx: np.ndarray[Any, Any]) -> TensorDataset:
        keep = idx[lut[y[idx]] >= 0]
        xs = torch.tensor(x[keep], dtype=torch.float32)
        ys = torch.tensor(lut[y[keep]], dtype=torch.int64)
        return TensorDataset(xs, ys)

    shape = tuple(int(s) for s in x.shape[1:])
    return DataSplit(name, part(tr), part(va), tuple(names[i] for i in chosen), shape)


def _digits(classes: Sequence[int] | None, val_fraction: float) -> DataSplit:
    from sklearn.datasets import load_digits  # type: ignore[import-untyped,unused-ignore]

    bunch = load_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    y = np.asarray(bunch.target, dtype=np.int64)
    return _tensor_split("digits", x, y, [str(i) for i in range(10)], classes, val_fraction)


_MNIST1D_OPTIONS: dict[str, type] = {"train": int, "val": int, "seed": int}


def _mnist1d(options: str, classes: Sequence[int] | None) -> DataSplit:
    """MNIST-1D made here: its own training and validation sets (no split of one set), so
    the validation sequences stay the same whatever the training size or class subset."""
    opts = parse_options(options, what="mnist1d", allowed=_MNIST1D_OPTIONS)
    xt, yt, xv, yv = make_mnist1d(
        int(opts.get("train", 4000)), int(opts.get("val", 1000)), seed=int(opts.get("seed", 0))
    )
    names = [str(i) for i in range(10)]
    chosen = _check_classes(classes, names, "mnist1d")
    lut = np.full(len(names), -1, dtype=np.int64)
    lut[chosen] = np.arange(len(chosen))

    def part(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> TensorDataset:
        keep = lut[y] >= 0
        return TensorDataset(torch.from_numpy(x[keep]), torch.from_numpy(lut[y[keep]]))

    spec = "mnist1d" + (f":{options}" if options else "")
    shape = tuple(int(s) for s in xt.shape[1:])
    return DataSplit(spec, part(xt, yt), part(xv, yv), tuple(names[i] for i in chosen), shape)


def make_synthetic(
    n_samples: int = 2000,
    *,
    n_classes: int = 10,
    image_size: int = 16,
    channels: int = 1,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Images of noisy class prototypes: a classification set of any size, for benchmarks.

    Each class has a smooth random prototype; an image is its class's prototype, shifted by
    up to one pixel, plus Gaussian noise. ``noise`` sets the difficulty.

    Returns:
        ``(x, y)``: float32 images ``N x C x S x S`` and int64 labels.
    """
    if n_samples < n_classes or n_classes < 2 or image_size < 4 or channels < 1:
        raise ConfigError(
            "synthetic data needs samples >= classes >= 2, size >= 4 and channels >= 1"
        )
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0.0, 1.0, size=(n_classes, channels, 4, 4))
    reps = -(-image_size // 4)
    protos = np.kron(coarse, np.ones((1, 1, reps, reps)))[:, :, :image_size, :image_size]
    y = rng.integers(0, n_classes, size=n_samples)
    shifts = rng.integers(-1, 2, size=(n_samples, 2))
    x = np.empty((n_samples, channels, image_size, image_size), dtype=np.float32)
    for i in range(n_samples):
        x[i] = np.roll(protos[y[i]], tuple(shifts[i]), axis=(1, 2))
    x += rng.normal(0.0, noise, size=x.shape).astype(np.float32)
    return x, y.astype(np.int64)


_SYNTHETIC_OPTIONS: dict[str, type] = {
    "samples": int,
    "classes": int,
    "size": int,
    "channels": int,
    "noise": float,
    "seed": int,
}


def _synthetic(options: str, classes: Sequence[int] | None, val_fraction: float) -> DataSplit:
    opts = parse_options(options, what="synthetic data", allowed=_SYNTHETIC_OPTIONS)
    n_classes = int(opts.get("classes", 10))
    x, y = make_synthetic(
        int(opts.get("samples", 2000)),
        n_classes=n_classes,
        image_size=int(opts.get("size", 16)),
        channels=int(opts.get("channels", 1)),
        noise=float(opts.get("noise", 1.0)),
        seed=int(opts.get("seed", 0)),
    )
    spec = "synthetic" + (f":{options}" if options else "")
    names = [str(i) for i in range(n_classes)]
    return _tensor_split(spec, x, y, names, classes, val_fraction)


_GESTURE_OPTIONS: dict[str, type] = {
    "clips": int,
    "frames": int,
    "classes": int,
    "size": int,
    "noise": float,
    "seed": int,
}
_GESTURE_VIEWS = ("keypoints", "frames")


def _gestures(options: str, classes: Sequence[int] | None, val_fraction: float) -> DataSplit:
    """Gesture clips as keypoint sequences ``63 x T`` (21 landmarks x (x, y, z) per step,
    landmark-major, the ``C x L`` of every sequence here) or as frames ``T x 1 x S x S``;
    both views of one spec hold the same clips with the same labels and split."""
    parts = [p for p in options.split(",") if p.strip()]
    views = [p.partition("=")[2].strip().lower() for p in parts if p.strip().startswith("view=")]
    rest = ",".join(p for p in parts if not p.strip().startswith("view="))
    if len(views) > 1 or (views and views[0] not in _GESTURE_VIEWS):
        raise ConfigError(
            f"bad view for gestures: {','.join(views)!r} (use view=keypoints or view=frames)"
        )
    view = views[0] if views else "keypoints"
    opts = parse_options(rest, what="gestures", allowed=_GESTURE_OPTIONS)
    n_classes = int(opts.get("classes", 8))
    keypoints, y = make_gestures(
        int(opts.get("clips", 1200)),
        frames=int(opts.get("frames", 16)),
        classes=n_classes,
        noise=float(opts.get("noise", 0.01)),
        seed=int(opts.get("seed", 0)),
    )
    if view == "keypoints":
        n, t = keypoints.shape[:2]
        x = keypoints.reshape(n, t, -1).transpose(0, 2, 1)
    else:
        x = render_frames(keypoints, size=int(opts.get("size", 32)))[:, :, None]
    spec = "gestures" + (f":{options}" if options else "")
    return _tensor_split(spec, x, y, list(GESTURES[:n_classes]), classes, val_fraction)


def _targets(ds: Any) -> list[int]:
    targets = getattr(ds, "targets", None)
    if targets is None:
        raise ConfigError(f"{type(ds).__name__} does not list its labels")
    return [int(t) for t in targets]


def _subset(ds: Dataset[Any], targets: list[int], chosen: list[int]) -> Dataset[Any]:
    mapping = {c: i for i, c in enumerate(chosen)}
    return _Relabelled(ds, [i for i, t in enumerate(targets) if t in mapping], mapping)


def _torchvision(
    name: str,
    path: str,
    classes: Sequence[int] | None,
    download: bool,
    val_fraction: float,
    image_size: int,
) -> DataSplit:
    import torchvision  # type: ignore[import-untyped,unused-ignore]
    from torchvision import transforms

    if not path:
        raise ConfigError(f"{name} needs a local folder: --dataset {name}:PATH")
    root = Path(path).expanduser()
    spec = f"{name}:{path}"
    if name == "imagefolder":
        return _imagefolder(spec, root, classes, val_fraction, image_size)
    if name == "cifar10":
        cls: Any = torchvision.datasets.CIFAR10
        norm = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        shape = (3, 32, 32)
    else:
        cls = torchvision.datasets.FashionMNIST
        norm = transforms.Normalize((0.5,), (0.5,))
        shape = (1, 28, 28)
    tf = transforms.Compose([transforms.ToTensor(), norm])
    try:
        train = cls(str(root), train=True, download=download, transform=tf)
        val = cls(str(root), train=False, download=download, transform=tf)
    except RuntimeError as exc:
        if "not found" in str(exc).lower():
            raise ConfigError(
                f"{name} not found under {root}: point to the folder that holds it, or add "
                "--download to fetch it there"
            ) from None
        raise ConfigError(f"cannot load {name} from {root}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot load {name} from {root}: {exc}") from None
    names = [str(c) for c in train.classes]
    chosen = _check_classes(classes, names, name)
    return DataSplit(
        spec,
        _subset(train, _targets(train), chosen),
        _subset(val, _targets(val), chosen),
        tuple(names[i] for i in chosen),
        shape,
    )


def _imagefolder(
    spec: str,
    root: Path,
    classes: Sequence[int] | None,
    val_fraction: float,
    image_size: int,
) -> DataSplit:
    from torchvision import transforms  # type: ignore[import-untyped,unused-ignore]
    from torchvision.datasets import ImageFolder  # type: ignore[import-untyped,unused-ignore]

    tf = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor()])
    if not root.is_dir():
        raise ConfigError(f"no folder {root} (imagefolder:PATH needs one sub-folder per class)")
    try:
        val_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
        if (root / "train").is_dir() and val_dir is not None:
            train_ds: ImageFolder = ImageFolder(str(root / "train"), transform=tf)
            val_ds: ImageFolder = ImageFolder(str(val_dir), transform=tf)
            if val_ds.classes != train_ds.classes:
                raise ConfigError(f"{root / 'train'} and {val_dir} hold different classes")
            tr_idx = list(range(len(train_ds)))
            va_idx = list(range(len(val_ds)))
        else:
            train_ds = val_ds = ImageFolder(str(root), transform=tf)
            a, b = _stratified_split(np.asarray(train_ds.targets), val_fraction)
            tr_idx, va_idx = a.tolist(), b.tolist()
    except (FileNotFoundError, OSError) as exc:
        raise ConfigError(f"cannot read images under {root}: {exc}") from None
    names = list(train_ds.classes)
    chosen = _check_classes(classes, names, spec)
    mapping = {c: i for i, c in enumerate(chosen)}
    tr_t, va_t = _targets(train_ds), _targets(val_ds)
    channels = int(train_ds[0][0].shape[0])
    return DataSplit(
        spec,
        _Relabelled(train_ds, [i for i in tr_idx if tr_t[i] in mapping], mapping),
        _Relabelled(val_ds, [i for i in va_idx if va_t[i] in mapping], mapping),
        tuple(names[i] for i in chosen),
        (channels, image_size, image_size),
    )


def load_dataset(
    spec: str,
    *,
    classes: Sequence[int] | None = None,
    download: bool = False,
    val_fraction: float = 0.2,
    image_size: int = 64,
) -> DataSplit:
    """Load a dataset by spec: ``digits``, ``mnist1d[:OPTIONS]``, ``synthetic[:OPTIONS]``,
    ``gestures[:OPTIONS]``, ``cifar10:PATH``, ``fashion-mnist:PATH`` or ``imagefolder:PATH``.

    Args:
        spec: the dataset, see :data:`DATASETS`.
        classes: the original labels to keep, in the order of the new labels (all: None).
        download: fetch CIFAR-10 / Fashion-MNIST into PATH when absent (never otherwise).
        val_fraction: share held out for validation where the set has no own split
            (mnist1d has: its ``val=`` option).
        image_size: side in pixels that ImageFolder images are resized to.

    Raises:
        ConfigError: an unknown dataset, a missing folder, a class it does not have.
    """
    name, rest = split_spec(spec)
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if name == "digits":
        if rest:
            raise ConfigError("digits is bundled with scikit-learn and takes no path")
        return _digits(classes, val_fraction)
    if name == "mnist1d":
        return _mnist1d(rest, classes)
    if name == "synthetic":
        return _synthetic(rest, classes, val_fraction)
    if name == "gestures":
        return _gestures(rest, classes, val_fraction)
    if name in ("cifar10", "fashion-mnist", "imagefolder"):
        return _torchvision(name, rest, classes, download, val_fraction, image_size)
    raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
