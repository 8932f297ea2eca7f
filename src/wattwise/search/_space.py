"""Search spaces: which hyperparameters a search may set, their ranges, and the grid.

A space is read from YAML and checked before any trial runs, so a typo fails at once with
the file and the key, never as a crashed trial half-way through a search::

    model: cnn          # optional: the model family the space is for
    epochs: 9           # epochs of a full trial (the most a pruner lets a trial run)
    min_epochs: 1       # optional: the fewest epochs before a pruner may stop a trial
    params:
      lr: {type: float, low: 0.0003, high: 0.03, log: true, grid: [0.001, 0.01]}
      batch_size: {type: categorical, choices: [16, 32, 64, 128]}
      width: {type: int, low: 8, high: 32, step: 8}
      optimizer: [adam, sgd]          # a bare list is a categorical parameter

Parameter names are those the objective knows how to apply: ``lr``, ``batch_size`` and
``optimizer`` go to the training loop; ``depth`` and ``width`` are options of the built-in
``mlp``, ``cnn`` and ``cnn1d`` models (``kernel`` of ``cnn1d``). ``grid`` lists the values
grid search tries; without it, categorical parameters use every choice, integers every value
when there are at most four, and otherwise three points at the centres of three equal
(log-)cells of the range.

Why ~570 lines: the parameter types, the grid and the YAML reader with its one-line errors
(file and key) are one format; half of the module is that reader's checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wattwise._errors import ConfigError, DataFileError
from wattwise.workloads._spec import split_spec

if TYPE_CHECKING:
    import optuna

__all__ = [
    "BUILTIN_SPACES",
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "Param",
    "SearchSpace",
    "builtin_space",
    "load_space",
]

Choice = str | int | float | bool

#: Parameters the training loop takes, and the built-in models' options.
TRAINING_PARAMS = ("lr", "batch_size", "optimizer")
MODEL_PARAMS = {
    "mlp": ("depth", "width"),
    "cnn": ("depth", "width"),
    "cnn1d": ("depth", "width", "kernel"),
}

_TOP_KEYS = ("model", "epochs", "min_epochs", "params")
_KEYS = {
    "float": ("type", "low", "high", "log", "grid"),
    "int": ("type", "low", "high", "step", "log", "grid"),
    "categorical": ("type", "choices", "grid"),
}
# Points of a default grid, as fractions of the (log-)range: the centres of three cells, so
# the grid never sits on the edges, where learning rates are usually worst.
_DEFAULT_GRID_FRACTIONS = (1 / 6, 1 / 2, 5 / 6)
_MAX_FULL_INT_GRID = 4


@dataclass(frozen=True)
class FloatParam:
    """A real-valued parameter in ``[low, high]``.

    Attributes:
        name: the parameter (``lr``).
        low: smallest value.
        high: largest value.
        log: sample on a log scale.
        grid: values for grid search (empty: the default grid).
    """

    name: str
    low: float
    high: float
    log: bool = False
    grid: tuple[float, ...] = ()

    def suggest(self, trial: optuna.Trial) -> float:
        """Ask a trial for a value."""
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def grid_values(self) -> tuple[float, ...]:
        """The values grid search tries."""
        if self.grid:
            return self.grid
        return tuple(float(f"{v:.3g}") for v in _centres(self.low, self.high, self.log))

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form."""
        out: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.grid:
            out["grid"] = list(self.grid)
        return out


