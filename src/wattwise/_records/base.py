"""The base of every stored or printed result: ``to_dict``/``from_dict``, a kind, a version.

A result is a frozen dataclass deriving from :class:`Record`. Its JSON is generic:

- every field under its own name (a field's name *is* its JSON key: no renames), nested
  records as objects, tuples as lists, enums as their values;
- the properties named in ``derived`` (figures computed from the fields, such as
  ``energy_per_item_j``), written for readers and ignored when loading;
- the fields named in ``flattened``: a nested record whose keys are merged into this one's
  (a row that shows its measurement's figures beside its own);
- a field of repeated measurements declared with ``metadata={"spread": True}`` as its
  median under its name and the whole summary under ``<name>_spread``;
- nothing for a field declared with ``metadata={"json": False}`` (an in-memory handle);
- for a result that is stored on its own (a study's results, a command's ``--json``), its
  class-level ``kind`` and ``schema_version`` first.

``from_dict`` rebuilds the record from its fields' type hints (nested records, tuples,
enums, optional values) and refuses a document of another kind or schema version.
:func:`load_record` turns a stored document into the typed record its ``kind`` names.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from wattwise._errors import ConfigError, DataFileError

__all__ = ["Record", "RecordError", "known_kinds", "load_record"]


class RecordError(DataFileError):
    """A JSON document is not the record it should be (kind, schema version, a field)."""


_KINDS: dict[str, type[Record]] = {}


class Record:
    """Mixin for frozen dataclasses that are results (see the module's docstring).

    Class attributes:
        kind: the kind of a result stored on its own (``batching``, ``architectures``);
            empty for rows that live inside another result.
        schema_version: version of this kind's JSON; bumped when a field changes meaning.
        derived: properties written to JSON after the fields (not read back).
        flattened: nested record fields whose keys are merged into this record's JSON.
        compact: when given, the record is written inside others as a list of these
            fields' values (the points of a curve), and read back from one.
    """

    kind: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1
    derived: ClassVar[tuple[str, ...]] = ()
    flattened: ClassVar[tuple[str, ...]] = ()
    compact: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind:
            other = _KINDS.get(kind)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"record kind {kind!r} is taken by {other.__qualname__}")
            _KINDS[kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: kind and schema version (stored results), fields, derived."""
        out: dict[str, Any] = {}
        if self.kind:
            out["kind"] = self.kind
            out["schema_version"] = self.schema_version
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.metadata.get("json", True):
                continue
            value = getattr(self, f.name)
            if f.name in self.flattened:
                if value is not None:
                    out.update(encode(value))
            elif f.metadata.get("spread"):
                out[f.name] = value.median
                out[f"{f.name}_spread"] = encode(value)
            else:
                out[f.name] = encode(value)
        for name in self.derived:
            out[name] = encode(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The record a :meth:`to_dict` document describes (derived keys are ignored).

        Raises:
            RecordError: another kind or schema version, a required field missing, or a
                value of the wrong shape.
        """
        if not isinstance(data, Mapping):
            raise RecordError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        if cls.kind:
            if data.get("kind") != cls.kind:
                raise RecordError(f"expected a {cls.kind!r} record, got kind {data.get('kind')!r}")
            if data.get("schema_version") != cls.schema_version:
                raise RecordError(
                    f"{cls.kind!r} record of schema version {data.get('schema_version')!r}; "
                    f"this wattwise reads version {cls.schema_version}"
                )
        try:
            return cls(**_field_values(cls, data))
        except RecordError:
            raise
        except (ConfigError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"{cls.__name__}: {exc}") from exc


def _field_values(cls: type[Record], data: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor's arguments, decoded from ``data`` by the fields' type hints."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or not f.metadata.get("json", True):
            continue
        key = f"{f.name}_spread" if f.metadata.get("spread") else f.name
        if f.name in cls.flattened:
            kwargs[f.name] = _decode(hints[f.name], data, f"{cls.__name__}.{f.name}")
        elif key in data:
            kwargs[f.name] = _decode(hints[f.name], data[key], f"{cls.__name__}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{cls.__name__}: field {key!r} is missing")
    return kwargs


def known_kinds() -> tuple[str, ...]:
    """The kinds :func:`load_record` can rebuild (those whose modules are imported)."""
    return tuple(sorted(_KINDS))


def load_record(data: Mapping[str, Any]) -> Record:
    """The typed record a stored document's ``kind`` names.

    Raises:
        RecordError: no known record has that kind, or the document does not fit it.
    """
    kind = data.get("kind") if isinstance(data, Mapping) else None
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RecordError(
            f"no record of kind {kind!r} is known (known: {', '.join(known_kinds())})"
        )
    return cls.from_dict(data)


def encode(value: Any) -> Any:
    """A JSON-ready copy of a field's value."""
    if isinstance(value, Record):
        if value.compact:
            return [encode(getattr(value, name)) for name in value.compact]
        return value.to_dict()
    if callable(getattr(value, "to_dict", None)):
        return value.to_dict()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _decode(hint: Any, value: Any, where: str) -> Any:
    """The value of a field typed ``hint`` from its JSON ``value``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _decode(options[0], value, where)
        return value
    if value is None:
        return None
    if isinstance(hint, type) and issubclass(hint, Record):
        if hint.compact and isinstance(value, list | tuple):
            return hint.from_dict(dict(zip(hint.compact, value, strict=True)))
        return hint.from_dict(value)
    loader = getattr(hint, "from_dict", None)
    if isinstance(hint, type) and callable(loader):
        return loader(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise RecordError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, where) for v in value)
        if args and len(args) != len(value):
            raise RecordError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_decode(a, v, where) for a, v in zip(args, value, strict=False))
    if origin is list:
        return [_decode(args[0], v, where) for v in value] if args else list(value)
    if origin is dict:
        item = args[1] if len(args) == 2 else Any
        return {k: _decode(item, v, where) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
