"""Selection of a sub-network per budget: budgets, the search against what was measured,
the store's cache of measured candidates, and the selection's record and front."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattwise._errors import ConfigError
from wattwise._records import FrontData, load_record
from wattwise.ofa import Budget, format_budget, parse_budget

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from wattwise.ofa import (  # noqa: E402
    CACHE_KIND,
    SELECTION_KIND,
    ElasticCNN,
    Selection,
    elastic_network,
    select,
)
from wattwise.protocol import LeverContext, Protocol, meters_from_spec  # noqa: E402
from wattwise.store import RunStore  # noqa: E402
from wattwise.workloads import DataSplit, load_dataset  # noqa: E402

#: A constant 20 W on the CPU for ten hours, as ``wattwise runs export --format csv`` writes.
TRACE = (
    "component,kind,method,sensor,counted,t_start_s,t_end_s,energy_j\n"
    "cpu,cpu,estimated,cpu-model,true,0,36000,720000\n"
)
#: Short windows: the logic is under test here, not the figures.
FAST = Protocol(repeats=2, warmup=1, min_time_s=0.0, min_calls=2, max_calls=3)

# -- budgets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("50uJ", Budget(energy_per_item_j=50e-6)),
        ("50µJ", Budget(energy_per_item_j=50e-6)),
        ("50μJ", Budget(energy_per_item_j=50e-6)),
        ("0.2mJ", Budget(energy_per_item_j=2e-4)),
        ("1e-4J", Budget(energy_per_item_j=1e-4)),
        (" 3 nJ ", Budget(energy_per_item_j=3e-9)),
        ("2ms", Budget(latency_s=2e-3)),
        ("500us", Budget(latency_s=500e-6)),
        ("0.01s", Budget(latency_s=0.01)),
    ],
)
def test_budgets_read_every_documented_form(text: str, budget: Budget) -> None:
    assert parse_budget(text) == budget
    assert parse_budget(format_budget(budget)) == budget


@pytest.mark.parametrize(
    "text", ["", "50", "uJ", "-1mJ", "0J", "5kJ", "2 bananas", "nanJ", "1e999J"]
)
def test_a_bad_budget_is_one_line_saying_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_budget(text)
    message = str(caught.value)
    assert "\n" not in message and "50uJ" in message and "2ms" in message


def test_formatting_picks_the_unit_a_person_reads() -> None:
    assert format_budget(parse_budget("0.05mJ")) == "50µJ"
    assert format_budget(parse_budget("2000us")) == "2ms"
    assert format_budget(parse_budget("3J")) == "3J"


def test_a_budget_is_one_quantity_positive_and_finite() -> None:
    for bad in ({}, {"energy_per_item_j": 1.0, "latency_s": 1.0}, {"latency_s": -1.0}):
        with pytest.raises(ConfigError):
            Budget(**bad)
    assert Budget(latency_s=0.002).allows(1e9, 0.002)
    assert not Budget(energy_per_item_j=1e-6).allows(2e-6, 0.0)


@settings(deadline=None)  # a busy shared machine: no per-example deadline
@given(
    st.floats(min_value=1e-15, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.booleans(),
)
def test_every_budget_reads_back_from_its_text(value: float, energy: bool) -> None:
    budget = Budget(energy_per_item_j=value) if energy else Budget(latency_s=value)
    text = format_budget(budget)
    assert parse_budget(text) == budget
    assert Budget.from_dict(json.loads(json.dumps(budget.to_dict()))) == budget


@settings(deadline=None)
@given(st.text(max_size=30))
def test_garbage_never_raises_anything_but_config_error(text: str) -> None:
    try:
        budget = parse_budget(text)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert budget.limit > 0 and math.isfinite(budget.limit)


# -- selection ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> DataSplit:
    return load_dataset("mnist1d:train=200,val=120")


@pytest.fixture(scope="module")
def net(data: DataSplit) -> ElasticCNN:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return elastic_network(
        data.input_shape,
        data.num_classes,
        stages=2,
        max_depth=2,
        widths=(8, 12),
        kernel_choices=(3, 5),
        expand_choices=(1.0, 2.0),
    )


@pytest.fixture
def context(tmp_path: Path, store_url: str) -> Any:
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    store = RunStore.open(store_url)
    yield LeverContext(meters=meters_from_spec(f"replay:{trace}"), store=store)
    store.close()


def _tiny(net: ElasticCNN) -> Any:
    """Six sub-networks: depth 1 or 2 per stage... with one kernel and expand ratio."""
    return net.space.restrict(kernel_choices=(3,), expand_choices=(1.0,))


def _run(net: ElasticCNN, data: DataSplit, budgets: list[Any], context: Any, **kw: Any) -> Any:
    kw.setdefault("space", _tiny(net))
    kw.setdefault("confirm", 0)  # the search under test; confirmation has its own tests
    kw.setdefault("energy", "measured")  # every candidate measured; the predictor: test_ofa_predict
    return select(net, data, budgets, context=context, protocol=FAST, **kw)


def test_exhaustive_finds_the_best_within_the_budget_among_the_measured(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    first = _run(net, data, ["1J"], context)
    assert first.search == "exhaustive" and first.space_size == 4
    assert len(first.candidates) == 4 == first.measured and first.cached == 0
    energies = sorted(c.energy_per_item_j.median for c in first.candidates)
    budget = Budget(energy_per_item_j=energies[1])  # two of the four fit
    sel = _run(net, data, [budget], context)
    choice = sel.choices[0]
    fitting = [c for c in sel.candidates if c.energy_per_item_j.median <= budget.limit]
    assert choice.chosen is not None and choice.meets_budget and choice.fitting == len(fitting)
    assert choice.chosen.energy_per_item_j.median <= budget.limit  # as measured
    assert choice.chosen.accuracy == max(c.accuracy for c in fitting)
    # every candidate says how it was measured, with its spread over the repeats
    for c in sel.candidates:
        assert c.source == "estimated (replay of cpu-model)"
        assert c.energy_per_item_j.n == FAST.repeats and c.latency_s.n == FAST.repeats
        assert c.uncertainty_per_item_j >= 0 and c.params > 0


def test_a_latency_budget_is_met_as_measured(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    sel = _run(net, data, ["10s"], context)
    chosen = sel.choices[0].chosen
    assert chosen is not None and chosen.latency_s.median <= 10
    assert chosen.accuracy == max(c.accuracy for c in sel.candidates)


def test_a_measured_candidate_is_read_back_not_measured_again(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    store = context.store
    assert isinstance(store, RunStore)
    first = _run(net, data, ["1J"], context)
    runs = len(store.list_runs())
    assert first.measured == 4 and first.run_id is not None
    again = _run(net, data, ["1J", "2J"], context)
    assert again.measured == 0 and again.cached == 4 and again.run_id is None
    assert len(store.list_runs()) == runs  # no measuring run at all
    assert all(c.cached for c in again.candidates)
    by_key = {c.key: c for c in first.candidates}
    for c in again.candidates:  # the figures measured the first time, with their run
        assert c.energy_per_item_j == by_key[c.key].energy_per_item_j
        assert c.run_id == first.run_id
    (cache,) = store.list_studies(kind=CACHE_KIND)
    assert [r.run_id for r in cache.runs] == [first.run_id]
    # another batch size is another measurement
    other = _run(net, data, ["1J"], context, batch_size=2)
    assert other.measured == 4 and other.cached == 0


def test_each_choice_is_confirmed_by_a_second_measurement(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    sel = _run(net, data, ["1J", "2J"], context, confirm=3)
    one, two = sel.choices
    assert one.chosen is not None and one.confirmation is not None
    assert one.confirmation.key == one.chosen.key and one.confirmation.fits(one.budget)
    assert one.confirmation.accuracy == one.chosen.accuracy
    assert one.confirmation.run_id == sel.run_id and one.meets_budget and not one.rejected
    # the same sub-network chosen for both budgets is measured again once
    assert two.chosen == one.chosen and sel.confirmations == 1
    assert any("confirming" in n for n in sel.notes)
    # all cached: the confirmation is still measured, now
    again = _run(net, data, ["1J"], context, confirm=1)
    assert again.measured == 0 and again.confirmations == 1 and again.run_id is not None
    with pytest.raises(ConfigError, match="confirm"):
        _run(net, data, ["1J"], context, confirm=-1)


def test_a_choice_that_fails_its_confirmation_gives_way_to_the_next(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    # The decision on recorded measurements: the two most accurate fitted when first
    # measured; measured again, the first no longer fits, the second does.
    from dataclasses import replace

    from wattwise.ofa._select import _confirmed
    from wattwise.protocol import summarize

    found = list(_run(net, data, ["1J"], context).candidates)
    ranked = sorted(found, key=lambda c: c.accuracy, reverse=True)
    top = max(c.energy_per_item_j.median for c in found)
    budget = Budget(energy_per_item_j=top * 1.01)  # every candidate fits at first
    over = summarize([top * 2] * 3)

    def remeasure(c: Any) -> Any:
        return replace(c, energy_per_item_j=over) if c.key == ranked[0].key else c

    choice = _confirmed(budget, found, remeasure, tries=3)
    assert choice.chosen is not None and choice.chosen.key == ranked[1].key
    assert choice.meets_budget and choice.rejected == (ranked[0].key,)
    assert "1 more accurate candidate(s)" in choice.note
    # none confirms within the tries: nothing is chosen, and the note says why
    none = _confirmed(budget, found, lambda c: replace(c, energy_per_item_j=over), tries=2)
    assert none.chosen is None and not none.meets_budget and len(none.rejected) == 2
    assert "margin" in none.note and none.fitting == len(found)


def test_a_budget_nothing_meets_is_said_not_guessed(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    sel = _run(net, data, ["1e-15J", "1J"], context)
    none, some = sel.choices
    assert none.chosen is None and not none.meets_budget and none.fitting == 0
    assert "needs" in none.note and format_budget(none.budget) in none.note
    assert some.meets_budget and not sel.all_met
    assert "no sub-network fits" in sel.describe(none)


def test_evolution_keeps_to_its_bound_and_to_the_budget(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    sel = _run(
        net, data, ["1J"], context, space=net.space, search="auto", population=4,
        generations=3, max_measured=10, seed=1,
    )  # fmt: skip
    assert sel.search == "evolution" and sel.space_size == 400
    assert sel.measured <= 10 and len(sel.candidates) == sel.measured
    assert sel.limit_reached == (sel.measured == 10)
    chosen = sel.choices[0].chosen
    assert chosen is not None and chosen.accuracy == max(c.accuracy for c in sel.candidates)
    with pytest.raises(ConfigError, match="more than the 10"):
        _run(net, data, ["1J"], context, space=net.space, search="exhaustive", max_measured=10)


def test_the_selection_is_stored_and_its_front_drawn(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    store = context.store
    assert isinstance(store, RunStore)
    sel = _run(net, data, ["1J", "1e-15J"], context)
    study = store.get_study(sel.study_id or "")
    assert study.kind == SELECTION_KIND and study.params["budgets"] == ["1J", "0.000001nJ"]
    assert [r.run_id for r in study.runs] == [sel.run_id]
    assert study.results is not None
    back = load_record(json.loads(json.dumps(study.results)))
    assert isinstance(back, Selection) and back == sel
    (front,) = sel.charts()
    assert isinstance(front, FrontData)
    assert len(front.labels) == len(sel.candidates) == len(front.energies)
    assert front.energies == tuple(c.energy_per_item_j.median for c in sel.candidates)
    chosen = sel.choices[0].chosen
    assert chosen is not None
    labelled = [lab for lab in front.labels if lab]
    assert labelled == ["≤ 1J"]
    assert front.labels[[c.key for c in sel.candidates].index(chosen.key)] == "≤ 1J"
    assert set(sel.pareto_front) <= {c.key for c in sel.candidates} and sel.pareto_front


def test_bad_selection_settings_are_refused_before_measuring(
    net: ElasticCNN, data: DataSplit, context: LeverContext
) -> None:
    for kw in ({"search": "grid"}, {"batch_size": 0}, {"population": 1}, {"max_measured": 0}):
        with pytest.raises(ConfigError):
            _run(net, data, ["1J"], context, **kw)
    with pytest.raises(ConfigError):
        _run(net, data, [], context)
    with pytest.raises(ConfigError, match="bad budget"):
        _run(net, data, ["fast"], context)
    store = context.store
    assert isinstance(store, RunStore) and store.list_runs() == []


@pytest.mark.slow
def test_the_exported_sub_network_runs_without_wattwise_classes(
    net: ElasticCNN, data: DataSplit, context: LeverContext, tmp_path: Path
) -> None:
    sel = _run(net, data, ["1J"], context, export_dir=tmp_path / "out")
    choice = sel.choices[0]
    assert choice.chosen is not None and choice.export_path is not None
    program = torch.export.load(choice.export_path).module()
    x = torch.stack([data.val[i][0] for i in range(5)])
    expected = net.export(choice.chosen.config).eval()(x)
    assert torch.allclose(program(x), expected, atol=1e-5)
