"""Poly-INR: a coordinate network whose output is a (piecewise) polynomial.

Singh, Shukla, Turaga, "Polynomial Implicit Neural Representations For Large
Diverse Datasets", CVPR 2023 (arXiv 2303.11424); reference code
github.com/Rajhans0/Poly_INR (``training/networks_gmgan.py``: ``GMganSynthesis``,
``BasicBlockGM``). This follows the paper's equations; the reference's generator
differs in the details listed under "Departures".

The paper represents a signal as a high-degree polynomial of the coordinates
without positional encodings or periodic activations. Level ``i`` takes an
affine transform of the coordinates, ``A_i x + b_i`` (``A_i`` of shape
``width × in_dim``), and multiplies it element-wise into the features::

    z_0 = A_0 x + b_0                                 (degree 1)
    z_i = σ(W_i z_{i-1} + c_i) ∘ (A_i x + b_i)         (degree i + 1)
    y   = W_out z_{L-1} + c_out

with σ the leaky ReLU (slope 0.2). Each level raises the polynomial degree by
one, so ``levels`` levels give degree ``levels`` (piecewise, because of σ;
with slope 1 it is an exact polynomial, which the tests check).

Departures from the reference generator: it puts the leaky ReLU on the affine
coordinate term and multiplies before the linear layer, ``z_i = σ(W_i (z_{i-1} ∘
σ(A_i p + b_i)))``; it chains a 2×2 coordinate transform from level to level, clamps
features to ±256, and takes coordinates in ``[0, 1]`` with width 1024 and 10 levels.
Here the paper's written form above is kept. On a 64×64 kodim07 crop a
re-implementation in the reference's order scored within ±0.4 dB of this one at three
learning rates, so the order does not explain Poly-INR's weak compression results.

Departures from the paper: its generator is a StyleGAN-like GAN whose mapping network
produces the affine parameters from a latent code, shared ``W_i`` across a
dataset, several RGB skip outputs and equalised-learning-rate layers. Here one
signal is fitted, so the affine parameters are trained directly and there is a
single linear output. All ``A_i`` are computed by one ``Linear(in_dim,
levels·width)``. Initialisation: ``W_i`` He-uniform for the leaky ReLU with
zero bias (the variance-preserving init that StyleGAN's equalised learning
rate amounts to); ``A_i`` PyTorch's default weights with bias 1 — like
StyleGAN2's style affines, whose bias starts at 1 — so every level starts
close to multiplying by one and the features do not shrink geometrically with
depth. The output layer keeps PyTorch's default initialisation. The default
Adam learning rate, 1e-2, is our measurement (the paper trains a GAN): on a
32×32 photograph crop, 300 steps reached 17.2 dB at 1e-3 and 23–26 dB at 1e-2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from inrkit.errors import InputError
from inrkit.inr.field import Field
from inrkit.registry import register_field


@register_field("polyinr")
class PolyInr(Field):
    """``levels`` levels of (linear, leaky ReLU, × affine(coordinates)) and a linear output."""

    name: ClassVar[str] = "polyinr"
    default_lr: ClassVar[float] = 1e-2  # measured: 1e-3 and 3e-3 plateau near 17 dB on photographs

    @dataclass
    class Config:
        in_dim: int = 2
        out_channels: int = 3
        width: int = 128
        levels: int = 6
        negative_slope: float = 0.2

    def __init__(self, config: Config):
        if not 1 <= config.in_dim <= 3:
            raise InputError(f"polyinr: in_dim must be 1, 2 or 3, got {config.in_dim}")
        for key in ("out_channels", "width", "levels"):
            if getattr(config, key) < 1:
                raise InputError(f"polyinr: {key} must be at least 1, got {getattr(config, key)}")
        super().__init__(config)
        width, levels = config.width, config.levels
        self.affine = nn.Linear(config.in_dim, levels * width)
        nn.init.ones_(self.affine.bias)
        self.linears = nn.ModuleList(nn.Linear(width, width) for _ in range(levels - 1))
        for linear in self.linears:
            nn.init.kaiming_uniform_(linear.weight, a=config.negative_slope, nonlinearity="leaky_relu")
            nn.init.zeros_(linear.bias)
        self.out = nn.Linear(width, config.out_channels)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        affines = self.affine(coords).chunk(self.config.levels, dim=-1)
        z = affines[0]
        for linear, a in zip(self.linears, affines[1:], strict=True):
            z = F.leaky_relu(linear(z), self.config.negative_slope) * a
        return self.out(z)
