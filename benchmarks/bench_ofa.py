"""One OFA training against five: the trade-off once-for-all claims, measured (issue 15).

For N = 5 energy-per-inference budgets spread over the measured front:

(a) ONE progressive shrinking (:func:`wattwise.ofa.progressive_shrink`) of the default
    elastic network, then five selections (:func:`wattwise.ofa.select`, one budget each,
    evolution, the default protocol), each its own deployment: it starts from an empty
    temporary store, so it measures its candidates itself (no cache shared between them);
(b) the five shapes those selections chose, each trained alone from scratch
    (``ElasticCNN.fresh`` + :func:`wattwise.train.fit`, the shrink's lr and batch) to
    convergence: the learning-curve rule (``LearningCurve()``, the project's default) under
    an epoch cap.

The budgets come from a first selection pass (budgets ``1J`` and ``1nJ``: every candidate
fits the first, none the second, so the two evolutions spread the measured candidates
from the largest to the smallest sub-networks): the Pareto front of its candidates, and
the budgets at the quantiles ``--quantiles`` of the front's energies per inference (three
significant figures). That pass only chooses the budgets; its energy is reported beside
(a), not in it.

Figures: energy of (a) (shrink + the five selections' tracked runs) against (b) (the five
fits), their ratio (goal <= 0.5); each chosen sub-network's accuracy (from the elastic
network, no retraining) against its shape trained alone (goal within 1.5 pp); each chosen
sub-network re-measured after export (``save_subnet`` -> ``torch.export.load``) under the
protocol, all five interleaved (goal: its median fits its budget); the break-even number
of deployments N* (the least N with shrink + N * mean selection < N * mean training).

A selection's energy is its tracker run (read back from its temporary store): the
measuring of every candidate and the accuracy passes after the first generation's
(the run starts with the first measurement); the exports and the search are outside it.
Every energy is the meters' (on a machine without RAPL: estimated), with their one-sigma
uncertainty; process scope, one torch thread.

Run:  python benchmarks/bench_ofa.py [--seeds 0,1] [--largest 15 --kernel 3 --depth 2,4
      --width 3,20 --subnets 3] [--max-epochs 60] [--json benchmarks/results-ofa.json]
      (seeds run as separate processes: --merge a.json b.json --json out.json combines them)
The shrink's options and set-up are bench_ofa_shrink.py's (imported from beside this file:
run as a script, its folder is first on sys.path).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_ofa_shrink import add_shrink_options, run_shrink

from wattwise.ofa import (
    SELECT_PROTOCOL,
    Budget,
    ElasticCNN,
    Selection,
    load_elastic,
    save_elastic,
    save_subnet,
    select,
)
from wattwise.protocol import LeverContext, measure, tracking
from wattwise.store import RunStore
from wattwise.tracking import Scope
from wattwise.train import LearningCurve, fit
from wattwise.workloads import DataSplit, load_dataset


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits - 1}e}")


def _select(
    net: ElasticCNN,
    data: DataSplit,
    budgets: list[Budget],
    *,
    seed: int,
    name: str,
    search: dict[str, Any],
) -> tuple[Selection, dict[str, Any]]:
    """One selection from an empty temporary store; its tracked run's energy (all of it:
    calibration, accuracy passes, measurements of candidates and choices)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/runs.sqlite"
        ctx = LeverContext(store=url, scope=Scope.PROCESS)
        sel = select(net, data, budgets, context=ctx, seed=seed, name=name, **search)
        run = RunStore(url).get_run(sel.run_id) if sel.run_id else None
    cost = {
        "energy_j": run.energy_j if run else 0.0,
        "uncertainty_j": run.uncertainty_j if run else 0.0,
        "provenance": run.provenance if run else "none",
        "run_duration_s": run.duration_s if run else 0.0,
        "seconds": sel.seconds,
        "measuring_seconds": sel.measuring_seconds,
        "measured": sel.measured,
        "confirmations": sel.confirmations,
        "limit_reached": sel.limit_reached,
        "energy_mode": sel.energy,
        "budgets": len(budgets),
        "accuracy_evaluations": sel.accuracy_evaluations,
        "accuracy_seconds": sel.accuracy_seconds,
        "accuracy_energy_j": sel.accuracy_energy_j,
        "predictors": [p.to_dict() for p in sel.predictors],
    }
    return sel, cost


