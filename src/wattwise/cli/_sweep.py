"""``wattwise sweep``: energy-aware hyperparameter search on Optuna.

``compare`` runs several strategies on the same work and compares them on energy to a
target accuracy; ``run`` is one worker of a study shared through a database; ``status``
shows a shared study with its energy per machine; ``space`` prints a built-in search space
or checks a space file.

Why ~540 lines: four commands, each with its options, its worker and its renderer; they
share the option types and the store and space checks defined here.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from wattwise._errors import ConfigError, WattwiseError
from wattwise.cli._common import (
    MetersOpt,
    console,
    err_console,
    fail,
    lever_context,
    need,
    print_json,
)
from wattwise.cli._render import format_energy

if TYPE_CHECKING:
    from wattwise.search import Comparison, SearchResult, SearchSpace, StudyStatus, TrialRecord

__all__ = ["sweep_app"]

sweep_app = typer.Typer(
    help="Energy-aware hyperparameter search on Optuna: compare strategies on energy to a "
    "target accuracy, or share one study between machines.",
    no_args_is_help=True,
)

DatasetOpt = Annotated[
    str,
    typer.Option(
        help="digits, mnist1d[:OPTIONS], synthetic[:OPTIONS], cifar10:PATH, imagefolder:PATH..."
    ),
]
ModelOpt = Annotated[
    str, typer.Option(help="mlp, cnn (cnn:depth=2), cnn1d, gru or a torchvision model.")
]
SpaceOpt = Annotated[
    Path | None,
    typer.Option(help="Search space YAML (default: the model's built-in space)."),
]
DeviceOpt = Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")]
StoreOpt = Annotated[
    str | None,
    typer.Option(help="wattwise store URL for the trials' runs (see each command's default)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
StorageOpt = Annotated[
    str,
    typer.Option(help="Optuna storage: postgresql://USER:PW@HOST/DB (or sqlite:///PATH)."),
]
StudyOpt = Annotated[str, typer.Option(help="Name of the shared Optuna study.")]


def _require_search(*, training: bool = True) -> None:
    """The search needs Optuna, PyYAML and (to train) PyTorch: say which is missing."""
    if training:
        need("wattwise sweep", "search,torch", ["optuna", "yaml", "torch", "sklearn"])
    else:
        need("wattwise sweep", "search", ["optuna", "yaml"])
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space(path: Path | None, model: str) -> SearchSpace:
    from wattwise.search import builtin_space, load_space

    return load_space(path, model=model) if path is not None else builtin_space(model)


def _target(text: str | None) -> float | None:
    if text is None:
        return None
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"bad --target {text!r}: give an accuracy like 0.97 or 97%") from None
    if not 0 < value <= 1:
        raise ConfigError(f"--target must be in (0, 1] (or 0-100%), got {text}")
    return value


def _budget_j(text: str | None) -> float | None:
    if text is None:
        return None
    from wattwise.train import EnergyBudget, parse_stop

    try:
        rule = parse_stop(f"budget:{text}")
    except ConfigError:
        raise ConfigError(
            f"bad --budget {text!r}: give an energy like 500J, 2kJ or 0.01kWh"
        ) from None
    assert isinstance(rule, EnergyBudget)
    return rule.budget_j


def _fmt_acc(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "—"


def _fmt_j(value: float | None) -> str:
    return format_energy(value) if value is not None else "never reached"


# -- compare ----------------------------------------------------------------------------------


@sweep_app.command("compare")
def compare(
    dataset: DatasetOpt = "digits",
    model: ModelOpt = "cnn",
    space: SpaceOpt = None,
    strategies: Annotated[
        str,
        typer.Option(
            help="Comma-separated: grid, random, tpe, gp, hyperband, asha, nsga2, "
            "or SAMPLER+PRUNER (tpe+hyperband)."
        ),
    ] = "grid,random,tpe,hyperband",
    trials: Annotated[int, typer.Option(help="Trials per strategy.", min=1)] = 16,
    repeats: Annotated[int, typer.Option(help="Searches per strategy (seeds differ).", min=1)] = 1,
    target: Annotated[
        str | None,
        typer.Option(help="Accuracy to reach (0.97 or 97%); default: grid's best minus 0.5 pp."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampler seed of the first repeat.")] = 0,
    device: DeviceOpt = "cpu",
    meters: MetersOpt = "auto",
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare search strategies on the same space and trial budget.

    Best accuracy, energy, and energy to reach a target accuracy, with anytime curves
    stored for reports.

    Every figure is measured in this run of the program, on this machine; the comparison is
    stored as a study of kind sweep-compare (default store: WATTWISE_STORE or a local file).
    """
    _require_search()
    try:
        _compare(
            dataset=dataset,
            model=model,
            space_path=space,
            strategies=strategies,
            trials=trials,
            repeats=repeats,
            target=_target(target),
            seed=seed,
            device=device,
            meters=meters,
            store=store,
            json_out=json_out,
        )
    except WattwiseError as exc:
        fail(str(exc))


