"""One provenance type: built from components, combined across runs, one string form."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wattwise import Provenance
from wattwise.meters._base import ComponentKind, Method, Source
from wattwise.tracking import ComponentEnergy


def ce(name: str, method: Method, sensor: str, counted: bool = True) -> ComponentEnergy:
    return ComponentEnergy(name, ComponentKind.CPU, Source(method, sensor), counted, 1.0, 0.0)


def test_a_window_names_its_counted_sensors_by_method_estimated_first() -> None:
    assert str(Provenance.from_components([ce("a", Method.MEASURED, "rapl")])) == (
        "measured (rapl)"
    )
    mixed = Provenance.from_components(
        [
            ce("a", Method.MEASURED, "rapl"),
            ce("b", Method.ESTIMATED, "ram-model"),
            ce("c", Method.MEASURED, "core", counted=False),
            ce("d", Method.MEASURED, "nvml"),
            ce("e", Method.MEASURED, "rapl"),
        ]
    )
    assert str(mixed) == "mixed: estimated (ram-model) + measured (rapl, nvml)"
    assert mixed.mixed and mixed.methods == (Method.ESTIMATED, Method.MEASURED)
    nothing = Provenance.from_components([ce("c", Method.MEASURED, "core", counted=False)])
    assert str(nothing) == "none (no counted component)" and not nothing.methods


def test_runs_combine_into_one_line_with_each_sensor_once() -> None:
    combined = Provenance.combine(
        ["measured (rapl)", None, "estimated (cpu-tdp)", "mixed: estimated (ram) + measured (rapl)"]
    )
    assert str(combined) == "mixed: estimated (cpu-tdp, ram) + measured (rapl)"
    assert str(Provenance.combine(["measured (rapl)", "measured (rapl)"])) == "measured (rapl)"
    assert str(Provenance.combine([])) == "none (no counted component)"
    assert str(Provenance.combine(["none recorded", "measured (rapl)"])) == "measured (rapl)"


def test_the_joiners_of_older_releases_are_read_back() -> None:
    old_search = "mixed: measured (rapl); estimated (cpu-tdp)"
    old_study = "measured (rapl) | mixed: estimated (ram) + measured (nvml)"
    assert str(Provenance.parse(old_search)) == "mixed: estimated (cpu-tdp) + measured (rapl)"
    assert str(Provenance.parse(old_study)) == "mixed: estimated (ram) + measured (rapl, nvml)"


def test_a_part_naming_no_method_is_kept_verbatim() -> None:
    p = Provenance.parse("mixed: measured (rapl) + a meter from elsewhere")
    assert p.other == ("a meter from elsewhere",)
    assert str(p) == "mixed: measured (rapl) + a meter from elsewhere"


_sensor = st.text(st.characters(categories=("L", "N"), include_characters="-._"), min_size=1)
_provenance = st.builds(
    Provenance,
    measured=st.lists(_sensor, unique=True, max_size=3).map(tuple),
    estimated=st.lists(_sensor, unique=True, max_size=3).map(tuple),
)


@given(_provenance)
def test_the_string_form_reads_back_to_the_same_provenance(p: Provenance) -> None:
    assert Provenance.parse(str(p)) == p


@given(_provenance, _provenance, _provenance)
def test_combining_is_associative_and_idempotent(
    a: Provenance, b: Provenance, c: Provenance
) -> None:
    assert (a + b) + c == a + (b + c)
    assert a + a == a
    assert str(Provenance.combine([a, str(b)])) == str(a + b)
