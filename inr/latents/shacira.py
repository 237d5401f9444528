"""SHACIRA's model and its optimisation: a latent hash grid, a small ReLU MLP, and the
entropy-regularised fit that trains them on one signal.

Girish, Shrivastava, Gupta, "SHACIRA: Scalable HAsh-grid Compression for Implicit
Neural Representations", ICCV 2023 (reference code github.com/Sharath-girish/Shacira,
``wisp/trainers/image_trainer.py``, ``app/image/configs/kodak.yaml``). The codec that
writes these models into files, and the departures from the paper, are described in
:mod:`inrkit.codecs.shacira`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from inrkit.datasets.grids import coordinate_grid
from inrkit.datasets.signal import Signal

from .latent_grid import LatentGrid

MAX_FINEST_RESOLUTION = 1 << 22
"""Audio: at most this many vertices at the finest level (a 175 s clip at 48 kHz)."""
RENDER_CHUNK = 1 << 22
"""Samples rendered at once (their features take ``levels × 4`` bytes each)."""
POINT_CHUNK = 1 << 16
"""Samples rendered at once on the per-point path (``levels × 2^d`` corners each)."""


@dataclass
class ShaciraConfig:
    """Architecture; stored in the file header."""

    in_dim: int = 2
    out_channels: int = 3
    n_levels: int = 24
    log2_hashmap_size: int = 11
    base_resolution: int = 16
    finest_resolution: int = 512
    latent_dim: int = 1
    feature_dim: int = 1
    decoder_per_level: bool = False
    mlp_width: int = 16
    mlp_depth: int = 2  # hidden layers

    @classmethod
    def for_signal(cls, signal: Signal, **overrides: Any) -> ShaciraConfig:
        if signal.modality == "video":
            longest = max(signal.grid_shape)
            defaults = dict(in_dim=3, n_levels=16, log2_hashmap_size=15, base_resolution=4,
                            finest_resolution=max(8, longest))
        elif signal.modality == "audio":
            finest = min(MAX_FINEST_RESOLUTION, max(32, signal.grid_shape[0] // 2))
            defaults = dict(in_dim=1, n_levels=16, base_resolution=16, finest_resolution=finest,
                            log2_hashmap_size=(finest - 1).bit_length())
        else:
            defaults = dict(in_dim=2)
        return cls(out_channels=signal.channels, **{**defaults, **overrides})


@dataclass
class TrainConfig:
    """Optimisation settings (reference ``kodak.yaml`` unless noted in the module docstring)."""

    steps: int = 600
    lmbda: float = 1e-3
    lmbda_end_ratio: float = 0.1  # entropy_reg_end / entropy_reg
    temperature_end: float = 0.1
    decay_period: float = 0.9  # fraction of training with SGA
    lr_mlp: float = 1e-2
    lr_latents: float = 2e-2
    lr_decoder: float = 1e-2
    lr_prior: float = 1e-2
    weight_decay_decoder: float = 1e-2
    batch_size: int | None = None  # None: every sample each step
    time_budget: float | None = None

    def lmbda_at(self, t: float) -> float:
        end = self.lmbda * self.lmbda_end_ratio
        return end + 0.5 * (self.lmbda - end) * (1 + math.cos(math.pi * t))

    def temperature_at(self, t: float) -> float:
        rate = math.log(1 / self.temperature_end) / self.decay_period
        return max(self.temperature_end, math.exp(-rate * t))


class ShaciraModel(nn.Module):
    """Latent grid + MLP. ``forward`` evaluates the field with hard-rounded latents."""

    def __init__(self, config: ShaciraConfig):
        super().__init__()
        c = self.config = config
        self.grid = LatentGrid(
            c.in_dim, c.n_levels, c.log2_hashmap_size, c.base_resolution, c.finest_resolution,
            c.latent_dim, c.feature_dim, c.decoder_per_level,
        )
        widths = [self.grid.output_dim] + [c.mlp_width] * c.mlp_depth + [c.out_channels]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers[:-1])

    def table(self, mode: str = "round", temperature: float = 1.0) -> torch.Tensor:
        return self.grid.decode_table(self.grid.quantized_latents(mode, temperature))

    @torch.no_grad()
    def render(self, grid_shape: tuple[int, ...], chunk: int = RENDER_CHUNK) -> torch.Tensor:
        """Values ``[*grid_shape, C]`` (``[0, 1]`` scale, unclamped) with rounded latents,
        computed separably in slabs of at most ``chunk`` samples along axis 0 (per point,
        in chunks, where one row along axis 0 alone is larger)."""
        shape = tuple(int(n) for n in grid_shape)
        per_row = math.prod(shape[1:])
        if per_row > chunk:
            return self.render_per_point(shape)
        table = self.table("round")
        rows = chunk // per_row
        out = [
            self.mlp(self.grid.features_on_grid(table, shape, slice(r, min(r + rows, shape[0]))))
            for r in range(0, shape[0], rows)
        ]
        return torch.cat(out).reshape(*shape, -1)

    @torch.no_grad()
    def render_per_point(self, grid_shape: tuple[int, ...]) -> torch.Tensor:
        """The same values as :meth:`render` (up to float rounding) through each sample's
        cell corners, :data:`POINT_CHUNK` samples at a time."""
        table = self.table("round")
        coords = coordinate_grid(tuple(grid_shape)).reshape(-1, len(grid_shape))
        out = [self.mlp(self.grid(c, table)) for c in coords.split(POINT_CHUNK)]
        return torch.cat(out).reshape(*grid_shape, -1)


def train(model: ShaciraModel, signal: Signal, cfg: TrainConfig, seed: int = 0,
          progress: bool = False) -> dict[str, float]:
    """SHACIRA's optimisation of ``model`` on ``signal``; returns the last step's terms."""
    grid_shape = signal.grid_shape
    target = ((signal.to_values() + 1) * 0.5).reshape(-1, signal.channels)  # [0, 1], as the reference
    batch = None if cfg.batch_size is None or cfg.batch_size >= target.shape[0] else cfg.batch_size
    full_grid = batch is None
    # Images and video: each step takes about ``batch`` samples as whole random slices
    # along axis 0 (rows, frames), interpolated separably (several times faster per
    # sample than random points through the per-point path).
    per_slice = math.prod(grid_shape[1:])
    slices = None if full_grid or len(grid_shape) < 2 else max(1, round(batch / per_slice))
    coords = None
    if not full_grid and slices is None:
        coords = coordinate_grid(grid_shape).reshape(-1, len(grid_shape))
    generator = torch.Generator().manual_seed(seed)
    g = model.grid
    g.normalise()
    optimizer = torch.optim.Adam([
        {"params": model.mlp.parameters(), "lr": cfg.lr_mlp},
        {"params": [g.latents], "lr": cfg.lr_latents},
        {"params": [g.weight, g.shift], "lr": cfg.lr_decoder, "weight_decay": cfg.weight_decay_decoder},
        {"params": g.prior.parameters(), "lr": cfg.lr_prior, "weight_decay": cfg.weight_decay_decoder},
    ])
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc="shacira", leave=False)
    terms: dict[str, float] = {}
    entries = g.latents.shape[0] * g.latents.shape[1]
    for step in range(cfg.steps):
        # Progress drives the schedules (λ, SGA temperature, SGA → straight-through);
        # under a time budget it runs on the clock, so a cut-short run still ends them.
        t = step / cfg.steps
        if cfg.time_budget is not None:
            t = max(t, (time.perf_counter() - start) / cfg.time_budget)
            if t >= 1.0:
                break
        mode = "sga" if t <= cfg.decay_period else "ste"
        table = model.table(mode, cfg.temperature_at(t))
        if full_grid:
            pred, y = model.mlp(g.features_on_grid(table, grid_shape)), target
        elif slices is not None:
            pick = torch.randperm(grid_shape[0], generator=generator)[:slices].sort().values
            pred = model.mlp(g.features_on_grid(table, grid_shape, pick))
            y = target.view(grid_shape[0], per_slice, -1)[pick].reshape(-1, target.shape[-1])
        else:
            pick = torch.randint(target.shape[0], (batch,), generator=generator)
            pred, y = model.mlp(g(coords[pick], table)), target[pick]
        mse = torch.mean((pred - y) ** 2)
        bits = g.bits()
        loss = mse + cfg.lmbda_at(t) * bits / entries
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        mse_value, bits_value = float(mse.detach()), float(bits.detach())
        terms = {"mse": mse_value, "bits": bits_value, "psnr": -10 * math.log10(max(mse_value, 1e-12))}
        if bar is not None:
            bar.update(1)
            bar.set_postfix(psnr=f"{terms['psnr']:.2f}", kbit=f"{terms['bits'] / 1000:.1f}")
    if bar is not None:
        bar.close()
    return terms
