"""Every package's ``__all__`` lists exactly its public names (httpx's rule).

One test over every package under ``wattwise``, found by walking it, so that a new package is
checked without being added here. Packages that import their heavy parts on first use (a
module ``__getattr__``) list those names too, and every one must resolve. ``wattwise.cli`` is
the application rather than a library: its ``__all__`` names only its entry points.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import wattwise

# Imported by a package for its own typing, not exported.
_NOT_EXPORTED = {"annotations", "TYPE_CHECKING", "Any"}
# The command-line application: it imports its commands' wiring and exports only these.
_APPLICATIONS = {"wattwise.cli": {"app", "main"}}

PACKAGES = [
    "wattwise",
    *sorted(
        info.name
        for info in pkgutil.walk_packages(wattwise.__path__, prefix="wattwise.")
        if info.ispkg and not any(part.startswith("_") for part in info.name.split("."))
    ),
]


def test_every_package_is_checked() -> None:
    for name in ("meters", "tracking", "store", "carbon", "report", "demo", "infer", "search"):
        assert f"wattwise.{name}" in PACKAGES
    assert {"wattwise.studies", "wattwise.train", "wattwise.workloads"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    eager = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType)
    } - _NOT_EXPORTED
    exported = set(module.__all__)
    assert len(module.__all__) == len(exported), "a name is listed twice"
    for n in module.__all__:
        assert getattr(module, n) is not None, n
    if name in _APPLICATIONS:
        assert exported == _APPLICATIONS[name]
        return
    if "__getattr__" in vars(module):  # the names it resolves on first use are listed too
        assert eager <= exported
        with pytest.raises(AttributeError):
            _ = module.NoSuchThing
    else:
        assert exported - {"__version__"} == eager
