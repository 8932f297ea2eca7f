"""Batches of a dataset on a device, for the training loop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from wattwise._errors import ConfigError

__all__ = ["Batches"]


class Batches:
    """Batches of a dataset on a device. Tensor datasets are indexed directly (fast);
    others go through a DataLoader. A trailing training batch of one sample is dropped
    (batch normalisation cannot train on it)."""

    def __init__(
        self,
        ds: Dataset[Any],
        *,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator,
        device: torch.device,
        workers: int,
    ) -> None:
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.device = device
        n = len(ds)  # type: ignore[arg-type]
        if n == 0:
            raise ConfigError("a dataset split is empty (check the class list)")
        self.n = n
        self.drop_last = shuffle and n > 1 and n % batch_size == 1
        self.tensors: tuple[torch.Tensor, torch.Tensor] | None = None
        self.loader: DataLoader[Any] | None = None
        if isinstance(ds, TensorDataset) and len(ds.tensors) == 2:
            x, y = ds.tensors
            self.tensors = (x.to(device), y.to(device))
        else:
            self.loader = DataLoader(
                ds,
                batch_size=batch_size,
                shuffle=shuffle,
                generator=generator if shuffle else None,
                num_workers=workers,
                pin_memory=device.type == "cuda",
                drop_last=self.drop_last,
            )

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.loader is not None:
            for x, y in self.loader:
                yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            return
        assert self.tensors is not None
        x, y = self.tensors
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator).to(x.device)
        else:
            order = torch.arange(self.n, device=x.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield x[idx], y[idx]
