"""Auto-regressive module (ARM): the entropy model of Cool-chic's latents, in float and in integers.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023 (the ARM MLP with
    residual hidden layers of width N, N in {8, 16, 24, 32}, and its integer decoder).
    Kim et al., "C3: High-performance and low-complexity neural compression from a single image
    or video", CVPR 2024.

Each latent ``y`` of a level is modelled by a Laplace distribution whose location ``mu`` and scale
``b`` an MLP computes from N causal neighbours of the same level (zero outside the grid). The MLP is
shared by all levels: ``n_hidden`` layers ``x <- ReLU(W x + b + x)`` of width N, then a linear
layer to 2 outputs ``(mu, l)``. Rate in bits: ``-log2`` of the Laplace mass of ``[y - 1/2, y + 1/2]``,
floored at 2^-16 (as Cool-chic: no symbol costs more than 16 bits).

The integer path (``IntegerArm``) is what a decoder runs: numpy int64 only, weights with
``weight_frac_bits`` fractional bits (default 8, Cool-chic's ``ARM_PRECISION``), activations with
``act_frac_bits`` (default 8), biases with ``weight_frac_bits + act_frac_bits``; products accumulate
in int64, rounding right shifts (``(x + 2^(s-1)) >> s``, arithmetic) bring them back; ReLU and the
residual add are integer operations. It maps integer contexts to ``mu`` in fixed point and a scale
index on the log2 grid of ``inrkit.codecs.bitstream.laplace`` -- the same numbers on any machine,
thread count or process.

Departures from Cool-chic and why:
    * Scale: ``b = 2 ** l`` with ``l = clamp(raw + LOG2_SCALE_SHIFT, -8, 6)`` (Cool-chic 4:
      ``b = exp(clamp(raw - 4, -5, 5))``). Base 2 makes the integer scale index a shift:
      ``k = round((l + 8) * 8)``, 8 indices per octave.
    * No linear "stabiliser" branch nor IFCE (Cool-chic 5 additions): the Cool-chic 3.x/4 ARM.
    * Saturation bounds every intermediate: weights to +-2^15, biases to +-2^40, activations to
      +-2^31 (in fixed point), mu to +-(2^15 + 1) units; with contexts within
      ``LATENT_ABS_MAX = 2^15`` no int64 operation can overflow whatever the bitstream says.
      Trained models never come near these bounds, so the float and integer paths agree there.
    * The causal neighbourhood is declared once as a list of offsets per (rank, N)
      (``CAUSAL_OFFSETS``); context extraction, causality checks and the wavefront schedule of
      the decoder are derived from that list for grids of any rank. Only rank-2 patterns
      (Cool-chic 3.x/4's masks) are declared for now.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inrkit.errors import InputError

__all__ = [
    "CAUSAL_OFFSETS",
    "LOG2_SCALE_MAX",
    "LOG2_SCALE_MIN",
    "LOG2_SCALE_SHIFT",
    "MU_STEPS",
    "N_SCALES",
    "RATE_FLOOR",
    "SCALE_STEPS_PER_OCTAVE",
    "Arm",
    "IntegerArm",
    "causal_context",
    "check_causal",
    "coding_grid",
    "causal_context_np",
    "context_index",
    "get_offsets",
    "laplace_rate_bits",
    "multi_level_context",
]

LOG2_SCALE_MIN = -8
LOG2_SCALE_MAX = 6
SCALE_STEPS_PER_OCTAVE = 8
N_SCALES = (LOG2_SCALE_MAX - LOG2_SCALE_MIN) * SCALE_STEPS_PER_OCTAVE + 1  # 113
LOG2_SCALE_SHIFT = -4  # added to the raw scale output: a fresh ARM predicts b = 1/16
MU_STEPS = 16  # sub-integer mu offsets of the coding tables (Cool-chic's N_MUQ)
RATE_FLOOR = 2.0**-16

_W_CLIP = 1 << 15
_B_CLIP = 1 << 40
_A_CLIP = 1 << 31


def _mask_offsets(indices: list[int], size: int = 9) -> tuple[tuple[int, int], ...]:
    c = size // 2
    return tuple((i // size - c, i % size - c) for i in indices)


# Causal neighbourhoods, (dy, dx) relative to the current latent, in raster order. Rank 2: the
# 9x9 masks of Cool-chic 3.x/4 (``_get_non_zero_pixel_ctx_index``), written as offsets.
CAUSAL_OFFSETS: dict[tuple[int, int], tuple[tuple[int, ...], ...]] = {
    (2, 8): _mask_offsets([13, 22, 30, 31, 32, 37, 38, 39]),
    (2, 16): _mask_offsets([13, 14, 20, 21, 22, 23, 24, 28, 29, 30, 31, 32, 33, 37, 38, 39]),
    (2, 24): _mask_offsets(
        [4, 11, 12, 13, 14, 15, 19, 20, 21, 22, 23, 24, 25, 28, 29, 30, 31, 32, 33, 34, 36, 37, 38, 39]
    ),
    (2, 32): _mask_offsets(
        [2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 24, 25, 26]
        + [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39]
    ),
}


def get_offsets(n_ctx: int, rank: int = 2) -> tuple[tuple[int, ...], ...]:
    """The declared causal neighbourhood of ``n_ctx`` latents for grids of ``rank`` dimensions.

    Raises:
        InputError: no pattern declared for (rank, n_ctx).
    """
    try:
        return CAUSAL_OFFSETS[(rank, n_ctx)]
    except KeyError:
        have = sorted(CAUSAL_OFFSETS)
        raise InputError(f"no causal neighbourhood for rank {rank} with {n_ctx} contexts; have {have}") from None


def check_causal(offsets) -> None:
    """Raise InputError unless every offset precedes the origin in raster (C) order."""
    for o in offsets:
        nz = [v for v in o if v != 0]
        if not nz or nz[0] > 0:
            raise InputError(f"context offset {o} is not causal in raster order")


@functools.lru_cache(maxsize=64)
def _level_index(shape: tuple[int, ...], offsets: tuple[tuple[int, ...], ...]):
    """Padded shape, flat buffer index of every grid position, and flat context deltas."""
    rank = len(shape)
    pad = tuple(max(abs(o[d]) for o in offsets) for d in range(rank))
    pshape = tuple(s + 2 * p for s, p in zip(shape, pad, strict=True))
    strides = np.cumprod((1,) + pshape[::-1])[:-1][::-1].astype(np.int64)
    grids = np.meshgrid(*[np.arange(s, dtype=np.int64) + p for s, p in zip(shape, pad, strict=True)], indexing="ij")
    pos = sum(g * st for g, st in zip(grids, strides, strict=True)).reshape(-1)
    rel = np.array([sum(int(v) * int(st) for v, st in zip(o, strides, strict=True)) for o in offsets], dtype=np.int64)
    return pad, pshape, pos, rel


def context_index(shape: tuple[int, ...], offsets) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Index helpers for gathering contexts of a grid from its zero-padded, flattened copy.

    Args:
        shape: grid shape (any rank).
        offsets: causal offsets (tuples of length ``len(shape)``).

    Returns:
        (pad, pos, rel): per-dimension padding, the flat padded index of every position (C order),
        and the flat delta of every offset: the contexts are ``padded.ravel()[pos[:, None] + rel]``.
    """
    offsets = tuple(tuple(int(v) for v in o) for o in offsets)
    if any(len(o) != len(shape) for o in offsets):
        raise InputError(f"offsets of rank {len(offsets[0])} for a grid of rank {len(shape)}")
    pad, _pshape, pos, rel = _level_index(tuple(int(s) for s in shape), offsets)
    return pad, pos, rel


