"""M-AdaCode: an image autoencoder over K weighted base codebooks, with masked weights.

Jiang, Wang and Chen, "Neural Image Compression Using Masked Sparse Visual
Representation", WACV 2024 (arXiv:2309.11661), built on AdaCode: Liu et al.,
"Learning Image-Adaptive Codebooks for Class-Agnostic Image Restoration", ICCV 2023.
Reference code: github.com/kechunl/AdaCode, ``basicsr/archs/adacode_arch.py`` and
``femasr_arch.py`` (encoder, decoder blocks, ``VectorQuantizer``, ``WeightPredictor``).

Followed from the reference:

- VQ after VQ-VAE: nearest codeword in squared L2 (no normalisation), codebook
  initialised ``U(-1/N, 1/N)``, loss ``‖sg[z] − e‖² + β‖z − sg[e]‖²`` with β = 0.25,
  straight-through gradient ``z + sg[e − z]``;
- per codebook a 1×1 conv into its code space before quantization and a 3×3 conv
  back to the latent width after it (``before_quant_group`` / ``after_quant_group``);
- a weight predictor on the encoder's latent giving K weights per position
  (softmax: the reference has a ``weight_softmax`` option but trains with it off,
  on raw conv outputs; here the weights are normalised because masking keeps the
  largest ones and the masked weights are refilled to sum to one) and the combination
  ``x = Σ_k w_k · after_quant_k(q_k)`` fed to the decoder;
- encoder: input conv, then per level a stride-2 3×3 conv and residual blocks;
  decoder: per level nearest ×2 upsampling, a 3×3 conv and residual blocks; residual
  blocks are (GroupNorm, SiLU, conv 3×3) × 2 plus the identity; a final 3×3 conv to RGB
  (after a SiLU, which the reference's ``out_conv`` does without);
- in stage 2 the commitment loss of the K frozen codebooks is averaged, where the
  reference sums it (K× weaker here; the codebooks themselves no longer move).

M-AdaCode's masking: the encoder keeps the ``m`` largest weights of each position
(exactly ``m``; ties go to the lower codebook index) and sends only the codewords
and (quantized) weights of the kept codebooks; ``m`` is the rate knob.

Design choices where the papers leave room or a CPU forces one (all documented in
``docs/adacode.md``):

- *Widths and depth* are small (default widths 16·32·64·96, 8× downsampling, one
  residual block per level, none at full resolution) instead of 64…256 channels and
  Swin layers; the weight predictor is two residual blocks instead of four RSTB Swin
  groups.
- *Masked codebooks.* A masked codebook has no codeword at that position; its code
  vector there is a learned per-codebook mask token (as in masked image modelling),
  so its 3×3 projection still sees the kept codewords of its neighbours.
- *Weight filler.* A small conv net in the decoder sees the kept (dequantized)
  weights, the keep mask and the combined kept feature, and predicts logits for the
  masked codebooks; they share the mass the kept weights leave,
  ``(1 − Σ_kept ŵ)₊ · softmax(logits over the masked)``, so the weights stay on the
  simplex and nothing is filled when ``m = K``.
- *Weight quantization.* Kept weights are sent as ``round(w · L)`` with
  ``L = 2**weight_bits − 1``; training sees the same rounding through a
  straight-through estimator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from inrkit.inr import model_files

MODEL_FORMAT = "inrkit-adacode"


@dataclass
class AdaCodeConfig:
    """Architecture of an :class:`AdaCode` model (stored as JSON in the model file).

    ``widths[i]`` is the channel count at 1/2**i of the input resolution; the latent
    lives at the last level, so the downsampling factor is ``2 ** (len(widths) - 1)``."""

    widths: tuple[int, ...] = (16, 32, 64, 96)
    res_blocks: int = 1
    codebooks: int = 4
    codebook_size: int = 256
    code_dim: int = 16
    beta: float = 0.25
    weight_bits: int = 4
    predictor_blocks: int = 2
    filler_width: int = 32
    extra: dict = field(default_factory=dict)  # free-form notes (training data), not architecture

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"widths needs at least two positive entries, got {self.widths}")
        if not 2 <= self.codebooks <= 16:
            raise ValueError(f"codebooks must be 2..16, got {self.codebooks}")
        if not 2 <= self.codebook_size <= 65536:
            raise ValueError(f"codebook_size must be 2..65536, got {self.codebook_size}")
        if not 1 <= self.weight_bits <= 8:
            raise ValueError(f"weight_bits must be 1..8, got {self.weight_bits}")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.widths) - 1)

    @property
    def latent_dim(self) -> int:
        return self.widths[-1]

    @property
    def weight_levels(self) -> int:
        """``L``: kept weights are sent as integers ``0..L`` standing for ``q / L``."""
        return (1 << self.weight_bits) - 1


# -- building blocks -------------------------------------------------------------


def _groups(channels: int) -> int:
    """GroupNorm groups: 32 as in the reference, fewer when the width is small."""
    fits = [g for g in (32, 16, 8, 4, 2) if channels % g == 0 and channels // g >= 2]
    return fits[0] if fits else 1


class ResBlock(nn.Module):
    """FeMaSR/AdaCode residual block: (GroupNorm, SiLU, conv 3×3) twice, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(_groups(channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Sequential):
    def __init__(self, widths: tuple[int, ...], res_blocks: int):
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, padding=1)]
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1))
            layers += [ResBlock(cout) for _ in range(res_blocks)]
        super().__init__(*layers)


