"""MNIST-1D: a small 1-D classification set, generated here, where architecture matters.

After Greydanus & Kobak, "Scaling down deep learning with MNIST-1D" (ICML 2024). This is a
generator written for wattwise following the paper's recipe, not the authors' code or
templates, so its accuracies are close to the paper's but not the same (docs/train.md
gives both). No download: every sample is made from ten fixed class templates by random
transformations, and the same seed gives the same samples on every machine.

How one sample is made:

1. Its class's template: a 1-D shape of 12 knots, drawn as :data:`TEMPLATE_SAMPLES`
   samples by linear interpolation.
2. Padding: the template sits in the middle of a zero canvas of :data:`CANVAS_SAMPLES`.
3. A random affine warp of the canvas: stretched in time by a factor in
   :data:`STRETCH`, shifted by up to :data:`MAX_SHIFT` canvas samples, scaled in amplitude
   by a factor in :data:`AMPLITUDE`. The shift is what makes a model that does not share
   weights along time (an MLP, logistic regression) learn every position apart.
4. A random slope (shear) across the canvas, and correlated noise: white noise smoothed by
   a Gaussian of :data:`CORRELATION_SAMPLES`.
5. Downsampled to :data:`OUTPUT_SAMPLES` samples by linear interpolation, then white
   noise added.

The training and validation sets come from separate random streams of the same seed, so
the validation set does not change with the size of the training set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wattwise._errors import ConfigError

__all__ = [
    "AMPLITUDE",
    "CANVAS_SAMPLES",
    "CORRELATED_NOISE",
    "CORRELATION_SAMPLES",
    "MAX_SAMPLES",
    "MAX_SHIFT",
    "OUTPUT_SAMPLES",
    "SHEAR",
    "STRETCH",
    "TEMPLATES",
    "TEMPLATE_SAMPLES",
    "WHITE_NOISE",
    "make_mnist1d",
]

#: The ten class templates, 12 knots each (amplitude about 1). Designed for wattwise: each
#: has its own sequence of rises, falls and plateaus, as the paper's digit-like strokes do.
TEMPLATES = np.array(
    [
        [0.0, 0.6, 1.0, 1.0, 0.6, 0.0, -0.6, -1.0, -1.0, -0.6, 0.0, 0.0],  # one period
        [0.0, 0.0, 0.0, 0.0, 0.3, 1.5, 1.5, 0.3, 0.0, 0.0, 0.0, 0.0],  # one spike
        [1.0, 1.0, 0.2, -0.6, -1.0, -0.6, 0.2, 1.0, 1.0, 1.0, -1.0, -1.0],  # dip, then drop
        [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -0.5, -0.5],  # three teeth
        [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0, 1.0, 0.0, -1.0, 0.0, 1.0, 1.0],  # steps
        [1.0, 0.8, 0.6, 0.4, 0.2, 0.0, -0.2, -0.4, -0.6, -0.8, -1.0, 0.0],  # falling ramp
        [0.0, -0.5, -1.0, -1.2, -1.0, -0.5, 0.0, 0.8, 1.2, 0.8, 0.0, 0.0],  # trough, peak
        [0.0, 0.0, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2, 0.0, 0.0, 0.0, 0.0],  # a plateau
        [0.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # fast zigzag
        [-1.0, -0.5, 0.0, 0.5, 1.0, 1.2, 1.0, 0.5, 0.0, -0.5, -1.0, -1.2],  # a slow hill
    ]
)

#: Samples of a template before padding.
TEMPLATE_SAMPLES = 40
#: Samples of the padded canvas the warp and the noise are applied to.
CANVAS_SAMPLES = 80
#: Samples of one output sequence.
OUTPUT_SAMPLES = 40
#: Range of the time stretch factor.
STRETCH = (0.7, 1.3)
#: Largest shift of the template, in canvas samples, either way.
MAX_SHIFT = 22
#: Range of the amplitude factor.
AMPLITUDE = (0.8, 1.2)
#: Largest slope added across the canvas (its change from the first to the last sample).
SHEAR = 1.0
#: Standard deviation of the correlated noise, and its correlation length in canvas samples.
CORRELATED_NOISE = 0.3
CORRELATION_SAMPLES = 3.0
#: Standard deviation of the white noise added to the output.
WHITE_NOISE = 0.05
#: Largest set this generator makes (a guard against a typo costing all memory).
MAX_SAMPLES = 1_000_000


def _smooth(noise: np.ndarray[Any, Any], sigma: float) -> np.ndarray[Any, Any]:
    """Each row convolved with a normalised Gaussian of ``sigma`` samples, then rescaled
    to unit variance (so the noise's size does not depend on its correlation length)."""
    half = int(np.ceil(3 * sigma))
    t = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= np.sqrt((kernel**2).sum())
    padded = np.pad(noise, ((0, 0), (half, half)), mode="wrap")
    windows = np.lib.stride_tricks.sliding_window_view(padded, len(t), axis=1)
    out: np.ndarray[Any, Any] = windows @ kernel
    return out


def _samples(labels: np.ndarray[Any, Any], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    n = len(labels)
    knots = np.linspace(0.0, 1.0, TEMPLATES.shape[1])
    grid = np.linspace(0.0, 1.0, TEMPLATE_SAMPLES)
    shapes = np.stack([np.interp(grid, knots, row) for row in TEMPLATES])
    # Canvas position t shows the template at (t - centre - shift) / stretch + centre,
    # zero outside it: padding, stretch and shift in one warp.
    pad = (CANVAS_SAMPLES - TEMPLATE_SAMPLES) / 2
    t = np.arange(CANVAS_SAMPLES, dtype=np.float64)
    centre = (CANVAS_SAMPLES - 1) / 2
    stretch = rng.uniform(*STRETCH, size=(n, 1))
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=(n, 1))
    amplitude = rng.uniform(*AMPLITUDE, size=(n, 1))
    source = (t[None, :] - centre - shift) / stretch + centre - pad
    canvas = np.empty((n, CANVAS_SAMPLES))
    for i in range(n):
        canvas[i] = np.interp(source[i], np.arange(TEMPLATE_SAMPLES), shapes[labels[i]], 0, 0)
    canvas *= amplitude
    slope = rng.uniform(-SHEAR, SHEAR, size=(n, 1))
    canvas += slope * (t[None, :] / (CANVAS_SAMPLES - 1) - 0.5)
    white = rng.normal(size=(n, CANVAS_SAMPLES))
    canvas += CORRELATED_NOISE * _smooth(white, CORRELATION_SAMPLES)
    out_t = np.linspace(0.0, CANVAS_SAMPLES - 1, OUTPUT_SAMPLES)
    x = np.stack([np.interp(out_t, t, row) for row in canvas])
    x += WHITE_NOISE * rng.normal(size=x.shape)
    return x


def _balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """``n`` labels, every class ``n // n_classes`` or one more times, in random order."""
    return rng.permutation(np.arange(n) % n_classes)


def make_mnist1d(
    n_train: int = 4000, n_val: int = 1000, *, seed: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Generate MNIST-1D: balanced training and validation sets of 1-D sequences.

    Args:
        n_train: training samples (at least one per class).
        n_val: validation samples (at least one per class).
        seed: the same seed gives the same sets; the validation set does not depend on
            ``n_train``.

    Returns:
        ``(x_train, y_train, x_val, y_val)``: float32 sequences ``N x 1 x 40`` and int64
        labels ``0..9``, each class as often as any other (give or take one).

    Raises:
        ConfigError: a size below 10 or above :data:`MAX_SAMPLES`, or a negative seed.
    """
    n_classes = len(TEMPLATES)
    for what, n in (("train", n_train), ("val", n_val)):
        if not n_classes <= n <= MAX_SAMPLES:
            raise ConfigError(
                f"mnist1d {what}={n}: give between {n_classes} (one per class) and "
                f"{MAX_SAMPLES:,} samples"
            )
    if seed < 0:
        raise ConfigError(f"mnist1d seed={seed}: give a seed >= 0")
    out: list[np.ndarray[Any, Any]] = []
    for stream, n in zip(np.random.SeedSequence(seed).spawn(2), (n_train, n_val), strict=True):
        rng = np.random.default_rng(stream)
        y = _balanced_labels(n, n_classes, rng)
        x = _samples(y, rng)
        out += [x[:, None, :].astype(np.float32), y.astype(np.int64)]
    return out[0], out[1], out[2], out[3]
