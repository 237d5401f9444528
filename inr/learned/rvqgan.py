"""The RVQGAN generator: a convolutional audio autoencoder with residual vector quantization.

Kumar, Seetharaman, Luebs, Kumar and Kumar, "High-Fidelity Audio Compression with
Improved RVQGAN" (the Descript Audio Codec, DAC), NeurIPS 2023, arXiv:2306.06546.
Reference code: github.com/descriptinc/descript-audio-codec, ``dac/model/dac.py`` and
``dac/nn/layers.py``. Followed faithfully:

- Snake activation ``x + sin²(αx)/α`` with a learned per-channel ``α`` (init 1);
- residual units (Snake, weight-normalised dilated conv k=7, Snake, 1×1 conv) with
  dilations 1, 3, 9; encoder blocks double the width and downsample with a conv of
  kernel ``2·stride``; decoder blocks halve the width with a transposed conv; a final
  Snake, conv and ``tanh``;
- PyTorch's default conv init with zero ``Conv1d`` biases, which is what DAC's
  ``init_weights`` amounts to (see :func:`init_weights`);
- defaults of DAC's 44.1 kHz model (``conf/final/44khz.yml``): encoder width 64,
  strides 2·4·8·8 (hop 512, 86 frames/s), latent width 1024, decoder width 1536,
  9 codebooks of 1024 entries of dimension 8, quantizer dropout 0.5.

Departures: transposed convs with an odd stride get ``output_padding=1`` so that
every decoder block upsamples exactly ×stride (DAC's 16 kHz strides 2·4·5·8 otherwise
lose a sample per odd block and the output comes out shorter than the input); audio is padded on the right to a whole number of hops, as DAC's
``preprocess`` does, and cropped back by :meth:`RVQGAN.decode`; weight norm uses
PyTorch's parametrization API instead of the deprecated hook. Model files are
safetensors with the config as JSON metadata (not DAC's pickled ``.pth``) and are
identified by :func:`tensor_hash`, a SHA-256 of the tensors alone.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from inrkit.inr import model_files

from .rvq import ResidualVectorQuantize, RVQOutput, wn_conv1d

MODEL_FORMAT = "inrkit-rvqgan"


def snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Snake activation (Ziyin et al., 2020): ``x + sin²(αx) / α``."""
    return x + (alpha + 1e-9).reciprocal() * torch.sin(alpha * x).pow(2)


class Snake1d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return snake(x, self.alpha)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(dim),
            wn_conv1d(dim, dim, kernel_size=7, dilation=dilation, padding=3 * dilation),
            Snake1d(dim),
            wn_conv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _residual_stack(dim: int) -> list[nn.Module]:
    return [ResidualUnit(dim, dilation) for dilation in (1, 3, 9)]


