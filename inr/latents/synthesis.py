"""Synthesis network of Cool-chic: 1x1 and small (residual) convolutions from the upsampled latents.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023 (residual 3x3 layers).
    Cool-chic 3.x/4.x (Orange-OpenSource/Cool-Chic, ``enc/component/core/synthesis.py``): the
    layer description string and the initialisation.

Layers are described as in Cool-chic, comma separated, ``<out>-<kernel>-<type>-<activation>``:
``type`` is ``linear`` (plain convolution) or ``residual`` (``conv(x) + x``, needs out == in),
``activation`` is ``relu``, ``leakyrelu``, ``gelu`` or ``none``. Example:
``"40-1-linear-relu,3-1-linear-relu,3-3-residual-relu,3-3-residual-none"``. Borders are replicated.
The last layer's width is the number of output channels. Residual layers start at zero (identity),
others from ``U(-a, a) / out^2`` with ``a = 1 / sqrt(in * k^d)`` (Cool-chic's scaled default).

Departures: the convolutions follow the rank of the input (``conv1d``/``conv2d``/``conv3d``) so
the same description serves audio or video; Cool-chic's optional "/stabiliser" suffix and its
per-layer quantization are not supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrkit.errors import InputError

__all__ = ["LayerSpec", "Synthesis", "parse_layers"]

_ACTS = {"relu": F.relu, "leakyrelu": F.leaky_relu, "gelu": F.gelu, "none": None}


@dataclass(frozen=True)
class LayerSpec:
    """One synthesis layer: output channels, kernel size, residual flag, activation name."""

    out_channels: int
    kernel_size: int
    residual: bool
    activation: str


def parse_layers(description: str) -> list[LayerSpec]:
    """Parse a Cool-chic layer description.

    Args:
        description: e.g. ``"40-1-linear-relu,3-1-linear-relu,3-3-residual-relu,3-3-residual-none"``.

    Returns:
        One LayerSpec per layer.

    Raises:
        InputError: a malformed layer, an even kernel size, or an unknown type / activation.
    """
    specs = []
    for item in [s.strip() for s in description.split(",") if s.strip()]:
        parts = item.split("-")
        if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
            raise InputError(f"synthesis layer {item!r}: expected <out>-<kernel>-<linear|residual>-<activation>")
        out, k, kind, act = int(parts[0]), int(parts[1]), parts[2], parts[3]
        if out < 1 or k < 1 or k % 2 == 0:
            raise InputError(f"synthesis layer {item!r}: out >= 1 and an odd kernel size are required")
        if kind not in ("linear", "residual"):
            raise InputError(f"synthesis layer {item!r}: type must be linear or residual")
        if act not in _ACTS:
            raise InputError(f"synthesis layer {item!r}: activation must be one of {sorted(_ACTS)}")
        specs.append(LayerSpec(out, k, kind == "residual", act))
    if not specs:
        raise InputError("synthesis: empty layer description")
    return specs


class Synthesis(nn.Module):
    """Stack of convolutions described by a Cool-chic layer string.

    Args:
        in_channels: input channels (the number of latent levels).
        description: the layer string (see module docstring).
        rank: number of spatial axes (1, 2 or 3).

    Raises:
        InputError: bad description, a residual layer whose width changes, or a bad rank.
    """

    def __init__(self, in_channels: int, description: str, rank: int = 2):
        super().__init__()
        if rank not in (1, 2, 3):
            raise InputError(f"synthesis: rank must be 1, 2 or 3, got {rank}")
        self.rank, self.in_channels, self.description = rank, in_channels, description
        self.specs = parse_layers(description)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        c = in_channels
        for spec in self.specs:
            if spec.residual and spec.out_channels != c:
                raise InputError(f"synthesis: residual layer {spec} needs {c} output channels")
            shape = (spec.out_channels, c) + (spec.kernel_size,) * rank
            if spec.residual:
                w = torch.zeros(shape)
            else:
                a = 1.0 / math.sqrt(c * spec.kernel_size**rank)
                w = (torch.rand(shape) * 2 - 1) * a / spec.out_channels**2
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(spec.out_channels)))
            c = spec.out_channels
        self.out_channels = c
        self._conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, *S)`` -> ``(B, out_channels, *S)``."""
        if x.dim() != self.rank + 2 or x.shape[1] != self.in_channels:
            raise InputError(f"synthesis: expected (B, {self.in_channels}, ...) with {self.rank} spatial axes, got {tuple(x.shape)}")
        for spec, w, b in zip(self.specs, self.weights, self.biases, strict=True):
            p = spec.kernel_size // 2
            xin = F.pad(x, (p,) * (2 * self.rank), mode="replicate") if p else x
            y = self._conv(xin, w, b)
            if spec.residual:
                y = y + x
            act = _ACTS[spec.activation]
            x = act(y) if act is not None else y
        return x

    def macs_per_pixel(self) -> int:
        """Multiply-accumulates per output sample."""
        total, c = 0, self.in_channels
        for spec in self.specs:
            total += c * spec.out_channels * spec.kernel_size**self.rank
            c = spec.out_channels
        return total