@dataclass(frozen=True)
class IntParam:
    """An integer parameter in ``[low, high]`` on a step.

    Attributes:
        name: the parameter (``width``).
        low: smallest value.
        high: largest value.
        step: spacing of the values (1 with ``log``).
        log: sample on a log scale.
        grid: values for grid search (empty: the default grid).
    """

    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False
    grid: tuple[int, ...] = ()

    def suggest(self, trial: optuna.Trial) -> int:
        """Ask a trial for a value."""
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> tuple[int, ...]:
        """The values grid search tries."""
        if self.grid:
            return self.grid
        values = list(range(self.low, self.high + 1, self.step))
        if len(values) <= _MAX_FULL_INT_GRID:
            return tuple(values)
        picked: list[int] = []
        for v in _centres(self.low, self.high, self.log):
            snapped = self.low + round((v - self.low) / self.step) * self.step
            if snapped not in picked:
                picked.append(snapped)
        return tuple(picked)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form."""
        out: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high}
        if self.step != 1:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        if self.grid:
            out["grid"] = list(self.grid)
        return out


@dataclass(frozen=True)
class CategoricalParam:
    """A parameter taking one of a list of values.

    Attributes:
        name: the parameter (``optimizer``).
        choices: the values.
        grid: values for grid search (empty: every choice).
    """

    name: str
    choices: tuple[Choice, ...]
    grid: tuple[Choice, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Choice:
        """Ask a trial for a value."""
        value = trial.suggest_categorical(self.name, self.choices)
        assert value is not None  # the choices hold no None
        return value

    def grid_values(self) -> tuple[Choice, ...]:
        """The values grid search tries."""
        return self.grid or self.choices

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form."""
        out: dict[str, Any] = {"type": "categorical", "choices": list(self.choices)}
        if self.grid:
            out["grid"] = list(self.grid)
        return out


Param = FloatParam | IntParam | CategoricalParam


def _centres(low: float, high: float, log: bool) -> list[float]:
    if log:
        a, b = math.log(low), math.log(high)
        return [math.exp(a + f * (b - a)) for f in _DEFAULT_GRID_FRACTIONS]
    return [low + f * (high - low) for f in _DEFAULT_GRID_FRACTIONS]


@dataclass(frozen=True)
class SearchSpace:
    """The hyperparameters a search may set, and how long a full trial trains.

    Attributes:
        params: the parameters, in file order.
        epochs: epochs of a full trial; pruners stop trials before it.
        min_epochs: epochs a trial runs before a pruner may stop it (Hyperband's and ASHA's
            minimum resource).
        model: the model family the space was written for, if it says.
        source: where it came from (a file path, or ``built-in space for cnn``).
    """

    params: tuple[Param, ...]
    epochs: int
    min_epochs: int = 1
    model: str | None = None
    source: str = "<space>"

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names."""
        return tuple(p.name for p in self.params)

    def suggest(self, trial: optuna.Trial) -> dict[str, Choice]:
        """Ask a trial for a value of every parameter."""
        return {p.name: p.suggest(trial) for p in self.params}

    def grid(self) -> dict[str, list[Choice]]:
        """The grid: parameter -> values (Optuna's ``GridSampler`` form)."""
        return {p.name: list(p.grid_values()) for p in self.params}

    @property
    def grid_size(self) -> int:
        """Points in the grid (the product of the value counts)."""
        return math.prod(len(p.grid_values()) for p in self.params)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form (what :func:`load_space` reads)."""
        out: dict[str, Any] = {}
        if self.model is not None:
            out["model"] = self.model
        out["epochs"] = self.epochs
        out["min_epochs"] = self.min_epochs
        out["params"] = {p.name: p.to_dict() for p in self.params}
        return out

    def to_yaml(self) -> str:
        """The space as YAML."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<space>") -> SearchSpace:
        """Read and check a space from its YAML/JSON form.

        Raises:
            DataFileError: a missing, unknown or bad key (the message names ``source`` and
                the key).
        """
        return _parse(data, source)

    def check_model(self, model: str) -> None:
        """Check that every parameter can be applied to ``model`` (a model spec).

        Raises:
            DataFileError: the space was written for another model, or a parameter is
                neither a training parameter nor an option of the model.
        """
        name, options = split_spec(model)
        if self.model is not None and split_spec(self.model)[0] != name:
            raise DataFileError(
                f"{self.source}: model: the space is for {self.model}, not for {model}"
            )
        known_model = MODEL_PARAMS.get(name, ())
        given = {part.partition("=")[0].strip().lower() for part in options.split(",") if part}
        for p in self.params:
            if p.name in TRAINING_PARAMS:
                continue
            if p.name not in known_model:
                accepted = ", ".join(TRAINING_PARAMS + known_model)
                raise DataFileError(
                    f"{self.source}: params.{p.name}: not a parameter of training or of "
                    f"model {name} (accepted: {accepted})"
                )
            if p.name in given:
                raise DataFileError(
                    f"{self.source}: params.{p.name}: also fixed in the model spec {model!r}; "
                    "set it in one place"
                )
            if name == "cnn" and p.name == "depth" and _lowest(p) < 1:
                raise DataFileError(f"{self.source}: params.depth: a cnn needs depth >= 1")


