"""How studies measure: the measurement protocol applied to training runs, and how their
configurations are compared.

Every study runs its configurations through one :class:`~wattwise.protocol.Protocol`
(see :mod:`wattwise.protocol._spec` for each step):

1. before a configuration's first measured run, a few untracked training steps warm it up
   (first-call allocation, kernel selection, caches), so the first repeat is not penalised;
2. repeats run round-robin (A1 B1 C1 A2 B2 C2 ...), not in blocks, so that drift over the
   study (temperature, other processes' load) spreads over every configuration instead of
   biasing the ones measured last;
3. an optional cool-down sleep separates runs;
4. each run is a tracked run of its own, stored and linked to the study through the study
   session (:func:`wattwise.protocol.study_session`), and the study's results are written
   at the end;
5. configurations are compared by their medians, with a significance test on the repeats.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias
from torch.utils.data import DataLoader

from wattwise._errors import ConfigError
from wattwise._records import Provenance, Scope
from wattwise.meters._base import Method
from wattwise.protocol import Protocol, StudySession, schedule
from wattwise.protocol._stats import TESTS, compare, min_p_value
from wattwise.studies._precision import with_precision
from wattwise.studies._records import RepeatedRuns, Saving, Trial, Versus
from wattwise.train import FitResult, StopRule, fit, resolve_device, seed_everything
from wattwise.workloads._datasets import DataSplit
from wattwise.workloads._models import build_model

__all__ = ["StudyMethod"]

#: The protocol of a study unless told otherwise: 5 repeats, 10 warm-up steps.
DEFAULT_PROTOCOL = Protocol(repeats=5, warmup=10)

_ORDER_TEXT = {
    "round-robin": "round-robin over configurations, per repeat",
    "blocked": "blocked: every repeat of a configuration, then the next",
}


@dataclass(frozen=True)
class StudyMethod:
    """How a study measures and compares: its protocol, and the significance test.

    Args:
        protocol: repeats (>= 1; 4 or more for Mann-Whitney U to be able to reach
            p < 0.05, 5 by default), warm-up training steps before a configuration's
            first run, cool-down between runs, the order, and the seed of repeat 1
            (repeat ``r`` uses ``seed + r - 1`` for every configuration).
        test: ``mannwhitney`` or ``welch``.
        alpha: significance level of the tests.

    Raises:
        ConfigError: a setting out of range.
    """

    protocol: Protocol = field(default_factory=lambda: DEFAULT_PROTOCOL)
    test: str = "mannwhitney"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise ConfigError(f"unknown test {self.test!r} (use {' or '.join(TESTS)})")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")

    @classmethod
    def of(
        cls,
        *,
        repeats: int = DEFAULT_PROTOCOL.repeats,
        warmup_batches: int = DEFAULT_PROTOCOL.warmup,
        cooldown_s: float = 0.0,
        test: str = "mannwhitney",
        alpha: float = 0.05,
        seed: int = 0,
    ) -> StudyMethod:
        """A method from the settings of ``wattwise study`` (round-robin order).

        Raises:
            ConfigError: a setting out of range.
        """
        protocol = Protocol(
            repeats=repeats, warmup=warmup_batches, cooldown_s=cooldown_s, seed=seed
        )
        return cls(protocol=protocol, test=test, alpha=alpha)

    @property
    def repeats(self) -> int:
        """Measured runs per configuration."""
        return self.protocol.repeats

    @property
    def warmup_batches(self) -> int:
        """Untracked training steps before a configuration's first run."""
        return self.protocol.warmup

    @property
    def seed(self) -> int:
        """The seed of repeat 1."""
        return self.protocol.seed

    def to_dict(self, scope: Scope) -> dict[str, Any]:
        """A JSON-ready dict, with the scope the study measured in and the run order."""
        p = self.protocol
        return {
            "repeats": p.repeats,
            "warmup_batches": p.warmup,
            "cooldown_s": p.cooldown_s,
            "test": self.test,
            "alpha": self.alpha,
            "scope": Scope(scope).value,
            "seed": p.seed,
            "order": _ORDER_TEXT[p.order],
        }


