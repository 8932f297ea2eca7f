"""One way for the tests to run the real ``wattwise`` command in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["one_error_line", "wattwise"]


def wattwise(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wattwise ARGS`` with ``env``; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "wattwise", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line on stderr; fails the test on anything else there."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]