def load_space(path: str | Path, *, model: str | None = None) -> SearchSpace:
    """Read a space from a YAML file and check it (for ``model`` too, when given).

    Raises:
        DataFileError: the file is missing, is not YAML, or a key is wrong (the message
            names the file, and the line or the key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"cannot read search space {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DataFileError(f"{where}: not valid YAML: {problem}") from None
    space = _parse(data, str(path))
    if model is not None:
        space.check_model(model)
    return space


#: The built-in spaces, one per built-in model, in their YAML/JSON form.
BUILTIN_SPACES: dict[str, dict[str, Any]] = {
    # A full grid of 2 x 2 x 2 x 2 = 16 points; the other strategies search the ranges.
    "cnn": {
        "model": "cnn",
        "epochs": 9,
        "min_epochs": 1,
        "params": {
            "lr": {"type": "float", "low": 3e-4, "high": 3e-2, "log": True, "grid": [1e-3, 1e-2]},
            "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128], "grid": [32, 128]},
            "width": {"type": "int", "low": 8, "high": 32, "step": 8, "grid": [8, 32]},
            "depth": {"type": "int", "low": 1, "high": 3, "grid": [1, 2]},
        },
    },
    # mnist1d's 1-D CNN: 16 grid points; 9 epochs a full trial, so Hyperband's and ASHA's
    # rungs (reduction factor 3) fall at 1, 3 and 9 epochs.
    "cnn1d": {
        "model": "cnn1d",
        "epochs": 9,
        "min_epochs": 1,
        "params": {
            "lr": {"type": "float", "low": 3e-4, "high": 3e-2, "log": True, "grid": [1e-3, 1e-2]},
            "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128], "grid": [32, 128]},
            "width": {"type": "int", "low": 16, "high": 64, "step": 16, "grid": [16, 64]},
            "depth": {"type": "int", "low": 2, "high": 4, "grid": [2, 3]},
        },
    },
    "mlp": {
        "model": "mlp",
        "epochs": 9,
        "min_epochs": 1,
        "params": {
            "lr": {"type": "float", "low": 3e-4, "high": 3e-2, "log": True, "grid": [1e-3, 1e-2]},
            "batch_size": {"type": "categorical", "choices": [16, 32, 64, 128], "grid": [32, 128]},
            "width": {"type": "int", "low": 32, "high": 256, "log": True, "grid": [64, 256]},
            "depth": {"type": "int", "low": 1, "high": 3, "grid": [1, 2]},
        },
    },
}


def builtin_space(model: str) -> SearchSpace:
    """The built-in space of a built-in model (``mlp``, ``cnn``; options after a colon are
    allowed when the space does not set them).

    Raises:
        ConfigError: no built-in space for this model.
        DataFileError: the model spec fixes a parameter the space searches.
    """
    name, _ = split_spec(model)
    data = BUILTIN_SPACES.get(name)
    if data is None:
        raise ConfigError(
            f"no built-in search space for model {name!r} (there are: "
            f"{', '.join(BUILTIN_SPACES)}): write one and pass it as --space FILE "
            "(start from `wattwise sweep space --model cnn`)"
        )
    space = _parse(data, f"built-in space for {name}")
    space.check_model(model)
    return space


# -- parsing --------------------------------------------------------------------------------


def _parse(data: Any, source: str) -> SearchSpace:
    if not isinstance(data, Mapping):
        raise DataFileError(
            f"{source}: a search space is a mapping with keys {', '.join(_TOP_KEYS)}, "
            f"got {_kind(data)}"
        )
    _no_unknown(data, _TOP_KEYS, source, "")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise DataFileError(f"{source}: model: expected a model name, got {_kind(model)}")
    if "epochs" not in data:
        raise DataFileError(f"{source}: epochs: missing (epochs of a full trial, e.g. 9)")
    epochs = _int(data["epochs"], source, "epochs")
    if epochs < 1:
        raise DataFileError(f"{source}: epochs: must be >= 1, got {epochs}")
    min_epochs = _int(data.get("min_epochs", 1), source, "min_epochs")
    if not 1 <= min_epochs <= epochs:
        raise DataFileError(
            f"{source}: min_epochs: must be between 1 and epochs ({epochs}), got {min_epochs}"
        )
    raw = data.get("params")
    if not isinstance(raw, Mapping) or not raw:
        raise DataFileError(
            f"{source}: params: expected a mapping of parameter name -> range, got {_kind(raw)}"
        )
    params: list[Param] = []
    for name, spec in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise DataFileError(f"{source}: params: bad parameter name {name!r}")
        params.append(_param(name, spec, source))
    return SearchSpace(tuple(params), epochs, min_epochs, model, source)


def _param(name: str, spec: Any, source: str) -> Param:
    key = f"params.{name}"
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, Mapping):
        raise DataFileError(
            f"{source}: {key}: expected a mapping (type, low, high...) or a list of choices, "
            f"got {_kind(spec)}"
        )
    kind = spec.get("type")
    if kind not in _KEYS:
        raise DataFileError(
            f"{source}: {key}.type: expected float, int or categorical, got {kind!r}"
        )
    _no_unknown(spec, _KEYS[kind], source, key + ".")
    param: Param
    if kind == "categorical":
        choices = _choices(spec.get("choices"), source, f"{key}.choices")
        grid = tuple(_choices(spec["grid"], source, f"{key}.grid")) if "grid" in spec else ()
        outside = [g for g in grid if g not in choices]
        if outside:
            raise DataFileError(f"{source}: {key}.grid: {outside[0]!r} is not one of the choices")
        param = CategoricalParam(name, tuple(choices), grid)
    elif kind == "float":
        low = _float(_required(spec, "low", source, key), source, f"{key}.low")
        high = _float(_required(spec, "high", source, key), source, f"{key}.high")
        log = _bool(spec.get("log", False), source, f"{key}.log")
        if not low < high:
            raise DataFileError(f"{source}: {key}: low ({low:g}) must be below high ({high:g})")
        if log and low <= 0:
            raise DataFileError(f"{source}: {key}.low: must be > 0 on a log scale, got {low:g}")
        fgrid = tuple(_float(v, source, f"{key}.grid") for v in _list(spec, "grid", source, key))
        for v in fgrid:
            if not low <= v <= high:
                raise DataFileError(f"{source}: {key}.grid: {v:g} is outside [{low:g}, {high:g}]")
        param = FloatParam(name, low, high, log, fgrid)
    else:
        ilow = _int(_required(spec, "low", source, key), source, f"{key}.low")
        ihigh = _int(_required(spec, "high", source, key), source, f"{key}.high")
        step = _int(spec.get("step", 1), source, f"{key}.step")
        log = _bool(spec.get("log", False), source, f"{key}.log")
        if ilow > ihigh:
            raise DataFileError(f"{source}: {key}: low ({ilow}) must not exceed high ({ihigh})")
        if step < 1:
            raise DataFileError(f"{source}: {key}.step: must be >= 1, got {step}")
        if log and (step != 1 or ilow < 1):
            raise DataFileError(f"{source}: {key}.log: needs step 1 and low >= 1")
        igrid = tuple(_int(v, source, f"{key}.grid") for v in _list(spec, "grid", source, key))
        for v in igrid:
            if not ilow <= v <= ihigh or (v - ilow) % step:
                raise DataFileError(
                    f"{source}: {key}.grid: {v} is not a value of range({ilow}, {ihigh}, "
                    f"step {step})"
                )
        param = IntParam(name, ilow, ihigh, step, log, igrid)
    _check_domain(param, source)
    return param


def _check_domain(p: Param, source: str) -> None:
    """What the training loop and the built-in models accept, checked before any trial."""
    key = f"params.{p.name}"
    if p.name == "lr" and not (isinstance(p, FloatParam) and p.low > 0):
        raise DataFileError(f"{source}: {key}: the learning rate is a float range with low > 0")
    if p.name == "optimizer":
        from wattwise.train._loop import OPTIMIZERS

        bad = [c for c in getattr(p, "choices", (None,)) if c not in OPTIMIZERS]
        if not isinstance(p, CategoricalParam) or bad:
            raise DataFileError(
                f"{source}: {key}: choices among {', '.join(OPTIMIZERS)}"
                + (f", got {bad[0]!r}" if bad else "")
            )
    if p.name in ("batch_size", "width", "depth"):
        smallest = 0 if p.name == "depth" else 1
        if isinstance(p, FloatParam) or (
            isinstance(p, CategoricalParam)
            and any(isinstance(v, bool) or not isinstance(v, int) for v in p.choices)
        ):
            raise DataFileError(f"{source}: {key}: expected whole numbers")
        low = _lowest(p)
        if low < smallest:
            raise DataFileError(f"{source}: {key}: values must be >= {smallest}, got {low:g}")


def _lowest(p: Param) -> float:
    if isinstance(p, CategoricalParam):
        return min(float(c) for c in p.choices)
    return p.low


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def _no_unknown(data: Mapping[Any, Any], known: Sequence[str], source: str, prefix: str) -> None:
    for k in data:
        if k not in known:
            raise DataFileError(f"{source}: {prefix}{k}: unknown key (known: {', '.join(known)})")


def _required(spec: Mapping[str, Any], name: str, source: str, key: str) -> Any:
    if name not in spec:
        raise DataFileError(f"{source}: {key}.{name}: missing")
    return spec[name]


def _list(spec: Mapping[str, Any], name: str, source: str, key: str) -> list[Any]:
    value = spec.get(name, [])
    if not isinstance(value, list) or (name in spec and not value):
        raise DataFileError(
            f"{source}: {key}.{name}: expected a non-empty list, got {_kind(value)}"
        )
    return value


def _float(value: Any, source: str, key: str) -> float:
    # YAML 1.1 reads 1e-3 (no dot) as a string: accept any text Python reads as a number.
    if isinstance(value, bool):
        raise DataFileError(f"{source}: {key}: expected a number, got {_kind(value)}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataFileError(f"{source}: {key}: expected a number, got {_kind(value)}") from None
    if not math.isfinite(out):
        raise DataFileError(f"{source}: {key}: expected a finite number, got {value!r}")
    return out


def _int(value: Any, source: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataFileError(f"{source}: {key}: expected a whole number, got {_kind(value)}")
    return value


def _bool(value: Any, source: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise DataFileError(f"{source}: {key}: expected true or false, got {_kind(value)}")
    return value


def _choices(value: Any, source: str, key: str) -> list[Choice]:
    if not isinstance(value, list) or not value:
        raise DataFileError(f"{source}: {key}: expected a non-empty list, got {_kind(value)}")
    for v in value:
        if not isinstance(v, str | int | float | bool):
            raise DataFileError(f"{source}: {key}: {v!r} is not a string, number or boolean")
    if len({(type(v), v) for v in value}) != len(value):
        raise DataFileError(f"{source}: {key}: a value is listed twice")
    return list(value)
