"""Synthetic hand gestures: keypoint sequences and the same clips drawn as frames.

The workload of the sAIn pattern (turn camera frames into hand keypoints first, then a
lean network reads the keypoints): no download, NumPy only, the same seed gives the same
clips on every machine.

A clip is ``T`` frames of one hand, 21 landmarks in MediaPipe's hand topology (0 the
wrist, then four joints per finger: thumb 1-4, index 5-8, middle 9-12, ring 13-16,
pinky 17-20), each ``(x, y, z)`` in MediaPipe's normalised image coordinates (x, y in
0..1 of the image, y down; z the depth relative to the wrist, same scale as x). A gesture
is a trajectory of the hand's pose over the clip, driven by a progress ``p`` that rises
from 0 to 1 between a random onset and a random end (the speed varies from clip to clip):

0. ``swipe-left``, 1. ``swipe-right``, 2. ``swipe-up``, 3. ``swipe-down``: the hand moves
   across the image; 4. ``pinch``: thumb and index tips close in; 5. ``close-fist``,
   6. ``open-fist``: every finger curls, or uncurls; 7. ``wave``: the hand rolls back and
   forth twice; 8. ``rotate``: a quarter turn; 9. ``push``: the hand comes towards the
   camera (grows).

Every clip also varies in pose (roll, tilt, hand size, position), in the resting curl of
its fingers, drifts slowly, and carries Gaussian noise on every coordinate. No single frame
tells swipe-left from swipe-right or close-fist from open-fist: a model must read the
motion.

The frames are the same clips drawn as a grey hand skeleton (MediaPipe's 21 hand
connections as anti-aliased lines, brighter joints) on ``size x size`` images, so that a
keypoint pipeline and a frame pipeline learn the same task from the same clips and labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wattwise._errors import ConfigError

__all__ = [
    "GESTURES",
    "HAND_CONNECTIONS",
    "LANDMARKS",
    "make_gestures",
    "render_frames",
]

#: The gesture classes, in label order (``classes=N`` keeps the first N).
GESTURES = (
    "swipe-left",
    "swipe-right",
    "swipe-up",
    "swipe-down",
    "pinch",
    "close-fist",
    "open-fist",
    "wave",
    "rotate",
    "push",
)

#: Landmarks per hand (MediaPipe's hand model).
LANDMARKS = 21

#: MediaPipe's hand connections: the bones drawn in a frame.
HAND_CONNECTIONS = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip

# The open hand, palm to the camera, in hand units (wrist at 0, middle finger up = +y).
_OPEN_HAND = np.array(
    [
        [0.0, 0.0],
        [-0.35, 0.25], [-0.6, 0.5], [-0.8, 0.75], [-0.95, 0.95],
        [-0.3, 1.0], [-0.33, 1.4], [-0.35, 1.65], [-0.37, 1.85],
        [0.0, 1.05], [0.0, 1.5], [0.0, 1.8], [0.0, 2.0],
        [0.27, 0.98], [0.3, 1.38], [0.32, 1.62], [0.33, 1.82],
        [0.5, 0.85], [0.57, 1.15], [0.6, 1.35], [0.63, 1.5],
    ]
)  # fmt: skip
# Each finger's chain of landmarks, base first (thumb first).
_FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
# How much of a full curl each joint of a finger bends (radians at curl 1).
_JOINT_BEND = np.array([0.9, 1.2, 0.9]) * (np.pi / 2)

# Ranges of the nuisance variation.
_SWIPE = 0.3  # distance a swipe travels, in image widths
_ROLL = 0.35  # resting roll, radians either way
_TILT = 0.5  # resting tilt about the vertical axis, radians either way
_SIZE = (0.16, 0.21)  # palm length (wrist to middle knuckle), in image heights
_CENTRE = 0.1  # how far the wrist's resting point lies from (0.5, 0.7)
_DRIFT = 0.06  # slow drift over the clip, in image widths either way
_REST_CURL = 0.25  # the most a resting finger is curled


def _hand(curls: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Landmarks ``(..., 21, 3)`` in hand units for finger curls ``(..., 5)`` in 0..1.

    Each finger bends at its three joints towards the palm (-z); the thumb also swings
    across the palm (+x), which is what brings its tip to the index's in a pinch.
    """
    lead = curls.shape[:-1]
    out = np.zeros((*lead, LANDMARKS, 3))
    out[..., 0, :2] = _OPEN_HAND[0]
    for f, chain in enumerate(_FINGERS):
        base = _OPEN_HAND[chain[0]]
        out[..., chain[0], :2] = base
        c = curls[..., f]
        angle = np.zeros(lead)
        pos = np.broadcast_to(np.array([base[0], base[1], 0.0]), (*lead, 3)).copy()
        for k in range(3):
            seg = _OPEN_HAND[chain[k + 1]] - _OPEN_HAND[chain[k]]
            length = float(np.hypot(*seg))
            d = seg / length
            angle = angle + c * _JOINT_BEND[k]
            step = np.stack([d[0] * np.cos(angle), d[1] * np.cos(angle), -np.sin(angle)], axis=-1)
            if f == 0:  # the thumb swings across the palm as it curls
                step[..., 0] += 0.9 * c * np.sin(angle)
            pos = pos + length * step
            out[..., chain[k + 1], :] = pos
    return out


