"""The energy-aware training loop: per-epoch energy from the tracker, stopping rules.

Each epoch is a tracker window ``epoch-N`` with two nested windows, ``train`` and
``eval``, so an epoch's energy covers its validation pass too, and the split is kept.
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias

from wattwise._errors import ConfigError
from wattwise._records import Provenance
from wattwise.protocol import LeverContext, tracking
from wattwise.tracking._tracker import Tracker, Window
from wattwise.train._batches import Batches
from wattwise.train._callbacks import Callback, TrainState
from wattwise.train._fit_result import fit_result
from wattwise.train._history import TrainingHistory
from wattwise.train._mlflow import MlflowLogger, RunTotals, mlflow_logger
from wattwise.train._predict import predict_total
from wattwise.train._records import (
    EpochRecord,
    FitResult,
    StopDecision,
    TrainingInterrupted,
)
from wattwise.train._stopping import StopContext, StopRule
from wattwise.workloads._datasets import DataSplit

__all__ = ["OPTIMIZERS", "evaluate", "fit", "resolve_device", "seed_everything"]

#: Optimizers by name (SGD with momentum 0.9).
OPTIMIZERS = ("adam", "adamw", "sgd")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU.

    Raises:
        ConfigError: CUDA asked for but not available, or an unknown device.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} asked for, but PyTorch sees no CUDA GPU here")
    return dev


def _logits(out: Any) -> torch.Tensor:
    """Class scores from a model's output (a tensor, or an object with ``logits``)."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ConfigError(f"the model returned {type(out).__name__}, not class scores")


