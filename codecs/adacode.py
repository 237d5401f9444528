"""The ``adacode`` codec: M-AdaCode's masked codebook symbols, entropy-coded into ``.inrk``.

Jiang, Wang and Chen, "Neural Image Compression Using Masked Sparse Visual
Representation", WACV 2024 (arXiv:2309.11661), on AdaCode (Liu et al., ICCV 2023;
github.com/kechunl/AdaCode). The model (:mod:`inrkit.inr.learned.adacode`) is trained once
with ``inrkit train adacode`` and shared by encoder and decoder; each file carries the
SHA-256 of the model's tensors, and decoding with a missing or different model file
is a :class:`inrkit.ModelError`.

Rate. ``Rate(quality=m)`` keeps the ``m`` largest combining weights of each latent
position (``m = 1..K``); ``Rate(bpp=b)`` keeps the largest ``m`` whose *measured* file
(header included) is at most ``b`` bits per pixel, or ``m = 1`` if none is.

Bitstream (codec version 1). Header ``model`` = {``sha256``, ``downsample``,
``codebooks``, ``codebook_size``, ``weight_bits``}, ``m``, ``grid`` = [h, w] latent
positions, ``pad`` = [bottom, right] pixels of replicate padding. Sections, each a
self-contained :func:`~inrkit.codecs.bitstream.entropy.encode_integers` stream (integer
frequency tables carried in the stream, so the symbols decode bit-exactly anywhere):

- ``keep``: per position in raster order, the set of kept codebooks as a bitmask
  ``Σ 2**k`` (exactly ``m`` bits set), ``h·w`` values;
- ``codes.<k>`` for ``k = 0..K-1``: codebook ``k``'s codeword index at each position
  that keeps it, in raster order (empty when no position keeps it);
- ``weights``: the kept weights as integers ``0..2**weight_bits − 1`` (standing for
  ``q / (2**weight_bits − 1)``), per position in raster order and, within a
  position, by ascending codebook; ``h·w·m`` values.

Images: RGB, and gray (replicated to RGB for the model, decoded back to one channel
as the mean of the three). Other channel counts (e.g. RGBA) are an InputError. Any
size: the image is padded (replicate) to a multiple of the model's downsampling and
cropped after decoding.

Departures: M-AdaCode codes the indices and weights with its own entropy coding; here
each stream gets its own adaptive integer table, with no context modelling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack
from inrkit.codecs.bitstream.entropy import decode_integers, encode_integers
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError, ModelError
from inrkit.inr.learned.adacode import AdaCode, Codes, load_model
from inrkit.registry import register_codec

from .base import EncodeOptions, LearnedCodec, Rate, single_threaded


@register_codec("adacode")
class AdaCodeCodec(LearnedCodec):
    name = "adacode"
    version = 1
    modalities = ("image",)
    rate_kinds = ("quality", "bpp")

    def default_quality(self) -> int:
        """m = 4 kept codebooks, or all of them if the model has fewer."""
        return min(4, self._model()[0].config.codebooks)

    def load_model(self, path: Path) -> tuple[AdaCode, str]:
        return load_model(path)

    def ladder(self, n: int) -> list[Rate]:
        """``n`` values of ``m`` spread over ``1..K`` (all of them when ``n >= K``)."""
        if n < 1:
            raise InputError(f"the number of rate points must be at least 1, got {n}")
        k = self._model()[0].config.codebooks
        if n >= k:
            return [Rate(quality=m) for m in range(1, k + 1)]
        if n == 1:
            return [Rate(quality=k)]
        return [Rate(quality=round(1 + i * (k - 1) / (n - 1))) for i in range(n)]

    # -- encoding ------------------------------------------------------------
    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        self.check(signal, rate)
        if signal.channels not in (1, 3):
            raise InputError(
                f"adacode encodes RGB or gray images, got {signal.channels} channels "
                f"({signal.source or 'signal'}); drop the alpha channel first"
            )
        model, digest = self._model()
        k = model.config.codebooks
        if rate.kind == "quality" and rate.value not in range(1, k + 1):
            raise InputError(
                f"adacode quality is the number of kept codebooks, 1..{k}; got {rate.value}"
            )
        x = signal.data.expand(3, -1, -1) if signal.channels == 1 else signal.data
        f = model.downsample
        height, width = x.shape[1:]
        pad = (-height % f, -width % f)
        x = F.pad(x[None], (0, pad[1], 0, pad[0]), mode="replicate")
        analysis = model.analyse(x)
        if rate.kind == "quality":
            return self._pack(
                signal, model.compress(x, int(rate.value), analysis), pad, model, digest
            )
        best: bytes | None = None
        for m in range(1, k + 1):
            data = self._pack(signal, model.compress(x, m, analysis), pad, model, digest)
            if best is not None and 8 * len(data) / (height * width) > rate.value:
                break
            best = data
        assert best is not None  # m = 1 is always kept
        return best

    def _pack(self, signal: Signal, codes: Codes, pad, model: AdaCode, digest: str) -> bytes:
        cfg = model.config
        keep, indices, weights = codes.keep[0], codes.indices[0], codes.weights[0]  # K, h, w
        m = int(keep[:, 0, 0].sum())
        bits = (keep.to(torch.int64) << torch.arange(cfg.codebooks).view(-1, 1, 1)).sum(0)
        sections = {"keep": encode_integers(bits.numpy().ravel())}
        for k in range(cfg.codebooks):
            sections[f"codes.{k}"] = encode_integers(indices[k][keep[k]].numpy())
        # Positions in raster order, codebooks ascending within each: move K last.
        kept_weights = weights.permute(1, 2, 0)[keep.permute(1, 2, 0)]
        sections["weights"] = encode_integers(kept_weights.numpy())
        header = {
            "model": {
                "sha256": digest,
                "downsample": cfg.downsample,
                "codebooks": cfg.codebooks,
                "codebook_size": cfg.codebook_size,
                "weight_bits": cfg.weight_bits,
            },
            "m": m,
            "grid": [int(keep.shape[1]), int(keep.shape[2])],
            "pad": [int(pad[0]), int(pad[1])],
        }
        return pack(Container.for_signal(self.name, self.version, signal, header, sections))

    # -- decoding ------------------------------------------------------------
    @single_threaded
    @torch.no_grad()
    def decode(self, data: bytes, **options) -> Signal:
        if options:
            raise InputError(f"adacode decode takes no options, got {', '.join(options)}")
        c = self.open(data)
        meta = c.signal_meta()
        head = c.header
        model, digest = self._model()
        cfg = model.config
        described = head.get("model")
        if not isinstance(described, dict):
            raise BitstreamError("adacode file header lacks the model description")
        if described.get("sha256") != digest:
            raise ModelError(
                f"this file was encoded with the M-AdaCode model sha256={described.get('sha256')!r}, "
                f"but {str(self.model_path)!r} has sha256={digest!r}; pass the model it was made with"
            )
        expected = {
            "sha256": digest,
            "downsample": cfg.downsample,
            "codebooks": cfg.codebooks,
            "codebook_size": cfg.codebook_size,
            "weight_bits": cfg.weight_bits,
        }
        if described != expected:
            raise BitstreamError(
                f"adacode header: model description {described!r} does not match the model {expected!r}"
            )
        shape = c.shape
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise BitstreamError(
                f"adacode header: an RGB or gray image shape expected, found {shape!r}"
            )
        height, width = int(shape[1]), int(shape[2])
        f, k = cfg.downsample, cfg.codebooks
        grid, pad, m = head.get("grid"), head.get("pad"), head.get("m")
        want_grid = [-(-height // f), -(-width // f)]
        if grid != want_grid:
            raise BitstreamError(
                f"adacode header: grid {grid!r} does not fit a {height}×{width} image; expected {want_grid}"
            )
        if pad != [want_grid[0] * f - height, want_grid[1] * f - width]:
            raise BitstreamError(
                f"adacode header: padding {pad!r} does not fit a {height}×{width} image"
            )
        if type(m) is not int or not 1 <= m <= k:
            raise BitstreamError(f"adacode header: m must be an integer 1..{k}, found {m!r}")
        names = ["keep", *(f"codes.{i}" for i in range(k)), "weights"]
        if list(c.sections) != names:
            raise BitstreamError(
                f"adacode file sections {list(c.sections)} differ from the expected {names}"
            )

        h, w = grid
        bits = decode_integers(c.section("keep"), h * w)
        if bits.min() < 0 or bits.max() >= 1 << k:
            raise BitstreamError(f"adacode keep masks outside 0..{(1 << k) - 1}")
        keep = torch.from_numpy((bits[None, :] >> np.arange(k)[:, None]) & 1).bool().view(k, h, w)
        if not bool((keep.sum(0) == m).all()):
            raise BitstreamError(
                f"adacode keep masks: every position must keep exactly m={m} codebooks"
            )
        indices = torch.zeros(k, h, w, dtype=torch.int64)
        for i in range(k):
            values = decode_integers(c.section(f"codes.{i}"), int(keep[i].sum()))
            if values.size and (values.min() < 0 or values.max() >= cfg.codebook_size):
                raise BitstreamError(
                    f"adacode codes of codebook {i} outside 0..{cfg.codebook_size - 1}"
                )
            indices[i][keep[i]] = torch.from_numpy(values)
        levels = decode_integers(c.section("weights"), h * w * m)
        if levels.min() < 0 or levels.max() > cfg.weight_levels:
            raise BitstreamError(f"adacode weights outside 0..{cfg.weight_levels}")
        weights = torch.zeros(h, w, k, dtype=torch.int64)
        weights[keep.permute(1, 2, 0)] = torch.from_numpy(levels)
        codes = Codes(indices[None], keep[None], weights.permute(2, 0, 1)[None])
        image = model.decompress(codes)[0, :, :height, :width].clamp(0.0, 1.0)
        if shape[0] == 1:
            image = image.mean(0, keepdim=True)
        return meta_to_signal(meta, image.contiguous()).quantized()
