"""Residual vector quantization with factorised, L2-normalised codes.

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN", NeurIPS 2023
(arXiv:2306.06546), section 3.2; reference code ``dac/nn/quantize.py`` in
github.com/descriptinc/descript-audio-codec. Residual VQ itself is from SoundStream
(Zeghidour et al., 2021); the two codebook tricks are from ViT-VQGAN (Yu et al., 2022):

- *factorised codes*: each quantizer projects its input to a low dimension
  (``codebook_dim``, 8 in DAC) with a weight-normalised 1×1 convolution, looks up the
  nearest code there, and projects back;
- *L2-normalised codes*: the lookup compares unit vectors (cosine similarity), which
  keeps codebook usage high without k-means init or dead-code restarts;
- *quantizer dropout*: while training, a fraction ``quantizer_dropout`` of the batch
  uses only the first ``n ~ U{1..N}`` quantizers, so one model serves every bitrate.

Departures from the reference: none in the arithmetic. The nearest code is chosen by
``argmax`` of the dot product of unit vectors, which is the same argmin of the
Euclidean distance DAC computes, with less work; :meth:`ResidualVectorQuantize.forward`
returns a small dataclass instead of a tuple; this module lives in ``inrkit.inr``
(not ``inrkit.codecs``) because the RVQGAN model owns it and ``inr`` must not import
``codecs``.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def wn_conv1d(*args, **kwargs) -> nn.Conv1d:
    """A weight-normalised ``Conv1d`` (DAC's ``WNConv1d``)."""
    return weight_norm(nn.Conv1d(*args, **kwargs))


class VectorQuantize(nn.Module):
    """One codebook: project to ``codebook_dim``, snap to the nearest unit-norm code
    (straight-through gradient), project back to ``input_dim``."""

    def __init__(self, input_dim: int, codebook_size: int, codebook_dim: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.in_proj = wn_conv1d(input_dim, codebook_dim, kernel_size=1)
        self.out_proj = wn_conv1d(codebook_dim, input_dim, kernel_size=1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Indices ``[B, T]`` of the codes nearest to ``z_e`` ``[B, D, T]`` in cosine distance."""
        enc = F.normalize(z_e.transpose(1, 2), dim=-1)  # B T D
        book = F.normalize(self.codebook.weight, dim=-1)  # K D
        return (enc @ book.t()).argmax(dim=-1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The (unnormalised) codes of ``indices`` ``[B, T]`` as ``[B, D, T]``, as in DAC."""
        return self.codebook(indices).transpose(1, 2)

    def forward(self, z: torch.Tensor):
        """Returns ``(z_q, commitment_loss[B], codebook_loss[B], indices[B, T])``."""
        z_e = self.in_proj(z)
        indices = self.nearest(z_e)
        z_q = self.lookup(indices)
        commitment = F.mse_loss(z_e, z_q.detach(), reduction="none").mean((1, 2))
        codebook = F.mse_loss(z_q, z_e.detach(), reduction="none").mean((1, 2))
        z_q = z_e + (z_q - z_e).detach()  # straight-through estimator
        return self.out_proj(z_q), commitment, codebook, indices

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.lookup(indices))


@dataclass
class RVQOutput:
    z: torch.Tensor  # [B, D, T] quantized latents (sum over the used quantizers)
    codes: torch.Tensor  # [B, N, T] code indices of every quantizer that ran
    commitment_loss: torch.Tensor  # scalar
    codebook_loss: torch.Tensor  # scalar


class ResidualVectorQuantize(nn.Module):
    """``n_codebooks`` quantizers, each coding what the previous ones left over."""

    def __init__(
        self,
        input_dim: int = 512,
        n_codebooks: int = 9,
        codebook_size: int = 1024,
        codebook_dim: int = 8,
        quantizer_dropout: float = 0.0,
    ):
        super().__init__()
        self.n_codebooks = n_codebooks
        self.codebook_size = codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.quantizers = nn.ModuleList(
            VectorQuantize(input_dim, codebook_size, codebook_dim) for _ in range(n_codebooks)
        )

    def active_quantizers(self, batch: int, device) -> torch.Tensor:
        """Per-example number of quantizers used while training (quantizer dropout):
        all of them, except for the first ``int(batch * quantizer_dropout)`` examples,
        which draw ``n ~ U{1..n_codebooks}``."""
        n = torch.full((batch,), self.n_codebooks, dtype=torch.long)
        n_dropout = int(batch * self.quantizer_dropout)
        n[:n_dropout] = torch.randint(1, self.n_codebooks + 1, (n_dropout,))
        return n.to(device)

    def forward(self, z: torch.Tensor, n_quantizers: int | None = None) -> RVQOutput:
        """Quantize ``z`` ``[B, D, T]``. In training mode the number of quantizers per
        example follows quantizer dropout; in eval mode the first ``n_quantizers``
        (default all) are used."""
        batch = z.shape[0]
        if self.training:
            n_active = self.active_quantizers(batch, z.device)
            n_run = self.n_codebooks
        else:
            n_run = self.n_codebooks if n_quantizers is None else int(n_quantizers)
            if not 1 <= n_run <= self.n_codebooks:
                raise ValueError(f"n_quantizers must be in 1..{self.n_codebooks}, got {n_run}")
            n_active = torch.full((batch,), n_run, device=z.device)
        z_q = torch.zeros_like(z)
        residual = z
        commitment = z.new_zeros(())
        codebook = z.new_zeros(())
        codes = []
        for i, quantizer in enumerate(self.quantizers[:n_run]):
            z_q_i, commitment_i, codebook_i, indices = quantizer(residual)
            mask = (i < n_active).to(z.dtype)
            z_q = z_q + z_q_i * mask[:, None, None]
            residual = residual - z_q_i
            commitment = commitment + (commitment_i * mask).mean()
            codebook = codebook + (codebook_i * mask).mean()
            codes.append(indices)
        return RVQOutput(z_q, torch.stack(codes, dim=1), commitment, codebook)

    def from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, D, T]`` from codes ``[B, n, T]`` of the first ``n`` quantizers."""
        if not 1 <= codes.shape[1] <= self.n_codebooks:
            raise ValueError(
                f"codes for 1..{self.n_codebooks} quantizers expected, got {codes.shape[1]}"
            )
        parts = [q.decode(codes[:, i]) for i, q in enumerate(self.quantizers[: codes.shape[1]])]
        return functools.reduce(operator.add, parts)  # the sum in this order: decodes repeat
