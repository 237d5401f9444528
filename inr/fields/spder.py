"""SPDER: a SIREN whose sine is damped by a sublinear envelope.

Shah and Sitawarin, "SPDER: Semiperiodic Damping-Enabled Object
Representation", ICLR 2024 (arXiv 2306.15242). Reference code:
github.com/katop1234/SPDER (``SPDER_image_batched.py``, ``SPDER_audio.py``).

Each layer computes ``sin(z) · √|z|`` with ``z = ω0 (W x + b)``: the sine keeps
positional information, the √|z| envelope keeps the magnitude of ``z``, which
the paper credits for its much faster convergence than SIREN. The network,
initialisation and defaults (5 hidden layers of 256, ``ω0 = 30``, Adam with
learning rate 1e-4 for images) are SIREN's, as in the reference; see
:mod:`inrkit.inr.fields.siren`.

``activation="arctan"`` selects ``sin(z) · arctan(z)``, which the reference's
audio script uses instead ("empirically optimal for this modality").

Gradient at ``z = 0``: √|z| has an infinite derivative at 0, so plain autograd
computes ``sin(0) · ∞ = NaN`` there (the reference's ``SPDERLayer`` default does
exactly that). The reference's image script avoids it by evaluating
``√max(|z|, 1e-43)``; we do the same with ``ε = 1e-30`` (1e-43 is a float32
denormal, slow on CPUs). Below ``ε`` the envelope is the constant √ε, so the
gradient there is ``cos(z) √ε ≈ 1e-15`` instead of NaN; the true derivative of
``sin(z)√|z|`` tends to 0 at the origin, so nothing of substance changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from inrkit.errors import InputError
from inrkit.registry import register_field

from .siren import Siren

ACTIVATIONS = ("sqrt", "arctan")
SQRT_EPS = 1e-30


def spder_sqrt(z: torch.Tensor) -> torch.Tensor:
    """``sin(z) · √max(|z|, ε)``: SPDER's activation with a finite gradient at 0."""
    return torch.sin(z) * torch.sqrt(torch.clamp_min(torch.abs(z), SQRT_EPS))


def spder_arctan(z: torch.Tensor) -> torch.Tensor:
    """``sin(z) · arctan(z)``: the reference's audio activation."""
    return torch.sin(z) * torch.arctan(z)


@register_field("spder")
class Spder(Siren):
    """SIREN's layers with SPDER's damped sine activation."""

    name: ClassVar[str] = "spder"
    default_lr: ClassVar[float] = 1e-4  # the reference's image learning rate

    @dataclass
    class Config:
        in_dim: int = 2
        out_channels: int = 3
        width: int = 256
        depth: int = 5
        first_omega_0: float = 30.0
        hidden_omega_0: float = 30.0
        activation: str = "sqrt"

    def __init__(self, config: Config):
        if config.activation not in ACTIVATIONS:
            raise InputError(
                f"spder: activation must be one of {', '.join(ACTIVATIONS)}, got {config.activation!r}"
            )
        super().__init__(config)
        self._activation = spder_sqrt if config.activation == "sqrt" else spder_arctan

    def activation(self, z: torch.Tensor) -> torch.Tensor:
        return self._activation(z)
