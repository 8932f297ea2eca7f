"""The RAPL meter's multi-die handling, end to end through ``wattwise`` in a child process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests._cli import wattwise

from wattwise.testing._fake_powercap import FakePowercap

AMD_RANGE_UJ = 65_535_999_999  # 2^32 ticks of 2^-16 J


@pytest.mark.parametrize("mirrored", [True, False])
def test_run_on_a_multi_die_package(
    child_env: dict[str, str], tmp_path: Path, mirrored: bool
) -> None:
    fake = FakePowercap(tmp_path / "sys")
    dies = fake.add_multi_die_socket(2, mirrored=mirrored, max_energy_range_uj=AMD_RANGE_UJ)
    env = dict(child_env, WATTWISE_POWERCAP_ROOT=str(fake.root))

    meters = wattwise(env, "meters", "--json")
    assert meters.returncode == 0, meters.stderr
    rapl = next(m for m in json.loads(meters.stdout)["meters"] if m["meter"] == "rapl")
    assert ("mirrors cpu:package-0-die-0" in rapl["reason"]) is mirrored

    # Mirrored: one 40 W counter seen through both zones. Independent: 40 W on each die.
    power_w = {dies[0]: 40.0} if mirrored else {dies[0]: 40.0, dies[1]: 40.0}
    with fake.drive(power_w):
        proc = wattwise(env, "run", "--json", "--", "sleep", "1")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    cpu = {c["name"]: c for c in run["components"] if c["kind"] == "cpu"}
    assert cpu["cpu:package-0-die-1"]["counted"] is not mirrored
    counted_j = sum(c["energy_j"] for c in cpu.values() if c["counted"])
    expected_w = 40.0 if mirrored else 80.0  # before the fix, mirrored dies gave 80 W
    assert counted_j == pytest.approx(expected_w * run["duration_s"], rel=0.15)