def _compare(
    *,
    dataset: str,
    model: str,
    space_path: Path | None,
    strategies: str,
    trials: int,
    repeats: int,
    target: float | None,
    seed: int,
    device: str,
    meters: str,
    store: str | None,
    json_out: bool,
) -> None:
    from wattwise.search import COMPARE_PROTOCOL, Workload, compare_strategies, parse_strategies
    from wattwise.train import resolve_device

    context = lever_context(meters, store, "process")
    resolve_device(device)
    strats = parse_strategies(strategies)
    if target is None and "grid" not in [s.name for s in strats]:
        raise ConfigError(
            "give --target, or include grid in --strategies to set it (grid's best - 0.5 pp)"
        )
    sp = _space(space_path, model)
    workload = Workload(dataset=dataset, model=model, device=device)
    total = len(strats) * repeats * trials
    done = [0]

    def progress(strategy: str, repeat: int, trial: TrialRecord) -> None:
        done[0] += 1
        if json_out:
            return
        acc = _fmt_acc(trial.accuracy)
        energy = format_energy(trial.energy_j) if trial.energy_j is not None else "?"
        err_console.print(
            f"[{done[0]}/{total}] {strategy} r{repeat} trial {trial.number}: {trial.state}, "
            f"accuracy {acc}, {energy} ({trial.epochs} epochs)",
            highlight=False,
            markup=False,
        )

    if not json_out:
        err_console.print(
            f"comparing {', '.join(s.name for s in strats)} on {dataset} / {model}: "
            f"{trials} trials each, {repeats} repeat(s), space {sp.source}",
            highlight=False,
            markup=False,
        )
    result = compare_strategies(
        workload,
        sp,
        strategies=strats,
        trials=trials,
        protocol=replace(COMPARE_PROTOCOL, repeats=repeats, seed=seed),
        target_accuracy=target,
        on_trial=progress,
        context=context,
    )
    if json_out:
        print_json(result.to_dict())
    else:
        _render_comparison(result)


def _render_comparison(c: Comparison) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in (
        "strategy",
        "best acc",
        "energy",
        "to target",
        "/grid",
        "c/p/f",
        "epochs",
    ):
        table.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=True)
    for s in c.strategies:
        reps = s.repeats
        counts = "/".join(
            f"{sum(r.count(state) for r in reps) / len(reps):g}"
            for state in ("complete", "pruned", "fail")
        )
        to_target = _fmt_j(s.energy_to_target_j)
        if len(reps) > 1:
            to_target += f" ({s.target_reached_repeats}/{len(reps)} reached)"
        ratio = s.energy_to_target_vs_grid_total
        table.add_row(
            escape(s.strategy),
            _fmt_acc(s.best_accuracy),
            format_energy(s.total_energy_j),
            to_target,
            f"{ratio:.2f}" if ratio is not None else "—",
            counts,
            f"{sum(r.epochs for r in reps) / len(reps):g}",
        )
    console.print(table)
    target = _fmt_acc(c.target_accuracy)
    lines = [
        "columns   energy: the whole search; to target: energy when the best accuracy first "
        "reached the target; /grid: that over grid's energy; c/p/f: complete/pruned/failed "
        "trials",
        f"target    {target} ({c.target_source})",
        f"energy    {c.energy_source}, {c.scope} scope; a search's total includes the "
        "sampler's work between trials",
    ]
    if c.repeats > 1:
        lines.append(
            f"repeats   {c.repeats}: mean best accuracy and energy; median energy to target "
            "(never reached counts as infinite)"
        )
    lines += [f"note      {n}" for n in c.notes]
    if c.study_id:
        lines.append(f"stored    study {c.study_id[:12]} (kind sweep-compare)")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