def _budgets(first: Selection, quantiles: tuple[float, ...]) -> tuple[list[Budget], list[float]]:
    front = set(first.pareto_front)
    energies = sorted(c.energy_per_item_j.median for c in first.candidates if c.key in front)
    qs = [float(np.quantile(energies, q)) for q in quantiles]
    return [Budget(energy_per_item_j=_sig(e)) for e in qs], energies


def _remeasure(
    net: ElasticCNN, data: DataSplit, chosen: dict[str, Any], tmp: Path
) -> dict[str, dict[str, Any]]:
    """Each chosen sub-network exported, loaded back as a plain program (``.pt2``), and
    measured under the selection's protocol on the same one-input batch; beside it the
    in-memory export the selection measured (``net.export``), all interleaved, so a gap
    between the program and the module is told apart from the machine's drift."""
    x = data.val[0][0].unsqueeze(0)
    subjects = {}
    for text, config in chosen.items():
        stem = "".join(ch if ch.isalnum() else "_" for ch in text)
        module = net.export(config)
        path = save_subnet(module, x, tmp / f"subnet-{stem}.pt2")
        for kind, m in (("pt2", torch.export.load(path).module()), ("module", module)):

            def call(m: Any = m) -> None:
                with torch.inference_mode():
                    m(x)

            subjects[f"{text} {kind}"] = call
    ctx = LeverContext(store=False, scope=Scope.PROCESS)
    with tracking("ofa re-measure", ctx) as tracker:
        reps = measure(subjects, SELECT_PROTOCOL, tracker=tracker, items_per_call=1)

    def figures(label: str) -> dict[str, Any]:
        r = reps[label]
        return {
            "energy_per_item_j": r.energy_per_item_j.median,
            "energy_per_item_j_repeats": [m.energy_per_item_j for m in r.measurements],
            "uncertainty_per_item_j": r.total.uncertainty_j / r.total.items,
            "source": r.total.source,
        }

    return {text: figures(f"{text} pt2") | {"module": figures(f"{text} module")} for text in chosen}


def _alone(
    args: argparse.Namespace, net: ElasticCNN, data: DataSplit, config: Any, seed: int
) -> dict[str, Any]:
    """The shape trained alone from scratch to convergence (the learning-curve rule)."""
    torch.manual_seed(seed)
    alone = fit(
        net.fresh(config),
        data,
        epochs=args.max_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        stop=[LearningCurve()],
        seed=seed,
        device="cpu",
        context=LeverContext(store=False, scope=Scope.PROCESS),
        name="ofa alone",
    )
    secs = [e.duration_s for e in alone.epochs]
    return {
        "epochs": len(alone.epochs),
        "stop_reason": alone.stop_reason,
        "final_val_accuracy": alone.final_val_accuracy or 0.0,
        "best_val_accuracy": alone.best_val_accuracy,
        "energy_j": alone.total_energy_j,
        "uncertainty_j": alone.total_uncertainty_j,
        "energy_source": alone.energy_source,
        "duration_s": alone.duration_s,
        "epoch_s_median": statistics.median(secs),
        "epoch_s_max": max(secs),
    }


def _shrink_or_load(
    args: argparse.Namespace, data: DataSplit, seed: int
) -> tuple[ElasticCNN, dict[str, Any], dict[str, Any] | None]:
    """The elastic network, its shrink record (``ShrinkResult.to_dict()``) and, with
    ``--load``, the earlier run's seed record it came with (its budgets are reused)."""
    if args.load is not None:
        net = load_elastic(args.load)
        assert isinstance(net, ElasticCNN)
        earlier = json.loads(args.load_json.read_text())
        (old,) = [s for s in earlier["seeds"] if s["seed"] == seed]
        sh = old["shrink"]
        print(
            f"[seed {seed}] LOADED {args.load} and the shrink record of {args.load_json}: "
            f"{sh['total_energy_j']:.1f} +- {sh['total_uncertainty_j']:.1f} J",
            flush=True,
        )
        return net, sh, old
    ctx = LeverContext(store=False, scope=Scope.PROCESS)
    net, shrunk = run_shrink(args, data, ctx, seed, said=f"[seed {seed}] shrink ")
    for ph in shrunk.phases:
        print(
            f"  {ph.name:9s} {ph.epochs:3d} ep {ph.energy_j:8.1f} J {ph.duration_s:7.1f} s "
            f"({ph.duration_s / max(ph.epochs, 1):.2f} s/ep) largest "
            f"{ph.largest_val_accuracy:.3f} smallest {ph.smallest_val_accuracy:.3f}",
            flush=True,
        )
    print(
        f"  shrink total {shrunk.total_energy_j:.1f} +- {shrunk.total_uncertainty_j:.1f} J, "
        f"{shrunk.duration_s:.1f} s ({shrunk.energy_source})",
        flush=True,
    )
    return net, shrunk.to_dict(), None


