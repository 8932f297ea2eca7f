"""A small multi-layer perceptron in NumPy: a real, dependency-light training workload.

Used by ``wattwise demo`` (until the PyTorch workloads land) and by the overhead benchmark:
its cost is dominated by matrix products, like a real training step on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["NumpyMLP", "make_blobs"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def make_blobs(
    n_samples: int, n_features: int, n_classes: int, *, spread: float = 2.5, seed: int = 0
) -> tuple[FloatArray, IntArray]:
    """Gaussian class clusters: a synthetic classification data set.

    Args:
        n_samples: number of rows.
        n_features: number of columns.
        n_classes: number of classes.
        spread: standard deviation of each cluster (larger: harder).
        seed: random seed.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    x = centres[y] + rng.normal(0.0, spread, size=(n_samples, n_features))
    return x.astype(np.float64), y.astype(np.int64)


@dataclass
class NumpyMLP:
    """One hidden layer, ReLU, softmax cross-entropy, plain SGD with mini-batches.

    Attributes:
        n_features: input width.
        n_hidden: hidden width.
        n_classes: output width.
        lr: learning rate.
        seed: random seed for the initial weights and the batch order.
    """

    n_features: int
    n_hidden: int
    n_classes: int
    lr: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._rng = rng
        self.w1 = rng.normal(0, np.sqrt(2.0 / self.n_features), (self.n_features, self.n_hidden))
        self.b1 = np.zeros(self.n_hidden)
        self.w2 = rng.normal(0, np.sqrt(2.0 / self.n_hidden), (self.n_hidden, self.n_classes))
        self.b2 = np.zeros(self.n_classes)

    def _forward(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        h = np.maximum(x @ self.w1 + self.b1, 0.0)
        logits = h @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return h, p

    def train_epoch(self, x: FloatArray, y: IntArray, batch_size: int = 64) -> float:
        """One pass over the data; returns the mean training loss."""
        order = self._rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            h, p = self._forward(xb)
            losses.append(float(-np.log(p[np.arange(len(yb)), yb] + 1e-12).mean()))
            grad = p
            grad[np.arange(len(yb)), yb] -= 1.0
            grad /= len(yb)
            gw2 = h.T @ grad
            gh = grad @ self.w2.T
            gh[h <= 0] = 0.0
            gw1 = xb.T @ gh
            self.w2 -= self.lr * gw2
            self.b2 -= self.lr * grad.sum(axis=0)
            self.w1 -= self.lr * gw1
            self.b1 -= self.lr * gh.sum(axis=0)
        return float(np.mean(losses))

    def accuracy(self, x: FloatArray, y: IntArray) -> float:
        """Fraction of rows classified correctly."""
        _, p = self._forward(x)
        return float((p.argmax(axis=1) == y).mean())
