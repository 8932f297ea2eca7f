"""How studies measure: warm-up, cool-down, repeats in round-robin order, and the store.

Every study runs its configurations through the same protocol:

1. before a configuration's first measured run, a few untracked training steps warm it up
   (first-call allocation, kernel selection, caches), so the first repeat is not penalised;
2. repeats run round-robin (A1 B1 C1 A2 B2 C2 ...), not in blocks, so that drift over the
   study (temperature, other processes' load) spreads over every configuration instead of
   biasing the ones measured last;
3. an optional cool-down sleep separates runs;
4. each run is a tracked run of its own, stored and linked to the study, and the study's
   results are written at the end;
5. configurations are compared by their medians, with a significance test on the repeats.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias
from torch.utils.data import DataLoader

from wattwise._errors import ConfigError
from wattwise._records import Provenance
from wattwise.meters._base import Meter, Method
from wattwise.studies._records import RepeatedRuns, Saving, Trial, Versus
from wattwise.studies._stats import TESTS, compare, min_p_value
from wattwise.tracking._records import Scope
from wattwise.tracking._tracker import Tracker
from wattwise.train import StopRule, fit, seed_everything
from wattwise.workloads._datasets import DataSplit
from wattwise.workloads._models import build_model

if TYPE_CHECKING:
    from wattwise.store import RunStore

__all__ = [
    "PRECISIONS",
    "MetersFactory",
    "Progress",
    "StoreArg",
    "StudyMethod",
]

#: Training precisions a study can set (bf16 through autocast; fp16 would need a loss
#: scaler, which the training loop does not have).
PRECISIONS = ("fp32", "bf16")

#: Makes fresh meters for each tracked run (meters are started and closed per run).
MetersFactory = Callable[[], Sequence[Meter]]
#: Told after each measured run: (runs done, runs planned, what just ran).
Progress = Callable[[int, int, str], None]
#: Where a study is stored: None (the default store), a URL or path, a RunStore, or False.
StoreArg: TypeAlias = "RunStore | str | Literal[False] | None"


@dataclass(frozen=True)
class StudyMethod:
    """The measurement protocol of a study.

    Args:
        repeats: measured runs per configuration (>= 1; 4 or more for Mann-Whitney U to be
            able to reach p < 0.05, 5 by default).
        warmup_batches: untracked training steps before a configuration's first run.
        cooldown_s: seconds to sleep between measured runs, in s.
        test: ``mannwhitney`` or ``welch``.
        alpha: significance level of the tests.
        scope: ``machine`` or ``process`` (see :class:`~wattwise.tracking.Scope`).
        seed: seed of repeat 1; repeat ``r`` uses ``seed + r - 1`` for every configuration.
    """

    repeats: int = 5
    warmup_batches: int = 10
    cooldown_s: float = 0.0
    test: str = "mannwhitney"
    alpha: float = 0.05
    scope: str = "machine"
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`ConfigError` for a setting out of range."""
        if self.repeats < 1:
            raise ConfigError(f"repeats must be >= 1, got {self.repeats}")
        if self.warmup_batches < 0:
            raise ConfigError(f"warm-up batches must be >= 0, got {self.warmup_batches}")
        if not 0 <= self.cooldown_s <= 3600:  # also refuses NaN (time.sleep(inf) overflows)
            raise ConfigError(f"cool-down must be between 0 and 3600 s, got {self.cooldown_s}")
        if self.test not in TESTS:
            raise ConfigError(f"unknown test {self.test!r} (use {' or '.join(TESTS)})")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")
        try:
            Scope(self.scope)
        except ValueError:
            raise ConfigError(f"scope must be machine or process, got {self.scope!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the run order."""
        return {**asdict(self), "order": "round-robin over configurations, per repeat"}


class _Session:
    """One study being run: its store, its trackers, progress and cool-down."""

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        params: dict[str, Any],
        method: StudyMethod,
        store: StoreArg,
        meters: MetersFactory | None,
        progress: Progress | None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.params = params
        self.method = method
        self.store_arg = store
        self.meters = meters
        self.progress = progress
        self.study_id = uuid.uuid4().hex
        self.planned = 0
        self.done = 0
        self.sources: list[str] = []
        self._store: RunStore | None = None
        self._own_store = False

    @property
    def stored(self) -> bool:
        """Whether runs and results go to a store."""
        return self._store is not None

    def open(self) -> None:
        """Open the store (when there is one) and record the study."""
        from wattwise.store import RunStore

        arg = self.store_arg
        if arg is False:
            return
        if isinstance(arg, RunStore):
            self._store = arg
        elif arg is None or isinstance(arg, str):
            self._store = RunStore.open(arg)
            self._own_store = True
        else:
            raise ConfigError(f"store must be a URL, a RunStore, None or False, not {arg!r}")
        self._store.create_study(
            study_id=self.study_id, kind=self.kind, name=self.name, params=self.params
        )

    def close(self) -> None:
        """Release the store when the session opened it."""
        if self._own_store and self._store is not None:
            self._store.close()

    def tracker(self, name: str) -> Tracker:
        """A fresh tracker for one measured run."""
        return Tracker(
            name,
            scope=self.method.scope,
            meters=list(self.meters()) if self.meters is not None else None,
            store=self._store if self._store is not None else False,
        )

    def link(self, run_id: str, label: str, attributes: dict[str, Any]) -> None:
        """Attach a stored run to the study."""
        if self._store is not None:
            self._store.add_study_run(self.study_id, run_id, label=label, attributes=attributes)

    def finish(self, results: dict[str, Any]) -> None:
        """Write the study's results."""
        if self._store is not None:
            self._store.finish_study(self.study_id, results)

    def begin(self, planned: int) -> None:
        """Everything is checked: ``planned`` measured runs start now."""
        self.planned = planned
        if self.progress is not None:
            self.progress(0, planned, "warm-up")

    def run_done(self, label: str, source: str) -> None:
        """Count a measured run, report progress, cool down before the next."""
        self.done += 1
        if source not in self.sources:
            self.sources.append(source)
        if self.progress is not None:
            self.progress(self.done, self.planned, label)
        if self.method.cooldown_s > 0 and self.done < self.planned:
            time.sleep(self.method.cooldown_s)


@contextmanager
def _session(**kwargs: Any) -> Iterator[_Session]:
    session = _Session(**kwargs)
    session.method.check()
    session.open()
    try:
        yield session
    finally:
        session.close()


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


class Autocast(nn.Module):
    """Runs a model's forward pass under ``torch.autocast`` with a reduced-precision dtype.

    The backward pass needs no context: autograd runs each backward operation in the dtype
    its forward operation used. Outputs are returned as float32 for the loss.

    Args:
        model: the wrapped model.
        dtype: ``torch.bfloat16``.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, dtype=self.dtype):
            out = self.model(x)
        logits = getattr(out, "logits", out)
        if not isinstance(logits, torch.Tensor):
            raise ConfigError(f"the model returned {type(out).__name__}, not class scores")
        return logits.float()


def check_precision(precision: str) -> None:
    """Raise :class:`ConfigError` for an unsupported precision."""
    if precision == "fp16":
        raise ConfigError(
            "fp16 training needs loss scaling, which the training loop does not do: use bf16"
        )
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")


def with_precision(model: nn.Module, precision: str) -> nn.Module:
    """The model set up to train in ``precision`` (``fp32``: unchanged)."""
    check_precision(precision)
    return model if precision == "fp32" else Autocast(model, torch.bfloat16)


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
    from wattwise.train import resolve_device

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
    session: _Session,
    configs: Sequence[TrainConfig],
    data: DataSplit,
    budget: Budget,
    *,
    around_run: Callable[[TrainConfig], Any] | None = None,
) -> dict[str, RepeatedRuns]:
    """Train every configuration ``method.repeats`` times, round-robin, each run tracked.

    Args:
        session: the study session.
        configs: the configurations (unique labels).
        data: the dataset.
        budget: epochs and stopping rules shared by all.
        around_run: a context-manager factory entered around each measured run (GPU
            monitoring); its ``__exit__`` result is ignored.

    Returns:
        The runs of each configuration, by label, in the order of ``configs``. (The caller
        calls ``session.begin``, so progress knows every run of the study up front.)
    """
    method = session.method
    trials: dict[str, list[Trial]] = {c.label: [] for c in configs}
    if len(trials) != len(configs):
        raise ConfigError("two configurations of a study have the same label")
    for r in range(1, method.repeats + 1):
        seed = method.seed + r - 1
        for config in configs:
            with threads_set(config.threads):
                if r == 1 and method.warmup_batches > 0:
                    seed_everything(seed)
                    warm_up(build(config, data), data, config, method.warmup_batches)
                seed_everything(seed)
                model = build(config, data)
                tracker = session.tracker(f"{session.kind}: {config.label} #{r}")
                with around_run(config) if around_run is not None else _nothing():
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
                        tracker=tracker,
                        hparams={"study": session.kind, "config": config.label},
                    )
            accuracy = result.final_val_accuracy
            trial = Trial(
                label=config.label,
                repeat=r,
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
            trials[config.label].append(trial)
            session.link(
                result.run_id,
                f"{config.label} #{r}",
                {"model": config.model, **config.attributes, **trial.to_dict()},
            )
            session.run_done(f"{config.label} #{r}", result.energy_source)
    return {label: RepeatedRuns(label, tuple(ts)) for label, ts in trials.items()}


@contextmanager
def _nothing() -> Iterator[None]:
    yield


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


def method_notes(method: StudyMethod, sources: Sequence[str]) -> list[str]:
    """What to keep in mind about how the figures were measured."""
    notes = []
    if any(Method.ESTIMATED.value in s for s in sources):
        notes.append(
            f"energy is {Provenance.combine(sources)}, not measured by a sensor: "
            "differences between configurations of this study are meaningful; "
            "absolute joules are a model's figure"
        )
    if method.scope == Scope.MACHINE.value:
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
