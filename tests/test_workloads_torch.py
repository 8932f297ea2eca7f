"""PyTorch workloads: datasets (digits, synthetic, ImageFolder, torchvision sets) and models."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
# spinning threads make an epoch 100x slower: one thread keeps the suite fast everywhere.
torch.set_num_threads(1)

from wattwise._errors import ConfigError  # noqa: E402
from wattwise.workloads import (  # noqa: E402
    CNN,
    MLP,
    build_model,
    find_head,
    load_dataset,
    make_synthetic,
    parse_classes,
)


def _labels(ds: torch.utils.data.TensorDataset) -> list[int]:
    return [int(v) for v in ds.tensors[1]]


def test_digits_is_split_by_class_and_the_same_for_every_run() -> None:
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert a.input_shape == (1, 8, 8)
    assert a.class_names == tuple(str(i) for i in range(10))
    assert len(a.train) + len(a.val) == 1797
    assert len(a.val) == pytest.approx(0.2 * 1797, abs=10)
    # Every class is in both splits in proportion; images are scaled to [0, 1].
    assert set(_labels(a.val)) == set(range(10))
    assert float(a.train.tensors[0].max()) == 1.0 and float(a.train.tensors[0].min()) == 0.0
    assert torch.equal(a.val.tensors[0], b.val.tensors[0])


def test_class_subsets_keep_labels_and_validation_images_of_shared_classes() -> None:
    full = load_dataset("digits")
    sub = load_dataset("digits", classes=parse_classes("0-7"))
    assert sub.class_names == tuple(str(i) for i in range(8))
    assert set(_labels(sub.train)) == set(range(8))
    # Class 3 has the same label and the same held-out images in both.
    x_full = full.val.tensors[0][full.val.tensors[1] == 3]
    x_sub = sub.val.tensors[0][sub.val.tensors[1] == 3]
    assert torch.equal(x_full, x_sub)
    # A reordered subset relabels in the order given.
    odd = load_dataset("digits", classes=(9, 1))
    assert odd.class_names == ("9", "1")
    x9 = full.val.tensors[0][full.val.tensors[1] == 9]
    assert torch.equal(odd.val.tensors[0][odd.val.tensors[1] == 0], x9)


@pytest.mark.parametrize("spec", ["digits", "synthetic:samples=400", "mnist1d:train=400,val=200"])
def test_a_class_subset_never_trains_on_the_full_sets_validation_items(spec: str) -> None:
    # Transfer learning pre-trains on 0-7 and validates on 0-9: the subset's training items
    # must all be training items of the full set (the split is made before the filter).
    full = load_dataset(spec)
    sub = load_dataset(spec, classes=tuple(range(8)))

    def rows(ds: torch.utils.data.TensorDataset) -> set[bytes]:
        return {x.numpy().tobytes() for x in ds.tensors[0]}

    sub_train, full_train, full_val = rows(sub.train), rows(full.train), rows(full.val)
    assert sub_train and sub_train <= full_train
    assert not sub_train & full_val


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0-7", tuple(range(8))), ("0,2,5", (0, 2, 5)), ("0-2,8", (0, 1, 2, 8)), ("4", (4,))],
)
def test_parse_classes(text: str, expected: tuple[int, ...]) -> None:
    assert parse_classes(text) == expected


@pytest.mark.parametrize("text", ["a-b", "3-1", "1,1", "-2", ""])
def test_parse_classes_refuses_bad_lists(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_classes(text)


@pytest.mark.parametrize(
    ("spec", "classes", "message"),
    [
        ("mnist", None, "unknown dataset 'mnist'"),
        ("digits:/data", None, "takes no path"),
        ("digits", (0, 12), "class 12 is not in digits"),
        ("digits", (3,), "at least two classes"),
        ("cifar10", None, "needs a local folder"),
        ("synthetic:colour=1", None, "bad option"),
    ],
)
def test_bad_dataset_specs_fail_with_one_clear_line(
    spec: str, classes: tuple[int, ...] | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_dataset(spec, classes=classes)


def test_torchvision_sets_are_never_downloaded_unless_asked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--download"):
        load_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(ConfigError, match="--download"):
        load_dataset(f"fashion-mnist:{tmp_path}")
    assert list(tmp_path.iterdir()) == []


def test_imagefolder_reads_class_folders_and_subsets(tmp_path: Path) -> None:
    from PIL import Image

    for k, name in enumerate(("cat", "dog", "emu")):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.new("RGB", (20, 12), (40 * k, 10 * i, 0)).save(tmp_path / name / f"{i}.png")
    data = load_dataset(f"imagefolder:{tmp_path}", image_size=16)
    assert data.class_names == ("cat", "dog", "emu")
    assert data.input_shape == (3, 16, 16)
    assert len(data.train) + len(data.val) == 15 and len(data.val) == 3
    x, y = data.train[0]
    assert tuple(x.shape) == (3, 16, 16) and 0 <= y < 3
    sub = load_dataset(f"imagefolder:{tmp_path}", classes=(2, 0), image_size=16)
    assert sub.class_names == ("emu", "cat")
    assert {sub.train[i][1] for i in range(len(sub.train))} == {0, 1}
    with pytest.raises(ConfigError, match="no folder"):
        load_dataset(f"imagefolder:{tmp_path / 'missing'}")


def test_synthetic_data_has_the_asked_shape_and_is_reproducible() -> None:
    x, y = make_synthetic(300, n_classes=4, image_size=12, channels=3, seed=5)
    x2, _ = make_synthetic(300, n_classes=4, image_size=12, channels=3, seed=5)
    assert x.shape == (300, 3, 12, 12) and set(y.tolist()) == {0, 1, 2, 3}
    assert (x == x2).all()
    data = load_dataset("synthetic:samples=400,classes=3,size=8")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 3
    assert len(data.train) + len(data.val) == 400


def test_builtin_models_have_depth_and_width_knobs_and_a_named_head() -> None:
    small = build_model("cnn", input_shape=(1, 8, 8), num_classes=10)
    big = build_model("cnn:depth=3,width=32", input_shape=(1, 8, 8), num_classes=10)
    assert isinstance(small, CNN)
    n_small = sum(p.numel() for p in small.parameters())
    assert sum(p.numel() for p in big.parameters()) > 5 * n_small
    assert find_head(small)[0] == "head"
    mlp = build_model("mlp:depth=1,width=32", input_shape=(3, 16, 16), num_classes=4)
    assert isinstance(mlp, MLP)
    assert mlp(torch.zeros(5, 3, 16, 16)).shape == (5, 4)
    assert small(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert any(n.startswith("features.") for n, _ in small.named_parameters())


def test_torchvision_models_by_name_take_grayscale_inputs() -> None:
    m = build_model("shufflenet_v2_x0_5", input_shape=(1, 8, 8), num_classes=10)
    assert find_head(m)[0] == "fc"
    assert m.eval()(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("transformer9000", "unknown model 'transformer9000'"),
        ("cnn:depth=0", "bad depth/width"),
        ("cnn:colour=2", "bad option"),
        ("mlp:width=many", "bad value"),
        ("alexnet", r"cannot take inputs of shape \(1, 8, 8\)"),
    ],
)
def test_bad_models_fail_when_built(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(spec, input_shape=(1, 8, 8), num_classes=10)
