"""HNeRV: a hybrid neural representation for videos.

Paper: Hao Chen, Matthew Gwilliam, Ser-Nam Lim, Abhinav Shrivastava, "HNeRV: A
Hybrid Neural Representation for Videos", CVPR 2023. Reference code:
github.com/haochen-rye/HNeRV (``model_all.py``, ``train_nerv_all.py``).

Instead of a positional encoding of the frame index, each frame gets a tiny
content-adaptive embedding (16 × 2 × 4 for a 640×1280 frame) computed by a
ConvNeXt encoder from the frame itself. The embeddings are stored in the
bitstream; the encoder is not. The decoder: a 1×1 conv lifts the embedding to
``fc_dim`` channels (GELU), then HNeRV blocks (k×k conv → PixelShuffle(s) →
GELU) with kernel sizes ``min(1 + 2i, 5)`` (``--ks 0_1_5``) and widths reduced
by ``r = 1.2`` per stage down to ``lower_width = 12``; a 3×3 head conv and
``tanh(x)/2 + 1/2`` give the frame. Encoder: ConvNeXt stages, one block each,
patchify convs with the decoder's strides, 64 channels, the last stage giving
the ``embed_dim = 16``-channel embedding; weights trunc-normal(0.02), as in the
reference. Model size = decoder parameters + all embeddings, as in the paper.

Departures: strides come from the frame size (:func:`~inrkit.inr.frames.nerv.choose_strides`
with a 2-row minimum embedding grid, which gives the reference's 5, 4, 4, 2, 2
at 640×1280), and :func:`~inrkit.inr.frames.nerv.width_for_budget` solves ``fc_dim`` from the budget by
bisection on the exact parameter count (the reference solves an approximate
quadratic that ignores biases, the head and the ``lower_width`` floor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from inrkit.registry import register_field

from .nerv import FrameDecoder, UpBlock, base_grid, output_activation, stage_widths, with_strides


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``B × C × H × W`` (ConvNeXt's channels_first norm)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7×7 → LayerNorm → Linear(4C) → GELU → Linear(C) → layer scale (1e-6), residual."""

    def __init__(self, dim: int, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtEncoder(nn.Module):
    """HNeRV's frame encoder: per stage a patchify conv (kernel = stride) and one ConvNeXt block."""

    def __init__(self, strides: tuple[int, ...], dim: int, embed_dim: int, in_channels: int = 3):
        super().__init__()
        dims = [dim] * (len(strides) - 1) + [embed_dim]
        self.downsample = nn.ModuleList()
        for i, (s, d) in enumerate(zip(strides, dims, strict=True)):
            if i == 0:
                layer = nn.Sequential(nn.Conv2d(in_channels, d, s, s), ChannelsFirstLayerNorm(d))
            else:
                layer = nn.Sequential(ChannelsFirstLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], d, s, s))
            self.downsample.append(layer)
        self.stages = nn.ModuleList(ConvNeXtBlock(d) for d in dims)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample, self.stages, strict=True):
            x = stage(down(x))
        return x


@register_field("hnerv")
class HNeRV(FrameDecoder):
    """Frame → ConvNeXt embedding (stored) → 1×1 conv → HNeRV blocks → RGB."""

    name = "hnerv"
    uses_embeddings = True
    min_grid = 2  # the reference's 2×4 embedding grid at 640×1280

    @dataclass
    class Config(FrameDecoder.Config):
        embed_dim: int = 16
        encoder_dim: int = 64
        kernel_min: int = 1
        kernel_max: int = 5
        reduce: float = 1.2

    def __init__(self, config: Config):
        config = with_strides(config, self.min_grid)
        super().__init__(config)
        self.grid = base_grid(config)
        self.encoder = ConvNeXtEncoder(config.strides, config.encoder_dim, config.embed_dim, config.channels)
        widths = stage_widths(config.fc_dim, len(config.strides), config.reduce, config.lower_width)
        self.stem = nn.Sequential(nn.Conv2d(config.embed_dim, config.fc_dim, 1), nn.GELU())
        self.blocks = nn.ModuleList(
            UpBlock(cin, cout, s, min(config.kernel_min + 2 * i, config.kernel_max))
            for i, (cin, cout, s) in enumerate(zip(widths[:-1], widths[1:], config.strides, strict=True))
        )
        self.head = nn.Conv2d(widths[-1], config.channels, 3, 1, 1)

    def embedding_shape(self) -> tuple[int, ...]:
        return (self.config.embed_dim, *self.grid)

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("encoder.")]

    def frame_inputs(self, frames: torch.Tensor, index: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.encoder(frames)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        x = self.stem(embedding)
        for block in self.blocks:
            x = block(x)
        return output_activation(self.head(x))

