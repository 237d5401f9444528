"""Learned upsampler of the latent pyramid (Cool-chic 4.x).

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023 (learned upsampling).
    Cool-chic 4.0-4.2 (Orange-OpenSource/Cool-Chic, ``enc/component/core/upsampling.py``): this
    module follows that release's design.

Coarse to fine: start from the coarsest level; for each finer level ``i``, upsample by 2 every
channel accumulated so far with a learned transposed convolution (stride 2, an even symmetric and
separable kernel, 8 taps by default, initialised to bicubic), crop to level ``i``'s shape, filter
level ``i`` with a learned "pre-concatenation" filter (odd symmetric separable kernel, 7 taps by
default, initialised to a Dirac) and concatenate it in front. The result is an L-channel tensor
at full resolution, channel ``i`` coming from level ``i``. Each transition has its own two kernels.
Borders are replicated, as Cool-chic 4.

Departures from Cool-chic 4 and why:
    * Both filters are applied axis by axis (separable passes of 1-D filters, the transposed
      convolution in its polyphase form: ``unfold`` + a small matmul, 2x faster on a CPU than
      ``conv_transpose``) in training too, for signals of any rank; Cool-chic trains with the
      2-D outer-product kernel. The result is the same function.
    * The pre-concatenation filter has no residual connection and starts as a Dirac (Cool-chic 4
      adds a residual to a Dirac-initialised filter, i.e. starts at twice the identity).
    * The bicubic initialisation uses the usual Keys a = -0.75 weights
      ``(-0.0352, -0.1055, 0.2617, 0.8789, 0.8789, 0.2617, -0.1055, -0.0352)`` (Cool-chic 4's
      half-kernel has the opposite sign).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from inrkit.errors import InputError

__all__ = ["Upsampler", "BICUBIC_HALF"]

# Keys (a = -0.75) cubic weights of the two phases of a 2x upsampling, interleaved: left half.
BICUBIC_HALF = (-0.03515625, -0.10546875, 0.26171875, 0.87890625)
_BILINEAR_HALF = (0.25, 0.75)


def _symmetric(half: Tensor, size: int) -> Tensor:
    """``a b c`` -> ``a b c c b a`` (even ``size``) or ``a b c b a`` (odd)."""
    return torch.cat([half, half.flip(0)[size % 2 :]])


def _replicate_last(x: Tensor, left: int, right: int) -> Tensor:
    """Replicate-pad the last axis only."""
    parts = []
    if left:
        parts.append(x[..., :1].expand(*x.shape[:-1], left))
    parts.append(x)
    if right:
        parts.append(x[..., -1:].expand(*x.shape[:-1], right))
    return torch.cat(parts, dim=-1) if len(parts) > 1 else x


@functools.lru_cache(maxsize=8)
def _polyphase(k: int):
    """Polyphase form of a stride-2 transposed convolution with ``k`` taps, replicate borders and
    the crop that keeps outputs 0..2n-1 (Cool-chic 4's ``P0 = k/2``, crop ``2 P0 - 1 + k/2``):
    output ``2j + r`` is ``sum_t window[j][t] * M[t, r]`` over a ``win``-tap window of the input
    padded by ``left`` on the left, with ``M[t, r] = kernel[h]`` for the listed (t, r, h)."""
    p0, crop = k // 2, 2 * (k // 2) - 1 + k // 2
    entries = [(r, (r + crop - h) // 2 - p0, h) for r in (0, 1) for h in range(k) if (r + crop - h) % 2 == 0]
    dmin = min(d for _, d, _ in entries)
    win = max(d for _, d, _ in entries) - dmin + 1
    flat = torch.tensor([(d - dmin) * 2 + r for r, d, _ in entries])
    taps = torch.tensor([h for _, _, h in entries])
    return flat, taps, -dmin, win


def _upsample_last(x: Tensor, kernel: Tensor) -> Tensor:
    """(..., n) -> (..., 2n): stride-2 transposed convolution along the last axis."""
    flat, taps, left, win = _polyphase(kernel.numel())
    m = torch.zeros(2 * win, dtype=kernel.dtype, device=kernel.device).index_add(0, flat, kernel[taps]).view(win, 2)
    windows = _replicate_last(x, left, win - 1 - left).unfold(-1, win, 1)  # (..., n, win)
    return (windows @ m).flatten(-2)


def _filter_last(x: Tensor, kernel: Tensor) -> Tensor:
    """(..., n) -> (..., n): odd-kernel convolution along the last axis, replicate borders."""
    k = kernel.numel()
    return _replicate_last(x, k // 2, k // 2).unfold(-1, k, 1) @ kernel


def _along(x: Tensor, axis: int, fn) -> Tensor:
    """Apply a last-axis operation along ``axis``."""
    if axis in (-1, x.dim() - 1):
        return fn(x)
    return fn(x.movedim(axis, -1)).movedim(-1, axis)


class Upsampler(nn.Module):
    """Cool-chic 4.x upsampler from L one-channel grids to an L-channel full-resolution tensor.

    Args:
        n_levels: number of pyramid levels L.
        rank: number of spatial axes of the grids.
        kernel_size: transposed-convolution taps (even, >= 4; bicubic init from 8, bilinear below).
        preconcat_size: pre-concatenation filter taps (odd, >= 1).

    Raises:
        InputError: bad sizes.
    """

    def __init__(self, n_levels: int, rank: int = 2, kernel_size: int = 8, preconcat_size: int = 7):
        super().__init__()
        if kernel_size < 4 or kernel_size % 2:
            raise InputError(f"upsampler: kernel_size must be even and >= 4, got {kernel_size}")
        if preconcat_size < 1 or preconcat_size % 2 == 0:
            raise InputError(f"upsampler: preconcat_size must be odd, got {preconcat_size}")
        if n_levels < 1 or rank < 1:
            raise InputError("upsampler: n_levels and rank must be >= 1")
        self.n_levels, self.rank = n_levels, rank
        self.kernel_size, self.preconcat_size = kernel_size, preconcat_size
        core = BICUBIC_HALF if kernel_size >= 8 else _BILINEAR_HALF
        half = torch.zeros(kernel_size // 2)
        half[len(half) - len(core) :] = torch.tensor(core)
        dirac = torch.zeros((preconcat_size + 1) // 2)
        dirac[-1] = 1.0
        # index j: the transition from level j + 1 to level j
        self.up_half = nn.ParameterList([nn.Parameter(half.clone()) for _ in range(n_levels - 1)])
        self.pre_half = nn.ParameterList([nn.Parameter(dirac.clone()) for _ in range(n_levels - 1)])

    def forward(self, levels: list[Tensor]) -> Tensor:
        """Upsample the pyramid.

        Args:
            levels: L tensors, level ``i`` of shape ``(B, *S_i)`` or ``S_i`` (finest first, each
                level at least half the size of the previous one, rounded up).

        Returns:
            ``(B, L, *S_0)`` tensor (``(1, L, *S_0)`` for unbatched levels).

        Raises:
            InputError: wrong number of levels or rank.
        """
        if len(levels) != self.n_levels:
            raise InputError(f"upsampler: {len(levels)} levels, expected {self.n_levels}")
        if levels[0].dim() == self.rank:
            levels = [g.unsqueeze(0) for g in levels]
        if any(g.dim() != self.rank + 1 for g in levels):
            raise InputError(f"upsampler: levels must have {self.rank} spatial axes")
        z = levels[-1].unsqueeze(1)  # (B, 1, *S_{L-1})
        for j in range(self.n_levels - 2, -1, -1):
            target = levels[j]
            up = _symmetric(self.up_half[j], self.kernel_size)
            for ax in range(self.rank):
                z = _along(z, 2 + ax, functools.partial(_upsample_last, kernel=up))
            z = z[(slice(None), slice(None)) + tuple(slice(0, n) for n in target.shape[1:])]
            pre = _symmetric(self.pre_half[j], self.preconcat_size)
            hb = target
            for ax in range(self.rank):
                hb = _along(hb, 1 + ax, functools.partial(_filter_last, kernel=pre))
            z = torch.cat([hb.unsqueeze(1), z], dim=1)
        return z

    def macs(self, shapes: list[tuple[int, ...]]) -> int:
        """Multiply-accumulates of one forward pass on levels of ``shapes`` (finest first)."""
        total = 0
        half_taps = self.kernel_size // 2  # each output of a stride-2 transposed conv gets k/2 taps
        for j in range(self.n_levels - 2, -1, -1):
            channels = self.n_levels - 1 - j
            cur = list(shapes[j + 1])
            for ax in range(self.rank):
                cur[ax] = 2 * cur[ax]
                total += channels * half_taps * math.prod(cur)
            total += self.rank * self.preconcat_size * math.prod(shapes[j])
        return total