def _pad_spec(pad):
    spec = []
    for p in reversed(pad):
        spec += [p, p]
    return spec


def causal_context(grid: Tensor, offsets) -> Tensor:
    """Causal contexts of every latent of a grid, zero outside the grid (differentiable).

    Args:
        grid: float tensor of shape ``S`` (any rank, no batch or channel axis).
        offsets: causal offsets, one tuple of ``len(S)`` ints each.

    Returns:
        ``(prod(S), N)`` tensor; row ``i`` holds the neighbours of the ``i``-th latent in C order.
    """
    pad, pos, rel = context_index(tuple(grid.shape), offsets)
    padded = F.pad(grid, _pad_spec(pad))
    idx = torch.from_numpy(pos[:, None] + rel[None, :])
    return padded.reshape(-1)[idx]


def causal_context_np(grid: np.ndarray, offsets) -> np.ndarray:
    """``causal_context`` for integer numpy grids (int64 output)."""
    grid = np.asarray(grid, dtype=np.int64)
    pad, pos, rel = context_index(grid.shape, offsets)
    padded = np.pad(grid, [(p, p) for p in pad])
    return padded.reshape(-1)[pos[:, None] + rel[None, :]]


def multi_level_context(levels: list[Tensor], offsets) -> Tensor:
    """Causal contexts of every latent of several grids, concatenated level after level."""
    return torch.cat([causal_context(g, offsets) for g in levels], dim=0)


