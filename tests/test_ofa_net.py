"""The elastic CNN: exports equal the elastic forward, weights are shared, save/load."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from wattwise._errors import ConfigError, DataFileError
from wattwise.ofa import (
    ElasticCNN,
    ElasticNetwork,
    SubnetCNN,
    SubnetConfig,
    elastic_network,
    load_elastic,
    save_elastic,
)
from wattwise.ofa._io import ELASTIC_FORMAT, ELASTIC_FORMAT_VERSION

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
# spinning threads make a forward 100x slower (see tests/test_train.py).
torch.set_num_threads(1)

SHAPES = [(1, 40), (1, 8, 8), (3, 32, 32)]


def _perturbed(net: ElasticCNN, seed: int = 0) -> ElasticCNN:
    """``net`` with every weight moved off its initial value (transforms off the identity,
    norms off 1/0), so that tests cannot pass by an identity or a symmetry."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return net.eval()


def _configs(net: ElasticCNN, n: int, seed: int = 0) -> list[SubnetConfig]:
    rng = random.Random(seed)
    space = net.space
    return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(n))]


def _out(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = net(x)
    return out


@pytest.fixture(scope="module")
def net1d() -> ElasticCNN:
    torch.manual_seed(0)
    return _perturbed(elastic_network((1, 40), 10))


def test_it_keeps_the_elastic_network_contract(net1d: ElasticCNN) -> None:
    assert isinstance(net1d, ElasticNetwork)
    assert net1d.active == net1d.space.largest()
    assert net1d.space.size() == 819**3


@pytest.mark.parametrize("shape", SHAPES)
def test_every_export_computes_what_the_elastic_network_computes(
    shape: tuple[int, ...],
) -> None:
    torch.manual_seed(1)
    net = _perturbed(elastic_network(shape, 10), seed=1)
    x = torch.randn(4, *shape)
    outputs = set()
    for config in _configs(net, 5, seed=1):
        net.set_active(config)
        plain = net.export(config)
        expected = _out(net, x)
        assert expected.shape == (4, 10)
        torch.testing.assert_close(_out(plain, x), expected, atol=1e-5, rtol=1e-5)
        assert not plain.training
        outputs.add(expected.sum().item())
    assert len(outputs) == 7  # the sub-networks differ


def test_an_export_is_plain_and_the_size_of_a_fresh_one(net1d: ElasticCNN) -> None:
    containers = {"SubnetCNN", "SubnetBlock"}  # the only modules of ours in an export
    for config in _configs(net1d, 4, seed=2):
        plain, fresh = net1d.export(config), net1d.fresh(config)
        assert isinstance(plain, SubnetCNN)
        for m in plain.modules():
            assert type(m).__module__.startswith("torch.nn.") or type(m).__name__ in containers
        assert not any("transforms" in name for name in plain.state_dict())
        shapes = {k: v.shape for k, v in plain.state_dict().items()}
        assert shapes == {k: v.shape for k, v in fresh.state_dict().items()}
        count = sum(p.numel() for p in plain.parameters())
        assert count == sum(p.numel() for p in fresh.parameters()) == net1d.param_count(config)
        assert len(plain.blocks) == sum(config.depths)
    largest, smallest = net1d.space.largest(), net1d.space.smallest()
    assert net1d.param_count(smallest) < net1d.param_count(largest)


def _counted_macs(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates per item of ``net``'s convolutions and linear layers, counted
    from the shapes they see (forward hooks)."""
    total = [0]

    def hook(layer: nn.Module, _: object, out: torch.Tensor) -> None:
        if isinstance(layer, nn.Conv1d | nn.Conv2d):
            per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
            total[0] += out[0].numel() * per_output
        elif isinstance(layer, nn.Linear):
            total[0] += out[0].numel() * layer.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    _out(net, x)
    for h in handles:
        h.remove()
    return total[0]


@pytest.mark.parametrize("shape", SHAPES)
def test_macs_are_those_of_the_export(shape: tuple[int, ...]) -> None:
    net = elastic_network(shape, 10)
    x = torch.randn(1, *shape)
    counts = []
    for config in _configs(net, 3, seed=7):
        counts.append(net.macs(config))
        assert counts[-1] == _counted_macs(net.export(config), x)
    assert counts[1] < counts[0]  # the smallest costs less than the largest


def test_a_fresh_network_is_newly_initialised_and_trains(net1d: ElasticCNN) -> None:
    config = net1d.space.smallest()
    fresh = net1d.fresh(config)
    x = torch.randn(4, 1, 40)
    assert not torch.allclose(_out(fresh, x), _out(net1d.export(config), x))
    loss = fresh(x).sum()
    loss.backward()
    assert all(p.grad is not None for p in fresh.parameters())


def test_an_export_keeps_the_networks_dtype_and_device() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = _perturbed(elastic_network((1, 8, 8), 10), seed=8).to(device, torch.float64)
    config = net.space.sample(random.Random(8))
    net.set_active(config)
    plain = net.export(config)
    assert {(p.dtype, p.device.type) for p in plain.parameters()} == {(torch.float64, device)}
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64, device=device)
    torch.testing.assert_close(_out(plain, x), _out(net, x), atol=1e-10, rtol=1e-10)


def test_an_export_owns_its_weights() -> None:
    net = _perturbed(elastic_network((1, 40), 10), seed=3)
    plain = net.export(net.space.largest())
    x = torch.randn(2, 1, 40)
    before = _out(plain, x)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    assert torch.equal(_out(plain, x), before)


def test_sub_networks_share_the_largest_networks_weights() -> None:
    torch.manual_seed(4)
    net = elastic_network((1, 40), 10).eval()  # transforms at the identity
    space = net.space
    big = space.largest()
    small_kernel = SubnetConfig(big.depths, (3, *big.kernel_sizes[1:]), big.expand_ratios)
    narrow = SubnetConfig(big.depths, big.kernel_sizes, (2.0, *big.expand_ratios[1:]))
    x = torch.randn(2, 1, 40)

    def outputs() -> list[torch.Tensor]:
        result = []
        for config in (big, small_kernel, narrow):
            net.set_active(config)
            result.append(_out(net, x))
        return result

    before = outputs()
    depthwise = net.block(0).depthwise.weight
    with torch.no_grad():
        depthwise[0, 0, 3] += 1.0  # the centre tap of channel 0: in every kernel size and width
    centre = outputs()
    assert all(not torch.equal(a, b) for a, b in zip(before, centre, strict=True))
    with torch.no_grad():
        depthwise[0, 0, 0] += 1.0  # a corner of the 7-tap kernel, outside the 3-tap crop
    corner = outputs()
    assert not torch.equal(corner[0], centre[0])
    assert torch.equal(corner[1], centre[1])


@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8)])
def test_a_smaller_kernel_is_the_centre_crop_at_first_then_transformed(
    shape: tuple[int, ...],
) -> None:
    net = elastic_network(shape, 10)
    conv = net.block(1).depthwise
    w = conv.weight[:5]
    centre = (slice(None), slice(None)) + (slice(2, 5),) * (len(shape) - 1)
    torch.testing.assert_close(conv.kernel(3, 5), w[centre], atol=0, rtol=0)
    with torch.no_grad():
        conv.transforms["5"].mul_(2.0)
    # 7 -> 5 through the (now doubled) transform, then 5 -> 3 through the identity
    torch.testing.assert_close(conv.kernel(3, 5), 2.0 * w[centre])
    torch.testing.assert_close(conv.kernel(7, 5), w)


def test_a_small_kernel_trains_its_transform_and_the_shared_weight() -> None:
    net = elastic_network((1, 40), 10)
    big = net.space.largest()
    net.set_active(SubnetConfig(big.depths, (3,) * 9, big.expand_ratios))
    net(torch.randn(4, 1, 40)).sum().backward()
    conv = net.block(0).depthwise
    assert conv.transforms["3"].grad.abs().sum() > 0
    assert conv.transforms["5"].grad.abs().sum() > 0
    grad = conv.weight.grad
    assert grad is not None
    assert grad[:, :, 2:5].abs().sum() > 0
    assert grad[:, :, [0, 1, 5, 6]].abs().sum() == 0


@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8)])
def test_sorting_channels_keeps_the_largest_network_and_orders_them(
    shape: tuple[int, ...],
) -> None:
    torch.manual_seed(5)
    net = _perturbed(elastic_network(shape, 10), seed=5)
    x = torch.randn(4, *shape)
    smallest = net.space.smallest()
    before = _out(net, x)
    net.set_active(smallest)
    small_before = _out(net, x)
    net.sort_channels()
    net.set_active(net.space.largest())
    torch.testing.assert_close(_out(net, x), before, atol=1e-5, rtol=1e-5)
    net.set_active(smallest)
    assert not torch.allclose(_out(net, x), small_before)
    for i in range(len(net.blocks)):
        w = net.block(i).project.weight
        importance = w.abs().sum(dim=[0, *range(2, w.dim())])
        assert torch.all(importance[:-1] >= importance[1:])


def test_set_active_refuses_a_config_outside_the_space(net1d: ElasticCNN) -> None:
    big = net1d.space.largest()
    with pytest.raises(ConfigError, match="kernel size 9 is not one"):
        net1d.set_active(SubnetConfig(big.depths, (9,) * 9, big.expand_ratios))
    assert net1d.active == big
    skipped = SubnetConfig((1, 1, 1), (3,) * 9, big.expand_ratios)
    net1d.set_active(skipped)
    assert net1d.active == net1d.space.canonical(skipped)
    net1d.set_active(big)


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((40,), {}, "sequences \\(C, L\\) or images"),
        ((1, 2, 3, 4), {}, "sequences \\(C, L\\) or images"),
        ((1, 40), {"widths": (8, 8)}, "one width >= 1 per stage"),
        ((1, 40), {"kernel_choices": (2, 4)}, "odd"),
    ],
)
def test_a_bad_network_is_a_config_error(
    shape: tuple[int, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        elastic_network(shape, 10, **kwargs)  # type: ignore[arg-type]


def test_save_and_load_reproduce_the_network_exactly(net1d: ElasticCNN, tmp_path: Path) -> None:
    path = save_elastic(net1d, tmp_path / "ofa.pt")
    loaded = load_elastic(path)
    assert loaded.arch == net1d.arch
    x = torch.randn(4, 1, 40)
    for config in _configs(net1d, 3, seed=6):
        net1d.set_active(config)
        loaded.set_active(config)
        assert torch.equal(_out(loaded.eval(), x), _out(net1d, x))
    net1d.set_active(net1d.space.largest())


def test_save_and_load_a_2d_network_with_its_own_space(tmp_path: Path) -> None:
    net = elastic_network(
        (3, 32, 32),
        4,
        stages=2,
        max_depth=2,
        widths=(8, 12),
        kernel_choices=(3, 5),
        expand_choices=(1.5, 3.0),
    )
    loaded = load_elastic(save_elastic(net, tmp_path / "ofa2d.pt"))
    assert loaded.space == net.space and loaded.arch.dims == 2
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), net.state_dict().values(), strict=True)
    )


def test_saving_where_no_folder_is_one_line(net1d: ElasticCNN, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "ofa.pt"
    with pytest.raises(ConfigError, match="cannot write the elastic network to") as info:
        save_elastic(net1d, target)
    assert "\n" not in str(info.value)
    assert not target.parent.exists()


def _document(net: ElasticCNN) -> dict[str, object]:
    return {
        "format": ELASTIC_FORMAT,
        "version": ELASTIC_FORMAT_VERSION,
        "arch": net.arch.to_dict(),
        "state": net.state_dict(),
    }


def test_bad_files_give_one_line_errors(net1d: ElasticCNN, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all\n" * 10)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    code = tmp_path / "code.pt"
    torch.save(Path("/etc/passwd"), code)  # an arbitrary object: refused, never unpickled
    future = tmp_path / "future.pt"
    torch.save({**_document(net1d), "version": ELASTIC_FORMAT_VERSION + 1}, future)
    misfit = tmp_path / "misfit.pt"
    arch = {**net1d.arch.to_dict(), "widths": [8, 8, 8]}
    torch.save({**_document(net1d), "arch": arch}, misfit)
    broken_arch = tmp_path / "arch.pt"
    torch.save({**_document(net1d), "arch": {"kind": "ofa-elastic-arch"}}, broken_arch)
    cases: list[tuple[Path, type[Exception], str]] = [
        (tmp_path / "missing.pt", ConfigError, "no elastic network file at"),
        (tmp_path, ConfigError, "no elastic network file at"),
        (garbage, DataFileError, "is not a saved elastic network"),
        (other, DataFileError, "no wattwise-ofa-elastic header"),
        (code, DataFileError, "is not a saved elastic network"),
        (future, DataFileError, "format version 2; this wattwise reads version 1"),
        (misfit, DataFileError, "weights do not fit the saved architecture"),
        (broken_arch, DataFileError, "its architecture cannot be read"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message) as info:
            load_elastic(path)
        assert "\n" not in str(info.value), path
        assert str(path) in str(info.value)
