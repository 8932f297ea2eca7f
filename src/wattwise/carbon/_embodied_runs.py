"""A stored run's embodied emissions, charged for the part of the machine it was given.

A run recorded by this wattwise keeps what it was given and its machine's size
(:class:`~wattwise._records.RunAllocation`, stored with it since schema 3): its CPU share is
its CPUs of the machine's logical CPUs, its RAM share its memory limit of the machine's
memory (the whole memory when it had no limit), on whatever machine it is read. A run
stored before that has no allocation: the whole machine's CPUs and memory are charged, as
before, and a note says so. ``cpus=`` (``--cpus``) and ``ram_gb=`` still override.

GPUs: the run's GPU components (the GPUs it was given and measured), each whole; those
whose name is a data-centre part (:func:`~wattwise.carbon._embodied.is_datacenter_gpu`)
are charged the ``gpu-datacenter`` factor. A run with members on several hosts is charged
host by host, each from its ``host`` member's own record.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from wattwise._errors import ConfigError
from wattwise._records import ComponentEnergy, MemberRole, RunAllocation, RunResult
from wattwise.carbon._embodied import EmbodiedFigures, Hardware, embodied, is_datacenter_gpu
from wattwise.meters import ComponentKind

__all__ = ["embodied_for_run", "embodied_for_runs"]

_NOT_RECORDED = (
    "CPUs and memory: the whole machine's (the run's allocation was not recorded: "
    "stored by a wattwise before schema 3)"
)


def _gpus(components: Sequence[ComponentEnergy]) -> tuple[int, int]:
    """GPUs a run measured, and how many of them are data-centre parts (by NVML's name in
    the component's detail)."""
    devices: dict[tuple[str, str], str] = {}
    for c in components:
        if c.kind is ComponentKind.GPU:
            host = c.name.rpartition("/")[0]  # HOST/gpu:0 in a run over several hosts
            devices.setdefault((host, c.device or c.name), c.source.detail)
    return len(devices), sum(1 for detail in devices.values() if is_datacenter_gpu(detail))


def _hardware(
    host: str, components: Sequence[ComponentEnergy], gpus: int, recorded: RunAllocation | None
) -> tuple[Hardware, list[str]]:
    """The machine a run used: this one when the run's host is this one (its sockets, and
    whether it is a virtual machine), its size as recorded with the run when it was."""
    if host == socket.gethostname():
        hardware = Hardware.detect(gpus=gpus)
        notes: list[str] = []
    else:
        sockets = sum(1 for c in components if c.name.rpartition("/")[2].startswith("cpu:package-"))
        hardware = Hardware(cpu_sockets=sockets or 1, gpus=gpus, source=f"from run on {host}")
        notes = (
            []
            if recorded is not None
            else [
                f"host {host!r} is not this machine: its CPUs and memory are unknown, so its "
                "whole CPU sockets are charged and RAM is not counted"
            ]
        )
    if recorded is None:
        return hardware, notes
    memory = recorded.machine_memory_bytes
    hardware = replace(
        hardware,
        logical_cpus=max(1, recorded.machine_logical_cpus),
        ram_gb=memory / 2**30 if memory is not None else None,
        source=f"{hardware.source}; its size as recorded with the run",
    )
    return hardware, notes


def _recorded_shares(
    recorded: RunAllocation, gpus: int, options: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The CPUs and memory the run was given, as recorded, unless the caller gives them;
    each with a note saying where the share came from."""
    shares: dict[str, Any] = {}
    notes: list[str] = []
    caller_allocation = "allocation" in options
    machine = recorded.machine_logical_cpus
    if "cpus" in options:
        notes.append(f"CPUs: {options['cpus']:g} given, not the {recorded.cpus:g} recorded")
    elif not caller_allocation:
        shares["cpus"] = recorded.cpus
        notes.append(
            f"CPUs: {recorded.cpus:g} of the machine's {machine}, as recorded with the run "
            f"({recorded.cpus_from})"
        )
    machine_gb = (
        recorded.machine_memory_bytes / 2**30 if recorded.machine_memory_bytes is not None else None
    )
    if "ram_gb" not in options and not caller_allocation and machine_gb is not None:
        if recorded.memory_limit_bytes is not None:
            shares["ram_gb"] = recorded.memory_limit_bytes / 2**30
            notes.append(
                f"RAM: the run's memory limit, {shares['ram_gb']:.3g} GB of the machine's "
                f"{machine_gb:.3g} GB, as recorded ({recorded.memory_from})"
            )
        else:
            notes.append(f"RAM: the machine's {machine_gb:.3g} GB (the run had no memory limit)")
    if recorded.gpus and gpus == 0 and "gpus" not in options:
        notes.append(
            f"GPUs: the run was given {recorded.gpus!r} ({recorded.gpus_from}) but measured "
            "none, so none is charged (gpus= / --gpus to charge them)"
        )
    return shares, notes


def _estimate(
    host: str,
    components: Sequence[ComponentEnergy],
    duration_s: float,
    recorded: RunAllocation | None,
    options: Mapping[str, Any],
) -> EmbodiedFigures:
    """One machine's part: a run of one process, or one host of a run with members."""
    gpus, datacenter = _gpus(components)
    hardware, notes = _hardware(host, components, gpus, recorded)
    defaults: dict[str, Any] = {"gpus": gpus, "datacenter_gpus": datacenter}
    if recorded is not None:
        shares, share_notes = _recorded_shares(recorded, gpus, options)
        defaults.update(shares)
        notes.extend(share_notes)
    elif "cpus" not in options and "allocation" not in options:
        notes.append(_NOT_RECORDED)
    if "gpus" in options:
        defaults["datacenter_gpus"] = min(datacenter, int(options["gpus"]))
    figures = embodied(hardware, duration_s, **{**defaults, **options})
    return replace(figures, notes=(*notes, *figures.notes))


def _combined(figures: Sequence[EmbodiedFigures], duration_s: float) -> EmbodiedFigures:
    """Figures summed: one run's hosts (``duration_s`` the run's), or several runs."""
    if not figures:
        raise ConfigError("no runs to estimate embodied emissions for")
    first = figures[0]
    return EmbodiedFigures(
        embodied_g=sum(f.embodied_g for f in figures),
        low_g=sum(f.low_g for f in figures),
        high_g=sum(f.high_g for f in figures),
        duration_s=duration_s,
        lifetime_years=first.lifetime_years,
        lifetime_low_years=first.lifetime_low_years,
        lifetime_high_years=first.lifetime_high_years,
        use_ratio=first.use_ratio,
        components=first.components if len(figures) == 1 else (),
        sources=tuple(dict.fromkeys(s for f in figures for s in f.sources)),
        notes=tuple(dict.fromkeys(n for f in figures for n in f.notes)),
    )


def _for_one(run: RunResult, options: Mapping[str, Any]) -> EmbodiedFigures:
    """A run's machines: itself, or each host of a run with members (its ``host`` member)."""
    hosts = [m for m in run.members if m.role is MemberRole.HOST]
    if len({m.host for m in hosts}) <= 1:
        return _estimate(run.host, run.components, run.duration_s, run.allocation, options)
    note = f"a run over {len(hosts)} hosts: each host charged from its own record"
    parts = [_estimate(m.host, m.components, m.duration_s, m.allocation, options) for m in hosts]
    combined = _combined(parts, run.duration_s)
    return replace(combined, notes=(note, *combined.notes))


def embodied_for_run(run: RunResult, **options: Any) -> EmbodiedFigures:
    """The embodied estimate of a stored run, from its duration and the part of the
    machine it was given (the allocation recorded with it; the whole machine for a run
    recorded before that, which a note says). ``options`` are
    :func:`~wattwise.carbon.embodied`'s; ``cpus=`` and ``ram_gb=`` override the recorded
    shares.
    """
    return embodied_for_runs([run], **options)


def embodied_for_runs(runs: Iterable[RunResult], **options: Any) -> EmbodiedFigures:
    """The summed embodied estimate of several runs (a study's), each on its own hardware."""
    figures = [_for_one(run, options) for run in runs]
    return _combined(figures, sum(f.duration_s for f in figures))