def laplace_rate_bits(x: Tensor, mu: Tensor, log2_scale: Tensor) -> Tensor:
    """Rate of each (quantized) latent: ``-log2 P(x)``, ``P`` the Laplace mass of ``[x-1/2, x+1/2]``.

    Args:
        x: latent values.
        mu: Laplace locations (same shape).
        log2_scale: ``log2`` of the Laplace scales (same shape).

    Returns:
        Bits per latent, each at most 16 (probability floor ``RATE_FLOOR``).
    """
    scale = torch.exp2(log2_scale)
    d = x - mu
    # P = F(d + 1/2) - F(d - 1/2), written on the side of the mode to avoid cancellation.
    hi = (d.abs() + 0.5) / scale
    lo = (d.abs() - 0.5) / scale
    # |d| >= 1/2: 0.5 * (exp(-lo) - exp(-hi)); |d| < 1/2: 1 - 0.5 * (exp(lo) + exp(-hi))
    far = 0.5 * (torch.exp(-lo.clamp_min(0)) - torch.exp(-hi))
    near = 1.0 - 0.5 * (torch.exp(lo.clamp_max(0)) + torch.exp(-hi))
    p = torch.where(d.abs() >= 0.5, far, near)
    return -torch.log2(p.clamp_min(RATE_FLOOR))


class Arm(nn.Module):
    """Float ARM, trained with the rest of the model.

    Args:
        n_ctx: number of causal neighbours N (8, 16, 24 or 32 for rank 2) and hidden width.
        n_hidden: number of residual hidden layers (0 gives a linear ARM).
        rank: rank of the latent grids (selects the neighbourhood pattern).

    Raises:
        InputError: no pattern for (rank, n_ctx), or a negative ``n_hidden``.
    """

    def __init__(self, n_ctx: int = 16, n_hidden: int = 2, rank: int = 2):
        super().__init__()
        if n_hidden < 0:
            raise InputError(f"n_hidden must be >= 0, got {n_hidden}")
        self.offsets = get_offsets(n_ctx, rank)
        check_causal(self.offsets)
        self.n_ctx, self.n_hidden, self.rank = n_ctx, n_hidden, rank
        self.hidden = nn.ModuleList([nn.Linear(n_ctx, n_ctx) for _ in range(n_hidden)])
        self.out = nn.Linear(n_ctx, 2)
        with torch.no_grad():
            for lin in self.hidden:  # residual layers start as identity (Cool-chic)
                lin.weight.zero_()
                lin.bias.zero_()
            self.out.weight.copy_(torch.randn(2, n_ctx) / 4.0)  # N(0, 1/C_out^4), as Cool-chic
            self.out.bias.zero_()

    def forward(self, ctx: Tensor) -> tuple[Tensor, Tensor]:
        """Distribution parameters from contexts.

        Args:
            ctx: ``(B, N)`` float contexts.

        Returns:
            (mu, log2_scale): ``(B,)`` each, ``log2_scale`` clamped to the coding grid.
        """
        x = ctx
        for lin in self.hidden:
            x = F.relu(lin(x) + x)
        raw = self.out(x)
        log2_scale = torch.clamp(raw[:, 1] + LOG2_SCALE_SHIFT, LOG2_SCALE_MIN, LOG2_SCALE_MAX)
        return raw[:, 0], log2_scale

    def rate_bits(self, levels: list[Tensor]) -> Tensor:
        """Per-latent rate of quantized latent grids, concatenated level after level (C order)."""
        ctx = multi_level_context(levels, self.offsets)
        mu, log2_scale = self(ctx)
        x = torch.cat([g.reshape(-1) for g in levels])
        return laplace_rate_bits(x, mu, log2_scale)

    def macs_per_latent(self) -> int:
        """Multiply-accumulates of one ARM evaluation."""
        return self.n_hidden * self.n_ctx * self.n_ctx + 2 * self.n_ctx

    def quantize(self, weight_frac_bits: int = 8, act_frac_bits: int = 8) -> IntegerArm:
        """Integer copy of this ARM (weights rounded to ``weight_frac_bits`` fractional bits)."""
        return IntegerArm.from_float(self, weight_frac_bits, act_frac_bits)

    @torch.no_grad()
    def load_integer(self, iarm: IntegerArm) -> None:
        """Set the float weights to the values of an IntegerArm (for evaluating its rate in float)."""
        layers = list(self.hidden) + [self.out]
        for lin, w, b in zip(layers, iarm.weights, iarm.biases, strict=True):
            lin.weight.copy_(torch.from_numpy(w.astype(np.float64) / 2.0**iarm.weight_frac_bits))
            lin.bias.copy_(torch.from_numpy(b.astype(np.float64) / 2.0 ** (iarm.weight_frac_bits + iarm.act_frac_bits)))


