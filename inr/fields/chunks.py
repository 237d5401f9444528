"""Many small fields of one architecture, trained and evaluated together.

A long signal cut into chunks is fitted by one small field per chunk (the chunked
audio codecs, :mod:`inrkit.codecs.audio`). Their parameters are stacked into one
tensor per architecture parameter and evaluated with ``torch.func.vmap`` over
``functional_call``, so a step over every chunk is a handful of batched operations.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from inrkit.inr.field import field_from_config


class ChunkFields(nn.Module):
    """``count`` independent fields of one architecture; parameter ``name`` of the
    architecture is stored as one tensor ``[count, *shape]`` (dots become ``__``).

    ``forward(coords [L, d]) -> [count, L, C]`` evaluates every field on the same
    local coordinates. The template field is kept out of the module's parameters so
    that quantization sees only the stacked tensors."""

    def __init__(self, description: dict[str, Any], count: int, seed: int | None = None):
        super().__init__()
        if seed is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                fields = [field_from_config(description) for _ in range(count)]
        else:
            fields = [field_from_config(description) for _ in range(count)]
        params, _ = stack_module_state(fields)
        self.__dict__["template"] = fields[0]  # not registered: its weights are not ours
        self.description = description
        self.names = list(params)
        self.stacked = nn.ParameterDict(
            {n.replace(".", "__"): nn.Parameter(p) for n, p in params.items()}
        )

    @property
    def count(self) -> int:
        return next(iter(self.stacked.values())).shape[0]

    def params(self, transform=None) -> dict[str, torch.Tensor]:
        """``{architecture name: stacked tensor}``, each passed through ``transform(name, p)``."""
        out = {}
        for name in self.names:
            p = self.stacked[name.replace(".", "__")]
            out[name] = p if transform is None else transform(name, p)
        return out

    def forward(
        self, coords: torch.Tensor, params: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        params = self.params() if params is None else params
        return vmap(lambda p: functional_call(self.template, p, (coords,)))(params)