def _param_groups(
    model: nn.Module, lr: float, lr_groups: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Trainable parameters grouped by learning rate (first matching pattern wins)."""
    by_lr: dict[float, list[nn.Parameter]] = {}
    used = dict.fromkeys(lr_groups, False)
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        chosen = lr
        for pattern, group_lr in lr_groups.items():
            if fnmatch.fnmatchcase(name, pattern):
                chosen, used[pattern] = group_lr, True
                break
        by_lr.setdefault(chosen, []).append(p)
    unused = [p for p, u in used.items() if not u]
    if unused:
        raise ConfigError(f"learning-rate pattern {unused[0]!r} matches no trainable parameter")
    if not by_lr:
        raise ConfigError("every parameter is frozen: nothing to train")
    return [{"params": ps, "lr": group_lr} for group_lr, ps in by_lr.items()]


def _make_optimizer(name: str, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    raise ConfigError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")


def _train_mode(model: nn.Module) -> None:
    """Training mode, except batch norms whose parameters are all frozen: their running
    statistics stay as learned (freezing a backbone should freeze it whole)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _train_epoch(
    state: TrainState,
    batches: Batches,
    callbacks: Sequence[Callback],
) -> float:
    model, optimizer = state.model, state.optimizer
    _train_mode(model)
    loss_sum = torch.zeros((), device=batches.device)
    count = 0
    state.batch = 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(_logits(model(x)), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        loss_sum += loss.detach() * len(y)
        count += len(y)
        state.batch += 1
        for cb in callbacks:
            cb.on_batch_end(state)
    return float(loss_sum.item()) / max(count, 1)


def evaluate(model: nn.Module, batches: Batches) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy (0..1) of a classifier over ``batches``, in
    evaluation mode and without gradients."""
    model.eval()
    loss_sum = torch.zeros((), device=batches.device)
    correct = torch.zeros((), device=batches.device, dtype=torch.int64)
    count = 0
    with torch.inference_mode():
        for x, y in batches:
            logits = _logits(model(x))
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(dim=1) == y).sum()
            count += len(y)
    return float(loss_sum.item()) / count, float(correct.item()) / count


def _window_energy(w: Window) -> float:
    return w.result.energy_j if w.result is not None else w.energy_j


@dataclass(frozen=True)
class _Setup:
    """What :func:`fit` trains with: the device, the optimizer, the batches, and the
    hyperparameters to report."""

    device: torch.device
    optimizer: torch.optim.Optimizer
    train: Batches
    val: Batches
    hparams: dict[str, Any]

    @classmethod
    def of(
        cls,
        model: nn.Module,
        data: DataSplit,
        epochs: int,
        batch_size: int,
        lr: float,
        lr_groups: Mapping[str, float] | None,
        optimizer: str,
        device: str | torch.device,
        seed: int | None,
        workers: int,
    ) -> _Setup:
        """Check the arguments, seed, move the model and make its optimizer and batches."""
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        if not lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {lr}")
        dev = resolve_device(device)
        if seed is not None:
            seed_everything(seed)
        gen = torch.Generator()
        gen.manual_seed(seed if seed is not None else int(torch.initial_seed()) % 2**63)
        model.to(dev)
        opt = _make_optimizer(optimizer, _param_groups(model, lr, lr_groups or {}), lr)
        kw: dict[str, Any] = {
            "batch_size": batch_size,
            "generator": gen,
            "device": dev,
            "workers": workers,
        }
        hparams = {
            "model": type(model).__name__,
            "dataset": data.name,
            "classes": data.num_classes,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "optimizer": optimizer,
            "seed": -1 if seed is None else seed,
            "device": str(dev),
        }
        train = Batches(data.train, shuffle=True, **kw)
        return cls(dev, opt, train, Batches(data.val, shuffle=False, **kw), hparams)


def fit(
    model: nn.Module,
    data: DataSplit,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    lr_groups: Mapping[str, float] | None = None,
    optimizer: str = "adam",
    stop: Sequence[StopRule] = (),
    callbacks: Sequence[Callback] = (),
    device: str | torch.device = "auto",
    seed: int | None = 0,
    workers: int = 0,
    tracker: Tracker | None = None,
    name: str = "train",
    context: LeverContext | None = None,
    hparams: Mapping[str, Any] | None = None,
    mlflow: bool | MlflowLogger | None = None,
) -> FitResult:
    """Train a classifier with cross-entropy, measuring each epoch's energy.

    Every epoch runs inside the tracker window ``epoch-N`` (with ``train`` and ``eval``
    inside it). After each epoch the stopping rules are asked in order; the first to give
    a reason ends the run. When a run stops early, the energy of the full planned run is
    predicted from the measured epochs and the difference reported as saved (a prediction).

    When ``fit`` owns its tracker and that stores runs, each epoch's accuracy and loss, the
    stopping rules and why the run ended are stored too (see ``wattwise.train._history``),
    after every epoch. A KeyboardInterrupt (Ctrl-C) ends the run as ``interrupted``: the
    run is stored with what it measured, and :class:`TrainingInterrupted` (a
    KeyboardInterrupt) is raised carrying the :class:`FitResult` of the completed epochs.

    Args:
        model: the classifier (outputs ``N x num_classes`` scores).
        data: training and validation sets.
        epochs: epochs planned (>= 1).
        batch_size: training and validation batch size.
        lr: learning rate of every parameter not matched by ``lr_groups``.
        lr_groups: parameter-name pattern (fnmatch) -> its own learning rate, e.g.
            ``{"head.*": 1e-2}`` to fine-tune a backbone gently and a new head fast.
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9).
        stop: stopping rules; any may end the run.
        callbacks: hooks (progress, TensorBoard, ...).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        seed: seeds Python, NumPy and PyTorch before training, and the batch order; None:
            leave the generators as they are.
        workers: DataLoader worker processes for datasets that are not in-memory tensors.
        tracker: a tracker to measure with; when it is running already, the fit is one
            window of it, named ``name``, else it is started and stopped here (the rule of
            :func:`wattwise.protocol.tracking`). Default: a new tracker named ``name``.
        name: the run's (or window's) name.
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
        hparams: extra hyperparameters to report (TensorBoard's hparams).
        mlflow: log each epoch's energy and the totals with their provenance to MLflow
            (``True``, or an :class:`~wattwise.train.MlflowLogger`), on the active MLflow
            run; ``False``: not; None (default): as ``WATTWISE_MLFLOW`` says (unset: not).

    Raises:
        ConfigError: bad arguments (epochs, batch size, patterns, device), MLflow asked
            for without an active run (or ``WATTWISE_MLFLOW`` not understood).
        MissingExtra: MLflow asked for and not installed.
        TrainingInterrupted: interrupted; ``.result`` holds what was done.
    """
    logger = mlflow_logger(mlflow)
    setup = _Setup.of(
        model, data, epochs, batch_size, lr, lr_groups, optimizer, device, seed, workers
    )
    ctx = context or LeverContext()
    tracker = tracker if tracker is not None else ctx.tracker(name)
    own = not tracker.running
    callbacks = _with_mlflow(logger, callbacks, name, own)
    state = TrainState(
        model=model,
        optimizer=setup.optimizer,
        tracker=tracker,
        planned_epochs=epochs,
        batches_per_epoch=len(setup.train),
        hparams={**setup.hparams, **(hparams or {})},
    )
    ended = _measured_epochs(state, setup, _Measuring(name, ctx, own, logger), callbacks, stop)
    result = fit_result(
        state, tracker, ended.outer, ended.stop, ended.duration_s, setup.device, ended.interrupt
    )
    if ended.history is not None:
        ended.history.finish(result)
    if ended.interrupt is not None:
        if logger is not None:
            logger.finish(RunTotals.of_fit(result))
        raise TrainingInterrupted(result) from ended.interrupt
    for cb in callbacks:
        cb.on_fit_end(state, result)
    return result


@dataclass(frozen=True)
class _Measuring:
    """How :func:`fit` measures: the run's (or window's) name, the context of a new
    tracker, whether the fit owns its tracker (else it is one window of it), the MLflow
    logger."""

    name: str
    context: LeverContext
    own: bool
    logger: MlflowLogger | None


@dataclass(frozen=True)
class _Ended:
    """How :func:`fit`'s epochs ended: the decision that ended them early (or the
    interruption's), the training's duration in s, the Ctrl-C if one ended them, the stored
    history (an owned tracker) or the fit's window (a running one)."""

    stop: StopDecision | None
    duration_s: float
    interrupt: KeyboardInterrupt | None
    history: TrainingHistory | None
    outer: Window | None


