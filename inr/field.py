"""The Field contract (docs/design.md): an ``nn.Module`` from coordinates to values.

A coordinate field maps ``[..., in_dim]`` coordinates in ``[-1, 1]`` (sample
centres, see :mod:`inrkit.datasets.grids`) to ``[..., out_channels]`` values in
the fitting range ``[-1, 1]``. Each backbone declares a ``Config`` dataclass;
the config is all a decoder needs to rebuild the exact architecture, so it is
what the bitstream header stores.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from typing import Any, ClassVar

import torch
from torch import nn

from inrkit.datasets.grids import coordinate_grid
from inrkit.datasets.limits import check_memory
from inrkit.errors import InputError
from inrkit.registry import FIELDS


class Field(nn.Module):
    """Base class of coordinate fields. Subclasses set ``name`` (the registry key)
    and ``Config``, and implement ``__init__(config)`` and ``forward(coords)``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]

    def __init__(self, config):
        super().__init__()
        self.config = config

    @property
    def in_dim(self) -> int:
        return int(self.config.in_dim)

    @property
    def out_channels(self) -> int:
        return int(self.config.out_channels)

    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable architecture description: ``{"name": ..., "config": {...}}``."""
        return {"name": self.name, "config": dataclasses.asdict(self.config)}

    @torch.no_grad()
    def render(self, shape: tuple[int, ...], batch_size: int = 1 << 16) -> torch.Tensor:
        """Evaluate the field on the sample-centre grid of ``shape``.

        Returns ``[*shape, out_channels]`` in the fitting range; any resolution
        works, so a finer grid than the fitted one is a super-resolved signal.
        Evaluated in chunks of ``batch_size`` points to bound memory.
        """
        if not isinstance(shape, tuple | list) or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            raise InputError(f"render() takes a shape of positive whole numbers, got {shape!r}")
        if len(shape) != self.in_dim:
            raise InputError(f"a {self.in_dim}-D field cannot render a grid of shape {tuple(shape)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise InputError(f"render() takes a positive whole batch_size, got {batch_size!r}")
        shape = tuple(int(n) for n in shape)
        # the coordinates and the output are whole tensors; only the network runs in chunks
        check_memory(f"render {shape}", (*shape, self.in_dim + self.out_channels))
        device = next(self.parameters()).device
        coords = coordinate_grid(tuple(shape), device=device).reshape(-1, self.in_dim)
        chunks = [self(c) for c in coords.split(batch_size)]
        return torch.cat(chunks).reshape(*shape, self.out_channels)


def build_field(name: str, **config: Any) -> Field:
    """Build a registered field from keyword arguments of its ``Config``; an unknown
    option, or an ``int`` or ``float`` option of another type (or not finite), is an
    InputError naming it rather than an error from inside torch."""
    cls = FIELDS.get(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise InputError(
            f"unknown option(s) {', '.join(unknown)} for field {name!r}; "
            f"it takes: {', '.join(sorted(fields))}"
        )
    required = sorted(
        f.name for f in dataclasses.fields(cls.Config)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        and f.name not in config
    )  # fmt: skip
    if required:
        raise InputError(f"field {name!r} needs the option(s) {', '.join(required)}")
    return cls(cls.Config(**check_config_numbers(name, cls.Config, config)))


def check_config_numbers(name: str, config_cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its ``int`` and ``float`` options (by ``config_cls``'s types) checked:
    whole numbers, and finite numbers; an InputError names the first that is not."""
    hints = typing.get_type_hints(config_cls)
    checked = dict(config)
    for key, value in config.items():
        kind = hints.get(key)
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InputError(f"field {name!r}: {key} must be a whole number, got {value!r}")
            checked[key] = int(value)
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise InputError(f"field {name!r}: {key} must be a finite number, got {value!r}")
            checked[key] = float(value)
    return checked


def field_from_config(description: dict[str, Any]) -> Field:
    """Rebuild a field from :meth:`Field.config_dict` output (e.g. a bitstream header)."""
    try:
        name, config = description["name"], description["config"]
    except (KeyError, TypeError):
        raise InputError(f"not a field description: {description!r}") from None
    if not isinstance(name, str) or not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise InputError(f"not a field description (a name and a dict of options): {description!r}")
    return build_field(name, **config)