@contextmanager
def threads_set(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` PyTorch intra-op threads (None: leave as is), then restore."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class TrainConfig:
    """One configuration of a training study.

    Attributes:
        label: how the study names it.
        model: the model spec.
        batch_size: training batch size.
        device: where it trains.
        threads: PyTorch threads (None: as is).
        precision: ``fp32`` or ``bf16``.
        attributes: JSON-ready details stored with each of its runs.
    """

    label: str
    model: str
    batch_size: int
    device: str = "auto"
    threads: int | None = None
    precision: str = "fp32"
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """What every configuration of a training study gets: epochs and stopping rules.

    Attributes:
        epochs: epochs planned.
        stop: stopping rules (stateless: shared by every run).
        lr: learning rate.
        optimizer: ``adam``, ``adamw`` or ``sgd``.
    """

    epochs: int
    stop: tuple[StopRule, ...] = ()
    lr: float = 1e-3
    optimizer: str = "adam"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "epochs": self.epochs,
            "stop": [repr(r) for r in self.stop],
            "lr": self.lr,
            "optimizer": self.optimizer,
        }


def build(config: TrainConfig, data: DataSplit) -> nn.Module:
    """The configuration's model, on the CPU, in its precision."""
    model = build_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
    return with_precision(model, config.precision)


def warm_up(model: nn.Module, data: DataSplit, config: TrainConfig, steps: int) -> None:
    """Untracked training steps on the first batches, to reach steady state."""
    if steps <= 0:
        return
    dev = resolve_device(config.device)
    model.to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loader: DataLoader[Any] = DataLoader(data.train, batch_size=config.batch_size)
    batches = itertools.islice(itertools.cycle(loader), steps)
    for x, y in batches:
        if len(y) < 2:  # batch norm cannot train on one sample
            continue
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x.to(dev)), y.to(dev)).backward()  # type: ignore[no-untyped-call]
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_trials(
    session: StudySession,
    method: StudyMethod,
    configs: Sequence[TrainConfig],
    data: DataSplit,
    budget: Budget,
    *,
    around_run: Callable[[TrainConfig], Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    builder: Callable[[TrainConfig, DataSplit], nn.Module] | None = None,
) -> dict[str, RepeatedRuns]:
    """Train every configuration ``method.repeats`` times in the protocol's order and with
    its cool-down (:func:`~wattwise.protocol.schedule`), each run tracked, stored and linked.

    Args:
        session: the study session.
        method: the study's protocol and test.
        configs: the configurations (unique labels).
        data: the dataset.
        budget: epochs and stopping rules shared by all.
        around_run: a context-manager factory entered around each measured run (GPU
            monitoring); its ``__exit__`` result is ignored.
        sleep: how the cool-down sleeps.
        builder: makes a configuration's model (default: its model spec, built by
            :func:`~wattwise.workloads.build_model` in its precision).

    Returns:
        The runs of each configuration, by label, in the order of ``configs``. (The caller
        calls ``session.begin``, so progress knows every run of the study up front.)
    """
    by_label = {c.label: c for c in configs}
    if len(by_label) != len(configs):
        raise ConfigError("two configurations of a study have the same label")
    trials: dict[str, list[Trial]] = {label: [] for label in by_label}
    warm = method.protocol.warmup
    make = builder or build
    for r, label in schedule(list(by_label), method.protocol, sleep=sleep):
        config = by_label[label]
        seed = method.protocol.seed_of(r)
        with threads_set(config.threads):
            if not trials[label] and warm > 0:  # before its first measured run
                seed_everything(seed)
                warm_up(make(config, data), data, config, warm)
            seed_everything(seed)
            model = make(config, data)
            with around_run(config) if around_run is not None else nullcontext():
                result = fit(
                    model,
                    data,
                    epochs=budget.epochs,
                    batch_size=config.batch_size,
                    lr=budget.lr,
                    optimizer=budget.optimizer,
                    stop=budget.stop,
                    device=config.device,
                    seed=seed,
                    tracker=session.tracker(f"{session.kind}: {config.label} #{r}"),
                    hparams={"study": session.kind, "config": config.label},
                )
        trials[label].append(_trial(session, config, r, seed, result))
    return {label: RepeatedRuns(label, tuple(ts)) for label, ts in trials.items()}


def _trial(
    session: StudySession, config: TrainConfig, repeat: int, seed: int, result: FitResult
) -> Trial:
    """A measured training run of ``config`` as a trial, linked to the study."""
    accuracy = result.final_val_accuracy
    trial = Trial(
        label=config.label,
        repeat=repeat,
        seed=seed,
        run_id=result.run_id,
        energy_j=result.total_energy_j,
        uncertainty_j=result.total_uncertainty_j,
        duration_s=result.duration_s,
        val_accuracy=accuracy if accuracy is not None else 0.0,
        epochs=len(result.epochs),
        energy_source=result.energy_source,
        stop_reason=result.stop_reason,
    )
    label = f"{config.label} #{repeat}"
    session.link(
        result.run_id, label, {"model": config.model, **config.attributes, **trial.to_dict()}
    )
    session.run_done(label, result.energy_source)
    return trial


def versus(reference: RepeatedRuns, other: RepeatedRuns, method: StudyMethod) -> Versus:
    """``other`` against ``reference``: changes of the medians and their significance."""
    ref_e, ref_d = reference.energy_j.median, reference.duration_s.median
    return Versus(
        reference=reference.label,
        energy_change_frac=_change(ref_e, other.energy_j.median),
        duration_change_frac=_change(ref_d, other.duration_s.median),
        accuracy_change_pp=(other.val_accuracy.median - reference.val_accuracy.median) * 100,
        energy_test=compare(
            reference.energy_j.values, other.energy_j.values, test=method.test, alpha=method.alpha
        ),
        accuracy_test=compare(
            reference.val_accuracy.values,
            other.val_accuracy.values,
            test=method.test,
            alpha=method.alpha,
        ),
    )


def _change(reference: float, value: float) -> float:
    return (value - reference) / reference if reference > 0 else 0.0


def cheapest_within(
    reference: RepeatedRuns,
    candidates: Sequence[RepeatedRuns],
    within_pp: float,
    method: StudyMethod,
) -> Saving:
    """The cheapest candidate whose median accuracy is at most ``within_pp`` percentage
    points below the reference's, and what it saves against the reference.

    Raises:
        ConfigError: a negative tolerance.
    """
    if within_pp < 0 or math.isnan(within_pp):
        raise ConfigError(f"the accuracy tolerance must be >= 0 pp, got {within_pp}")
    floor = reference.val_accuracy.median - within_pp / 100.0
    # A tiny slack so that "within 1 pp" keeps exactly 1 pp despite float rounding.
    eligible = [c for c in candidates if c.val_accuracy.median >= floor - 1e-9]
    if reference not in eligible:
        eligible.append(reference)
    choice = min(eligible, key=lambda c: (c.energy_j.median, c is not reference))
    test = None
    if choice is not reference:
        test = compare(
            reference.energy_j.values, choice.energy_j.values, test=method.test, alpha=method.alpha
        )
    return Saving(
        reference=reference.label,
        choice=choice.label,
        within_pp=within_pp,
        reference_energy_j=reference.energy_j.median,
        choice_energy_j=choice.energy_j.median,
        reference_val_accuracy=reference.val_accuracy.median,
        choice_val_accuracy=choice.val_accuracy.median,
        energy_test=test,
        energy_source=str(Provenance.combine([reference.energy_source, choice.energy_source])),
    )


def method_notes(method: StudyMethod, scope: Scope, sources: Sequence[str]) -> list[str]:
    """What to keep in mind about how the figures were measured (in ``scope``)."""
    notes = []
    if any(Method.ESTIMATED.value in s for s in sources):
        notes.append(
            f"energy is {Provenance.combine(sources)}, not measured by a sensor: "
            "differences between configurations of this study are meaningful; "
            "absolute joules are a model's figure"
        )
    if Scope(scope) is Scope.MACHINE:
        notes.append(
            "machine scope: everything the meters see counts, other processes' load included; "
            "run on a quiet machine, or use process scope"
        )
    else:
        notes.append("process scope: CPU energy is this process's share of the machine's CPU time")
    floor = min_p_value(method.test, method.repeats, method.repeats)
    if method.repeats < 2:
        notes.append("one repeat per configuration: no spread and no significance test")
    elif floor is not None and floor >= method.alpha:
        notes.append(
            f"{method.repeats} repeats per configuration: Mann-Whitney U cannot reach "
            f"p < {method.alpha:g} (smallest possible p {floor:.3g}); use more repeats or "
            "Welch's t"
        )
    return notes
