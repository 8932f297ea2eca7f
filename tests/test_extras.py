"""Optional dependencies: a missing extra is one line naming it, said before any work starts.

The child processes hide a package the way a machine without it behaves for ``import``
(``sys.modules[name] = None`` makes both ``import name`` and ``find_spec(name)`` fail).
The fresh virtual environment of ``.ci/run`` proves the same for the README's first command.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from wattwise import ConfigError
from wattwise._extras import EXTRAS, MissingExtra, missing_modules, require

ROOT = Path(__file__).resolve().parents[1]

CHILD = (
    "import sys\n"
    "for name in {blocked!r}:\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['wattwise', *{args!r}]\n"
    "from wattwise.cli import main\n"
    "main()\n"
)


def run_without(
    blocked: list[str], args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(blocked=blocked, args=args)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _declared(extra: str, table: dict[str, list[str]]) -> set[str]:
    """The distributions an extra of pyproject.toml installs, self-references expanded."""
    found: set[str] = set()
    for req in table[extra]:
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        if _norm(name) == "wattwise":
            inner = re.search(r"\[(.*)\]", req)
            assert inner is not None, req
            for sub in inner.group(1).split(","):
                found |= _declared(sub.strip(), table)
        else:
            found.add(_norm(name))
    return found


def test_require_names_what_is_missing_and_the_extra() -> None:
    with pytest.raises(MissingExtra) as caught:
        require("wattwise sweep", "search", ["yaml", "no_such_module_xyz"])
    message = str(caught.value)
    assert message == ("wattwise sweep needs no_such_module_xyz: pip install 'wattwise[search]'")
    # A ConfigError for the CLI's one-line exit, an ImportError for Python callers.
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, ImportError)
    assert "\n" not in message


def test_require_names_only_the_extras_that_bring_a_missing_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torchao", None)  # type: ignore[arg-type]
    with pytest.raises(MissingExtra, match=r"needs torchao: pip install 'wattwise\[torch\]'$"):
        require("wattwise sweep", "search,torch", ["yaml", "torchao"])
    require("wattwise sweep", "search,torch", ["yaml", "sys"])  # all present: no error
    with pytest.raises(ValueError, match="unknown extra"):
        require("x", "no-such-extra")


def test_missing_modules_sees_a_hidden_package(monkeypatch: pytest.MonkeyPatch) -> None:
    assert missing_modules(["json", "optuna"]) == []
    monkeypatch.setitem(sys.modules, "optuna", None)  # type: ignore[arg-type]
    assert missing_modules(["json", "optuna"]) == ["optuna"]


#: Extras kept out of ``dev`` (so not installed where the tests run), with their
#: distributions: MediaPipe's wheel is large, and the keypoint study runs without it;
#: amdsmi cannot be imported without ROCm (its tests use wattwise.testing's fake).
NOT_IN_DEV = {"keypoints": {"mediapipe"}, "amd": {"amdsmi"}}
#: Distributions that install their module as parts of a declared one, which requires them:
#: ``mlflow`` shares its import package with ``mlflow-skinny`` and ``mlflow-tracing``.
PARTS_OF = {"mlflow": {"mlflow-skinny", "mlflow-tracing"}}


def test_extras_table_matches_pyproject() -> None:
    """Every module EXTRAS names comes from a distribution that extra declares, and back."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    owners = packages_distributions()
    for extra, modules in EXTRAS.items():
        assert extra in table, f"EXTRAS names {extra!r}, which pyproject.toml lacks"
        declared = _declared(extra, table)
        if extra in NOT_IN_DEV:  # not installed here: the distributions by name
            assert declared == NOT_IN_DEV[extra], extra
            continue
        provided = {_norm(d) for m in modules for d in owners.get(m, [])}
        provided -= {part for d in declared for part in PARTS_OF.get(d, set())}
        assert provided, extra
        assert provided <= declared, (extra, provided - declared)
        assert declared <= provided, (extra, declared - provided)


@pytest.mark.parametrize(
    ("blocked", "args", "line"),
    [
        (
            ["optuna"],
            ["demo", "--quick"],
            "wattwise demo needs Optuna: pip install 'wattwise[demo]'",
        ),
        (
            ["torch"],
            ["train", "--model", "mlp", "--epochs", "1"],
            "wattwise train needs PyTorch: pip install 'wattwise[torch]'",
        ),
        (
            ["optuna", "torch"],
            ["sweep", "compare", "--trials", "1"],
            "wattwise sweep needs Optuna and PyTorch: pip install 'wattwise[search,torch]'",
        ),
        (
            ["yaml"],
            ["sweep", "space"],
            "wattwise sweep space needs PyYAML: pip install 'wattwise[search]'",
        ),
        (["torchvision"], ["zoo"], "wattwise zoo needs torchvision: pip install 'wattwise[torch]'"),
        (
            ["torchao"],
            ["infer", "quantize", "--model", "mlp"],
            "wattwise infer quantize needs torchao: pip install 'wattwise[torch]'",
        ),
    ],
)
def test_a_command_missing_its_extra_says_so_in_one_line_before_any_work(
    blocked: list[str],
    args: list[str],
    line: str,
    child_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = dict(child_env)
    store = tmp_path / "store" / "runs.sqlite"
    env["WATTWISE_STORE"] = str(store)
    proc = run_without(blocked, args, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [f"error: {line}"], proc.stderr
    assert proc.stdout == ""
    # Nothing was started: no report folder, no store.
    assert not (tmp_path / "wattwise-report").exists()
    assert not store.exists()


def test_the_python_api_says_which_extra_on_import(
    child_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys\nsys.modules['optuna'] = None\n"
        "try:\n    import wattwise.search\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "MissingExtra wattwise.search needs Optuna: pip install 'wattwise[search]'"
    )
