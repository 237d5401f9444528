"""String registries in the style of CompressAI's ``register_model``.

Fields (``inrkit.inr``) and codecs (``inrkit.codecs``) register themselves by
name when their module is imported; :func:`load_plugins` imports the built-in
modules so that every name is available to the CLI and the API.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from inrkit.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → object mapping that refuses duplicates and explains unknown names."""

    def __init__(self, kind: str, plugin_modules: tuple[str, ...] = ()):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._plugin_modules = plugin_modules
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._plugin_modules:
                importlib.import_module(module)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise InputError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


FIELDS: Registry = Registry(
    "field",
    (
        "inrkit.inr.fields.siren",
        "inrkit.inr.fields.spder",
        "inrkit.inr.fields.polyinr",
        "inrkit.inr.fields.fourier",
        "inrkit.inr.fields.hashgrid",
        "inrkit.inr.frames.nerv",
        "inrkit.inr.frames.hnerv",
        "inrkit.inr.frames.nervpp",
    ),
)

CODECS: Registry = Registry(
    "codec",
    (
        "inrkit.codecs.image",
        "inrkit.codecs.classical",
        "inrkit.codecs.shacira",
        "inrkit.codecs.video",
        "inrkit.codecs.audio",
        "inrkit.codecs.rvqgan",
        "inrkit.codecs.vcinr",
        "inrkit.codecs.adacode",
        "inrkit.codecs.coolchic",
    ),
)


def register_field(name: str):
    """Class decorator: make a :class:`inrkit.inr.Field` subclass buildable by name."""
    return FIELDS.register(name)


def register_codec(name: str):
    """Class decorator: make a :class:`inrkit.codecs.Codec` subclass usable by name."""
    return CODECS.register(name)
