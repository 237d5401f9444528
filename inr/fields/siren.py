"""SIREN: a multilayer perceptron with sine activations.

Sitzmann, Martel, Bergman, Lindell, Wetzstein, "Implicit Neural Representations
with Periodic Activation Functions", NeurIPS 2020. Reference code:
github.com/vsitzmann/siren (``explore_siren.ipynb``: ``SineLayer`` and ``Siren``).

Each layer computes ``sin(ω0 · (W x + b))``. Initialisation follows the
reference exactly:

- first layer weights ``U(-1/n, 1/n)`` (``n`` = fan-in), so that with
  ``ω0 = 30`` the first layer spans several periods over ``[-1, 1]``;
- every later weight matrix, the linear output layer included,
  ``U(-√(6/n)/ω0, √(6/n)/ω0)`` with the hidden ``ω0``;
- biases keep PyTorch's default ``nn.Linear`` initialisation
  ``U(-1/√n, 1/√n)`` (the reference re-initialises weights only).

``depth`` counts the hidden sine layers after the first one (the reference's
``hidden_layers``), so the network has ``depth + 2`` linear layers. COIN
(Dupont et al. 2021) describes its networks by the total count: its "10
layers of width 28" is ``width=28, depth=8``.

Optional input encoding (``pe_frequencies > 0``): the NeRF-style positional
encoding Strümpler et al. put in front of the SIREN for image compression
("Implicit Neural Representations for Image Compression", ECCV 2022; reference
``image_compression/modules.py``, ``PosEncodingNeRF``): each coordinate ``x`` is
followed by ``sin(s^k π x), cos(s^k π x)`` for ``k = 0 .. pe_frequencies - 1``, with
their Kodak setting ``s = 1.4`` and 16 frequencies. The first layer then has fan-in
``in_dim · (1 + 2 · pe_frequencies)`` and keeps SIREN's first-layer initialisation,
as in the reference. Off by default (the SIREN paper has no encoding).

Departures: none in the architecture. Coordinates are sample centres in
``[-1, 1]`` (see :mod:`inrkit.datasets.grids`) instead of the reference's
``linspace(-1, 1, n)``. The reference's audio experiments set ``first_omega_0=3000``
on coordinates spanning the whole clip; the audio codec reuses 3000 per chunk, which
is a different bandwidth in Hz (see :mod:`inrkit.codecs.audio`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from inrkit.errors import InputError
from inrkit.inr.field import Field
from inrkit.registry import register_field


def check_mlp_config(name: str, config, *, omega_fields: tuple[str, ...] = ()) -> None:
    """Raise :class:`InputError` unless the MLP shape in ``config`` makes sense."""
    if not 1 <= config.in_dim <= 3:
        raise InputError(f"{name}: in_dim must be 1, 2 or 3, got {config.in_dim}")
    for key in ("out_channels", "width"):
        if getattr(config, key) < 1:
            raise InputError(f"{name}: {key} must be at least 1, got {getattr(config, key)}")
    if config.depth < 0:
        raise InputError(f"{name}: depth (hidden layers) must be at least 0, got {config.depth}")
    for key in omega_fields:
        if not getattr(config, key) > 0:
            raise InputError(f"{name}: {key} must be positive, got {getattr(config, key)}")


def sine_init_(linear: nn.Linear, *, first: bool, omega_0: float) -> nn.Linear:
    """SIREN's weight initialisation, in place; the bias keeps PyTorch's default."""
    n = linear.in_features
    bound = 1.0 / n if first else math.sqrt(6.0 / n) / omega_0
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)
    return linear


def encoded_dim(config) -> int:
    """Width of the first layer's input: the coordinates and their positional encoding."""
    return config.in_dim * (1 + 2 * getattr(config, "pe_frequencies", 0))


def positional_encoding(coords: torch.Tensor, frequencies: int, scale: float) -> torch.Tensor:
    """``[x, sin(s^k π x), cos(s^k π x) for k < frequencies]`` per coordinate, as
    Strümpler et al.'s ``PosEncodingNeRF`` orders them (frequency-major, then axis)."""
    if frequencies == 0:
        return coords
    bands = scale ** torch.arange(frequencies, dtype=coords.dtype, device=coords.device) * math.pi
    phases = coords.unsqueeze(-2) * bands.unsqueeze(-1)  # [..., frequencies, in_dim]
    pairs = torch.stack((torch.sin(phases), torch.cos(phases)), dim=-1)  # [..., f, in_dim, 2]
    return torch.cat((coords, pairs.flatten(-3)), dim=-1)


def sine_mlp_layers(config) -> nn.ModuleList:
    """The ``depth + 2`` linear layers of a SIREN-initialised network."""
    widths = [encoded_dim(config)] + [config.width] * (config.depth + 1)
    layers = [
        sine_init_(
            nn.Linear(fan_in, fan_out),
            first=i == 0,
            omega_0=config.first_omega_0 if i == 0 else config.hidden_omega_0,
        )
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True))
    ]
    layers.append(sine_init_(nn.Linear(config.width, config.out_channels), first=False,
                             omega_0=config.hidden_omega_0))
    return nn.ModuleList(layers)


@register_field("siren")
class Siren(Field):
    """``sin(ω0 (W x + b))`` layers and a linear output layer."""

    name: ClassVar[str] = "siren"
    default_lr: ClassVar[float] = 1e-4  # the paper's Adam learning rate

    @dataclass
    class Config:
        in_dim: int = 2
        out_channels: int = 3
        width: int = 256
        depth: int = 3
        first_omega_0: float = 30.0
        hidden_omega_0: float = 30.0
        pe_frequencies: int = 0  # positional encoding (Strümpler et al.); 0 = none
        pe_scale: float = 1.4

    def __init__(self, config: Config):
        check_mlp_config(self.name, config, omega_fields=("first_omega_0", "hidden_omega_0"))
        # Subclasses whose Config has no encoding fields (SPDER) get none.
        self.pe_frequencies = getattr(config, "pe_frequencies", 0)
        self.pe_scale = getattr(config, "pe_scale", 1.4)
        if not 0 <= self.pe_frequencies <= 32:
            raise InputError(f"{self.name}: pe_frequencies must be 0..32, got {self.pe_frequencies}")
        if not 1.0 <= self.pe_scale <= 4.0:
            raise InputError(f"{self.name}: pe_scale must be in [1, 4], got {self.pe_scale}")
        super().__init__(config)
        self.layers = sine_mlp_layers(config)
        self.omegas = [float(config.first_omega_0)] + [float(config.hidden_omega_0)] * config.depth

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sin(z)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = positional_encoding(coords, self.pe_frequencies, self.pe_scale)
        for layer, omega in zip(self.layers[:-1], self.omegas, strict=True):
            h = self.activation(omega * layer(h))
        return self.layers[-1](h)