def _measured_epochs(
    state: TrainState,
    setup: _Setup,
    how: _Measuring,
    callbacks: Sequence[Callback],
    stop: Sequence[StopRule],
) -> _Ended:
    """The epochs under the tracker (started here unless running, else in a window named
    ``how.name``); a Ctrl-C ends them as ``interrupted`` (the tracker stored the run so)."""
    tracker, name, epochs = state.tracker, how.name, state.planned_epochs
    history: TrainingHistory | None = None
    outer: Window | None = None
    t0 = time.monotonic()
    try:
        with ExitStack() as stack:
            stack.push(_abort_on_error(how.logger))
            stack.enter_context(tracking(name, how.context, tracker))  # started unless running
            if how.own:
                history = TrainingHistory(
                    tracker, name=name, params=state.hparams, planned_epochs=epochs, stop=stop
                )
            else:
                outer = stack.enter_context(tracker.window(name))
            t0 = time.monotonic()

            def spent() -> float:
                return tracker.energy_j if outer is None else _window_energy(outer)

            stop_decision = _epochs(state, setup.train, setup.val, callbacks, stop, history, spent)
            duration = time.monotonic() - t0
    except KeyboardInterrupt as exc:
        duration = time.monotonic() - t0
        done = len(state.history)
        stop_decision = StopDecision(
            "interrupted",
            f"interrupted (Ctrl-C) during epoch {done + 1}: {done} of {epochs} epochs completed",
            done,
        )
        return _Ended(stop_decision, duration, exc, history, outer)
    return _Ended(stop_decision, duration, None, history, outer)


def _with_mlflow(
    logger: MlflowLogger | None, callbacks: Sequence[Callback], name: str, own: bool
) -> Sequence[Callback]:
    """The callbacks with the MLflow logger first (an epoch is logged before the others
    run), attached to its MLflow run now: before any training, so a missing run is said at
    once."""
    if logger is None:
        return callbacks
    logger.attach(name, window=None if own else name)
    return (logger, *callbacks)


def _abort_on_error(logger: MlflowLogger | None) -> Callable[..., None]:
    """An exit callback marking the MLflow run failed when an error (not Ctrl-C, which
    :func:`fit` logs as interrupted) ends the fit."""

    def exit_(exc_type: type[BaseException] | None, *_: object) -> None:
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        if logger is not None and exc_type is not None and not interrupted:
            logger.abort()

    return exit_


def _epochs(
    state: TrainState,
    train_batches: Batches,
    val_batches: Batches,
    callbacks: Sequence[Callback],
    stop: Sequence[StopRule],
    history: TrainingHistory | None,
    spent: Callable[[], float],
) -> StopDecision | None:
    """The epochs of :func:`fit`, each in its window; the decision that ended them early."""
    tracker, model, epochs = state.tracker, state.model, state.planned_epochs
    stop_decision: StopDecision | None = None
    for cb in callbacks:
        cb.on_fit_start(state)
    for n in range(1, epochs + 1):
        state.epoch = n
        with tracker.window(f"epoch-{n}") as w:
            with tracker.window("train") as wt:
                train_loss = _train_epoch(state, train_batches, callbacks)
            with tracker.window("eval") as we:
                val_loss, val_acc = evaluate(model, val_batches)
        res = w.result
        assert res is not None
        source = str(Provenance.from_components(res.components))
        energies = [e.energy_j for e in state.history] + [res.energy_j]
        used = spent()
        prediction = predict_total(
            energies, epochs, overhead_j=max(used - sum(energies), 0.0), source=source
        )
        record = EpochRecord(
            epoch=n,
            energy_j=res.energy_j,
            uncertainty_j=res.uncertainty_j,
            duration_s=res.duration_s,
            train_energy_j=_window_energy(wt),
            eval_energy_j=_window_energy(we),
            train_loss=train_loss,
            val_loss=val_loss,
            val_accuracy=val_acc,
            source=source,
            components=res.components,
            prediction=prediction,
        )
        state.history.append(record)
        if history is not None:
            history.epoch(state.history)
        for cb in callbacks:
            cb.on_epoch_end(state, record)
        if n == epochs:
            break
        ctx = StopContext(state.history, epochs, used, prediction)
        for rule in stop:
            reason = rule.check(ctx)
            if reason is not None:
                stop_decision = StopDecision(rule.name, reason, n)
                break
        if stop_decision is None and state.stop_request is not None:
            stop_decision = StopDecision(*state.stop_request, n)
        if stop_decision is not None:
            break
    return stop_decision
