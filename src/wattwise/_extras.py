"""Optional dependencies: which extra brings which module, checked before any work starts.

wattwise's core needs no PyTorch. The commands and functions that do need an optional
package call :func:`require` first, so a missing package is one line naming the command and
the extra to install (``wattwise sweep needs Optuna: pip install 'wattwise[search]'``) at
once, never a traceback after minutes of training. The check looks the modules up
(:func:`importlib.util.find_spec`) without importing them, so it costs microseconds.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from wattwise._errors import ConfigError

__all__ = ["EXTRAS", "MissingExtra", "missing_modules", "require"]

#: The modules each extra of ``pyproject.toml`` brings, by import name (keep in step with it).
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "torchvision", "sklearn", "scipy", "tensorboard", "torchao"),
    "search": ("optuna", "yaml", "scipy"),
    "nvidia": ("pynvml",),
    "amd": ("amdsmi",),
    "postgres": ("psycopg",),
    "parquet": ("pyarrow",),
    "lightning": ("lightning",),
    "keras": ("keras",),
    "hf": ("transformers", "accelerate"),
    "snn": ("snntorch",),
    "keypoints": ("mediapipe",),
    "mlflow": ("mlflow",),
    "prometheus": ("prometheus_client",),
}
# The main job: training and every lever, the search included.
EXTRAS["demo"] = tuple(dict.fromkeys(EXTRAS["torch"] + EXTRAS["search"]))

#: What a person calls each module.
_DISPLAY = {
    "torch": "PyTorch",
    "snntorch": "snntorch",
    "torchvision": "torchvision",
    "sklearn": "scikit-learn",
    "scipy": "SciPy",
    "tensorboard": "TensorBoard",
    "torchao": "torchao",
    "optuna": "Optuna",
    "yaml": "PyYAML",
    "pynvml": "nvidia-ml-py",
    "amdsmi": "amdsmi",
    "psycopg": "psycopg",
    "pyarrow": "pyarrow",
    "lightning": "Lightning",
    "keras": "Keras",
    "transformers": "Transformers",
    "accelerate": "Accelerate",
    "mediapipe": "MediaPipe",
    "mlflow": "MLflow",
    "prometheus_client": "prometheus-client",
}


class MissingExtra(ConfigError, ImportError):
    """An optional package that this command or function needs is not installed.

    Both a :class:`~wattwise.ConfigError` (the CLI prints it as one line) and an
    :class:`ImportError` (what Python code expects of a missing package).
    """


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a None in sys.modules
        return False


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The top-level import names among ``modules`` that cannot be imported here."""
    return [m for m in dict.fromkeys(modules) if not _present(m)]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def require(what: str, extra: str, modules: Iterable[str] | None = None) -> None:
    """Raise :class:`MissingExtra` unless every module ``what`` needs can be imported.

    Args:
        what: who needs them, as the user called it (``"wattwise sweep"``,
            ``"TensorBoard logging"``).
        extra: the extra of ``pyproject.toml`` that installs them, or several joined by
            commas (``"search,torch"``).
        modules: the import names needed; all of the extras' modules when omitted.

    Raises:
        MissingExtra: one line naming what is missing and the pip command that installs it.
        ValueError: ``extra`` names an extra that does not exist (a bug of the caller).
    """
    extras = [e.strip() for e in extra.split(",")]
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extra {unknown[0]!r}")
    wanted = [m for e in extras for m in EXTRAS[e]] if modules is None else list(modules)
    missing = missing_modules(wanted)
    if missing:
        names = _join([_DISPLAY.get(m, m) for m in missing])
        # Name only the extras that bring a missing module, in the order given.
        needed = [e for e in extras if any(m in EXTRAS[e] for m in missing)] or extras
        raise MissingExtra(f"{what} needs {names}: pip install 'wattwise[{','.join(needed)}]'")
