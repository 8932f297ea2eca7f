"""Measuring candidates for :func:`~wattwise.ofa.select`: the validation inputs, each
sub-network's accuracy and its energy per inference under the measurement protocol, and the
pool every budget shares (each candidate measured at most once, or read back from the
store's cache).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from wattwise._errors import ConfigError
from wattwise.ofa._records import Candidate
from wattwise.ofa._select_cache import read_cache, write_cache
from wattwise.ofa._space import ElasticNetwork, ElasticSpace, SubnetConfig
from wattwise.protocol import Protocol, Repeated, StudySession, measure, tracking
from wattwise.tracking._tracker import Tracker
from wattwise.train import Batches, evaluate

if TYPE_CHECKING:
    from wattwise.workloads import DataSplit

__all__ = ["CandidatePool", "SelectInputs", "network_fingerprint", "save_subnet"]

_EVAL_BATCH = 256


def network_fingerprint(net: nn.Module, space: ElasticSpace | None = None) -> str:
    """A hash of the network's class, space and every tensor of its state (names, dtypes,
    shapes, bytes): the same trained network has the same fingerprint in every process."""
    h = hashlib.sha256(type(net).__qualname__.encode())
    if space is not None:
        h.update(json.dumps(space.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def save_subnet(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Write an exported sub-network as a plain PyTorch program (``torch.export``, a
    ``.pt2`` file that needs neither wattwise nor its classes):
    ``torch.export.load(path).module()`` gives it back, for any batch size.

    Args:
        module: the sub-network (:meth:`ElasticNetwork.export`).
        example: one batch of its inputs (any batch size).
        path: the file to write.
    """
    module = module.cpu().eval()
    example = example.cpu()
    if len(example) < 2:  # batch 1 would be specialised: trace with two
        example = torch.cat([example, example])
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return path


@dataclass(frozen=True)
class SelectInputs:
    """The validation split on the device (its batches), and the fixed batch energy is
    measured on (its first inputs, repeated when the split is smaller)."""

    val: Batches
    batch: torch.Tensor

    @classmethod
    def of(cls, data: DataSplit, batch_size: int, device: torch.device) -> SelectInputs:
        val = data.val
        n = len(val)  # type: ignore[arg-type]
        if n == 0:
            raise ConfigError(f"the validation split of {data.name} is empty")
        batches = Batches(
            val,
            batch_size=_EVAL_BATCH,
            shuffle=False,
            generator=torch.Generator(),
            device=device,
            workers=0,
        )
        first = torch.stack([val[i % n][0] for i in range(batch_size)]).to(device)
        return cls(batches, first)


def _accuracy(module: nn.Module, inputs: SelectInputs) -> float:
    return evaluate(module, inputs.val)[1]


def _forward(module: nn.Module, batch: torch.Tensor, device: torch.device) -> Callable[[], None]:
    sync = device.type == "cuda"

    def call() -> None:
        with torch.inference_mode():
            module(batch)
        if sync:
            torch.cuda.synchronize(device)

    return call