class Decoder(nn.Sequential):
    """Mirror of :class:`Encoder`: residual blocks at the latent, then per level
    nearest ×2 upsampling, a 3×3 conv and residual blocks (none at full resolution)."""

    def __init__(self, widths: tuple[int, ...], res_blocks: int):
        layers: list[nn.Module] = [ResBlock(widths[-1]) for _ in range(res_blocks)]
        for level in range(len(widths) - 1, 0, -1):
            cout = widths[level - 1]
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                nn.Conv2d(widths[level], cout, 3, padding=1),
            ]
            if level > 1:
                layers += [ResBlock(cout) for _ in range(res_blocks)]
        layers += [nn.SiLU(), nn.Conv2d(widths[0], 3, 3, padding=1)]
        super().__init__(*layers)


class VQOutput(NamedTuple):
    quantized: torch.Tensor  # [B, D, h, w], straight-through
    indices: torch.Tensor  # [B, h, w] int64
    loss: torch.Tensor  # [B] codebook + β · commitment, per sample


class VectorQuantizer(nn.Module):
    """VQ-VAE quantizer as in AdaCode's ``VectorQuantizer`` (squared L2, no normalisation)."""

    def __init__(self, size: int, dim: int, beta: float = 0.25):
        super().__init__()
        self.beta = beta
        self.embedding = nn.Embedding(size, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / size, 1.0 / size)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``[B, h, w]`` of the nearest codewords to ``z [B, D, h, w]``."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        codebook = self.embedding.weight
        dist = (
            flat.square().sum(1, keepdim=True) + codebook.square().sum(1) - 2 * flat @ codebook.t()
        )
        return dist.argmin(1).view(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords ``[B, D, h, w]`` for ``indices [B, h, w]``."""
        return self.embedding(indices).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> VQOutput:
        indices = self.nearest(z.detach())
        q = self.lookup(indices)
        codebook = (q - z.detach()).square().mean((1, 2, 3))
        commitment = (q.detach() - z).square().mean((1, 2, 3))
        return VQOutput(z + (q - z).detach(), indices, codebook + self.beta * commitment)


class WeightPredictor(nn.Module):
    """K combining weights per latent position (softmax over codebooks)."""

    def __init__(self, channels: int, codebooks: int, blocks: int):
        super().__init__()
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.head = nn.Conv2d(channels, codebooks, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z)).softmax(dim=1)


class WeightFiller(nn.Module):
    """Predicts the weights of masked codebooks from the kept weights, the keep mask
    and the combined kept feature; masked weights share the kept weights' leftover mass."""

    def __init__(self, channels: int, codebooks: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels + 2 * codebooks, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, codebooks, 3, padding=1),
        )

    def forward(
        self, kept_weights: torch.Tensor, keep: torch.Tensor, kept_feature: torch.Tensor
    ) -> torch.Tensor:
        """Full weights ``[B, K, h, w]``: the kept ones as given, the masked ones filled."""
        keepf = keep.to(kept_weights.dtype)
        logits = self.net(torch.cat([kept_weights * keepf, keepf, kept_feature], dim=1))
        logits = logits.masked_fill(keep, float("-inf"))
        top = logits.amax(dim=1, keepdim=True).clamp(min=-1e4)  # finite even when all are kept
        e = (logits - top).exp()  # 0 at kept codebooks
        share = e / e.sum(dim=1, keepdim=True).clamp(min=1e-12)
        left = (1 - (kept_weights * keepf).sum(dim=1, keepdim=True)).clamp(min=0)
        return torch.where(keep, kept_weights, left * share)


