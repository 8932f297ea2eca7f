"""Every package's ``__all__`` lists exactly its public names (httpx's rule)."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "wattwise",
    "wattwise.meters",
    "wattwise.tracking",
    "wattwise.store",
    "wattwise.carbon",
    "wattwise.report",
    "wattwise.demo",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations"
    }
    assert set(module.__all__) == public | ({"__version__"} & set(module.__all__))
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
