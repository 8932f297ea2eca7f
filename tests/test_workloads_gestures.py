"""Synthetic hand gestures: the generator, the drawn frames, ``load_dataset("gestures")``
with both views, and the models that read them."""

from __future__ import annotations

import numpy as np
import pytest

from wattwise._errors import ConfigError
from wattwise.workloads import GESTURES, make_gestures, render_frames

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # see tests/test_workloads_torch.py

from wattwise.workloads import FrameCNN, build_model, load_dataset  # noqa: E402


def test_the_same_seed_gives_the_same_clips_and_another_seed_others() -> None:
    a = make_gestures(60, frames=8, classes=6, seed=3)
    b = make_gestures(60, frames=8, classes=6, seed=3)
    c = make_gestures(60, frames=8, classes=6, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.allclose(a[0], c[0])
    assert np.array_equal(render_frames(a[0], size=16), render_frames(b[0], size=16))


def test_clips_have_the_asked_shape_balanced_classes_and_image_coordinates() -> None:
    x, y = make_gestures(203, frames=12, classes=10, seed=0)
    assert x.shape == (203, 12, 21, 3) and x.dtype == np.float32 and y.dtype == np.int64
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.max() - counts.min() <= 1
    xy = x[..., :2]
    assert np.isfinite(x).all()
    # Normalised image coordinates: nearly everything inside the frame.
    assert ((xy > 0) & (xy < 1)).mean() > 0.97


def test_a_swipes_direction_is_in_its_motion_not_in_where_one_frame_shows_the_hand() -> None:
    x, y = make_gestures(400, frames=16, classes=2, noise=0.0, seed=1)
    wrist_x = x[:, :, 0, 0]
    left, right = wrist_x[y == 0, 8], wrist_x[y == 1, 8]
    # Half-way through, where the hand is overlaps widely between the two classes...
    inside = (left > right.min()) & (left < right.max())
    assert inside.mean() > 0.7
    # ... while the motion over the clip tells them apart.
    motion = wrist_x[:, -1] - wrist_x[:, 0]
    assert (motion[y == 0] < 0).mean() > 0.95 and (motion[y == 1] > 0).mean() > 0.95


def test_a_fist_curls_every_finger_tip_towards_the_wrist() -> None:
    x, y = make_gestures(80, frames=10, classes=6, noise=0.0, seed=2)
    fist = x[y == GESTURES.index("close-fist")]
    tips = [4, 8, 12, 16, 20]
    reach = np.linalg.norm(fist[:, :, tips, :2] - fist[:, :, :1, :2], axis=-1).mean(-1)
    assert (reach[:, -1] < 0.7 * reach[:, 0]).all()


def test_frames_draw_the_skeleton_where_the_keypoints_are() -> None:
    x, _ = make_gestures(20, frames=6, classes=4, seed=0)
    f = render_frames(x, size=32)
    assert f.shape == (20, 6, 32, 32) and f.dtype == np.float32
    assert f.min() >= 0.0 and f.max() <= 1.0
    wrist = np.clip((x[:, :, 0, :2] * 32).astype(int), 0, 31)
    at_wrist = f[np.arange(20)[:, None], np.arange(6)[None], wrist[..., 1], wrist[..., 0]]
    assert at_wrist.mean() > 5 * f.mean()  # the joints are bright, the background dark


def test_both_views_hold_the_same_clips_with_the_same_labels_and_split() -> None:
    spec = "gestures:clips=90,frames=6,classes=3,size=16,seed=5"
    kp = load_dataset(spec)  # keypoints is the default view
    fr = load_dataset(spec + ",view=frames")
    assert kp.input_shape == (63, 6) and fr.input_shape == (6, 1, 16, 16)
    assert kp.class_names == fr.class_names == GESTURES[:3]
    assert len(kp.train) == len(fr.train) == 72 and len(kp.val) == len(fr.val) == 18
    keypoints, labels = make_gestures(90, frames=6, classes=3, seed=5)
    frames = render_frames(keypoints, size=16)
    for i in range(len(kp.val)):
        (xk, yk), (xf, yf) = kp.val[i], fr.val[i]
        assert int(yk) == int(yf)
        # The same clip: find it by its keypoints, and its frames are that clip's.
        j = int(
            np.flatnonzero(
                (np.abs(keypoints.reshape(90, 6, 63) - xk.numpy().T) < 1e-6).all((1, 2))
            )[0]
        )
        assert labels[j] == int(yk)
        assert np.array_equal(frames[j], xf.numpy()[:, 0])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gestures:view=video", "bad view for gestures"),
        ("gestures:classes=11", "gestures has 2 to 10 classes"),
        ("gestures:clips=3,classes=4", "clips >= classes"),
        ("gestures:frames=2", "frames >= 4"),
        ("gestures:size=4,view=frames", "size >= 8"),
        ("gestures:speed=2", "bad option 'speed=2' for gestures"),
        ("gestures:clips=many", "bad value 'many' for clips"),
    ],
)
def test_bad_options_are_one_clear_error(spec: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_dataset(spec)
    assert "\n" not in str(info.value)


def test_the_pipelines_models_take_their_views() -> None:
    spec = "gestures:clips=40,frames=8,classes=4,size=16"
    kp = load_dataset(spec)
    fr = load_dataset(spec + ",view=frames")
    lstm = build_model("lstm:hidden=8", input_shape=kp.input_shape, num_classes=4)
    cnn = build_model("framecnn:width=4,temporal=8", input_shape=fr.input_shape, num_classes=4)
    assert isinstance(cnn, FrameCNN)
    xk = torch.stack([kp.train[i][0] for i in range(3)])
    xf = torch.stack([fr.train[i][0] for i in range(3)])
    assert lstm(xk).shape == (3, 4) and cnn(xf).shape == (3, 4)
    with pytest.raises(ConfigError, match="framecnn takes clips of frames"):
        build_model("framecnn", input_shape=kp.input_shape, num_classes=4)
    with pytest.raises(ConfigError, match="lstm takes sequences"):
        build_model("lstm", input_shape=fr.input_shape, num_classes=4)


def test_the_frame_cnn_sees_the_order_of_the_frames() -> None:
    """A reversed clip gives other scores: temporal pooling alone could not tell a swipe
    left from a swipe right."""
    torch.manual_seed(0)
    cnn = FrameCNN((6, 1, 16, 16), 3, width=4, temporal=8)
    clip = torch.rand(1, 6, 1, 16, 16)
    assert not torch.allclose(cnn(clip), cnn(clip.flip(1)))