# -- run ----------------------------------------------------------------------------------------


@sweep_app.command("run")
def run(
    storage: StorageOpt,
    study: StudyOpt,
    dataset: DatasetOpt = "digits",
    model: ModelOpt = "cnn",
    space: SpaceOpt = None,
    strategy: Annotated[
        str, typer.Option(help="grid, random, tpe, gp, hyperband, asha, nsga2, tpe+asha...")
    ] = "tpe",
    trials: Annotated[
        int, typer.Option(help="Finished trials the whole study should have.", min=1)
    ] = 16,
    budget: Annotated[
        str | None,
        typer.Option(help="The study's energy budget (500J, 2kJ, 0.01kWh): no new trial after."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Sampler seed (default: random, so workers differ).")
    ] = None,
    heartbeat: Annotated[int, typer.Option(help="Heartbeat of a running trial, in s.", min=1)] = 10,
    grace: Annotated[
        int | None,
        typer.Option(help="Fail a trial whose heartbeat is older than this, in s (default 3x)."),
    ] = None,
    device: DeviceOpt = "cpu",
    meters: MetersOpt = "auto",
    store: Annotated[
        str | None,
        typer.Option(
            help="wattwise store for the trials' runs (default: the storage's database when "
            "it is PostgreSQL, else WATTWISE_STORE or a local file)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Be one worker of a shared study: start or join it, and run trials until it is done.

    The study is done when it has its trials (or has spent its budget). Start this on as
    many machines as you like.

    A worker killed mid-trial stops beating that trial's heartbeat; the next worker to ask
    for a trial marks it failed, and the study goes on.
    """
    _require_search()
    try:
        _run(
            storage=storage,
            study=study,
            dataset=dataset,
            model=model,
            space_path=space,
            strategy=strategy,
            trials=trials,
            budget_j=_budget_j(budget),
            seed=seed,
            heartbeat=heartbeat,
            grace=grace,
            device=device,
            meters=meters,
            store=store,
            json_out=json_out,
        )
    except WattwiseError as exc:
        fail(str(exc))


def _run(
    *,
    storage: str,
    study: str,
    dataset: str,
    model: str,
    space_path: Path | None,
    strategy: str,
    trials: int,
    budget_j: float | None,
    seed: int | None,
    heartbeat: int,
    grace: int | None,
    device: str,
    meters: str,
    store: str | None,
    json_out: bool,
) -> None:
    from wattwise.search import Workload, open_storage, parse_strategy, search
    from wattwise.search._storage import close_storage
    from wattwise.train import resolve_device

    context = lever_context(meters, store, "process")
    resolve_device(device)
    strat = parse_strategy(strategy)
    sp = _space(space_path, model)
    # An unreachable storage fails here, before the dataset is loaded.
    close_storage(open_storage(storage, heartbeat_interval_s=None))

    def progress(trial: TrialRecord) -> None:
        if json_out:
            return
        energy = format_energy(trial.energy_j) if trial.energy_j is not None else "?"
        err_console.print(
            f"trial {trial.number}: {trial.state}, accuracy {_fmt_acc(trial.accuracy)}, "
            f"{energy} ({trial.epochs} epochs); study so far "
            f"{format_energy(trial.study_energy_j or 0.0)}",
            highlight=False,
            markup=False,
        )

    if not json_out:
        err_console.print(
            f"worker {os.getpid()} joining study [bold]{escape(study)}[/] ({strat.name}, target "
            f"{trials} finished trials, space {escape(sp.source)})",
            highlight=False,
        )
    result = search(
        Workload(dataset=dataset, model=model, device=device),
        sp,
        strategy=strat,
        trials=trials,
        storage=storage,
        study_name=study,
        energy_budget_j=budget_j,
        seed=seed,
        heartbeat_interval_s=heartbeat,
        grace_period_s=grace,
        on_trial=progress,
        context=context,
    )
    if json_out:
        print_json(result.to_dict())
    else:
        _render_search(result)


def _render_search(r: SearchResult) -> None:
    lines = [
        f"stopped   {r.stop_reason}",
        f"study     {r.study_name}: {len(r.trials)} trials ({r.count('complete')} complete, "
        f"{r.count('pruned')} pruned, {r.count('fail')} failed), "
        f"{format_energy(r.total_energy_j)} — {r.energy_source}",
        f"worker    {r.worker_trials} trials, {format_energy(r.worker_energy_j)}",
    ]
    if r.best is not None:
        lines.append(
            f"best      trial {r.best.number}: accuracy {_fmt_acc(r.best.accuracy)}, "
            f"{format_energy(r.best.energy_j or 0.0)}, {r.best.params}"
        )
    for t in r.pareto:
        lines.append(
            f"pareto    trial {t.number}: accuracy {_fmt_acc(t.accuracy)}, "
            f"{format_energy(t.energy_j or 0.0)}, {t.params}"
        )
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)


# -- status -------------------------------------------------------------------------------------


@sweep_app.command("status")
def status(
    storage: StorageOpt,
    study: StudyOpt,
    store: Annotated[
        str | None,
        typer.Option(
            help="wattwise store holding killed trials' runs (default: as for sweep run)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a shared study: trials by state, energy per machine and worker, and in total."""
    _require_search(training=False)
    try:
        from wattwise.search import study_status

        st = study_status(storage, study, store=store)
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        print_json(st.to_dict())
    else:
        _render_status(st)


def _render_status(s: StudyStatus) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("host", "trials", "energy"):
        table.add_column(col, justify="left" if col == "host" else "right")
    for h in s.hosts:
        table.add_row(escape(h.host), str(h.trials), format_energy(h.energy_j))
    lines = [
        f"study     {s.study_name} ({s.strategy or 'strategy not recorded'}) in {s.storage}",
        f"trials    {s.trials}: {s.complete} complete, {s.pruned} pruned, {s.failed} failed, "
        f"{s.running} running",
        f"energy    {format_energy(s.total_energy_j)} — {s.energy_source}",
    ]
    if s.interrupted_energy_j:
        lines.append(
            f"          of which {format_energy(s.interrupted_energy_j)} by trials whose "
            "worker died (measured up to its last stored sample)"
        )
    if s.unmeasured_trials:
        lines.append(f"          {s.unmeasured_trials} trial(s) died before any energy was stored")
    if s.best_trial is not None:
        lines.append(f"best      trial {s.best_trial}: accuracy {_fmt_acc(s.best_accuracy)}")
    for line in lines:
        console.print("  " + line, highlight=False, soft_wrap=True, markup=False)
    console.print(table)


# -- space --------------------------------------------------------------------------------------


@sweep_app.command("space")
def space_cmd(
    model: ModelOpt = "cnn",
    check: Annotated[
        Path | None, typer.Option(help="Check this space file (for --model) instead.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Print a built-in search space as YAML (a start for your own), or check a space file."""
    need("wattwise sweep space", "search", ["yaml"])
    try:
        sp = _space(check, model)
    except WattwiseError as exc:
        fail(str(exc))
    if json_out:
        data: dict[str, Any] = {"source": sp.source, "grid_size": sp.grid_size, **sp.to_dict()}
        print_json(data)
        return
    if check is not None:
        err_console.print(
            f"{check}: ok ({len(sp.params)} parameters, grid of {sp.grid_size} points)",
            highlight=False,
            markup=False,
        )
    console.print(sp.to_yaml().rstrip(), highlight=False, markup=False, soft_wrap=True)