class EncoderBlock(nn.Sequential):
    """Residual units at ``dim // 2`` channels, then a strided conv to ``dim`` channels."""

    def __init__(self, dim: int, stride: int):
        super().__init__(
            *_residual_stack(dim // 2),
            Snake1d(dim // 2),
            wn_conv1d(
                dim // 2, dim, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)
            ),
        )


class DecoderBlock(nn.Sequential):
    """A transposed conv from ``in_dim`` to ``out_dim`` channels, then residual units."""

    def __init__(self, in_dim: int, out_dim: int, stride: int):
        upsample = weight_norm(
            nn.ConvTranspose1d(
                in_dim,
                out_dim,
                kernel_size=2 * stride,
                stride=stride,
                padding=math.ceil(stride / 2),
                output_padding=stride % 2,  # exact ×stride upsampling for odd strides too
            )
        )
        super().__init__(Snake1d(in_dim), upsample, *_residual_stack(out_dim))


class Encoder(nn.Sequential):
    def __init__(self, dim: int, strides: tuple[int, ...], latent_dim: int):
        layers: list[nn.Module] = [wn_conv1d(1, dim, kernel_size=7, padding=3)]
        for stride in strides:
            dim *= 2
            layers.append(EncoderBlock(dim, stride))
        layers += [Snake1d(dim), wn_conv1d(dim, latent_dim, kernel_size=3, padding=1)]
        super().__init__(*layers)


class Decoder(nn.Sequential):
    def __init__(self, latent_dim: int, dim: int, strides: tuple[int, ...]):
        if dim % (1 << len(strides)):
            raise ValueError(f"decoder_dim {dim} must be divisible by 2**{len(strides)}")
        layers: list[nn.Module] = [wn_conv1d(latent_dim, dim, kernel_size=7, padding=3)]
        for i, stride in enumerate(strides):
            layers.append(DecoderBlock(dim >> i, dim >> (i + 1), stride))
        out_dim = dim >> len(strides)
        layers += [Snake1d(out_dim), wn_conv1d(out_dim, 1, kernel_size=7, padding=3), nn.Tanh()]
        super().__init__(*layers)


@dataclass
class RVQGANConfig:
    sample_rate: int = 44100
    encoder_dim: int = 64
    encoder_rates: tuple[int, ...] = (2, 4, 8, 8)
    latent_dim: int | None = None  # default: encoder_dim * 2 ** len(encoder_rates)
    decoder_dim: int = 1536
    decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
    n_codebooks: int = 9
    codebook_size: int = 1024
    codebook_dim: int = 8
    quantizer_dropout: float = 0.5
    extra: dict = field(
        default_factory=dict
    )  # free-form notes (e.g. training data), not architecture

    def __post_init__(self) -> None:
        self.encoder_rates = tuple(int(r) for r in self.encoder_rates)
        self.decoder_rates = tuple(int(r) for r in self.decoder_rates)
        if self.latent_dim is None:
            self.latent_dim = self.encoder_dim * (1 << len(self.encoder_rates))
        for name in ("sample_rate", "encoder_dim", "decoder_dim", "latent_dim", "n_codebooks",
                     "codebook_dim"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {self.codebook_size}")
        if not 0 <= self.quantizer_dropout <= 1:
            raise ValueError(f"quantizer_dropout is a probability, got {self.quantizer_dropout}")
        if self.decoder_dim % (1 << len(self.decoder_rates)):
            raise ValueError(
                f"decoder_dim {self.decoder_dim} must be divisible by 2**{len(self.decoder_rates)}"
            )
        if math.prod(self.encoder_rates) != math.prod(self.decoder_rates):
            raise ValueError(
                f"encoder strides {self.encoder_rates} and decoder strides {self.decoder_rates} "
                "must have the same product (the hop length)"
            )

    @property
    def hop_length(self) -> int:
        return math.prod(self.encoder_rates)

    @property
    def frame_rate(self) -> float:
        """Code frames per second."""
        return self.sample_rate / self.hop_length


def init_weights(module: nn.Module) -> None:
    """Zero every ``Conv1d`` bias, which is what DAC's ``init_weights`` achieves in effect.

    DAC draws truncated-normal (std 0.02) weights *after* wrapping the convs in the old
    ``weight_norm`` hook, which recomputes ``weight`` from ``(g, v)`` before every
    forward pass; the drawn weights are therefore discarded and the trained models
    start from PyTorch's default conv init with zero biases. We reproduce that."""
    if isinstance(module, nn.Conv1d):
        nn.init.zeros_(module.bias)


class RVQGAN(nn.Module):
    """DAC's generator. Audio in and out is mono ``[B, 1, N]`` in ``[-1, 1]`` at
    ``config.sample_rate``; codes are ``[B, n, T]`` with ``T = ceil(N / hop_length)``."""

    def __init__(self, config: RVQGANConfig | None = None):
        super().__init__()
        self.config = config = config or RVQGANConfig()
        self.encoder = Encoder(config.encoder_dim, config.encoder_rates, config.latent_dim)
        self.quantizer = ResidualVectorQuantize(
            config.latent_dim,
            config.n_codebooks,
            config.codebook_size,
            config.codebook_dim,
            config.quantizer_dropout,
        )
        self.decoder = Decoder(config.latent_dim, config.decoder_dim, config.decoder_rates)
        self.apply(init_weights)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    def pad(self, audio: torch.Tensor) -> torch.Tensor:
        """Right-pad ``[B, 1, N]`` audio to a whole number of hops (DAC's ``preprocess``)."""
        extra = -audio.shape[-1] % self.hop_length
        return nn.functional.pad(audio, (0, extra))

    def encode(self, audio: torch.Tensor, n_quantizers: int | None = None) -> RVQOutput:
        return self.quantizer(self.encoder(self.pad(audio)), n_quantizers)

    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        audio = self.decoder(z)
        return audio if length is None else audio[..., :length]

    def decode_codes(self, codes: torch.Tensor, length: int | None = None) -> torch.Tensor:
        return self.decode(self.quantizer.from_codes(codes), length)

    def forward(self, audio: torch.Tensor, n_quantizers: int | None = None):
        """Reconstruction ``[B, 1, N]`` and the quantizer output (codes and VQ losses)."""
        out = self.encode(audio, n_quantizers)
        return self.decode(out.z, audio.shape[-1]), out


def resample(audio: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """Band-limited polyphase resampling along the last axis (``scipy.signal.resample_poly``,
    Kaiser window); output length ``ceil(N * to_rate / from_rate)``."""
    if from_rate == to_rate:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(int(from_rate), int(to_rate))
    out = resample_poly(
        audio.detach().cpu().double().numpy(), int(to_rate) // g, int(from_rate) // g, axis=-1
    )
    return torch.from_numpy(out).to(torch.float32)


LEVEL_DB = -16.0
"""RMS level (dBFS) the model sees in training (DAC normalises to -16 LUFS)."""

SILENCE_RMS = 1e-4
"""Below this RMS a signal is left at its level (training retries such segments)."""


def level_gain_db(audio: torch.Tensor) -> float:
    """The gain (dB, a multiple of 0.01 rounded down) that brings mono ``audio`` to
    :data:`LEVEL_DB` RMS, lowered so that no sample exceeds 1, as the training sampler
    does; 0 for near-silence. DAC's ``compress`` likewise normalises its input and
    ``decompress`` restores the stored level."""
    rms = float(audio.double().square().mean().sqrt()) if audio.numel() else 0.0
    if not rms > SILENCE_RMS:
        return 0.0
    gain = LEVEL_DB - 20 * math.log10(rms)
    peak = float(audio.abs().max()) * 10 ** (gain / 20)
    if peak > 1.0:
        gain -= 20 * math.log10(peak)
    return math.floor(gain * 100) / 100


# -- model files ---------------------------------------------------------------


def save_model(
    model: RVQGAN, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> str:
    """Write ``model`` to a safetensors file (config as JSON metadata) atomically.
    Returns the :func:`~inrkit.inr.model_files.tensor_hash` of what was written."""
    return model_files.save_model(model, path, MODEL_FORMAT, metadata)


def load_model(path: str | os.PathLike) -> tuple[RVQGAN, str]:
    """Load a model file written by :func:`save_model`; returns ``(model in eval mode, hash)``.
    Raises :class:`inrkit.ModelError` if the file is missing, unreadable or not an RVQGAN."""
    return model_files.load_model(path, MODEL_FORMAT, lambda cfg: RVQGAN(RVQGANConfig(**cfg)))
