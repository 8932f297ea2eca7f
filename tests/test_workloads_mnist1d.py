"""MNIST-1D: the generator, ``load_dataset("mnist1d")``, the sequence models, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests._cli import one_error_line, wattwise

from wattwise._errors import ConfigError
from wattwise.workloads import make_mnist1d

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # see tests/test_workloads_torch.py

from wattwise.workloads import CNN1D, GRU, build_model, find_head, load_dataset  # noqa: E402


def test_the_same_seed_gives_the_same_sets_and_another_seed_others() -> None:
    a = make_mnist1d(300, 100, seed=4)
    b = make_mnist1d(300, 100, seed=4)
    c = make_mnist1d(300, 100, seed=5)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    assert not np.allclose(a[0], c[0])


def test_sequences_have_the_asked_shape_and_balanced_classes() -> None:
    xt, yt, xv, yv = make_mnist1d(1003, 250, seed=0)
    assert xt.shape == (1003, 1, 40) and xv.shape == (250, 1, 40)
    assert xt.dtype == np.float32 and yt.dtype == np.int64
    for y in (yt, yv):
        counts = np.bincount(y, minlength=10)
        assert len(counts) == 10 and counts.max() - counts.min() <= 1
    assert np.isfinite(xt).all() and 0.2 < float(xt.std()) < 2.0


def test_the_validation_set_does_not_depend_on_the_training_size() -> None:
    _, _, xv_small, yv_small = make_mnist1d(100, 200, seed=1)
    _, _, xv_big, yv_big = make_mnist1d(3000, 200, seed=1)
    assert np.array_equal(xv_small, xv_big) and np.array_equal(yv_small, yv_big)


def test_classes_differ_more_than_samples_of_one_class() -> None:
    """The class templates are what the data carries: class means are far apart
    compared with the noise a single class shows at any one sample."""
    x, y, _, _ = make_mnist1d(4000, 10, seed=0)
    means = np.stack([x[y == c, 0].mean(axis=0) for c in range(10)])
    between = np.mean([np.abs(means[i] - means[j]).max() for i in range(10) for j in range(i)])
    assert between > 0.3


def test_load_dataset_takes_sizes_and_a_seed_as_options() -> None:
    data = load_dataset("mnist1d:train=200,val=100,seed=3")
    assert data.name == "mnist1d:train=200,val=100,seed=3"
    assert data.input_shape == (1, 40) and data.num_classes == 10
    assert len(data.train) == 200 and len(data.val) == 100
    x, y = data.train[0]
    assert tuple(x.shape) == (1, 40) and 0 <= int(y) < 10
    default = load_dataset("mnist1d")
    assert len(default.train) == 4000 and len(default.val) == 1000


def test_a_class_subset_keeps_labels_and_validation_sequences() -> None:
    full = load_dataset("mnist1d:train=300,val=200")
    sub = load_dataset("mnist1d:train=300,val=200", classes=tuple(range(8)))
    assert sub.class_names == tuple(str(i) for i in range(8))
    assert set(sub.train.tensors[1].tolist()) == set(range(8))
    x_full = full.val.tensors[0][full.val.tensors[1] == 3]
    x_sub = sub.val.tensors[0][sub.val.tensors[1] == 3]
    assert len(x_full) == 20 and torch.equal(x_full, x_sub)


@pytest.mark.parametrize(
    ("spec", "classes", "message"),
    [
        ("mnist1d:train=5", None, "train=5: give between 10"),
        ("mnist1d:val=2000000", None, "val=2000000: give between 10"),
        ("mnist1d:seed=-1", None, "seed >= 0"),
        ("mnist1d:colour=1", None, "bad option 'colour=1' for mnist1d"),
        ("mnist1d:train=many", None, "bad value 'many' for train"),
        ("mnist1d", (0, 10), "class 10 is not in mnist1d"),
    ],
)
def test_bad_mnist1d_specs_are_config_errors(
    spec: str, classes: tuple[int, ...] | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_dataset(spec, classes=classes)


def test_sequence_models_take_mnist1d_and_have_their_knobs() -> None:
    shape = (1, 40)
    cnn = build_model("cnn1d", input_shape=shape, num_classes=10)
    gru = build_model("gru", input_shape=shape, num_classes=10)
    mlp = build_model("mlp", input_shape=shape, num_classes=10)
    logistic = build_model("mlp:depth=0", input_shape=shape, num_classes=10)
    assert isinstance(cnn, CNN1D) and isinstance(gru, GRU)
    for m in (cnn, gru, mlp, logistic):
        assert m.eval()(torch.zeros(3, *shape)).shape == (3, 10)
        assert find_head(m)[0] == "head"

    def params(spec: str) -> int:
        model = build_model(spec, input_shape=shape, num_classes=10)
        return sum(p.numel() for p in model.parameters())

    assert params("cnn1d:width=64") > 2 * params("cnn1d")
    assert params("cnn1d:kernel=9") > params("cnn1d")
    assert params("cnn1d:depth=1") != params("cnn1d")
    assert params("gru:hidden=128") > 3 * params("gru")
    assert params("gru:layers=2") > 2 * params("gru")
    assert params("mlp:depth=0") == 40 * 10 + 10


@pytest.mark.parametrize(
    ("spec", "shape", "message"),
    [
        ("cnn1d:kernel=4", (1, 40), "odd kernel"),
        ("cnn1d:depth=0", (1, 40), r"bad depth/width/kernel for cnn1d.*depth >= 1"),
        ("gru:hidden=0", (1, 40), "hidden >= 1"),
        ("gru:depth=2", (1, 40), "bad option 'depth=2' for model gru"),
        ("cnn", (1, 40), r"cnn takes images \(C, H, W\).*use cnn1d or gru"),
        ("cnn1d", (1, 8, 8), r"cnn1d takes sequences \(C, L\)"),
        ("gru", (1, 8, 8), r"gru takes sequences \(C, L\)"),
    ],
)
def test_a_model_that_does_not_suit_the_input_is_a_config_error(
    spec: str, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(spec, input_shape=shape, num_classes=10)


def test_train_on_mnist1d_through_the_command(tmp_path: Path, child_env: dict[str, str]) -> None:
    env = dict(child_env, WATTWISE_STORE=str(tmp_path / "s.sqlite"))
    ok = wattwise(
        env, "train", "--dataset", "mnist1d:train=200,val=100", "--model", "cnn1d",
        "--epochs", "1", "--json",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    d = json.loads(ok.stdout)
    assert d["dataset"] == "mnist1d:train=200,val=100" and d["model"] == "cnn1d"
    assert len(d["epochs"]) == 1 and 0.0 <= d["final_val_accuracy"] <= 1.0
    bad = wattwise(env, "train", "--dataset", "mnist1d:train=3", "--model", "cnn1d")
    assert bad.returncode == 2
    assert "train=3" in one_error_line(bad)
    wrong = wattwise(env, "train", "--dataset", "mnist1d", "--model", "cnn")
    assert wrong.returncode == 2
    assert "use cnn1d or gru" in one_error_line(wrong)


def test_help_lists_mnist1d(child_env: dict[str, str]) -> None:
    out = wattwise(dict(child_env, COLUMNS="200"), "train", "--help")
    assert out.returncode == 0 and "mnist1d" in out.stdout


@pytest.mark.slow
def test_a_cnn_beats_an_mlp_on_mnist1d() -> None:
    """Architecture matters here: with the same short training, weights shared along the
    sequence (cnn1d) generalise over the random shifts far better than an MLP does."""
    from wattwise.train import fit

    data = load_dataset("mnist1d:train=2000,val=500")
    accuracy = {}
    for spec in ("mlp", "cnn1d"):
        torch.manual_seed(0)
        model = build_model(spec, input_shape=data.input_shape, num_classes=10)
        result = fit(model, data, epochs=8, lr=3e-3, device="cpu", seed=0, name=spec)
        accuracy[spec] = result.final_val_accuracy or 0.0
    assert accuracy["cnn1d"] > accuracy["mlp"] + 0.05, accuracy
