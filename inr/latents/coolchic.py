"""Cool-chic / C3-class overfitted image model: latent pyramid + ARM + upsampler + synthesis.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023.
    Kim et al., "C3: High-performance and low-complexity neural compression from a single image
    or video", CVPR 2024.

``CoolChic(shape, config)`` holds one learnable pyramid of L one-channel grids
(``pyramid.LatentPyramid``), the shared ARM (``arm.Arm``), the Cool-chic 4.x upsampler
(``upsampler.Upsampler``) and the synthesis (``synthesis.Synthesis``). ``forward(mode)`` returns the
reconstruction ``(1, C, *shape)`` and the latents' rate in bits under the ARM (the training
objective is ``distortion + lambda * rate / pixels``). For coding, ``integer_levels()`` and
``integer_arm()`` give the integer latents and the integer ARM that
``wavefront.level_parameters`` / ``wavefront.decode_levels`` and
``inrkit.codecs.bitstream.laplace`` turn into bytes and back; ``reconstruct(levels)`` is the
decoder's synthesis from decoded latents.

Complexity: ``mac_per_pixel(config, shape)`` counts multiply-accumulates per decoded pixel from
the architecture: the ARM at every latent of every level, the upsampler's passes and the
synthesis. ``PRESETS`` holds three configurations of about 500, 1,000 and 2,000 MAC/pixel
(checked at 512x768 and 256x256).

Departures: no hyper-latents, no IFCE and no ARM "stabiliser" (Cool-chic 5 features); one latent
channel per level; the network weights are not quantized here (the coding layer owns that), only
the ARM gets the integer path the entropy decoder needs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from inrkit.errors import InputError
from inrkit.inr.latents.arm import Arm, IntegerArm
from inrkit.inr.latents.pyramid import LatentPyramid, level_shapes
from inrkit.inr.latents.synthesis import Synthesis, parse_layers
from inrkit.inr.latents.upsampler import Upsampler

__all__ = ["PRESETS", "CoolChic", "CoolChicConfig", "mac_per_pixel", "preset"]


@dataclass(frozen=True)
class CoolChicConfig:
    """Architecture of a CoolChic model.

    Attributes:
        n_levels: pyramid levels L.
        arm_ctx: ARM context size N (8, 16, 24 or 32) and hidden width.
        arm_hidden: ARM residual hidden layers.
        ups_kernel: upsampling transposed-convolution taps (even).
        preconcat_kernel: pre-concatenation filter taps (odd).
        synthesis: Cool-chic layer description; its last width is the output channel count.
        latent_gain: encoder gain applied to the latent parameters before quantization.

    The defaults are the ~1,000 MAC/pixel preset.
    """

    n_levels: int = 7
    arm_ctx: int = 16
    arm_hidden: int = 1
    ups_kernel: int = 8
    preconcat_kernel: int = 7
    synthesis: str = "40-1-linear-relu,3-1-linear-relu,3-3-residual-relu,3-3-residual-none"
    latent_gain: float = 16.0

    def replace(self, **changes) -> CoolChicConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, CoolChicConfig] = {
    # ~500 MAC/pixel: 8-context ARM, narrow synthesis
    "500": CoolChicConfig(arm_ctx=8, arm_hidden=2, synthesis="16-1-linear-relu,3-1-linear-relu,3-3-residual-none"),
    # ~1,000 MAC/pixel: 16-context ARM with one hidden layer, Cool-chic 3's synthesis
    "1000": CoolChicConfig(arm_ctx=16, arm_hidden=1),
    # ~2,000 MAC/pixel: 24-context ARM with two hidden layers
    "2000": CoolChicConfig(
        arm_ctx=24, arm_hidden=2, synthesis="32-1-linear-relu,3-1-linear-relu,3-3-residual-relu,3-3-residual-none"
    ),
}


def preset(name: str) -> CoolChicConfig:
    """The preset named ``"500"``, ``"1000"`` or ``"2000"`` (MAC per decoded pixel).

    Raises:
        InputError: unknown name.
    """
    try:
        return PRESETS[str(name)]
    except KeyError:
        raise InputError(f"unknown CoolChic preset {name!r}; have {sorted(PRESETS)}") from None


def mac_per_pixel(config: CoolChicConfig, shape: tuple[int, ...]) -> float:
    """Multiply-accumulates per decoded pixel of ``config`` on a signal of ``shape``.

    ARM: ``n_hidden * N^2 + 2 N`` at every latent of every level; upsampler: ``k/2`` MAC per
    output sample and axis of each stride-2 pass (on every channel upsampled) plus ``k_pre`` per
    sample and axis of each pre-concatenation filter; synthesis: ``in * out * k^d`` per layer.

    Args:
        config: the architecture.
        shape: signal shape (any rank).

    Returns:
        MAC per pixel (float).
    """
    shapes = level_shapes(shape, config.n_levels)
    pixels = math.prod(shapes[0])
    rank = len(shape)
    arm = config.arm_hidden * config.arm_ctx**2 + 2 * config.arm_ctx
    n_latents = sum(math.prod(s) for s in shapes)
    ups = Upsampler(config.n_levels, rank, config.ups_kernel, config.preconcat_kernel).macs(shapes)
    syn = 0
    c = config.n_levels
    for spec in parse_layers(config.synthesis):
        syn += c * spec.out_channels * spec.kernel_size**rank
        c = spec.out_channels
    return (arm * n_latents + ups) / pixels + syn


class CoolChic(nn.Module):
    """Overfitted latent model of one signal.

    Args:
        shape: signal shape (``(H, W)`` for an image).
        config: architecture (default ``CoolChicConfig()``).

    Raises:
        InputError: a bad shape or configuration.
    """

    def __init__(self, shape: tuple[int, ...], config: CoolChicConfig | None = None):
        super().__init__()
        self.config = config or CoolChicConfig()
        cfg = self.config
        self.shape = tuple(int(s) for s in shape)
        rank = len(self.shape)
        self.latents = LatentPyramid(self.shape, cfg.n_levels, cfg.latent_gain)
        self.arm = Arm(cfg.arm_ctx, cfg.arm_hidden, rank)
        self.upsampler = Upsampler(cfg.n_levels, rank, cfg.ups_kernel, cfg.preconcat_kernel)
        self.synthesis = Synthesis(cfg.n_levels, cfg.synthesis, rank)

    @property
    def out_channels(self) -> int:
        return self.synthesis.out_channels

    def forward(self, mode: str = "noise", temperature: float | None = 0.3, kumaraswamy_a: float | None = None) -> tuple[Tensor, Tensor]:
        """Reconstruction and latent rate under a quantization proxy.

        Args:
            mode: quantization proxy (``pyramid.MODES``).
            temperature: soft-round temperature.
            kumaraswamy_a: Kumaraswamy noise parameter (``None``: uniform).

        Returns:
            (reconstruction ``(1, C, *shape)``, rate in bits: a scalar tensor).
        """
        levels = self.latents(mode, temperature, kumaraswamy_a)
        rate = self.arm.rate_bits(levels).sum()
        return self.synthesis(self.upsampler(levels)), rate

    @torch.no_grad()
    def reconstruct(self, levels=None) -> Tensor:
        """Decoder-side reconstruction, clamped to [0, 1], from integer latents (default: this
        model's own ``integer_levels()``)."""
        if levels is None:
            levels = self.latents.integer_levels()
        lv = [torch.from_numpy(np.asarray(g, np.float32)) for g in levels]
        return self.synthesis(self.upsampler(lv)).clamp(0.0, 1.0)

    def integer_levels(self) -> list[np.ndarray]:
        """The quantized latents (int64 numpy grids, finest first)."""
        return self.latents.integer_levels()

    def integer_arm(self, weight_frac_bits: int = 8, act_frac_bits: int = 8) -> IntegerArm:
        """The ARM in fixed point, as the entropy coder and decoder use it."""
        return self.arm.quantize(weight_frac_bits, act_frac_bits)

    def mac_per_pixel(self) -> float:
        """``mac_per_pixel(self.config, self.shape)``."""
        return mac_per_pixel(self.config, self.shape)

    def n_parameters(self) -> dict[str, int]:
        """Parameter counts of the networks (ARM, upsampler, synthesis) and the latent count."""
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {
            "arm": count(self.arm),
            "upsampler": count(self.upsampler),
            "synthesis": count(self.synthesis),
            "latents": self.latents.n_latents,
        }
