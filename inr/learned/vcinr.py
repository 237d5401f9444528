"""VC-INR: a shared SIREN specialised per item by soft gating, meta-learned latents, a hyperprior.

Schwarz, Tack, Teh, Lee, Shin, "Modality-Agnostic Variational Compression of Implicit
Neural Representations", ICML 2023 (arXiv:2301.09479). There is no official code; the
meta-learning and patch handling follow COIN++ (Dupont et al. 2022,
github.com/EmilienDupont/coinpp), the closest public code, and the entropy model is
Ballé et al. 2018's scale hyperprior as CompressAI implements it.

One code path for every modality. A signal's values ``[*grid, C]`` in ``[-1, 1]``
(:meth:`inrkit.datasets.Signal.to_values`) are cut into patches of a fixed shape
(``32×32`` pixels, ``256`` samples, ...), replicate-padded at the far border. Each patch
is an item with its own latent ``φ ∈ R^d`` and patch-local coordinates in ``[-1, 1]``:

- **base network** (:class:`GatedSiren`): a SIREN (first layer ``sin(ω0 (W x + b))``,
  ``ω0 = 30``, SIREN's initialisation) whose ``depth`` hidden ``width×width`` layers
  use the gated weight ``σ(U_l V_lᵀ) ⊙ W_l``;
- **gate network** (:class:`GateNetwork`): ``φ → LayerNorm → Linear → ReLU → Linear``
  giving the rank-``r`` factors ``U_l, V_l`` of every hidden layer;
- **Meta-SGD inner loop** (:meth:`VCINR.inner_loop`): ``φ ← φ − α ⊙ ∇_φ L`` for a few
  steps from a learned initialisation ``φ0`` with learned per-dimension rates ``α``
  (Li et al. 2017); the outer loop (:mod:`inrkit.inr.train.vcinr`) trains the base and
  gate networks, ``φ0`` and ``α`` through the unrolled steps (MAML, second order);
- **latent compression** (:class:`LatentPrior`): the latents of one signal form a grid
  ``[d, *patch_grid]``; analysis ``g_a`` and synthesis ``g_s`` transforms and Ballé's
  hyperprior (``h_a``, ``h_s``, a factorised prior on ``z``, a Gaussian conditional on
  ``y``) are convolutions of the grid's dimension (``Conv1d`` for audio, ``Conv2d`` for
  images) in one class. One prior per λ lives in the same model.

Departures from the paper, to train on a CPU in minutes and to decode deterministically:

- small networks (defaults: width 64, 3 gated layers, ``d = 32``, rank 4; the paper uses
  widths of several hundred) and few meta steps;
- the gated layers' base weights are drawn from *twice* SIREN's hidden bound, so that at
  initialisation (``σ(U Vᵀ) ≈ ½``) the effective weights follow SIREN's distribution;
- the gate network's last layer starts as ``N(0, 1.4²/hidden)`` with zero bias, so that
  ``U Vᵀ`` has about unit spread and the gates depend on ``φ`` from the first step;
- the inner loss is the squared error *summed* over a patch (COIN++ averages), so that
  ``∇_φ`` is of order one and the learned rates ``α`` (initially 0.1) are too;
- ``φ0`` starts as ``N(0, 1)`` instead of zeros: the LayerNorm in front of the gate
  network has an unbounded gradient at the zero vector;
- ``g_a``/``g_s`` use ReLU instead of GDN (CompressAI's GDN is 2-D only) and no
  down-sampling: the patch grid is already coarse; ``h_a``/``h_s`` follow Ballé's
  layout (3×3 s1, 5×5 s2, 5×5 s2 and back) with ``output_padding`` and a crop so any grid
  size works;
- the distortion of the prior's rate–distortion loss is measured in data space, as the
  paper does, but on a random subset of each patch's points (see the trainer);
- :meth:`LatentPrior.freeze` computes the integer CDF tables and a fixed-point copy of
  ``h_s`` once, at the end of training, and keeps them in the model file, so the
  encoder and the decoder derive the entropy coder's tables from identical integers
  (:mod:`inrkit.codecs.vcinr` runs ``h_s`` in integer arithmetic);
- an addition the paper does not have: :meth:`VCINR.refine`, optional encoder-side
  optimisation of the coded latents for the prior's rate–distortion loss (the decoder
  is unchanged).

Model files are safetensors with the config as JSON (:mod:`inrkit.inr.model_files`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from inrkit.compressai_compat import EntropyBottleneck, GaussianConditional
from inrkit.datasets.grids import coordinate_grid
from inrkit.datasets.signal import Signal
from inrkit.errors import InputError
from inrkit.inr import model_files

MODEL_FORMAT = "inrkit-vcinr"
FIXED_POINT_BITS = 16  # fraction bits of the integer h_s (Q.16)
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64  # CompressAI's get_scale_table()
TRANSFORMS = ("residual", "conv")


@dataclass
class VCINRConfig:
    modality: str = "image"  # "image" (2-D grid) or "audio" (1-D, mono items)
    channels: int = 3  # output channels of one item (audio: 1)
    patch: tuple[int, ...] = (32, 32)
    width: int = 64
    depth: int = 3  # gated hidden width×width layers
    latent_dim: int = 32  # d, per patch
    rank: int = 4
    gate_hidden: int = 64
    w0: float = 30.0
    inner_steps: int = 3
    inner_lr: float = 0.1  # initial Meta-SGD rate
    sample_rate: int = 0  # audio: the rate the model works at
    lambdas: tuple[float, ...] = field(default_factory=tuple)
    prior_channels: int = 64  # N: h_a/h_s width and z channels
    prior_latent: int = 64  # M: y channels
    transform: str = "residual"  # g_a/g_s: "residual" (linear skip + conv body) or "conv"

    def __post_init__(self) -> None:
        self.patch = tuple(int(p) for p in self.patch)
        self.lambdas = tuple(float(v) for v in self.lambdas)
        dims = {"image": 2, "audio": 1}
        if self.modality not in dims:
            raise InputError(f"vcinr: modality must be image or audio, got {self.modality!r}")
        if len(self.patch) != dims[self.modality] or min(self.patch) < 1:
            raise InputError(
                f"vcinr: a {self.modality} patch has {dims[self.modality]} positive sizes, "
                f"got {self.patch}"
            )
        for key in ("channels", "width", "depth", "latent_dim", "rank", "gate_hidden",
                    "prior_channels", "prior_latent"):  # fmt: skip
            if getattr(self, key) < 1:
                raise InputError(f"vcinr: {key} must be at least 1, got {getattr(self, key)}")
        if self.inner_steps < 0 or not self.inner_lr > 0 or not self.w0 > 0:
            raise InputError("vcinr: inner_steps >= 0, inner_lr > 0 and w0 > 0 expected")
        if self.modality == "audio" and self.sample_rate < 1:
            raise InputError("vcinr: an audio model needs its sample_rate")
        if self.transform not in TRANSFORMS:
            raise InputError(f"vcinr: transform must be one of {TRANSFORMS}, got {self.transform!r}")
        if any(not v > 0 for v in self.lambdas):
            raise InputError(f"vcinr: lambdas must be positive, got {self.lambdas}")

    @property
    def dims(self) -> int:
        return len(self.patch)

    @property
    def patch_points(self) -> int:
        return math.prod(self.patch)


# -- the base network and its gates ------------------------------------------------------


class GateNetwork(nn.Module):
    """``φ [P, d]`` → gates ``σ(U_l V_lᵀ)`` ``[P, depth, width, width]``."""

    def __init__(self, cfg: VCINRConfig):
        super().__init__()
        self.depth, self.width, self.rank = cfg.depth, cfg.width, cfg.rank
        self.mlp = nn.Sequential(
            nn.LayerNorm(cfg.latent_dim),
            nn.Linear(cfg.latent_dim, cfg.gate_hidden),
            nn.ReLU(),
            nn.Linear(cfg.gate_hidden, cfg.depth * 2 * cfg.width * cfg.rank),
        )
        last = self.mlp[-1]
        with torch.no_grad():  # U Vᵀ of unit spread at initialisation (module docstring)
            last.weight.normal_(0.0, 1.4 / math.sqrt(cfg.gate_hidden))
            last.bias.zero_()

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        f = self.mlp(phi).view(-1, self.depth, 2, self.width, self.rank)
        return torch.sigmoid(f[:, :, 0] @ f[:, :, 1].transpose(-1, -2))


class GatedSiren(nn.Module):
    """SIREN with per-item gated hidden weights: ``coords [n, dims]`` (shared by the items),
    ``gates [P, depth, width, width]`` → ``[P, n, channels]``."""

    def __init__(self, cfg: VCINRConfig):
        super().__init__()
        self.w0 = cfg.w0
        self.first = nn.Linear(cfg.dims, cfg.width)
        bound = math.sqrt(6.0 / cfg.width) / cfg.w0
        with torch.no_grad():
            self.first.weight.uniform_(-1.0 / cfg.dims, 1.0 / cfg.dims)
        # Twice SIREN's bound: the gate starts near ½ (module docstring).
        self.weight = nn.Parameter(
            torch.empty(cfg.depth, cfg.width, cfg.width).uniform_(-2 * bound, 2 * bound)
        )
        self.bias = nn.Parameter(
            torch.empty(cfg.depth, cfg.width).uniform_(
                -1 / math.sqrt(cfg.width), 1 / math.sqrt(cfg.width)
            )
        )
        self.last = nn.Linear(cfg.width, cfg.channels)
        with torch.no_grad():
            self.last.weight.uniform_(-bound, bound)

    def forward(self, coords: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        h = torch.sin(self.w0 * self.first(coords))  # n, width
        h = h.expand(gates.shape[0], *h.shape)
        for layer in range(self.weight.shape[0]):
            w = gates[:, layer] * self.weight[layer]  # P, out, in
            h = torch.sin(self.w0 * torch.baddbmm(self.bias[layer], h, w.transpose(1, 2)))
        return self.last(h)


# -- the latent prior ---------------------------------------------------------------------


class _Crop(nn.Module):
    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return x[(...,) + tuple(slice(0, s) for s in like.shape[2:])]


class ResidualTransform(nn.Module):
    """``x ↦ skip(x) + body(x)``: a 1×1 linear skip that starts as the identity on the
    first ``min(c_in, c_out)`` channels, plus a 3×3 conv–ReLU–3×3 conv body that starts
    at zero. ``g_s∘g_a`` therefore starts as the identity and can stay invertible while
    the body learns; the plain conv stacks (``transform="conv"``) lost 2–4 dB on kodim07
    before any rounding (see docs/vcinr.md)."""

    def __init__(self, dims: int, c_in: int, hidden: int, c_out: int):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
        self.skip = conv(c_in, c_out, 1)
        self.body = nn.Sequential(
            conv(c_in, hidden, 3, padding=1), nn.ReLU(), conv(hidden, c_out, 3, padding=1)
        )
        nn.init.dirac_(self.skip.weight)
        for p in (self.skip.bias, self.body[-1].weight, self.body[-1].bias):
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class LatentPrior(nn.Module):
    """Ballé et al. 2018's scale hyperprior over a latent grid ``[B, d, *patch_grid]``.

    ``forward`` returns ``(φ̂, bits)``: ``y = g_a(φ)`` is rounded with a straight-through
    gradient for ``φ̂ = g_s(ŷ)`` and with uniform noise for the likelihoods (CompressAI's
    training mode); ``bits`` is ``-log2`` of the likelihoods of ``y`` and ``z``, per item."""

    def __init__(self, cfg: VCINRConfig):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d}[cfg.dims]
        deconv = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[cfg.dims]
        d, n, m = cfg.latent_dim, cfg.prior_channels, cfg.prior_latent
        if cfg.transform == "residual":
            self.g_a = ResidualTransform(cfg.dims, d, n, m)
            self.g_s = ResidualTransform(cfg.dims, m, n, d)
        else:
            self.g_a = nn.Sequential(conv(d, n, 3, padding=1), nn.ReLU(), conv(n, m, 3, padding=1))
            self.g_s = nn.Sequential(conv(m, n, 3, padding=1), nn.ReLU(), conv(n, d, 3, padding=1))
        self.h_a = nn.Sequential(
            conv(m, n, 3, padding=1), nn.ReLU(),
            conv(n, n, 5, stride=2, padding=2), nn.ReLU(),
            conv(n, n, 5, stride=2, padding=2),
        )  # fmt: skip
        self.h_s = nn.Sequential(
            deconv(n, n, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            deconv(n, n, 5, stride=2, padding=2, output_padding=1), nn.ReLU(),
            conv(n, m, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.crop = _Crop()
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianConditional(None)
        # Filled by freeze(): h_s in Q.16 fixed point and the scale-table thresholds.
        for i in self.hs_convs():
            self.register_buffer(f"fixed_w{i}", torch.zeros(0, dtype=torch.int64))
            self.register_buffer(f"fixed_b{i}", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("fixed_median", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("fixed_thresholds", torch.zeros(0, dtype=torch.int64))

    def hs_convs(self) -> list[int]:
        return [i for i, layer in enumerate(self.h_s) if not isinstance(layer, nn.ReLU)]

    def scales(self, z_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.crop(self.h_s(z_hat), y)

    def forward(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.code(self.g_a(phi))

    def code(self, y: torch.Tensor, training: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(φ̂, bits)`` for ``y`` itself; ``training=True`` forces the noisy likelihoods
        whatever the module's mode (encoder-side refinement of a frozen prior)."""
        z = self.h_a(torch.abs(y))
        z_hat, z_lik = self.entropy_bottleneck(z, training=training)
        _, y_lik = self.gaussian_conditional(y, self.scales(z_hat, y), training=training)
        y_hat = y + (torch.round(y) - y).detach()
        bits = -(torch.log2(y_lik).flatten(1).sum(1) + torch.log2(z_lik).flatten(1).sum(1))
        return self.g_s(y_hat), bits

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    @property
    def frozen(self) -> bool:
        return self.fixed_thresholds.numel() > 0

    @torch.no_grad()
    def freeze(self) -> None:
        """Integer tables for coding: CompressAI's quantized CDFs of ``z`` and of the
        scale table of ``y``, ``h_s`` rounded to Q.16 fixed point, ``z``'s medians and the
        scale thresholds in Q.16. Called once, when training ends."""
        one = 1 << FIXED_POINT_BITS
        self.entropy_bottleneck.update(force=True)
        table = torch.exp(torch.linspace(math.log(SCALES_MIN), math.log(SCALES_MAX), SCALES_LEVELS))
        self.gaussian_conditional.update_scale_table(table, force=True)
        for i in self.hs_convs():
            layer = self.h_s[i]
            setattr(self, f"fixed_w{i}", torch.round(layer.weight.double() * one).long())
            setattr(self, f"fixed_b{i}", torch.round(layer.bias.double() * one).long())
        median = self.entropy_bottleneck.quantiles[:, 0, 1]
        self.fixed_median = torch.round(median.double() * one).long()
        self.fixed_thresholds = torch.round(
            self.gaussian_conditional.scale_table.double() * one
        ).long()


