"""Typed header fields: a codec declares what its header holds once, and one reader checks
every file against the declaration before anything is built from it.

A header is JSON (:mod:`.container` has already refused NaN, huge documents, duplicate
keys and deep nesting). What the JSON may say is declared with the kinds below; the
architecture configs of fields and frame decoders are dataclasses, whose type hints give
the kinds (:func:`config_kinds`), so a config's header check never drifts from the
config. JSON ``true`` is an ``int`` to Python, so every check is on ``type(value)``.

Every failure is a :class:`~inrkit.errors.BitstreamError` naming the field, what was
expected and what was found.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from inrkit.errors import BitstreamError

C = TypeVar("C")


@dataclass(frozen=True)
class Int:
    """A whole number in ``lo..hi`` (not a bool)."""

    lo: int
    hi: int

    def read(self, value: Any, where: str) -> int:
        if type(value) is not int:
            raise BitstreamError(f"{where} must be a whole number, found {value!r}")
        if not self.lo <= value <= self.hi:
            raise BitstreamError(f"{where} is {value}, beyond {self.lo}..{self.hi}")
        return value


@dataclass(frozen=True)
class Float:
    """A finite number in ``[lo, hi]`` (a whole number is accepted, a bool is not)."""

    lo: float
    hi: float

    def read(self, value: Any, where: str) -> float:
        if type(value) not in (int, float):
            raise BitstreamError(f"{where} must be a number, found {value!r}")
        if not (math.isfinite(value) and self.lo <= value <= self.hi):
            raise BitstreamError(f"{where} is {value}, beyond [{self.lo:g}, {self.hi:g}]")
        return float(value) if type(value) is float else value


@dataclass(frozen=True)
class Bool:
    """``true`` or ``false``."""

    def read(self, value: Any, where: str) -> bool:
        if type(value) is not bool:
            raise BitstreamError(f"{where} must be true or false, found {value!r}")
        return value


@dataclass(frozen=True)
class Text:
    """A string of at most ``max_len`` characters, one of ``choices`` when given."""

    max_len: int = 64
    choices: tuple[str, ...] | None = None

    def read(self, value: Any, where: str) -> str:
        if type(value) is not str or len(value) > self.max_len:
            raise BitstreamError(f"{where} must be a string of at most {self.max_len} characters, found {value!r}")
        if self.choices is not None and value not in self.choices:
            raise BitstreamError(f"{where} must be one of {', '.join(self.choices)}, found {value!r}")
        return value


@dataclass(frozen=True)
class IntList:
    """A list of at most ``max_len`` whole numbers in ``lo..hi``, or null when ``nullable``
    (read as a tuple, as the configs hold it)."""

    lo: int
    hi: int
    max_len: int
    nullable: bool = False

    def read(self, value: Any, where: str) -> tuple[int, ...] | None:
        if value is None and self.nullable:
            return None
        if type(value) is not list or len(value) > self.max_len or not all(
            type(v) is int and self.lo <= v <= self.hi for v in value
        ):
            raise BitstreamError(
                f"{where} must be a list of at most {self.max_len} whole numbers in {self.lo}..{self.hi}"
                f"{' or null' if self.nullable else ''}, found {value!r}"
            )
        return tuple(value)


@dataclass(frozen=True)
class Object:
    """A JSON object whose own fields are read afterwards (by another :func:`read_fields`,
    :func:`read_config` or a reader of its own, such as ``Container.signal_meta``)."""

    def read(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise BitstreamError(f"{where} must be an object, found {value!r}")
        return value


Kind = Int | Float | Bool | Text | IntList | Object


def read_fields(values: Any, kinds: Mapping[str, Kind], where: str, *,
                optional: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """``values`` checked against ``kinds``: a JSON object with no key outside ``kinds``
    and every key not in ``optional`` present.

    Returns:
        The checked values (lists as tuples).

    Raises:
        BitstreamError: not an object, an unknown or missing key, or a value of the wrong
            kind or out of bounds.
    """
    if not isinstance(values, dict):
        raise BitstreamError(f"{where} must be an object, found {type(values).__name__}")
    unknown = sorted(set(values) - set(kinds))
    missing = sorted(set(kinds) - set(values) - set(optional))
    if unknown or missing:
        raise BitstreamError(f"{where} has unknown fields {unknown} or lacks {missing}")
    return {key: kinds[key].read(value, f"{where}.{key}") for key, value in values.items()}


def config_kinds(cls: type, bounds: Mapping[str, Kind] | None = None, *,
                 ints: Int = Int(0, 1 << 16), floats: Float = Float(-(1 << 16), 1 << 16),
                 lists: IntList = IntList(0, 1 << 16, 16, nullable=True)) -> dict[str, Kind]:
    """The kinds of a config dataclass's fields, from its type hints: ``int``, ``float``,
    ``bool``, ``str`` and ``tuple[int, ...] | None``, bounded by ``ints`` / ``floats`` /
    ``lists`` unless ``bounds`` names the field."""
    bounds = bounds or {}
    defaults = {int: ints, float: floats, bool: Bool(), str: Text(), tuple[int, ...] | None: lists,
                tuple[int, ...]: dataclasses.replace(lists, nullable=False)}
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        if name in bounds:
            kinds[name] = bounds[name]
        elif hint in defaults:
            kinds[name] = defaults[hint]
        else:
            raise TypeError(f"{cls.__name__}.{name}: no header kind for type {hint}")
    return kinds


def read_config(cls: type[C], values: Any, where: str, *, bounds: Mapping[str, Kind] | None = None,
                fixed: Mapping[str, Any] | None = None, present: str = "required", **limits: Any) -> C:
    """The config dataclass ``cls`` a header describes, every field checked first.

    Args:
        cls: the dataclass; its type hints give each field's kind (:func:`config_kinds`,
            which ``limits`` are passed to).
        values: the header's JSON object.
        where: the field's name in messages (``"siren architecture"``).
        bounds: kinds for fields whose bounds are not the default.
        fixed: fields that follow from the signal and must not be in the header: they
            are set from here.
        present: which fields the header must hold: ``"all"`` of them, those without a
            default (``"required"``), or any (``"delta"``: only those that differ from
            the defaults).

    Raises:
        BitstreamError: as :func:`read_fields`, or a field that ``fixed`` sets.
    """
    fixed = dict(fixed or {})
    kinds = {k: v for k, v in config_kinds(cls, bounds, **limits).items() if k not in fixed}
    if present not in ("all", "required", "delta"):
        raise ValueError(f"present must be 'all', 'required' or 'delta', not {present!r}")
    fields = dataclasses.fields(cls)
    has_default = {f.name for f in fields
                   if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    optional = {"all": set(), "required": has_default, "delta": set(kinds)}[present]
    return cls(**read_fields(values, kinds, where, optional=optional), **fixed)
