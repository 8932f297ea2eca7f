"""The README opens with exactly two set-up commands, and CI runs exactly those two."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)]


def _ci_lines() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]


def test_the_readme_opens_with_two_one_line_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("## ")]  # before the first section
    blocks = _blocks(head)
    assert len(blocks) == 2, blocks
    demo, tests = blocks
    assert "\n" not in demo and "\n" not in tests
    assert demo.endswith("wattwise demo"), demo
    assert "pytest" in tests and "'.[dev]'" in tests, tests
    # Each makes its own virtual environment and uses only it.
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && ")


def test_ci_runs_the_readme_commands_verbatim() -> None:
    demo, tests = _blocks((ROOT / "README.md").read_text())[:2]
    ci = _ci_lines()
    # The test command is a line of its own; the demo runs in a fresh clone, quick.
    assert tests in ci
    venv_demo = demo.removeprefix("python3 -m venv .venv && ")
    demo_lines = [ln for ln in ci if f"python3 -m venv .venv && {venv_demo} --quick" in ln]
    assert len(demo_lines) == 1, "CI must run the README's first command (with --quick)"
    assert demo_lines[0].startswith('( cd "$newuser/wattwise" && '), demo_lines[0]
    assert any(ln.startswith('git clone -q "$root" "$newuser/wattwise"') for ln in ci)
    # The README's order: the fresh install runs before the test environment exists.
    assert ci.index(demo_lines[0]) < ci.index(tests)


def test_the_readme_demo_extra_exists_and_brings_what_the_demo_imports() -> None:
    demo = _blocks((ROOT / "README.md").read_text())[0]
    extra = re.search(r"'\.\[(\w+)\]'", demo)
    assert extra is not None, demo
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extra.group(1) == "demo"
    assert table["demo"] == ["wattwise[torch,search]"]