class CandidatePool:
    """Every candidate met so far, measured at most once (or read back from the store),
    shared by all budgets; the tracker run starts with the first measurement."""

    def __init__(
        self,
        net: ElasticNetwork,
        inputs: SelectInputs,
        *,
        protocol: Protocol,
        device: torch.device,
        limit: int,
        session: StudySession,
        cache: tuple[str, dict[str, Any]] | None,
        run_name: str,
    ) -> None:
        self.net = net
        self.inputs = inputs
        self.protocol = protocol
        self.device = device
        self.limit = limit
        self.session = session
        self.cache = cache
        self.run_name = run_name
        self.known: dict[str, Candidate] = {}
        self.stored: dict[str, Candidate] = {}
        if cache is not None:
            self.stored = read_cache(session, cache[0])
        self.measured = 0
        self.confirmations = 0
        self.cached = 0
        self.limit_reached = False
        self.measuring_s = 0.0
        self.accuracy: dict[str, float] = {}  # validation accuracy by key, measured once
        self.evaluations = 0
        self.accuracy_s = 0.0
        self.accuracy_j = 0.0
        self.stack = ExitStack()
        self.tracker: Tracker | None = None

    def get(self, configs: Sequence[SubnetConfig]) -> list[Candidate]:
        """The candidates of ``configs`` (measuring the new ones while the bound allows);
        configs beyond the bound are left out."""
        space = self.net.space
        wanted = list({space.canonical(c).key: space.canonical(c) for c in configs}.items())
        new: list[SubnetConfig] = []
        for key, config in wanted:
            if key in self.known or config in new:
                continue
            if key in self.stored:
                self.known[key] = replace(self.stored[key], cached=True)
                self.cached += 1
            elif self.measured + len(new) < self.limit:
                new.append(config)
            else:
                self.limit_reached = True
        if new:
            self._measure(new)
        return [self.known[key] for key, _ in wanted if key in self.known]

    def start(self) -> None:
        """Start the tracker run now, so that everything after it is in the run."""
        self._running()

    def accuracies(self, configs: Sequence[SubnetConfig]) -> dict[str, float]:
        """Validation accuracy of each config (by canonical key), each evaluated once; the
        new ones in one tracker window ``accuracy`` when the run has started."""
        space = self.net.space
        wanted = {space.canonical(c).key: space.canonical(c) for c in configs}
        new = {k: c for k, c in wanted.items() if k not in self.accuracy}
        if new:
            t0 = time.perf_counter()
            with ExitStack() as stack:
                win = (
                    stack.enter_context(self.tracker.window("accuracy"))
                    if self.tracker is not None
                    else None
                )
                for key, config in new.items():
                    module = self.net.export(config).to(self.device).eval()
                    self.accuracy[key] = _accuracy(module, self.inputs)
            if win is not None and win.result is not None:
                self.accuracy_j += win.result.energy_j
            self.accuracy_s += time.perf_counter() - t0
            self.evaluations += len(new)
        return {k: self.accuracy[k] for k in wanted}

    def _running(self) -> Tracker:
        if self.tracker is None:
            self.tracker = self.stack.enter_context(tracking(self.run_name, self.session.context))
        return self.tracker

    def _measure(self, configs: list[SubnetConfig]) -> None:
        modules = {c.key: self.net.export(c).to(self.device).eval() for c in configs}
        accuracy = {
            key: self.accuracy[key] if key in self.accuracy else _accuracy(m, self.inputs)
            for key, m in modules.items()
        }
        tracker = self._running()
        t0 = time.perf_counter()
        repeated = measure(
            {key: _forward(m, self.inputs.batch, self.device) for key, m in modules.items()},
            self.protocol,
            tracker=tracker,
            items_per_call=len(self.inputs.batch),
        )
        self.measuring_s += time.perf_counter() - t0
        made = [
            _candidate(c, accuracy[c.key], repeated[c.key], modules[c.key], tracker.run_id)
            for c in configs
        ]
        for candidate in made:
            self.known[candidate.key] = candidate
            self.session.run_done(candidate.key, candidate.source)
        self.measured += len(made)
        if self.cache is not None and self.session.stored:  # kept at once: a crash loses none
            study_id, key = self.cache
            write_cache(
                self.session.context,
                study_id,
                name=f"ofa measurements {key['fingerprint'][:12]}",
                key=key,
                candidates=made,
                run_id=tracker.run_id,
            )

    def remeasure(self, config: SubnetConfig) -> Candidate:
        """``config`` measured once more, now, in this selection's run (the accuracy is
        the known one: it does not depend on the measurement); not cached, not counted
        against the bound."""
        return self.measure_now(config, self.known[config.key].accuracy)

    def measure_now(self, config: SubnetConfig, accuracy: float) -> Candidate:
        """``config`` measured now, in this selection's run, with its known ``accuracy``;
        not cached, not counted against the bound (a choice's confirmation)."""
        module = self.net.export(config).to(self.device).eval()
        tracker = self._running()
        t0 = time.perf_counter()
        repeated = measure(
            {config.key: _forward(module, self.inputs.batch, self.device)},
            self.protocol,
            tracker=tracker,
            items_per_call=len(self.inputs.batch),
        )
        self.measuring_s += time.perf_counter() - t0
        self.confirmations += 1
        return _candidate(config, accuracy, repeated[config.key], module, tracker.run_id)

    def close(self) -> str | None:
        """Stop the tracker run, if one was started; its id."""
        self.stack.close()
        return self.tracker.run_id if self.tracker is not None else None


def _candidate(
    config: SubnetConfig, accuracy: float, rep: Repeated, module: nn.Module, run_id: str
) -> Candidate:
    total = rep.total
    return Candidate(
        key=config.key,
        config=config,
        accuracy=accuracy,
        energy_per_item_j=rep.energy_per_item_j,
        latency_s=rep.s_per_call,
        uncertainty_per_item_j=total.uncertainty_j / total.items,
        source=total.source,
        params=sum(p.numel() for p in module.parameters()),
        run_id=run_id,
    )