@dataclass(frozen=True, eq=False)
class IntegerArm:
    """Integer ARM: numpy int64 weights, the decoder's model.

    Attributes:
        weights: per layer (hidden layers then the output layer), ``(out, in)`` int64 arrays of
            ``round(w * 2^weight_frac_bits)``.
        biases: per layer, ``(out,)`` int64 arrays of ``round(b * 2^(weight_frac_bits + act_frac_bits))``.
        offsets: the causal neighbourhood.
        weight_frac_bits: fractional bits of the weights.
        act_frac_bits: fractional bits of the activations (and of the output ``mu``).
    """

    weights: tuple
    biases: tuple
    offsets: tuple
    weight_frac_bits: int = 8
    act_frac_bits: int = 8

    def __post_init__(self):
        n = len(self.offsets)
        if not 1 <= self.weight_frac_bits <= 16 or not 5 <= self.act_frac_bits <= 12:
            raise InputError("IntegerArm: weight_frac_bits must be in [1, 16] and act_frac_bits in [5, 12]")
        if len(self.weights) != len(self.biases) or not self.weights:
            raise InputError("IntegerArm: one bias per weight matrix, at least one layer")
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            out = 2 if i == len(self.weights) - 1 else n
            if w.shape != (out, n) or b.shape != (out,) or w.dtype != np.int64 or b.dtype != np.int64:
                raise InputError(f"IntegerArm: layer {i} must be int64 ({out}, {n}) and ({out},)")
        check_causal(self.offsets)

    @property
    def n_ctx(self) -> int:
        return len(self.offsets)

    @classmethod
    def from_float(cls, arm: Arm, weight_frac_bits: int = 8, act_frac_bits: int = 8) -> IntegerArm:
        """Quantize a float ARM (round to nearest, saturate to the integer bounds)."""
        ws, bs = [], []
        for lin in list(arm.hidden) + [arm.out]:
            w = torch.round(lin.weight.detach().double() * 2.0**weight_frac_bits).clamp(-_W_CLIP, _W_CLIP)
            b = torch.round(lin.bias.detach().double() * 2.0 ** (weight_frac_bits + act_frac_bits)).clamp(-_B_CLIP, _B_CLIP)
            ws.append(w.to(torch.int64).numpy().copy())
            bs.append(b.to(torch.int64).numpy().copy())
        return cls(tuple(ws), tuple(bs), arm.offsets, weight_frac_bits, act_frac_bits)

    def _kernels(self):
        """Weight matrices with the residual folded in (``W + 2^wf I``) and column biases, cached."""
        ks = self.__dict__.get("_k")
        if ks is None:
            wf = self.weight_frac_bits
            eye = np.eye(self.n_ctx, dtype=np.int64) << wf
            mats = [np.ascontiguousarray(w + eye) for w in self.weights[:-1]]
            mats.append(np.ascontiguousarray(self.weights[-1]))
            half = 1 << (wf - 1)
            # column biases carrying the rounding constant of the shift that follows
            cols = [(b + half)[:, None].copy() for b in self.biases]
            ks = (mats, cols)
            object.__setattr__(self, "_k", ks)
        return ks

    def raw_t(self, ctx_t: np.ndarray) -> np.ndarray:
        """``raw`` in feature-major layout: integer contexts ``(N, B)`` to fixed-point outputs ``(2, B)``.

        Hidden layer: ``x <- min(round(max(W x + b + x * 2^wf, 0) / 2^wf), 2^31)`` with ``x`` in
        Q(af), the sum in Q(wf + af); output: ``round((W x + b) / 2^wf)``. Rounding is
        ``(v + 2^(wf-1)) >> wf`` (arithmetic shift). int64 throughout.
        """
        wf, af = self.weight_frac_bits, self.act_frac_bits
        mats, cols = self._kernels()
        x = np.asarray(ctx_t, dtype=np.int64) << af
        for w, b in zip(mats[:-1], cols[:-1], strict=True):
            acc = np.einsum("oi,ib->ob", w, x)
            acc += b  # bias + 2^(wf-1): max(acc + half, 0) >> wf == round(ReLU(acc) / 2^wf)
            np.maximum(acc, 0, out=acc)
            acc >>= wf
            x = np.minimum(acc, _A_CLIP, out=acc)
        acc = np.einsum("oi,ib->ob", mats[-1], x)
        acc += cols[-1]
        acc >>= wf
        return acc

    def raw(self, ctx: np.ndarray) -> np.ndarray:
        """Fixed-point MLP output ``(B, 2)`` (``act_frac_bits`` fractional bits) for integer contexts ``(B, N)``."""
        return self.raw_t(np.ascontiguousarray(np.asarray(ctx, dtype=np.int64).T)).T

    def params_t(self, ctx_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``__call__`` for feature-major contexts ``(N, B)``.

        Latents whose contexts are all zero (most of a trained pyramid's fine levels) get the
        parameters of the all-zero context, computed once: the same integers, fewer products.
        """
        ctx_t = np.asarray(ctx_t, dtype=np.int64)
        b = ctx_t.shape[1]
        if b >= 32:
            nz = np.flatnonzero(ctx_t.any(axis=0))
            if nz.size < (3 * b) // 4:
                mu0, k0 = self._zero_params()
                mu, k = np.full(b, mu0, np.int64), np.full(b, k0, np.int64)
                if nz.size:
                    mu[nz], k[nz] = self._params_dense(ctx_t[:, nz])
                return mu, k
        return self._params_dense(ctx_t)

    def _zero_params(self) -> tuple[int, int]:
        z = self.__dict__.get("_z")
        if z is None:
            mu, k = self._params_dense(np.zeros((self.n_ctx, 1), np.int64))
            z = (int(mu[0]), int(k[0]))
            object.__setattr__(self, "_z", z)
        return z

    def _params_dense(self, ctx_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        af = self.act_frac_bits
        out = self.raw_t(ctx_t)
        mu_lim = np.int64(((1 << 15) + 1) << af)
        mu_fp = np.maximum(np.minimum(out[0], mu_lim), -mu_lim)
        sh = af - (SCALE_STEPS_PER_OCTAVE.bit_length() - 1)
        k = (out[1] + np.int64(((LOG2_SCALE_SHIFT - LOG2_SCALE_MIN) << af) + (1 << (sh - 1)))) >> sh
        return mu_fp, np.maximum(np.minimum(k, N_SCALES - 1), 0)

    def __call__(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer distribution parameters.

        Args:
            ctx: ``(B, N)`` integer latents (|value| <= 2^15 for the no-overflow guarantee).

        Returns:
            (mu_fp, scale_idx): int64 ``(B,)`` arrays; ``mu = mu_fp / 2^act_frac_bits`` (saturated
            to +-(2^15 + 1)) and ``log2 b = LOG2_SCALE_MIN + scale_idx / SCALE_STEPS_PER_OCTAVE``, with
            ``scale_idx = clip(round((l - LOG2_SCALE_MIN) * SCALE_STEPS_PER_OCTAVE), 0, N_SCALES - 1)``
            and ``l = raw_scale + LOG2_SCALE_SHIFT`` (rounding half up, in integers).
        """
        return self.params_t(np.ascontiguousarray(np.asarray(ctx, dtype=np.int64).T))

    def parameters_of(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer parameters of every latent of a known grid at once (C order)."""
        return self(causal_context_np(grid, self.offsets))


def coding_grid() -> dict:
    """The scale grid and mu offsets the integer ARM's outputs index, as keyword arguments of
    ``inrkit.codecs.bitstream.laplace.get_table``."""
    return dict(log2_scale_min=LOG2_SCALE_MIN, steps_per_octave=SCALE_STEPS_PER_OCTAVE, n_scales=N_SCALES, mu_steps=MU_STEPS)

