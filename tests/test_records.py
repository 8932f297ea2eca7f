"""The record base: every stored result round-trips through its JSON, and a document of
another kind or version is refused."""

from __future__ import annotations

import dataclasses
import enum
import json
import tempfile
import types
import typing
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattwise._records import Record, RecordError, load_record
from wattwise.demo import _records as demo_records
from wattwise.infer import _records as infer_records
from wattwise.infer import _sweep_record as infer_sweep_record
from wattwise.protocol import Measurement, _stats
from wattwise.protocol import _measure as protocol_measure
from wattwise.search import _records as search_records
from wattwise.search import builtin_space
from wattwise.store import RunStore
from wattwise.studies import _records as studies_records
from wattwise.train import _records as train_records

_FLOATS = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
_INTS = st.integers(min_value=1, max_value=1000)
_TEXT = st.text(min_size=1, max_size=8)
_JSON_VALUES = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _TEXT)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a field typed ``hint`` (finite, positive numbers: derived figures divide)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*(strategy_for(a) for a in args))
    if hint is type(None):
        return st.none()
    if isinstance(hint, type) and issubclass(hint, Record):
        return records(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), min_size=1, max_size=3).map(tuple)
        return st.tuples(*(strategy_for(a) for a in args))
    if origin is dict:
        value = _JSON_VALUES if args[1] is Any else strategy_for(args[1])
        return st.dictionaries(_TEXT, value, max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: _INTS,
        float: _FLOATS,
        str: _TEXT,
        Any: _JSON_VALUES,
    }
    return simple[hint]


#: Fields whose values must agree with others for the derived figures to exist.
_FIXED: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    infer_records.BatchingResult: {"best": st.none()},
    infer_records.QuantizationResult: {"best": st.none()},
    _stats.Comparison: {"test": st.sampled_from(_stats.TESTS)},
    search_records.Comparison: {
        "space": st.sampled_from([builtin_space("cnn"), builtin_space("mlp")])
    },
}


def records(cls: type[Record]) -> st.SearchStrategy[Any]:
    """Records of ``cls`` with every field drawn from its type hint."""
    hints = typing.get_type_hints(cls)
    fixed = _FIXED.get(cls, {})
    fields = {
        f.name: fixed[f.name] if f.name in fixed else strategy_for(hints[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and f.metadata.get("json", True)
    }
    built = st.builds(cls, **fields)
    if cls is infer_records.QuantizationResult:
        # fp32 first: the others' ratios are to it.
        return built.map(
            lambda r: dataclasses.replace(
                r, variants=(dataclasses.replace(r.variants[0], variant="fp32"), *r.variants[1:])
            )
        )
    return built


def _record_types(*modules: types.ModuleType) -> list[type[Record]]:
    return [
        obj
        for m in modules
        for name in m.__all__
        if isinstance(obj := getattr(m, name), type)
        and issubclass(obj, Record)
        and dataclasses.is_dataclass(obj)
    ]


RECORD_TYPES = _record_types(
    infer_records,
    infer_sweep_record,
    studies_records,
    search_records,
    _stats,
    protocol_measure,
    train_records,
    demo_records,
)


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_record_round_trips_through_its_json(cls: type[Record], data: st.DataObject) -> None:
    record = data.draw(records(cls))
    document = json.loads(json.dumps(record.to_dict()))
    assert cls.from_dict(document) == record
    if cls.kind:
        assert document["kind"] == cls.kind and document["schema_version"] == cls.schema_version
        assert load_record(document) == record


KINDED = [cls for cls in RECORD_TYPES if cls.kind]


def test_every_stored_result_type_has_a_kind() -> None:
    kinds = {cls.kind for cls in KINDED}
    assert {"architectures", "layers", "environments", "batching", "quantization", "zoo"} <= kinds
    assert {"sweep", "sweep-compare", "training"} <= kinds


@pytest.mark.parametrize("cls", KINDED, ids=lambda c: c.__name__)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_what_the_store_hands_back_loads_as_the_typed_record(
    cls: type[Record], data: st.DataObject
) -> None:
    record = data.draw(records(cls))
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore.open(str(Path(folder) / "runs.sqlite"))
        try:
            study_id = uuid.uuid4().hex
            store.create_study(study_id=study_id, kind=cls.kind, name="n", params={})
            store.finish_study(study_id, record.to_dict())
            stored = store.get_study(study_id).results
        finally:
            store.close()
    assert stored is not None
    loaded = load_record(stored)
    assert type(loaded) is cls and loaded == record


def test_field_names_are_the_json_keys() -> None:
    m = Measurement(2.0, 0.2, 4.0, 5, 4, "estimated (cpu-model)")
    d = m.to_dict()
    assert {f.name for f in dataclasses.fields(m)} <= set(d)
    assert d["energy_per_item_j"] == pytest.approx(0.1)  # derived, written for readers


def test_another_kind_or_version_is_refused() -> None:
    m = Measurement(2.0, 0.2, 4.0, 5, 4, "estimated (cpu-model)")
    entry = infer_records.ZooEntry("m", "f", 2016, 70.0, 1.0, 10, 224, m)
    zoo = infer_records.ZooResult((entry,), 4, None, {}, (), "run", "estimated (cpu-model)")
    doc = zoo.to_dict()
    with pytest.raises(RecordError, match="expected a 'batching' record, got kind 'zoo'"):
        infer_records.BatchingResult.from_dict(doc)
    with pytest.raises(RecordError, match="schema version 0; this wattwise reads version 1"):
        infer_records.ZooResult.from_dict({**doc, "schema_version": 0})
    with pytest.raises(RecordError, match="no record of kind 'nonsense'"):
        load_record({**doc, "kind": "nonsense"})
    with pytest.raises(RecordError, match=r"ZooResult\.entries: expected a list, got str"):
        infer_records.ZooResult.from_dict({**doc, "entries": "none"})
    with pytest.raises(RecordError, match="Summary: a summary needs at least one value"):
        _stats.Summary.from_dict({"values": []})
    with pytest.raises(RecordError, match="'liters' is not a valid Unit"):
        demo_records.LeverOutcome.from_dict({**_lever().to_dict(), "unit": "liters"})
    del doc["batch_size"]
    with pytest.raises(RecordError, match="field 'batch_size' is missing"):
        infer_records.ZooResult.from_dict(doc)


def _lever() -> demo_records.LeverOutcome:
    return demo_records.LeverOutcome(
        "start later", "start now", 4.0, 3.0, None, "trace", demo_records.Unit.G_CO2E
    )


def test_a_lever_carries_its_value_with_its_unit() -> None:
    d = _lever().to_dict()
    assert (d["baseline_value"], d["lever_value"], d["unit"]) == (4.0, 3.0, "gCO2e")
    assert not any(k.endswith("_j") for k in d)  # grams are never in a joule field
    assert d["saving_frac"] == pytest.approx(0.25)
    assert demo_records.LeverOutcome.from_dict(d).unit is demo_records.Unit.G_CO2E