# -- the model ----------------------------------------------------------------------------


class VCINR(nn.Module):
    """Base network, gate network, Meta-SGD initialisation and rates, and one
    :class:`LatentPrior` per λ of ``config.lambdas``."""

    def __init__(self, config: VCINRConfig):
        super().__init__()
        self.config = config
        self.net = GatedSiren(config)
        self.gates = GateNetwork(config)
        self.phi_init = nn.Parameter(torch.randn(config.latent_dim))
        self.inner_lr = nn.Parameter(torch.full((config.latent_dim,), config.inner_lr))
        self.priors = nn.ModuleList(LatentPrior(config) for _ in config.lambdas)
        self.register_buffer(
            "coords", coordinate_grid(config.patch).reshape(-1, config.dims), persistent=False
        )

    # -- one batch of patches --------------------------------------------------------
    def render(self, phi: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Patches ``[P, n, C]`` at ``coords`` (default: every point of a patch) for ``φ [P, d]``."""
        return self.net(self.coords if coords is None else coords, self.gates(phi))

    def patch_mse(self, phi: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each patch ``[P]``; ``target`` is ``[P, n, C]``."""
        return (self.render(phi) - target).square().mean(dim=(1, 2))

    def inner_loop(
        self, target: torch.Tensor, steps: int | None = None, create_graph: bool = False
    ) -> torch.Tensor:
        """Meta-SGD from ``φ0``: ``steps`` updates ``φ ← φ − α ⊙ ∇_φ SSE`` (squared error
        summed over the patch) for each patch of ``target [P, n, C]``; returns ``φ [P, d]``. ``create_graph`` keeps the graph for
        the outer (second-order) update."""
        steps = self.config.inner_steps if steps is None else steps
        phi = self.phi_init.expand(target.shape[0], -1)
        if not create_graph:
            phi = phi.detach()
        for _ in range(steps):
            with torch.enable_grad():
                if not phi.requires_grad:
                    phi = phi.detach().requires_grad_(True)
                # Squared error summed over each patch: per-patch gradients of size O(1).
                loss = (self.render(phi) - target).square().sum()
                (grad,) = torch.autograd.grad(loss, phi, create_graph=create_graph)
            phi = phi - self.inner_lr * grad
            if not create_graph:
                phi = phi.detach()
        return phi

    # -- whole signals ------------------------------------------------------------------
    def patch_grid(self, grid: tuple[int, ...]) -> tuple[int, ...]:
        if len(grid) != self.config.dims:
            raise InputError(
                f"vcinr: a {self.config.dims}-D grid expected, got shape {tuple(grid)}"
            )
        return tuple(-(-g // p) for g, p in zip(grid, self.config.patch, strict=True))

    def to_patches(self, values: torch.Tensor) -> torch.Tensor:
        """``[B, *grid, C]`` → ``[B, P, n, C]``, replicate-padded at the far border; patches
        in row-major order of the patch grid."""
        b, grid, c = values.shape[0], tuple(values.shape[1:-1]), values.shape[-1]
        pgrid = self.patch_grid(grid)
        for axis, (g, p) in enumerate(zip(grid, pgrid, strict=True)):
            index = torch.arange(p * self.config.patch[axis], device=values.device).clamp(max=g - 1)
            values = values.index_select(axis + 1, index)
        k = self.config.dims
        shape = (
            [b] + [v for g, p in zip(pgrid, self.config.patch, strict=True) for v in (g, p)] + [c]
        )
        order = [0] + [1 + 2 * i for i in range(k)] + [2 + 2 * i for i in range(k)] + [2 * k + 1]
        return values.reshape(shape).permute(order).reshape(b, math.prod(pgrid), -1, c)

    def from_patches(self, patches: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        """The inverse of :meth:`to_patches`, cropped to ``grid``: ``[B, *grid, C]``."""
        b, c, k = patches.shape[0], patches.shape[-1], self.config.dims
        pgrid = self.patch_grid(grid)
        x = patches.reshape([b, *pgrid, *self.config.patch, c])
        order = [0] + [v for i in range(k) for v in (1 + i, 1 + k + i)] + [2 * k + 1]
        x = x.permute(order).reshape(
            [b] + [g * p for g, p in zip(pgrid, self.config.patch, strict=True)] + [c]
        )
        return x[(slice(None),) + tuple(slice(0, g) for g in grid)]

    def fit(self, values: torch.Tensor, steps: int | None = None, chunk: int = 256) -> torch.Tensor:
        """Latent grids ``[B, d, *patch_grid]`` of the items ``values [B, *grid, C]``."""
        patches = self.to_patches(values)
        b, p = patches.shape[:2]
        flat = patches.reshape(b * p, *patches.shape[2:])
        phi = torch.cat([self.inner_loop(part, steps) for part in flat.split(chunk)])
        return self.latent_grid(phi, b, tuple(values.shape[1:-1]))

    def refine(
        self,
        index: int,
        y: torch.Tensor,
        values: torch.Tensor,
        steps: int | None = None,
        seconds: float | None = None,
        lr: float = 0.02,
        points: int = 64,
        max_points: int = 1 << 17,
        seed: int = 0,
        progress: bool = False,
    ) -> torch.Tensor:
        """Encoder-side rate–distortion refinement of the coded latents ``y [B, M, *pgrid]``
        of the items ``values [B, *grid, C]`` under the frozen prior ``index``.

        The inner loop and ``g_a`` are an amortised guess; this optimises ``y`` itself for
        the loss the prior was trained on, ``R + λ·255²·MSE`` (bits per sample, MSE of the
        rendering of ``g_s(ŷ)`` on the ``[0, 1]`` scale), with ``ŷ`` rounded
        straight-through and noisy likelihoods — the per-image latent optimisation of
        Campos et al. 2019 ("Content Adaptive Optimization for Neural Image Compression")
        and Yang et al. 2020 ("Improving Inference for Neural Image Compression"), which
        only the encoder runs, so the bitstream and the decoder are unchanged. Adam with a
        cosine decay from ``lr``; each step scores ``points`` random points of each patch
        (of at most ``max_points // points`` random patches). ``steps`` fixes the number
        of steps; ``seconds`` instead sets it from the time of steps 2–5.
        Returns the refined ``y`` (unrounded, detached), or the given ``y`` if that has
        the lower loss measured exactly (rounded latents, discrete likelihoods, every
        point), so refining never makes a file worse by the prior's own measure."""
        if (steps is None) == (seconds is None):
            raise InputError("vcinr refine: give steps or seconds")
        prior, lam = self.priors[index], self.config.lambdas[index]
        patches = self.to_patches(values)
        patches = patches.reshape(-1, *patches.shape[2:])  # [B·P, n, C]
        n_points, n_patches = min(points, patches.shape[1]), patches.shape[0]
        batch = min(n_patches, max(1, max_points // n_points))
        samples = math.prod(values.shape[1:-1])  # per item
        gen = torch.Generator().manual_seed(seed)
        start_y = y.detach()
        y = start_y.clone().requires_grad_(True)
        opt = torch.optim.Adam([y], lr=lr)
        total, step, start = steps, 0, time.perf_counter()
        first = start
        bar = tqdm(total=total, file=sys.stderr, disable=not progress, unit="step",
                   desc=f"vcinr refine λ={lam:g}", leave=False)  # fmt: skip
        with bar, torch.enable_grad():
            while total is None or step < total:
                step_lr = lr if total is None else lr * 0.5 * (1 + math.cos(math.pi * step / total))
                for group in opt.param_groups:
                    group["lr"] = step_lr
                pts = torch.randperm(patches.shape[1], generator=gen)[:n_points]
                chosen = torch.randperm(n_patches, generator=gen)[:batch]
                phi_hat, bits = prior.code(y, training=True)
                phi = self.latent_list(phi_hat)[chosen]
                rec = self.render(phi, self.coords[pts])
                mse = (rec - patches[chosen][:, pts]).square().mean() / 4  # on the [0, 1] scale
                loss = bits.mean() / samples + lam * 255**2 * mse
                (y.grad,) = torch.autograd.grad(loss, y)  # the model's own .grad stay untouched
                opt.step()
                step += 1
                bar.update(1)
                if total is None:  # time steps 2–5: the first one pays for warm-up
                    now = time.perf_counter()
                    if step == 1:
                        first = now
                    if step == 5 or now - start >= seconds:
                        step_time = (now - first) / max(1, step - 1) or (now - start)
                        total = step + max(0, int((seconds - (now - start)) / step_time))
                        bar.total = total
        y = y.detach()
        return min((y, start_y), key=lambda v: self.coded_loss(index, v, values))

    @torch.no_grad()
    def coded_loss(self, index: int, y: torch.Tensor, values: torch.Tensor) -> float:
        """``R + λ·255²·MSE`` of the latents ``y`` as the file codes them: ``y`` rounded,
        the prior's discrete likelihoods, every point of the items ``values``."""
        prior, lam = self.priors[index], self.config.lambdas[index]
        phi_hat, bits = prior.code(y, training=False)
        grid = tuple(values.shape[1:-1])
        mse = (self.reconstruct(phi_hat, grid) - values).square().mean() / 4
        return bits.mean().item() / math.prod(grid) + lam * 255**2 * mse.item()

    def latent_grid(self, phi: torch.Tensor, items: int, grid: tuple[int, ...]) -> torch.Tensor:
        """``φ [B·P, d]`` → ``[B, d, *patch_grid]``."""
        pgrid = self.patch_grid(grid)
        return phi.reshape(items, *pgrid, -1).movedim(-1, 1)

    def latent_list(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, d, *patch_grid]`` → ``φ [B·P, d]``."""
        return latents.movedim(1, -1).reshape(-1, latents.shape[1])

    @torch.no_grad()
    def reconstruct(
        self, latents: torch.Tensor, grid: tuple[int, ...], chunk: int = 256
    ) -> torch.Tensor:
        """Values ``[B, *grid, C]`` from latent grids ``[B, d, *patch_grid]``."""
        phi = self.latent_list(latents)
        patches = torch.cat([self.render(part) for part in phi.split(chunk)])
        return self.from_patches(patches.reshape(latents.shape[0], -1, *patches.shape[1:]), grid)

    # -- model files ------------------------------------------------------------------------
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # The entropy models' CDF tables and the fixed-point buffers have data-dependent
        # sizes (CompressAI's update_registered_buffers does the same).
        for name, buf in list(self.named_buffers()):
            if name in state_dict and state_dict[name].shape != buf.shape:
                owner, _, leaf = name.rpartition(".")
                module = self.get_submodule(owner) if owner else self
                module._buffers[leaf] = torch.empty_like(state_dict[name], device=buf.device)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def build(config: dict) -> VCINR:
    # Files written before ``transform`` existed used the plain conv stacks.
    return VCINR(VCINRConfig(**{"transform": "conv", **config}))


def save_model(
    model: VCINR, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> str:
    """Write ``model`` atomically; returns its :func:`~inrkit.inr.model_files.tensor_hash`."""
    return model_files.save_model(model, path, MODEL_FORMAT, metadata)


def load_model(path: str | os.PathLike) -> tuple[VCINR, str]:
    """``(model in eval mode, hash)``; :class:`inrkit.ModelError` if missing or not VC-INR."""
    return model_files.load_model(path, MODEL_FORMAT, build)


def item_values(signal: Signal, model: VCINR) -> torch.Tensor:
    """The items a signal is coded as: an image is one item ``[1, H, W, C]``, audio one
    mono item per channel ``[C, N, 1]`` (resampling is the codec's business)."""
    values = signal.to_values()
    if model.config.modality == "audio":
        return values.t()[..., None]
    return values[None]
