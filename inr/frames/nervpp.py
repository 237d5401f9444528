"""NeRV++: an enhanced NeRV decoder.

Paper: Ahmed Ghorbel, Wassim Hamidouche, Luce Morin, "NeRV++: An Enhanced
Implicit Neural Video Representation", arXiv:2402.18305 (2024). No reference
code was published with the paper.

NeRV++ keeps NeRV's formulation (frame time ``t`` → frame) and changes the
decoder block: the upsampling block (UB: k×k conv → PixelShuffle → GELU) is
sandwiched between two separable-conv residual blocks (SCRBs), and a
bilinear-interpolation skip carries the block input, upsampled, around it:

    y = SCRB_out(UB(SCRB_in(x))) + P(bilinear_s(x))

An SCRB is ``x + GELU(pointwise_1×1(depthwise_k×k(x)))``. The stem
(positional encoding b = 1.25, L = 80 → linear → feature grid), widths
(reduce 2 per stage, floor 12) and head (3×3 conv, ``tanh(x)/2 + 1/2``) are
NeRV's (:mod:`inrkit.inr.frames.nerv`), so NeRV and NeRV++ differ only in the block.

Departures and choices the paper text leaves open: the skip needs a channel
change (``w_i → w_{i+1}``), done by a 1×1 conv ``P`` applied *before* the
bilinear upsampling (both are linear, so this equals projecting after it, at
``1/s²`` of the cost); the SCRB depthwise kernel is 3×3; the kernel of the UB
follows the NeRV baseline (3×3). As elsewhere, strides come from the frame
size and the width from a parameter budget
(:func:`~inrkit.inr.frames.nerv.width_for_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inrkit.registry import register_field

from .nerv import NeRV, UpBlock


class SeparableResidualBlock(nn.Module):
    """SCRB: ``x + GELU(pointwise(depthwise(x)))``."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, padding=(kernel - 1) // 2, groups=channels)
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.pointwise(self.depthwise(x)))


class NeRVPlusPlusBlock(nn.Module):
    """SCRB → upsampling block → SCRB, plus a bilinearly upsampled, projected skip of the input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int, sep_kernel: int):
        super().__init__()
        self.pre = SeparableResidualBlock(in_channels, sep_kernel)
        self.up = UpBlock(in_channels, out_channels, stride, kernel)
        self.post = SeparableResidualBlock(out_channels, sep_kernel)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x)
        if self.stride > 1:
            skip = F.interpolate(skip, scale_factor=self.stride, mode="bilinear", align_corners=False)
        return self.post(self.up(self.pre(x))) + skip


@register_field("nervpp")
class NeRVPlusPlus(NeRV):
    """NeRV with NeRV++ blocks: frame index → positional encoding → linear stem → blocks → RGB."""

    name = "nervpp"

    @dataclass
    class Config(NeRV.Config):
        sep_kernel: int = 3

    def make_block(self, in_channels: int, out_channels: int, stride: int) -> nn.Module:
        return NeRVPlusPlusBlock(in_channels, out_channels, stride, self.config.kernel, self.config.sep_kernel)