def keep_top(weights: torch.Tensor, m: int) -> torch.Tensor:
    """Boolean mask ``[B, K, h, w]`` keeping exactly the ``m`` largest weights of each
    position; equal weights go to the lower codebook index (a stable sort)."""
    k = weights.shape[1]
    if not 1 <= m <= k:
        raise ValueError(f"m must be 1..{k}, got {m}")
    order = torch.sort(weights, dim=1, descending=True, stable=True).indices
    keep = torch.zeros_like(weights, dtype=torch.bool)
    return keep.scatter(1, order[:, :m], True)


# -- the model ---------------------------------------------------------------------


class Codes(NamedTuple):
    """What the bitstream carries for a batch: everything is integers."""

    indices: torch.Tensor  # [B, K, h, w] int64 codeword indices (meaningful where kept)
    keep: torch.Tensor  # [B, K, h, w] bool, exactly m per position
    weights: torch.Tensor  # [B, K, h, w] int64 in 0..L (meaningful where kept)


class Output(NamedTuple):
    image: torch.Tensor  # [B, 3, H, W] in about [0, 1]
    vq_loss: torch.Tensor  # [B]
    weights: torch.Tensor  # [B, K, h, w] as the decoder used them
    indices: torch.Tensor  # [B, K, h, w]


class AdaCode(nn.Module):
    """Images ``[B, 3, H, W]`` in [0, 1] with ``H, W`` multiples of ``downsample``."""

    def __init__(self, config: AdaCodeConfig | None = None):
        super().__init__()
        self.config = c = config or AdaCodeConfig()
        self.encoder = Encoder(c.widths, c.res_blocks)
        self.before_quant = nn.ModuleList(
            nn.Conv2d(c.latent_dim, c.code_dim, 1) for _ in range(c.codebooks)
        )
        self.quantizers = nn.ModuleList(
            VectorQuantizer(c.codebook_size, c.code_dim, c.beta) for _ in range(c.codebooks)
        )
        self.after_quant = nn.ModuleList(
            nn.Conv2d(c.code_dim, c.latent_dim, 3, padding=1) for _ in range(c.codebooks)
        )
        self.mask_tokens = nn.Parameter(torch.zeros(c.codebooks, c.code_dim))
        self.weight_predictor = WeightPredictor(c.latent_dim, c.codebooks, c.predictor_blocks)
        self.weight_filler = WeightFiller(c.latent_dim, c.codebooks, c.filler_width)
        self.decoder = Decoder(c.widths, c.res_blocks)

    @property
    def downsample(self) -> int:
        return self.config.downsample

    # -- pieces ----------------------------------------------------------------
    def quantize(self, z: torch.Tensor) -> list[VQOutput]:
        return [vq(proj(z)) for proj, vq in zip(self.before_quant, self.quantizers, strict=True)]

    def quantize_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Weights rounded to multiples of ``1/L`` with a straight-through gradient."""
        levels = self.config.weight_levels
        return weights + ((weights * levels).round() / levels - weights).detach()

    def features(self, codes: list[torch.Tensor], keep: torch.Tensor) -> list[torch.Tensor]:
        """``after_quant_k`` of each codebook's code map, mask tokens where not kept."""
        out = []
        for k, (q, proj) in enumerate(zip(codes, self.after_quant, strict=True)):
            token = self.mask_tokens[k].view(1, -1, 1, 1).to(q.dtype)
            out.append(proj(torch.where(keep[:, k : k + 1], q, token)))
        return out

    def combine(
        self, feats: list[torch.Tensor], kept_weights: torch.Tensor, keep: torch.Tensor
    ) -> tuple:
        """Fill the masked weights and return ``(Σ_k w_k f_k, w)``."""
        stacked = torch.stack(feats, dim=1)  # B, K, C, h, w
        keepf = keep.to(kept_weights.dtype)
        kept_feature = (stacked * (kept_weights * keepf).unsqueeze(2)).sum(1)
        weights = self.weight_filler(kept_weights, keep, kept_feature)
        return (stacked * weights.unsqueeze(2)).sum(1), weights

    # -- training passes -----------------------------------------------------------
    def forward(
        self, x: torch.Tensor, m: int | None = None, groups: torch.Tensor | None = None
    ) -> Output:
        """Stage 2 and inference (``groups`` None): predicted weights, the top-``m``
        kept (all when ``m`` is None), quantized, the rest filled, combined, decoded.

        Stage 1 (codebook learning, ``groups`` given): sample ``i`` goes through
        codebook ``groups[i]`` alone (weight 1, others 0), like AdaCode's
        per-category VQGANs but sharing the encoder and decoder; its ``vq_loss``
        counts that codebook only, so each codebook learns from its own group."""
        z = self.encoder(x)
        vq = self.quantize(z)
        codes = [o.quantized for o in vq]
        indices = torch.stack([o.indices for o in vq], 1)
        losses = torch.stack([o.loss for o in vq], 1)  # B, K
        if groups is not None:
            onehot = F.one_hot(groups, self.config.codebooks).to(z.dtype)  # B, K
            keep = torch.ones_like(indices, dtype=torch.bool)
            weights = onehot[:, :, None, None].expand(-1, -1, *z.shape[2:])
            latent = (torch.stack(self.features(codes, keep), 1) * weights.unsqueeze(2)).sum(1)
            return Output(self.decoder(latent), (losses * onehot).sum(1), weights, indices)
        weights = self.weight_predictor(z)
        keep = keep_top(weights.detach(), self.config.codebooks if m is None else m)
        latent, used = self.combine(
            self.features(codes, keep), self.quantize_weights(weights), keep
        )
        return Output(self.decoder(latent), losses.mean(1), used, indices)

    # -- coding ------------------------------------------------------------------
    @torch.no_grad()
    def analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codeword indices of every codebook ``[B, K, h, w]`` and the predicted
        weights ``[B, K, h, w]``: the encoder's work, shared by every ``m``."""
        z = self.encoder(x)
        indices = [
            vq.nearest(proj(z)) for proj, vq in zip(self.before_quant, self.quantizers, strict=True)
        ]
        return torch.stack(indices, 1), self.weight_predictor(z)

    @torch.no_grad()
    def compress(self, x: torch.Tensor, m: int, analysis: tuple | None = None) -> Codes:
        """The integer symbols of ``x`` at ``m`` kept codebooks per position
        (``analysis``: a previous :meth:`analyse` of the same ``x``)."""
        indices, weights = self.analyse(x) if analysis is None else analysis
        levels = (weights * self.config.weight_levels).round().to(torch.int64)
        return Codes(indices, keep_top(weights, m), levels)

    @torch.no_grad()
    def decompress(self, codes: Codes) -> torch.Tensor:
        """Image ``[B, 3, H, W]`` (not clamped) from integer symbols."""
        indices = codes.indices.where(codes.keep, torch.zeros_like(codes.indices))
        code_maps = [vq.lookup(indices[:, k]) for k, vq in enumerate(self.quantizers)]
        kept = codes.weights.to(torch.float32) / self.config.weight_levels
        latent, _ = self.combine(self.features(code_maps, codes.keep), kept, codes.keep)
        return self.decoder(latent)


# -- model files -------------------------------------------------------------------


def save_model(
    model: AdaCode, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> str:
    """Write ``model`` atomically to safetensors (config as JSON metadata); returns its hash."""
    return model_files.save_model(model, path, MODEL_FORMAT, metadata)


def load_model(path: str | os.PathLike) -> tuple[AdaCode, str]:
    """``(model in eval mode, tensor hash)``; :class:`inrkit.ModelError` if the file is
    missing, unreadable or not an M-AdaCode model."""
    return model_files.load_model(path, MODEL_FORMAT, lambda cfg: AdaCode(AdaCodeConfig(**cfg)))