def _smoothstep(p: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    p = np.clip(p, 0.0, 1.0)
    out: np.ndarray[Any, Any] = p * p * (3.0 - 2.0 * p)
    return out


def make_gestures(
    clips: int = 1200,
    *,
    frames: int = 16,
    classes: int = 8,
    noise: float = 0.01,
    seed: int = 0,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Gesture clips of hand keypoints, balanced over the classes.

    Args:
        clips: clips to make (>= classes).
        frames: frames per clip (>= 4).
        classes: gesture classes, the first ``classes`` of :data:`GESTURES` (2..10).
        noise: standard deviation of the Gaussian noise on every coordinate, in image widths.
        seed: the random seed.

    Returns:
        ``(keypoints, labels)``: float32 ``N x T x 21 x 3`` in MediaPipe's normalised
        image coordinates, and int64 labels (``N // classes`` or one more per class).

    Raises:
        ConfigError: a size or setting out of range.
    """
    if not 2 <= classes <= len(GESTURES):
        raise ConfigError(f"gestures has 2 to {len(GESTURES)} classes, got {classes}")
    if clips < classes or frames < 4 or noise < 0:
        raise ConfigError(
            f"gestures need clips >= classes ({classes}), frames >= 4 and noise >= 0; "
            f"got clips={clips}, frames={frames}, noise={noise:g}"
        )
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(clips) % classes).astype(np.int64)
    n = clips
    t = np.linspace(0.0, 1.0, frames)[None, :]
    onset = rng.uniform(0.0, 0.3, (n, 1))
    span = rng.uniform(0.45, 0.7, (n, 1))
    p = _smoothstep((t - onset) / span)  # (n, T)

    curls = np.broadcast_to(rng.uniform(0.0, _REST_CURL, (n, 1, 5)), (n, frames, 5)).copy()
    roll = np.broadcast_to(rng.uniform(-_ROLL, _ROLL, (n, 1)), (n, frames)).copy()
    scale = np.broadcast_to(rng.uniform(*_SIZE, (n, 1)), (n, frames)).copy()
    drift = rng.uniform(-_DRIFT, _DRIFT, (n, 1, 2)) * (t[..., None] - 0.5)
    centre = np.array([0.5, 0.7]) + rng.uniform(-_CENTRE, _CENTRE, (n, 1, 2)) + drift
    shift = np.zeros((n, frames, 2))

    def pick(c: int) -> np.ndarray[Any, Any]:
        mask: np.ndarray[Any, Any] = labels == c
        return mask

    for c, sign, axis in ((0, -1, 0), (1, 1, 0), (2, -1, 1), (3, 1, 1)):  # swipes (y down)
        m = pick(c)
        shift[m, :, axis] = sign * _SWIPE * (p[m] - 0.5)
    m = pick(4)  # pinch: thumb and index curl in
    curls[m, :, 0] = np.maximum(curls[m, :, 0], 0.75 * p[m])
    curls[m, :, 1] = np.maximum(curls[m, :, 1], 0.55 * p[m])
    m = pick(5)  # close the fist
    curls[m] = np.maximum(curls[m], p[m][..., None])
    m = pick(6)  # open the fist
    curls[m] = np.maximum(curls[m], 1.0 - p[m][..., None])
    m = pick(7)  # wave: two rolls back and forth
    roll[m] += 0.6 * np.sin(4.0 * np.pi * p[m])
    m = pick(8)  # a quarter turn
    roll[m] += (np.pi / 2) * p[m]
    m = pick(9)  # push towards the camera
    scale[m] *= 1.0 + 0.6 * p[m]

    hand = _hand(curls)  # (n, T, 21, 3), hand units
    tilt = rng.uniform(-_TILT, _TILT, (n, 1, 1))
    x, y, z = hand[..., 0], hand[..., 1], hand[..., 2]
    x, z = x * np.cos(tilt) + z * np.sin(tilt), -x * np.sin(tilt) + z * np.cos(tilt)
    cr, sr = np.cos(roll)[..., None], np.sin(roll)[..., None]
    x, y = x * cr - y * sr, x * sr + y * cr
    s = scale[..., None]
    out = np.stack(
        [
            centre[..., 0:1] + shift[..., 0:1] + s * x,
            centre[..., 1:2] + shift[..., 1:2] - s * y,  # image y points down
            s * z,
        ],
        axis=-1,
    )
    out += rng.normal(0.0, noise, out.shape)
    return out.astype(np.float32), labels


def render_frames(keypoints: np.ndarray[Any, Any], *, size: int = 32) -> np.ndarray[Any, Any]:
    """Draw keypoint clips as grey hand skeletons.

    Each bone of :data:`HAND_CONNECTIONS` is drawn as points every half pixel along it, each
    joint as a brighter point; points are splatted onto the pixel grid by bilinear weights,
    saturated (``1 - exp(-ink)``) and softened by a 3x3 binomial blur, so that lines are
    anti-aliased and a sub-pixel motion changes the image. Depth is not drawn (a camera
    frame does not show it either); what falls outside the frame is cut off.

    Args:
        keypoints: ``N x T x 21 x 3`` (or ``... x 21 x 2``) in normalised image coordinates.
        size: side of a frame in pixels (>= 8).

    Returns:
        float32 frames ``N x T x size x size`` in 0..1.

    Raises:
        ConfigError: a size below 8, or keypoints of another shape.
    """
    if size < 8:
        raise ConfigError(f"gesture frames need size >= 8 pixels, got {size}")
    if keypoints.ndim != 4 or keypoints.shape[2] != LANDMARKS:
        raise ConfigError(f"keypoints must be N x T x 21 x 3, got {keypoints.shape}")
    n, frames = keypoints.shape[:2]
    pts = keypoints[..., :2].reshape(n * frames, LANDMARKS, 2).astype(np.float64) * size - 0.5
    steps = max(4, size // 4)
    u = np.linspace(0.0, 1.0, steps)[None, None, :, None]
    a = pts[:, [i for i, _ in HAND_CONNECTIONS], None, :]
    b = pts[:, [j for _, j in HAND_CONNECTIONS], None, :]
    bones = (a + u * (b - a)).reshape(n * frames, -1, 2)
    ink = np.concatenate([bones, np.repeat(pts, 3, axis=1)], axis=1)  # joints count thrice
    weight = 4.0 / steps * (size / 32.0)
    side = size + 2  # a border of one pixel catches what falls outside
    frame = np.arange(n * frames)[:, None] * side * side
    flat = np.zeros(n * frames * side * side)
    x0, y0 = np.floor(ink[..., 0]), np.floor(ink[..., 1])
    fx, fy = ink[..., 0] - x0, ink[..., 1] - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        xi = np.clip(x0 + dx + 1, 0, side - 1).astype(np.int64)
        yi = np.clip(y0 + dy + 1, 0, side - 1).astype(np.int64)
        index = (frame + yi * side + xi).ravel()
        flat += np.bincount(index, weights=(w * weight).ravel(), minlength=flat.size)
    img = 1.0 - np.exp(-flat.reshape(n * frames, side, side))
    img = (img[:, :-2] + 2 * img[:, 1:-1] + img[:, 2:]) / 4  # binomial blur, rows
    img = (img[:, :, :-2] + 2 * img[:, :, 1:-1] + img[:, :, 2:]) / 4  # and columns
    return img.reshape(n, frames, size, size).astype(np.float32)
