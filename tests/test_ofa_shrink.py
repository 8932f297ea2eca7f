"""Progressive shrinking (issue 15): the schedule, its phases as stored tracker windows, the
distillation term, and bad plans.

Real training of a tiny elastic network on a small MNIST-1D, on the meters this machine has
(a measurement or an estimate: either way each figure says which), into a real store.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

torch = pytest.importorskip("torch")

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
# spinning threads make an epoch far slower: one thread keeps the suite fast everywhere.
torch.set_num_threads(1)

from torch import nn  # noqa: E402

from wattwise._errors import ConfigError  # noqa: E402
from wattwise._records import Provenance  # noqa: E402
from wattwise._records.base import load_record  # noqa: E402
from wattwise.ofa import (  # noqa: E402
    ElasticCNN,
    ElasticSpace,
    ShrinkPlan,
    ShrinkResult,
    elastic_network,
    progressive_shrink,
    step_subnets,
)
from wattwise.protocol import LeverContext  # noqa: E402
from wattwise.store import RunStore  # noqa: E402
from wattwise.tracking._tracker import Tracker  # noqa: E402
from wattwise.workloads import DataSplit, load_dataset  # noqa: E402

#: Every phase, one epoch or stage each (the plan's shape, not its length, is under test).
SHORT = ShrinkPlan(
    largest_epochs=1, kernel_epochs=1, depth_epochs=(1, 1), width_epochs=(1, 1), kd_alpha=1.0
)
NAMES = ("largest", "kernel", "depth-1", "depth-2", "width-1", "width-2")


@pytest.fixture(scope="module")
def small() -> DataSplit:
    return load_dataset("mnist1d:train=200,val=100")


def tiny(data: DataSplit) -> ElasticCNN:
    """An elastic network of 2 stages of up to 3 narrow blocks: 3 choices in every
    dimension, so each staged phase has its two stages."""
    torch.manual_seed(0)
    return elastic_network(
        data.input_shape, data.num_classes, stages=2, widths=(8, 12), expand_choices=(1, 2, 3)
    )


def space() -> ElasticSpace:
    return elastic_network((1, 40), 10).space


def test_the_phases_restrict_the_space_as_planned() -> None:
    s = space()  # depths 1-3, kernels 3,5,7, expand 2,4,6
    phases = SHORT.phases(s, 1e-2)
    assert tuple(p.name for p in phases) == NAMES
    by = {p.name: p.space for p in phases}
    choices = {n: (sp.depth_choices, sp.kernel_choices, sp.expand_choices) for n, sp in by.items()}
    assert choices == {
        "largest": ((3,), (7,), (6.0,)),
        "kernel": ((3,), (3, 5, 7), (6.0,)),
        "depth-1": ((2, 3), (3, 5, 7), (6.0,)),
        "depth-2": ((1, 2, 3), (3, 5, 7), (6.0,)),
        "width-1": ((1, 2, 3), (3, 5, 7), (4.0, 6.0)),
        "width-2": ((1, 2, 3), (3, 5, 7), (2.0, 4.0, 6.0)),
    }
    assert all(sp.stages == s.stages and sp.max_depth == s.max_depth for sp in by.values())
    assert [p.lr for p in phases] == pytest.approx([1e-2] + [5e-3] * 5)
    assert [p.distill for p in phases] == [False] + [True] * 5
    assert not any(p.distill for p in ShrinkPlan(kd_alpha=0.0).phases(s, 1e-2))


def test_one_stage_opens_every_choice_and_a_skipped_dimension_stays_largest() -> None:
    plan = ShrinkPlan(largest_epochs=2, kernel_epochs=0, depth_epochs=(3,), width_epochs=())
    phases = plan.phases(space(), 1e-3)
    assert [(p.name, p.epochs) for p in phases] == [("largest", 2), ("depth-1", 3)]
    depth = phases[1].space
    assert depth.depth_choices == (1, 2, 3)
    assert depth.kernel_choices == (7,) and depth.expand_choices == (6.0,)
    assert plan.total_epochs == 5


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"largest_epochs": 0}, "largest_epochs must be >= 1"),
        ({"kernel_epochs": -1}, "kernel_epochs must be >= 0"),
        ({"depth_epochs": (2, 0)}, "each depth stage needs >= 1 epoch"),
        ({"width_lr_factor": 0.0}, "width_lr_factor must be > 0"),
        ({"subnets_per_step": 0}, "subnets_per_step must be >= 1"),
        ({"subnets_per_step": 1}, "sandwich rule"),
        ({"kd_alpha": -0.5}, "kd_alpha must be >= 0"),
        ({"kd_temperature": 0.0}, "kd_temperature must be > 0"),
    ],
)
def test_a_bad_plan_is_one_clear_line(changes: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        ShrinkPlan(**changes)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_a_plan_that_does_not_fit_the_network_is_refused_before_any_run(
    small: DataSplit, store_url: str
) -> None:
    too_many = ShrinkPlan(largest_epochs=1, depth_epochs=(1, 1, 1))  # 3 depths: 2 stages at most
    with pytest.raises(ConfigError, match=r"3 depth stage\(s\).*at most 2") as info:
        progressive_shrink(tiny(small), small, plan=too_many, context=LeverContext(store=store_url))
    assert "\n" not in str(info.value)
    fixed = elastic_network(small.input_shape, small.num_classes, kernel_choices=(5,))
    with pytest.raises(ConfigError, match=r"1 kernel choice.*kernel_epochs=0"):
        progressive_shrink(fixed, small, plan=SHORT, context=LeverContext(store=store_url))
    with pytest.raises(ConfigError, match="learning rate"):
        progressive_shrink(tiny(small), small, lr=0.0, context=LeverContext(store=store_url))
    with pytest.raises(ConfigError, match="needs an elastic network"):
        progressive_shrink(nn.Linear(40, 10), small, context=LeverContext(store=store_url))
    with RunStore.open(store_url) as store:
        assert store.list_runs() == []


def test_each_step_trains_the_ends_of_the_space_and_random_ones() -> None:
    s = space().restrict(depth_choices=(2, 3))
    rng = random.Random(0)
    for _ in range(20):
        chosen = step_subnets(s, 4, rng, sandwich=True)
        assert chosen[:2] == [s.largest(), s.smallest()]
        assert len(chosen) == 4 and len(set(chosen)) == 4
        for c in chosen:
            s.check(c)
            assert s.canonical(c) == c
    drawn = {step_subnets(s, 1, rng, sandwich=False)[0] for _ in range(30)}
    assert len(drawn) > 1  # random, not always the same sub-network
    one = space().restrict(depth_choices=(3,), kernel_choices=(7,), expand_choices=(6.0,))
    assert step_subnets(one, 3, rng, sandwich=True) == [one.largest()]


@pytest.mark.slow
def test_the_schedule_on_a_tiny_run(small: DataSplit, store_url: str) -> None:
    """All phases run in order, each a stored window with its energy and provenance, and
    shrinking trains the smallest sub-network."""
    net = tiny(small)
    told: list[tuple[int, int, str]] = []
    plan = ShrinkPlan(largest_epochs=8, kernel_epochs=2, depth_epochs=(2, 2), width_epochs=(2, 3))
    ctx = LeverContext(store=store_url, progress=lambda d, n, what: told.append((d, n, what)))
    r = progressive_shrink(net, small, plan=plan, context=ctx, batch_size=16, lr=1e-2)

    assert tuple(p.name for p in r.phases) == NAMES
    assert [p.epochs for p in r.phases] == [8, 2, 2, 2, 2, 3]
    assert [p.space for p in r.phases] == [p.space for p in plan.phases(net.space, 1e-2)]
    assert told[-1][:2] == (19, 19) and [d for d, _, _ in told] == list(range(1, 20))
    assert told[0][2] == "largest epoch 1/8"
    with RunStore.open(store_url) as store:
        stored = store.get_run(r.run_id)
    windows = {w.path: w for w in stored.windows}
    for p in r.phases:
        w = windows[p.name]
        assert w.energy_j > 0 and w.energy_j == pytest.approx(p.energy_j)
        assert p.energy_j > 0 and p.duration_s > 0 and p.uncertainty_j >= 0
        source = Provenance.from_components(w.components)
        assert source.measured or source.estimated
        assert p.energy_source == str(source)
        assert f"{p.name}/epoch-{p.epochs}" in windows and f"{p.name}/eval" in windows
    assert r.total_energy_j >= r.phase_energy_j > 0
    assert stored.energy_j == pytest.approx(r.total_energy_j)
    # Phase 1 trains only the largest: the smallest is near chance until the elastic phases.
    before = r.phases[0].smallest_val_accuracy
    assert r.smallest_val_accuracy > 0.1 + 0.05  # chance is 0.1 (10 balanced classes)
    assert r.smallest_val_accuracy > before + 0.05
    assert r.largest_val_accuracy > 0.1 + 0.05
    assert net.active == net.space.largest()
    again = load_record(r.to_dict())
    assert isinstance(again, ShrinkResult) and again.phases == r.phases and again.plan == plan


@pytest.mark.slow
def test_the_distillation_term_is_used(small: DataSplit) -> None:
    """Same seed and plan: alpha = 0 trains the same weights twice, alpha > 0 others."""
    ctx = LeverContext(store=False)
    plan = ShrinkPlan(largest_epochs=1, kernel_epochs=1, depth_epochs=(), width_epochs=())

    def weights(alpha: float) -> list[torch.Tensor]:
        net = tiny(small)
        shrink = dataclasses.replace(plan, kd_alpha=alpha)
        progressive_shrink(net, small, plan=shrink, context=ctx, batch_size=32)
        return [v.detach().clone() for v in net.state_dict().values()]

    plain, plain_again, distilled = weights(0.0), weights(0.0), weights(1.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, plain_again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(plain, distilled, strict=True))


@pytest.mark.slow
def test_inside_a_running_tracker_the_shrink_is_one_window(small: DataSplit) -> None:
    plan = ShrinkPlan(largest_epochs=1, kernel_epochs=1, depth_epochs=(), width_epochs=())
    with Tracker("outer", store=False) as tracker:
        r = progressive_shrink(tiny(small), small, plan=plan, tracker=tracker, name="shrink")
        assert tracker.running  # the caller's tracker is not stopped
    assert tracker.result is not None and r.run is None and r.run_id == tracker.run_id
    windows = {w.path: w for w in tracker.result.windows}
    assert {"shrink", "shrink/largest", "shrink/kernel", "shrink/kernel/eval"} <= set(windows)
    assert r.total_energy_j == pytest.approx(windows["shrink"].energy_j)
    assert r.total_energy_j >= r.phase_energy_j > 0
