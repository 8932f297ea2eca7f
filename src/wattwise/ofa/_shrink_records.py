"""The plan and the result of progressive shrinking (Cai et al., "Once-for-All", ICLR 2020).

A :class:`ShrinkPlan` says how long each phase trains, at what learning rate, how many
sub-networks each step trains and how strongly the largest network teaches; for one
network's space it becomes the concrete schedule, a tuple of :class:`PhasePlan`. A
:class:`ShrinkResult` lists what each phase did and cost (a :class:`PhaseResult` per phase,
each one tracker window of the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from wattwise._errors import ConfigError
from wattwise._records import RunResult
from wattwise._records.base import Record
from wattwise.ofa._space import ElasticSpace

__all__ = ["PhasePlan", "PhaseResult", "ShrinkPlan", "ShrinkResult"]

_T = TypeVar("_T", int, float)

#: The elastic dimensions in the order progressive shrinking opens them.
DIMENSIONS = ("kernel", "depth", "width")


@dataclass(frozen=True)
class PhasePlan(Record):
    """One phase of the schedule: what it trains, how long, at what learning rate.

    Attributes:
        name: the phase's (and its tracker window's) name: ``largest``, ``kernel``,
            ``depth-1``, ``depth-2``, ``width-1``...
        dimension: ``largest`` or the elastic dimension it opens (``kernel``, ``depth``,
            ``width``).
        epochs: epochs it trains.
        lr: its peak learning rate (cosine-decayed to 0 over the phase).
        space: the sub-networks it samples from (the network's space restricted).
        distill: whether the loss has the distillation term (every phase after ``largest``,
            when the plan's ``kd_alpha`` > 0).
    """

    name: str
    dimension: str
    epochs: int
    lr: float
    space: ElasticSpace
    distill: bool


@dataclass(frozen=True)
class ShrinkPlan(Record):
    """How progressive shrinking trains: epochs and learning rate per phase, sampling and
    distillation. Phases (the paper's order): the largest network; elastic kernel; elastic
    depth in stages; elastic width in stages (channels sorted by importance first).

    A staged phase (``depth_epochs``, ``width_epochs``: one entry per stage) opens the
    largest two choices in its first stage, one more in each next, and all of them in its
    last: ``(2, 4)`` on depths ``(1, 2, 3)`` trains 2 epochs on ``{2, 3}`` then 4 on
    ``{1, 2, 3}`` (the paper's ``[4, 3]`` then ``[4, 3, 2]``). An empty tuple (or
    ``kernel_epochs=0``) skips that dimension: it stays at its largest choice.

    Attributes:
        largest_epochs: epochs of phase 1, the largest network alone (>= 1: it becomes
            the teacher).
        kernel_epochs: epochs of the elastic-kernel phase (0: skipped).
        depth_epochs: epochs of each elastic-depth stage.
        width_epochs: epochs of each elastic-width stage.
        kernel_lr_factor: the kernel phase's learning rate, as a multiple of phase 1's
            (the paper lowers it in the later phases).
        depth_lr_factor: the same for the depth stages.
        width_lr_factor: the same for the width stages.
        subnets_per_step: sub-networks each training step of an elastic phase trains (their
            gradients add up before the optimizer steps).
        sandwich: each step's sub-networks are the phase's largest and smallest, the rest
            drawn at random (Yu et al.'s "sandwich rule"); False: all drawn at random (the
            paper's rule).
        kd_alpha: weight of the distillation term (0: cross-entropy only).
        kd_temperature: temperature of the soft targets (> 0).
    """

    largest_epochs: int = 12
    kernel_epochs: int = 3
    depth_epochs: tuple[int, ...] = (2, 3)
    width_epochs: tuple[int, ...] = (2, 3)
    kernel_lr_factor: float = 0.5
    depth_lr_factor: float = 0.5
    width_lr_factor: float = 0.5
    subnets_per_step: int = 2
    sandwich: bool = True
    kd_alpha: float = 1.0
    kd_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.largest_epochs < 1:
            raise ConfigError(
                f"the plan's largest_epochs must be >= 1 (the largest network teaches the "
                f"rest), got {self.largest_epochs}"
            )
        if self.kernel_epochs < 0:
            raise ConfigError(f"the plan's kernel_epochs must be >= 0, got {self.kernel_epochs}")
        for dim, stages in (("depth", self.depth_epochs), ("width", self.width_epochs)):
            if any(e < 1 for e in stages):
                raise ConfigError(
                    f"each {dim} stage needs >= 1 epoch, got {dim}_epochs={stages} "
                    f"(an empty tuple skips the phase)"
                )
        for dim in DIMENSIONS:
            factor = getattr(self, f"{dim}_lr_factor")
            if not factor > 0:
                raise ConfigError(f"the plan's {dim}_lr_factor must be > 0, got {factor}")
        if self.subnets_per_step < 1:
            raise ConfigError(
                f"the plan's subnets_per_step must be >= 1, got {self.subnets_per_step}"
            )
        if self.sandwich and self.subnets_per_step < 2:
            raise ConfigError(
                "the sandwich rule trains the largest and the smallest each step: "
                f"subnets_per_step must be >= 2, got {self.subnets_per_step}"
            )
        if not self.kd_alpha >= 0:
            raise ConfigError(f"the plan's kd_alpha must be >= 0, got {self.kd_alpha}")
        if not self.kd_temperature > 0:
            raise ConfigError(f"the plan's kd_temperature must be > 0, got {self.kd_temperature}")

    @property
    def total_epochs(self) -> int:
        """Epochs of every phase together."""
        return (
            self.largest_epochs
            + self.kernel_epochs
            + sum(self.depth_epochs)
            + sum(self.width_epochs)
        )

    def phases(self, space: ElasticSpace, lr: float) -> tuple[PhasePlan, ...]:
        """The schedule for a network of ``space`` whose phase 1 trains at ``lr``.

        Raises:
            ConfigError: more stages of a dimension than it has choices to open, or ``lr``
                not > 0.
        """
        if not lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        top_d: tuple[int, ...] = (max(space.depth_choices),)
        top_k: tuple[int, ...] = (max(space.kernel_choices),)
        top_e: tuple[float, ...] = (max(space.expand_choices),)
        distill = self.kd_alpha > 0
        out = [
            PhasePlan(
                "largest",
                "largest",
                self.largest_epochs,
                lr,
                space.restrict(depth_choices=top_d, kernel_choices=top_k, expand_choices=top_e),
                False,
            )
        ]
        kernels = top_k
        if self.kernel_epochs:
            _check_stages("kernel", 1, space.kernel_choices, "kernel_epochs=0")
            kernels = space.kernel_choices
            phase_space = space.restrict(
                depth_choices=top_d, kernel_choices=kernels, expand_choices=top_e
            )
            lr_k = lr * self.kernel_lr_factor
            out.append(
                PhasePlan("kernel", "kernel", self.kernel_epochs, lr_k, phase_space, distill)
            )
        depths = top_d
        for j, (choices, epochs) in enumerate(
            _stages("depth", space.depth_choices, self.depth_epochs), start=1
        ):
            depths = choices
            phase_space = space.restrict(
                depth_choices=depths, kernel_choices=kernels, expand_choices=top_e
            )
            lr_d = lr * self.depth_lr_factor
            out.append(PhasePlan(f"depth-{j}", "depth", epochs, lr_d, phase_space, distill))
        for j, (widths, epochs) in enumerate(
            _stages("width", space.expand_choices, self.width_epochs), start=1
        ):
            phase_space = space.restrict(
                depth_choices=depths, kernel_choices=kernels, expand_choices=widths
            )
            lr_w = lr * self.width_lr_factor
            out.append(PhasePlan(f"width-{j}", "width", epochs, lr_w, phase_space, distill))
        return tuple(out)


def _check_stages(dim: str, stages: int, choices: tuple[float, ...], skip: str) -> None:
    if stages > len(choices) - 1:
        raise ConfigError(
            f"the plan has {stages} {dim} stage(s) but the network has {len(choices)} {dim} "
            f"choice(s) {choices}: at most {len(choices) - 1} (or {skip})"
        )


def _stages(
    dim: str, choices: tuple[_T, ...], epochs: tuple[int, ...]
) -> list[tuple[tuple[_T, ...], int]]:
    """Each stage's choices (the largest two first, one more each stage, all in the last)
    and its epochs."""
    if not epochs:
        return []
    _check_stages(dim, len(epochs), choices, f"{dim}_epochs=()")
    n = len(epochs)
    return [(choices[-(j + 2) :] if j < n - 1 else choices, e) for j, e in enumerate(epochs)]


@dataclass(frozen=True)
class PhaseResult(Record):
    """What one phase did and cost (one tracker window of the run).

    Attributes:
        name: the phase, and the path of its window in the run.
        dimension: ``largest``, ``kernel``, ``depth`` or ``width``.
        epochs: epochs it trained.
        lr: its peak learning rate.
        space: the sub-networks it trained.
        energy_j: energy of the phase (training and the closing evaluation), in J.
        uncertainty_j: one-sigma uncertainty of ``energy_j`` from the meters, in J.
        energy_source: where ``energy_j`` comes from (measured by which sensor, estimated
            by which model).
        duration_s: wall-clock length of the phase, in s.
        train_loss: mean training loss over its last epoch (cross-entropy, plus the
            distillation term where it distils), per sub-network trained.
        largest_val_accuracy: validation accuracy (0..1) of the whole space's largest
            sub-network at the end of the phase.
        smallest_val_accuracy: the same for the whole space's smallest sub-network.
    """

    name: str
    dimension: str
    epochs: int
    lr: float
    space: ElasticSpace
    energy_j: float
    uncertainty_j: float
    energy_source: str
    duration_s: float
    train_loss: float
    largest_val_accuracy: float
    smallest_val_accuracy: float


@dataclass(frozen=True)
class ShrinkResult(Record):
    """What :func:`wattwise.ofa.progressive_shrink` did and cost.

    Attributes:
        phases: every phase, in the order they ran.
        plan: the plan it followed.
        total_energy_j: energy of the whole run (phases and the work between them), in J.
        total_uncertainty_j: one-sigma uncertainty of ``total_energy_j``, in J.
        energy_source: provenance of ``total_energy_j`` (measured by which sensor,
            estimated by which model).
        duration_s: wall-clock length of the whole run, in s.
        device: where it trained (``cpu``, ``cuda:0``).
        run_id: the tracker's run id (the phases are its windows).
        run: the tracked run, when the shrink owned its tracker.
    """

    phases: tuple[PhaseResult, ...]
    plan: ShrinkPlan
    total_energy_j: float
    total_uncertainty_j: float
    energy_source: str
    duration_s: float
    device: str
    run_id: str
    run: RunResult | None = field(default=None, metadata={"json": False})

    kind: ClassVar[str] = "ofa-shrink"
    derived: ClassVar[tuple[str, ...]] = (
        "largest_val_accuracy",
        "smallest_val_accuracy",
        "phase_energy_j",
    )

    @property
    def largest_val_accuracy(self) -> float:
        """The largest sub-network's validation accuracy at the end (0..1)."""
        return self.phases[-1].largest_val_accuracy

    @property
    def smallest_val_accuracy(self) -> float:
        """The smallest sub-network's validation accuracy at the end (0..1)."""
        return self.phases[-1].smallest_val_accuracy

    @property
    def phase_energy_j(self) -> float:
        """Energy of the phases' windows together, in J (the total less the set-up)."""
        return sum(p.energy_j for p in self.phases)

    def phase(self, name: str) -> PhaseResult:
        """The phase of that name.

        Raises:
            KeyError: no phase has it.
        """
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)