def _deploy(
    args: argparse.Namespace, net: ElasticCNN, data: DataSplit, budgets: list[Budget], seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The five selections: with ``predicted``, ONE select call over all budgets (its
    predictor fitted once and shared; each budget charged an equal share of its run);
    with ``measured``, one call per budget, each its own deployment (as before)."""
    search = {
        "population": args.population,
        "generations": args.generations,
        "max_measured": args.max_measured,
        "confirm": args.confirm,
        "energy": args.energy,
        "calibration": args.calibration,
        "predict_margin": args.predict_margin,
    }
    if args.energy == "predicted":
        sel, cost = _select(net, data, budgets, seed=seed + 1, name="deploy all", search=search)
        share = {
            k: cost[k] / len(budgets) for k in ("energy_j", "uncertainty_j", "accuracy_energy_j")
        }
        pairs = [(c, cost | share | {"shared_by": len(budgets)}) for c in sel.choices]
        calls = {"one_call": cost}
    else:
        pairs, calls = [], {}
        for i, budget in enumerate(budgets):
            sel, cost = _select(
                net, data, [budget], seed=seed + 1 + i, name=f"deploy {budget.text}",
                search=search,
            )  # fmt: skip
            pairs.append((sel.choices[0], cost))
            calls[budget.text] = cost
    deployments: list[dict[str, Any]] = []
    chosen_configs: dict[str, Any] = {}
    for choice, cost in pairs:
        budget = choice.budget
        row: dict[str, Any] = {"budget": budget.text, "budget_j": budget.energy_per_item_j}
        row["selection"] = {k: v for k, v in cost.items() if k != "predictors"}
        row["meets_budget"] = choice.meets_budget
        row["rejected"] = list(choice.rejected)
        if choice.chosen is not None:
            c = choice.chosen
            chosen_configs[budget.text] = c.config
            row |= {
                "key": c.key,
                "params": c.params,
                "ofa_accuracy": c.accuracy,
                "selected_energy_per_item_j": c.energy_per_item_j.median,
                "selected_uncertainty_per_item_j": c.uncertainty_per_item_j,
                "energy_source": c.source,
            }
            if choice.confirmation is not None:
                row["confirmed_energy_per_item_j"] = choice.confirmation.energy_per_item_j.median
            if choice.prediction is not None:
                p = choice.prediction
                row["predicted_energy_per_item_j"] = p.predicted_energy_per_item_j
                row["predicted_sd_per_item_j"] = p.predicted_energy_sd_j
        else:
            row["note"] = choice.note
        print(f"  select {budget.text}: {json.dumps(row, default=str)}", flush=True)
        deployments.append(row)
    return deployments, chosen_configs, calls


def run_seed(args: argparse.Namespace, data: DataSplit, seed: int) -> dict[str, Any]:
    net, shrink, earlier = _shrink_or_load(args, data, seed)
    if earlier is not None and not args.fresh_budgets:  # the budgets of the run that trained it
        first_cost = earlier["budget_pass"]["cost"] | {"reused_from": str(args.load_json)}
        front = earlier["budget_pass"]["front_energies_per_item_j"]
        budgets = [Budget(energy_per_item_j=d["budget_j"]) for d in earlier["deployments"]]
    else:
        measure_all = {
            "population": args.population,
            "generations": args.generations,
            "max_measured": args.max_measured,
            "energy": "measured",
            "confirm": 0,
        }
        first, first_cost = _select(
            net, data, [Budget(energy_per_item_j=1.0), Budget(energy_per_item_j=1e-9)],
            seed=seed, name="budget pass", search=measure_all,
        )  # fmt: skip
        budgets, front = _budgets(first, args.quantiles)
    print(
        f"  budget pass: front {len(front)} points {front[0]:.3g}..{front[-1]:.3g} J; "
        f"budgets {[b.text for b in budgets]}",
        flush=True,
    )
    deployments, chosen_configs, calls = _deploy(args, net, data, budgets, seed)

    if args.save_dir is not None:
        save_elastic(net, args.save_dir / f"ofa-seed{seed}.pt")
    with tempfile.TemporaryDirectory() as tmp:
        remeasured = _remeasure(net, data, chosen_configs, Path(tmp)) if chosen_configs else {}
    for row in deployments:
        if row["budget"] in remeasured:
            r = remeasured[row["budget"]]
            row["remeasured"] = r
            row["remeasured_meets_budget"] = r["energy_per_item_j"] <= row["budget_j"]
            row["remeasured_module_meets_budget"] = (
                r["module"]["energy_per_item_j"] <= row["budget_j"]
            )
            print(f"  re-measured {row['budget']}: {json.dumps(r)}", flush=True)

    alone_by_key: dict[str, dict[str, Any]] = {}
    for row in deployments:
        if "key" not in row:
            continue
        if row["key"] not in alone_by_key:  # a shape two budgets chose is trained once
            alone_by_key[row["key"]] = _alone(args, net, data, chosen_configs[row["budget"]], seed)
            print(f"  alone {row['key']}: {json.dumps(alone_by_key[row['key']])}", flush=True)
        row["alone"] = alone_by_key[row["key"]]
        row["accuracy_gap_pp"] = 100 * (row["ofa_accuracy"] - row["alone"]["final_val_accuracy"])
    return {
        "seed": seed,
        "loaded": (
            {
                "network": str(args.load),
                "shrink_from": str(args.load_json),
                "budgets_from": "a new budget pass" if args.fresh_budgets else str(args.load_json),
            }
            if earlier is not None
            else None
        ),
        "shrink": shrink,
        "shrink_epoch_s": [p["duration_s"] / max(p["epochs"], 1) for p in shrink["phases"]],
        "budget_pass": {"cost": first_cost, "front_energies_per_item_j": front},
        "selection_calls": calls,
        "deployments": deployments,
        "alone": alone_by_key,
        "summary": summarize(
            shrink["total_energy_j"], shrink["total_uncertainty_j"], deployments, alone_by_key
        ),
    }


def summarize(
    shrink_j: float,
    shrink_u: float,
    deployments: list[dict[str, Any]],
    alone: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Totals, ratio, gaps and the break-even number of deployments of one seed; (b)
    counts each distinct chosen shape's training once."""
    sel_j = [d["selection"]["energy_j"] for d in deployments]
    sel_u = [d["selection"]["uncertainty_j"] for d in deployments]
    trained = [d for d in deployments if "alone" in d]
    fit_j = [a["energy_j"] for a in alone.values()]
    fit_u = [a["uncertainty_j"] for a in alone.values()]
    a_j, b_j = shrink_j + sum(sel_j), sum(fit_j)
    a_u, b_u = shrink_u + sum(sel_u), sum(fit_u)  # one meter model: added linearly
    ratio = a_j / b_j if b_j else math.inf
    mean_sel = statistics.mean(sel_j)
    mean_fit = statistics.mean(fit_j) if fit_j else 0.0
    saving = mean_fit - mean_sel
    break_even = math.floor(shrink_j / saving) + 1 if saving > 0 else None
    break_even_ratio = shrink_j / saving if saving > 0 else None
    gaps = [d["accuracy_gap_pp"] for d in trained]
    return {
        "a_total_j": a_j,
        "a_uncertainty_j": a_u,
        "b_total_j": b_j,
        "b_uncertainty_j": b_u,
        "distinct_shapes": len(alone),
        "ratio": ratio,
        "ratio_goal_met": ratio <= 0.5,
        "mean_selection_j": mean_sel,
        "mean_training_j": mean_fit,
        "break_even_deployments": break_even,
        "break_even_ratio": break_even_ratio,
        "accuracy_gaps_pp": gaps,
        "worst_gap_pp": min(gaps) if gaps else None,
        "accuracy_within_1_5pp_both_ways": bool(gaps) and all(abs(g) <= 1.5 for g in gaps),
        "accuracy_no_worse_than_1_5pp": bool(gaps) and all(g >= -1.5 for g in gaps),
        "all_met_selected": all(d["meets_budget"] for d in deployments),
        "all_met_remeasured": all(d.get("remeasured_meets_budget", False) for d in deployments),
        "met_selected": sum(bool(d["meets_budget"]) for d in deployments),
        "met_remeasured": sum(bool(d.get("remeasured_meets_budget", False)) for d in deployments),
        "met_remeasured_module": sum(
            bool(d.get("remeasured_module_meets_budget", False)) for d in deployments
        ),
    }


def aggregate(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst case over the seeds."""
    sums = [s["summary"] for s in seeds]
    breaks = [x["break_even_deployments"] for x in sums]
    gaps = [g for x in sums for g in x["accuracy_gaps_pp"]]
    return {
        "seeds": [s["seed"] for s in seeds],
        "ratio_median": statistics.median(x["ratio"] for x in sums),
        "ratio_worst": max(x["ratio"] for x in sums),
        "a_total_j_median": statistics.median(x["a_total_j"] for x in sums),
        "b_total_j_median": statistics.median(x["b_total_j"] for x in sums),
        "break_even_median": (statistics.median(b for b in breaks) if None not in breaks else None),
        "break_even_worst": max(breaks) if None not in breaks else None,
        "gap_pp_median": statistics.median(gaps) if gaps else None,
        "gap_pp_worst": min(gaps) if gaps else None,
        "budgets_met_remeasured": sum(
            d.get("remeasured_meets_budget", False) for s in seeds for d in s["deployments"]
        ),
        "budgets": sum(len(s["deployments"]) for s in seeds),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--seeds", type=_ints, default=(0,))
    add_shrink_options(p, width=(3, 20))
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--quantiles", type=_floats, default=(0.1, 0.3, 0.5, 0.7, 0.9))
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--generations", type=int, default=6)
    p.add_argument("--max-measured", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--energy", choices=("predicted", "measured"), default="predicted")
    p.add_argument("--confirm", type=int, default=3)
    p.add_argument("--calibration", type=int, default=12)
    p.add_argument("--predict-margin", type=float, default=1.0)
    p.add_argument(
        "--load", type=Path, help="reuse this saved elastic network instead of shrinking one"
    )
    p.add_argument(
        "--fresh-budgets",
        action="store_true",
        help="with --load: a new budget pass instead of the earlier run's budgets (their "
        "energies depend on the machine's state when measured)",
    )
    p.add_argument(
        "--load-json",
        type=Path,
        help="with --load: the benchmark JSON that trained it (its shrink energy and budgets)",
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--save-dir", type=Path, help="keep each seed's trained elastic network here")
    p.add_argument(
        "--merge", type=Path, nargs="+", help="combine these runs' JSON into --json, run nothing"
    )
    args = p.parse_args(argv)
    if (args.load is None) != (args.load_json is None):
        p.error("--load and --load-json go together")
    if args.merge:
        runs = [json.loads(f.read_text()) for f in args.merge]
        merged = runs[0] | {
            "command": [r["command"] for r in runs],
            "seconds": [r["seconds"] for r in runs],
            "seeds": [s for r in runs for s in r["seeds"]],
        }
        for seed in merged["seeds"]:  # the summary as this version computes it
            sh = seed["shrink"]
            seed["summary"] = summarize(
                sh["total_energy_j"], sh["total_uncertainty_j"], seed["deployments"], seed["alone"]
            )
        merged["aggregate"] = aggregate(merged["seeds"])
        print(json.dumps(merged["aggregate"], indent=2))
        if args.json is not None:
            args.json.write_text(json.dumps(merged, indent=2, default=str))
        return 0
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "command": "python benchmarks/bench_ofa.py " + " ".join(argv or sys.argv[1:]),
        "dataset": data.name,
        "plan": {
            "largest": args.largest,
            "kernel": args.kernel,
            "depth": args.depth,
            "width": args.width,
            "subnets": args.subnets,
        },
        "lr": args.lr,
        "batch_size": args.batch_size,
        "max_epochs": args.max_epochs,
        "stop": repr(LearningCurve()),
        "quantiles": args.quantiles,
        "select_protocol": SELECT_PROTOCOL.to_dict(),
        "search": {
            "population": args.population,
            "generations": args.generations,
            "max_measured": args.max_measured,
            "energy": args.energy,
            "confirm": args.confirm,
            "calibration": args.calibration,
            "predict_margin": args.predict_margin,
        },
        "seeds": [],
    }
    for seed in args.seeds:
        out["seeds"].append(run_seed(args, data, seed))
        out["seconds"] = time.perf_counter() - started
        s = out["seeds"][-1]["summary"]
        print(f"[seed {seed}] summary {json.dumps(s)}", flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps(out, indent=2, default=str))
    out["aggregate"] = aggregate(out["seeds"])
    print(f"aggregate {json.dumps(out['aggregate'])}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
