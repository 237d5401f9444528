"""Latent pyramid of Cool-chic / C3 and the quantization proxies used to train it.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023
    (the pyramid of L learnable grids, level i at 1/2^i resolution, one channel each).
    Kim et al., "C3: High-performance and low-complexity neural compression from a single image
    or video", CVPR 2024 (soft-rounding with noise, Kumaraswamy noise, temperature annealing).
    Agustsson & Theis, "Universally Quantized Neural Compression", NeurIPS 2020 (soft rounding and
    its conditional-mean inverse).

Shapes: level ``i`` of a signal of shape ``(s_0, ..., s_{d-1})`` has shape
``(ceil(s_0 / 2^i), ..., ceil(s_{d-1} / 2^i))`` for any rank ``d`` (1-D audio, 2-D image, 3-D video).

Quantization proxies (``quantize``; applied to ``gain * parameter``, Cool-chic's encoder gain, so
that the parameters stay O(1/gain) and Adam's step is a fraction of a quantization bin):

* ``"none"``: identity.
* ``"noise"``: ``x + u``, ``u ~ U(-1/2, 1/2)`` (or centred Kumaraswamy noise when ``kumaraswamy_a``
  is given) -- Cool-chic 1/2.
* ``"softround"``: C3's ``r(s(x) + u)``, ``s`` the soft round with temperature ``T`` and ``r`` its
  conditional mean ``E[X | s(X) + U = z]`` (Agustsson & Theis), ``u`` uniform or Kumaraswamy.
* ``"softround_alone"``: ``s(x)`` (no noise).
* ``"ste"``: ``round(x)`` in the forward pass; the gradient is that of ``s(x, T)`` when a
  temperature is given (Cool-chic 3+), else the identity (C3's straight-through).
* ``"round"``: ``round(x)`` (no gradient), what the decoder sees.

Departure from C3/Cool-chic: Cool-chic 3+ applies soft rounding twice (``s(s(x) + u)``); this
follows C3's ``r(s(x) + u)``, which keeps the proxy's expectation on the soft-rounded value.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from inrkit.errors import InputError

__all__ = ["MODES", "LatentPyramid", "kumaraswamy_noise", "level_shapes", "quantize", "soft_round", "soft_round_inverse"]

MODES = ("none", "noise", "softround", "softround_alone", "ste", "round")


def level_shapes(shape: tuple[int, ...], n_levels: int = 7) -> list[tuple[int, ...]]:
    """Grid shapes of the pyramid, finest first: level ``i`` is ``ceil(shape / 2^i)`` per axis.

    Args:
        shape: signal shape, any rank >= 1, every size >= 1.
        n_levels: number of levels L >= 1.

    Returns:
        L shape tuples.

    Raises:
        InputError: an empty shape, a size < 1, or ``n_levels`` < 1.
    """
    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1:
        raise InputError(f"latent pyramid: signal shape must be non-empty with sizes >= 1, got {shape}")
    if n_levels < 1:
        raise InputError(f"latent pyramid: n_levels must be >= 1, got {n_levels}")
    return [tuple(-(-s // (1 << i)) for s in shape) for i in range(n_levels)]


def soft_round(x: Tensor, temperature: float) -> Tensor:
    """Soft rounding ``floor(x) + 1/2 + tanh((x - floor(x) - 1/2) / T) / (2 tanh(1 / (2T)))``.

    ``T -> 0`` gives ``round``, large ``T`` the identity. (Agustsson & Theis, Sec. 4.1; ``T = 1/alpha``.)
    """
    m = torch.floor(x) + 0.5
    return m + torch.tanh((x - m) / temperature) / (2.0 * math.tanh(0.5 / temperature))


def soft_round_inverse(y: Tensor, temperature: float) -> Tensor:
    """Inverse of ``soft_round`` (same temperature)."""
    m = torch.floor(y) + 0.5
    z = 2.0 * math.tanh(0.5 / temperature)
    r = torch.clamp((y - m) * z, -1.0 + 1e-6, 1.0 - 1e-6)
    return m + torch.atanh(r) * temperature


def kumaraswamy_noise(like: Tensor, a: float) -> Tensor:
    """Noise in ``(-1/2, 1/2)`` from a Kumaraswamy(a, b) law whose mode is 1/2 (``a = 1``: uniform).

    ``b = (2^a (a - 1) + 1) / a`` (C3); sampled by the inverse CDF ``(1 - (1 - u)^(1/b))^(1/a)``.
    """
    if a < 1.0:
        raise InputError(f"kumaraswamy_a must be >= 1, got {a}")
    u = torch.rand_like(like)
    b = (2.0**a * (a - 1.0) + 1.0) / a
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a) - 0.5


def quantize(x: Tensor, mode: str = "noise", temperature: float | None = 0.3, kumaraswamy_a: float | None = None) -> Tensor:
    """Quantization proxy of ``x`` (quantization step 1), see the module docstring.

    Args:
        x: values to quantize.
        mode: one of ``MODES``.
        temperature: soft-round temperature (``"softround"``, ``"softround_alone"``; optional
            for ``"ste"``).
        kumaraswamy_a: Kumaraswamy ``a`` for the noise (``None`` or 1: uniform).

    Returns:
        Tensor of ``x``'s shape.

    Raises:
        InputError: unknown mode, or a soft-round mode without a positive temperature.
    """
    if mode not in MODES:
        raise InputError(f"quantize: mode must be one of {MODES}, got {mode!r}")
    if mode in ("softround", "softround_alone") and not (temperature and temperature > 0):
        raise InputError(f"quantize: mode {mode!r} needs a positive temperature")
    if mode == "none":
        return x
    if mode == "round":
        return torch.round(x).detach()
    if mode == "ste":
        proxy = soft_round(x, temperature) if temperature else x
        return proxy + (torch.round(x) - proxy).detach()
    if mode == "softround_alone":
        return soft_round(x, temperature)
    noise = kumaraswamy_noise(x, kumaraswamy_a) if kumaraswamy_a not in (None, 1, 1.0) else torch.rand_like(x) - 0.5
    if mode == "noise":
        return x + noise
    # softround: r(s(x) + u), r(z) = s^-1(z - 1/2) + 1/2
    return soft_round_inverse(soft_round(x, temperature) + noise - 0.5, temperature) + 0.5


class LatentPyramid(nn.Module):
    """L learnable one-channel latent grids at resolutions 1, 1/2, ..., 1/2^(L-1).

    Args:
        shape: signal shape (any rank).
        n_levels: number of levels L (default 7).
        gain: encoder gain; the decoder-side latent is ``quantize(gain * parameter)``.

    Raises:
        InputError: bad shape, level count or gain.
    """

    def __init__(self, shape: tuple[int, ...], n_levels: int = 7, gain: float = 16.0):
        super().__init__()
        if not gain > 0:
            raise InputError(f"latent pyramid: gain must be > 0, got {gain}")
        self.shape = tuple(int(s) for s in shape)
        self.shapes = level_shapes(self.shape, n_levels)
        self.gain = float(gain)
        self.grids = nn.ParameterList([nn.Parameter(torch.zeros(s)) for s in self.shapes])

    @property
    def n_levels(self) -> int:
        return len(self.shapes)

    @property
    def n_latents(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def forward(self, mode: str = "noise", temperature: float | None = 0.3, kumaraswamy_a: float | None = None) -> list[Tensor]:
        """Decoder-side latents (quantization proxies of ``gain * grids``), finest first.

        Args: as ``quantize``.

        Returns:
            L tensors of shapes ``self.shapes``.
        """
        return [quantize(g * self.gain, mode, temperature, kumaraswamy_a) for g in self.grids]

    @torch.no_grad()
    def integer_levels(self) -> list[np.ndarray]:
        """The quantized latents, ``round(gain * grids)``, as int64 numpy grids (finest first)."""
        return [torch.round(g * self.gain).to(torch.int64).numpy() for g in self.grids]

    @torch.no_grad()
    def load_integer_levels(self, levels) -> None:
        """Set the grids so that ``integer_levels()`` returns ``levels``.

        Raises:
            InputError: wrong number of levels or shapes.
        """
        if len(levels) != self.n_levels:
            raise InputError(f"latent pyramid: {len(levels)} levels for a pyramid of {self.n_levels}")
        for g, lv in zip(self.grids, levels, strict=True):
            lv = np.asarray(lv)
            if tuple(lv.shape) != tuple(g.shape):
                raise InputError(f"latent pyramid: level of shape {lv.shape}, expected {tuple(g.shape)}")
            g.copy_(torch.from_numpy(lv.astype(np.float64)).to(g.dtype) / self.gain)
