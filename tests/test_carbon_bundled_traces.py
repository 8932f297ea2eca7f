"""The hourly traces bundled for the demo and scheduling."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from wattwise._errors import ConfigError
from wattwise.carbon import bundled_trace, load_trace

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "carbon" / "hourly"
DATA = ROOT / "src" / "wattwise" / "carbon" / "data"


def test_bundled_traces_cover_2020_hourly() -> None:
    de = bundled_trace("de")
    fr = bundled_trace("FR")
    assert de.zone == "DE" and fr.zone == "FR"
    assert fr.start == datetime(2020, 1, 1, tzinfo=UTC)
    assert len(fr.values_g_per_kwh) == 366 * 24
    assert len(de.values_g_per_kwh) == 366 * 24
    # The source misses part of one hour in Germany: a gap, not a forward-filled value.
    gap = datetime(2020, 12, 19, 23, tzinfo=UTC).timestamp()
    assert de.gaps_s == ((gap, gap + 3600.0),) and fr.gaps_s == ()
    # Germany's grid is far more carbon-intensive than France's over the year.
    assert np.nanmean(de.values_g_per_kwh) > 3 * fr.values_g_per_kwh.mean()


def test_unknown_bundled_zone_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="bundled are DE, FR"):
        bundled_trace("PL")


def test_hourly_means_match_the_source() -> None:
    if not SOURCE.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    fine = load_trace(SOURCE / "fr_2020_ci.csv", zone="FR")
    hourly = bundled_trace("FR")
    t = datetime(2020, 6, 1, 12, tzinfo=UTC).timestamp()
    # The hourly mean of two 30-minute steps equals the integral over the hour / 1 h.
    step = fine.value_at(t) + fine.value_at(t + 1800)
    assert hourly.value_at(t) == pytest.approx(step / 2, abs=1e-3)


def test_build_script_reproduces_the_bundled_traces(tmp_path: Path) -> None:
    if not SOURCE.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_demo_traces.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for zone in ("de", "fr"):
        name = f"trace_{zone}_2020_hourly.csv"
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
