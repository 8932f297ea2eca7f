"""Progressive shrinking: train one elastic network so that its sub-networks work.

Cai, Gan, Wang, Zhang, Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020, section 3.3. The largest network is trained first; then
kernel size, depth and width are made elastic one after the other, each phase sampling
sub-networks from a space that grows from the largest choices down, so the small
sub-networks are fine-tuned from the large ones and do not interfere with them. Every
elastic phase distils from the largest network of phase 1 (a frozen copy): the loss of a
sub-network is ``CE(y) + kd_alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``
(the ``T^2`` keeps the term's gradient the same size whatever the temperature; Hinton et
al. 2015).

Each training step trains ``subnets_per_step`` sub-networks on the same batch, their
gradients added before one optimizer step. By default (``sandwich``) they are the phase's
largest and smallest sub-networks and the rest drawn at random from the phase's space (the
"sandwich rule" of Yu et al., BigNAS, 2020): the two ends of the space get a gradient every
step, which the small sub-networks need on data this size. ``sandwich=False`` draws them
all at random (the paper's rule). Each phase has its own Adam optimizer, its learning rate
cosine-decayed to 0 over the phase.

Energy: the whole shrink is one tracked run, and every phase one tracker window (named
after it, with ``epoch-N`` windows inside and one ``eval`` window where the largest and
the smallest sub-network of the whole space are validated), so each phase's energy is
stored with its provenance.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias

from wattwise._errors import ConfigError
from wattwise._records import Provenance, WindowResult
from wattwise.ofa._shrink_records import PhasePlan, PhaseResult, ShrinkPlan, ShrinkResult
from wattwise.ofa._space import ElasticNetwork, ElasticSpace, SubnetConfig
from wattwise.protocol import LeverContext, tracking
from wattwise.tracking._tracker import Tracker, Window
from wattwise.train import Batches, evaluate, resolve_device, seed_everything
from wattwise.workloads._datasets import DataSplit

__all__ = ["progressive_shrink", "step_subnets"]


def step_subnets(
    space: ElasticSpace, count: int, rng: random.Random, *, sandwich: bool
) -> list[SubnetConfig]:
    """The sub-networks one training step trains: with ``sandwich``, the space's largest
    and smallest first, then random ones to make ``count`` (distinct where the space has
    that many); else ``count`` drawn at random. A space of one sub-network gives it once."""
    if space.size() == 1:
        return [space.largest()]
    chosen = [space.largest(), space.smallest()] if sandwich else []
    while len(chosen) < count:
        config = space.sample(rng)
        if config in chosen and len(chosen) < space.size():
            continue
        chosen.append(config)
    return chosen[:count]


def _distill_loss(
    logits: torch.Tensor, soft_log: torch.Tensor | None, alpha: float, temperature: float
) -> torch.Tensor:
    """``alpha * T^2 * KL(teacher || student)`` at temperature ``T`` (0 without a teacher)."""
    if soft_log is None:
        return logits.new_zeros(())
    student = F.log_softmax(logits / temperature, dim=1)
    kl = F.kl_div(student, soft_log, reduction="batchmean", log_target=True)
    return alpha * temperature**2 * kl


@dataclass
class _Trainer:
    """What every phase shares: the network, its teacher, the batches, the sampler."""

    net: nn.Module
    elastic: ElasticNetwork
    plan: ShrinkPlan
    train: Batches
    val: Batches
    rng: random.Random
    epochs_planned: int
    epochs_done: int = 0
    teacher: nn.Module | None = None

    def epoch(
        self,
        phase: PhasePlan,
        optimizer: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
    ) -> float:
        """One epoch of ``phase``; the mean loss per sub-network trained."""
        self.net.train()
        teacher = self.teacher if phase.distill else None
        loss_sum = torch.zeros((), device=self.train.device)
        count = 0
        for x, y in self.train:
            optimizer.zero_grad(set_to_none=True)
            soft_log = None
            if teacher is not None:
                with torch.no_grad():
                    soft_log = F.log_softmax(teacher(x) / self.plan.kd_temperature, dim=1)
            configs = step_subnets(
                phase.space, self.plan.subnets_per_step, self.rng, sandwich=self.plan.sandwich
            )
            for config in configs:
                self.elastic.set_active(config)
                logits = self.net(x)
                loss = F.cross_entropy(logits, y) + _distill_loss(
                    logits, soft_log, self.plan.kd_alpha, self.plan.kd_temperature
                )
                loss.backward()  # type: ignore[no-untyped-call]
                loss_sum += loss.detach() * len(y)
                count += len(y)
            optimizer.step()
            sched.step()
        return float(loss_sum.item()) / max(count, 1)

    def accuracy(self, config: SubnetConfig) -> float:
        """Validation accuracy of one sub-network."""
        self.elastic.set_active(config)
        return evaluate(self.net, self.val)[1]

    def run_phase(self, tracker: Tracker, phase: PhasePlan, context: LeverContext) -> PhaseResult:
        """Train one phase inside its window; validate the ends of the whole space."""
        steps = phase.epochs * len(self.train)
        optimizer = torch.optim.Adam(self.net.parameters(), lr=phase.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
        loss = float("nan")
        with tracker.window(phase.name) as w:
            for n in range(1, phase.epochs + 1):
                with tracker.window(f"epoch-{n}"):
                    loss = self.epoch(phase, optimizer, sched)
                self.epochs_done += 1
                if context.progress is not None:
                    label = f"{phase.name} epoch {n}/{phase.epochs}"
                    context.progress(self.epochs_done, self.epochs_planned, label)
            with tracker.window("eval"):
                space = self.elastic.space
                largest = self.accuracy(space.largest())
                smallest = self.accuracy(space.smallest())
        res = w.result
        assert res is not None
        return PhaseResult(
            name=phase.name,
            dimension=phase.dimension,
            epochs=phase.epochs,
            lr=phase.lr,
            space=phase.space,
            energy_j=res.energy_j,
            uncertainty_j=res.uncertainty_j,
            energy_source=str(Provenance.from_components(res.components)),
            duration_s=res.duration_s,
            train_loss=loss,
            largest_val_accuracy=largest,
            smallest_val_accuracy=smallest,
        )

    def make_teacher(self) -> None:
        """The largest network as it is now, a frozen copy (phase 1's result)."""
        teacher = self.elastic.export(self.elastic.space.largest())
        teacher.to(self.train.device).eval()
        teacher.requires_grad_(False)
        self.teacher = teacher


def _check_network(net: nn.Module) -> ElasticNetwork:
    if not isinstance(net, nn.Module) or not isinstance(net, ElasticNetwork):
        raise ConfigError(
            f"progressive shrinking needs an elastic network (a torch module with space, "
            f"set_active and export), got {type(net).__name__}"
        )
    return net


def _check_width(net: nn.Module, phases: Sequence[PhasePlan]) -> None:
    if any(p.dimension == "width" for p in phases) and not callable(
        getattr(net, "sort_channels", None)
    ):
        raise ConfigError(
            f"{type(net).__name__} has no sort_channels(): elastic width needs the channels "
            "sorted by importance (or width_epochs=())"
        )


def progressive_shrink(
    net: nn.Module,
    data: DataSplit,
    *,
    plan: ShrinkPlan | None = None,
    context: LeverContext | None = None,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 3e-3,
    device: str | torch.device = "cpu",
    tracker: Tracker | None = None,
    name: str = "ofa-shrink",
) -> ShrinkResult:
    """Train an elastic network by progressive shrinking (see the module's docstring),
    in place: afterwards every sub-network of its space is trained, the largest active.

    Args:
        net: the elastic network (a :class:`torch.nn.Module` keeping the
            :class:`~wattwise.ofa.ElasticNetwork` contract, with ``sort_channels()`` when
            width is elastic); built by the caller (its initial weights are the caller's).
        data: training and validation sets.
        plan: epochs, learning rates, sampling and distillation (default
            :class:`ShrinkPlan`'s defaults).
        context: meters, store, scope and progress (told after every epoch).
        seed: seeds Python, NumPy and PyTorch, the batch order and the sampler.
        batch_size: training and validation batch size.
        lr: phase 1's learning rate; the later phases' are the plan's factors of it.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        tracker: a tracker to measure with; when it runs already, the shrink is its window
            ``name`` (the phases inside), else it is started and stopped here.
        name: the run's (or window's) name.

    Raises:
        ConfigError: a bad plan or argument, a plan that does not fit the network's space,
            or a network that is not elastic.
    """
    plan = plan if plan is not None else ShrinkPlan()
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    elastic = _check_network(net)
    phases = plan.phases(elastic.space, lr)
    _check_width(net, phases)
    dev = resolve_device(device)
    seed_everything(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    net.to(dev)
    kw: dict[str, Any] = {"batch_size": batch_size, "generator": gen, "device": dev, "workers": 0}
    trainer = _Trainer(
        net,
        elastic,
        plan,
        Batches(data.train, shuffle=True, **kw),
        Batches(data.val, shuffle=False, **kw),
        random.Random(seed),
        plan.total_epochs,
    )
    ctx = context or LeverContext()
    tracker = tracker if tracker is not None else ctx.tracker(name)
    own = not tracker.running
    results: list[PhaseResult] = []
    t0 = time.monotonic()
    outer: Window | None = None
    with ExitStack() as stack:
        stack.enter_context(tracking(name, ctx, tracker))
        if not own:
            outer = stack.enter_context(tracker.window(name))
        for phase in phases:
            if phase.name == "width-1":  # importance order first: the first channels stay
                cast(Any, net).sort_channels()
            results.append(trainer.run_phase(tracker, phase, ctx))
            if phase.dimension == "largest":
                trainer.make_teacher()
        duration = time.monotonic() - t0
    elastic.set_active(elastic.space.largest())
    return _result(results, plan, tracker, outer, duration, dev)


def _result(
    phases: list[PhaseResult],
    plan: ShrinkPlan,
    tracker: Tracker,
    outer: Window | None,
    duration: float,
    device: torch.device,
) -> ShrinkResult:
    """The totals of the run (or of its window, inside a caller's run)."""
    if outer is not None:
        res: WindowResult | None = outer.result
        assert res is not None
        total, unc, comps, run = res.energy_j, res.uncertainty_j, res.components, None
    else:
        run = tracker.result
        assert run is not None
        total, unc, comps, duration = (
            run.energy_j,
            run.uncertainty_j,
            run.components,
            run.duration_s,
        )
    return ShrinkResult(
        phases=tuple(phases),
        plan=plan,
        total_energy_j=total,
        total_uncertainty_j=unc,
        energy_source=str(Provenance.from_components(comps)),
        duration_s=duration,
        device=str(device),
        run_id=tracker.run_id,
        run=run,
    )
