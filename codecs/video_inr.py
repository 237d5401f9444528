"""Video codecs "nerv", "hnerv" and "nervpp": fit a frame decoder, quantize, entropy-code.

Papers: NeRV (Chen et al., NeurIPS 2021), HNeRV (Chen et al., CVPR 2023),
NeRV++ (Ghorbel et al., 2024); the architectures are in :mod:`inrkit.inr.nerv`,
:mod:`inrkit.inr.hnerv`, :mod:`inrkit.inr.nervpp`, the training in
:mod:`inrkit.inr.video_fit`.

Encoding: the clip is padded (edge replication) to a multiple of 8 pixels; the
parameter budget for a target bpp is ``(bits − overhead) / bits-per-parameter``
and the width is solved from it; the network is trained; then, as in the
reference evaluation (``train_nerv_all.py``: 8-bit weights, 6-bit embeddings,
per-channel min/max), the decoder weights are quantized (symmetric, per output
channel, so that pruned weights stay exactly 0) and the HNeRV embeddings
(asymmetric, per channel); every integer array is entropy-coded with
:mod:`inrkit.codecs.entropy` (CompressAI rANS; the reference Huffman-codes).
Rate control after training: the encoder tries magnitude pruning ratios and
weight bit depths from a fixed ladder and keeps the best-quality one whose
*measured* size is within the target; retraining is not needed.

Bitstream (``.inrk`` container, docs/bitstream.md): header ``{"arch": decoder
config, "frames": T, "size": [H, W] before padding, "wbits", "ebits"}``; the
architecture fixes the tensor list. Sections ``weights`` (integers of all
decoder tensors, in state order), ``wscale`` (float16 per-output-channel steps),
``embed``/``escale`` (HNeRV only: integers and float32 per-channel minimum and step).

Decoding runs the network only on the requested frames
(``decode(data, frames=(start, stop))``), one frame at a time so that a frame
decodes identically alone or within the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from inrkit.codecs.base import Codec, EncodeOptions, Rate
from inrkit.codecs.container import Container, meta_to_signal, pack, unpack
from inrkit.codecs.entropy import decode_integers, encode_integers
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.field import field_from_config
from inrkit.inr.hnerv import HNeRV
from inrkit.inr.nerv import FrameDecoder, NeRV, width_for_budget
from inrkit.inr.nervpp import NeRVPlusPlus
from inrkit.inr.video_fit import VideoFitConfig, fit_frames
from inrkit.registry import register_codec

PAD = 8  # frames are padded to a multiple of this many pixels
QUALITY_BPP = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)  # Rate(quality=q) → QUALITY_BPP[q - 1]
PRUNE_LADDER = ((8, 0.0), (8, 0.1), (8, 0.2), (7, 0.2), (7, 0.3), (6, 0.3), (6, 0.4), (5, 0.5))
MAX_DECODER_PARAMS = 50_000_000


# -- quantization -----------------------------------------------------------


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1) if t.ndim > 1 else t.reshape(1, -1)


def quantize_symmetric(t: torch.Tensor, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric quantization: integers in ``[-(2^(b-1)-1), 2^(b-1)-1]``
    and one float16 step per channel (as the reference stores its scales); zeros stay zeros."""
    rows = _per_channel(t.detach().float())
    levels = (1 << (bits - 1)) - 1
    step = (rows.abs().amax(dim=1) / levels).clamp(1e-7, 6e4).half()  # stored as float16
    q = torch.round(rows / step.float()[:, None]).clamp(-levels, levels)
    return q.to(torch.int32).numpy().reshape(-1), step.numpy()


def dequantize_symmetric(q: np.ndarray, step: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    rows = torch.from_numpy(q.astype(np.float32)).reshape(len(step), -1)
    return (rows * torch.from_numpy(step.astype(np.float32))[:, None]).reshape(shape)


def quantize_minmax(t: torch.Tensor, bits: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric per-channel (along ``axis``) quantization to ``[0, 2^b - 1]``; returns the
    integers and float32 ``[minimum, step]`` pairs (HNeRV's ``quant_tensor``)."""
    moved = t.detach().float().movedim(axis, 0)
    rows = moved.reshape(moved.shape[0], -1)
    lo, hi = rows.amin(dim=1), rows.amax(dim=1)
    step = ((hi - lo) / ((1 << bits) - 1)).clamp_min(1e-12)
    q = torch.round((rows - lo[:, None]) / step[:, None]).clamp(0, (1 << bits) - 1)
    return q.to(torch.int32).numpy().reshape(-1), torch.stack([lo, step], 1).numpy().astype(np.float32)


def dequantize_minmax(q: np.ndarray, params: np.ndarray, shape: tuple[int, ...], axis: int) -> torch.Tensor:
    moved_shape = (shape[axis], *[s for i, s in enumerate(shape) if i != axis])
    p = torch.from_numpy(params)
    rows = torch.from_numpy(q.astype(np.float32)).reshape(moved_shape[0], -1)
    return (rows * p[:, 1:2] + p[:, 0:1]).reshape(moved_shape).movedim(0, axis)


def prune_mask(tensors: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Global magnitude pruning: masks keeping all but the ``ratio`` smallest-magnitude weights."""
    if ratio <= 0:
        return [torch.ones_like(t, dtype=torch.bool) for t in tensors]
    flat = torch.cat([t.detach().abs().reshape(-1) for t in tensors])
    k = int(ratio * flat.numel())
    threshold = flat.kthvalue(max(k, 1)).values
    return [t.detach().abs() > threshold for t in tensors]


# -- the codec ----------------------------------------------------------------


@dataclass
class EncodeReport:
    """What the last :meth:`VideoINRCodec.encode` did (for benchmarks and logs)."""

    fc_dim: int
    parameters: int
    epochs: int
    fit_seconds: float
    fit_psnr: float
    weight_bits: int
    prune: float
    bytes: int


class VideoINRCodec(Codec):
    """Shared encoder/decoder of the frame-decoder codecs; subclasses set ``model_cls``."""

    modalities = ("video",)
    rate_kinds = ("bpp", "quality")
    version = 1
    model_cls: ClassVar[type[FrameDecoder]]

    def __init__(
        self,
        epochs: int = 300,
        batch_size: int = 2,
        lr: float = 1e-3,
        loss: str = "l2",
        embed_bits: int = 6,
        bits_per_param: float = 7.5,
        memory_limit: int | None = None,
        **arch: Any,
    ):
        self.fit = VideoFitConfig(epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, memory_limit=memory_limit)
        if not 2 <= embed_bits <= 16:
            raise InputError(f"embed_bits must be in 2..16, got {embed_bits}")
        self.embed_bits = embed_bits
        self.bits_per_param = bits_per_param
        self.arch = arch
        self.last_report: EncodeReport | None = None

    # -- encoding ---------------------------------------------------------
    def parameter_budget(self, signal: Signal, rate: Rate) -> int:
        """Parameters that fit ``rate`` for this clip, at ``bits_per_param`` after entropy coding
        (less a fixed ~1 kbit allowance for header, scales and container)."""
        bpp = rate.bpp if rate.kind == "bpp" else QUALITY_BPP[min(max(int(rate.quality), 1), 8) - 1]
        bits = bpp * signal.num_samples - 8 * 600
        return max(int(bits / self.bits_per_param), 1)

    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        self.check(signal, rate)
        options = options or EncodeOptions()
        if rate.kind == "quality" and not 1 <= rate.quality <= 8:
            raise InputError(f"{self.name}: quality must be 1..8, got {rate.quality}")
        frames = signal.data
        num_frames, channels = frames.shape[:2]
        if num_frames == 0:
            raise InputError(f"{self.name}: the video {signal.source or ''} has no frames")
        padded = _pad(frames)
        ph, pw = padded.shape[-2:]
        budget = self.parameter_budget(signal, rate)
        fc_dim = width_for_budget(self.model_cls, budget, ph, pw, num_frames, channels=channels, **self.arch)

        torch.manual_seed(options.seed)
        model = self.model_cls(
            self.model_cls.Config(height=ph, width=pw, fc_dim=fc_dim, channels=channels, **self.arch)
        ).to(options.device)
        fit = replace(
            self.fit,
            epochs=options.steps or self.fit.epochs,
            seed=options.seed,
            time_budget=options.time_budget,
            progress=options.progress,
        )
        result = fit_frames(model, padded, fit)
        model = model.cpu().eval()
        with torch.no_grad():
            embeddings = None
            if model.uses_embeddings:
                embeddings = torch.cat(
                    [model.frame_inputs(b, torch.zeros(len(b)), num_frames) for b in padded.split(8)]
                )

        target_bytes = None
        if rate.kind == "bpp":
            target_bytes = rate.bpp * signal.num_samples / 8
        best = None
        for wbits, prune in PRUNE_LADDER:
            data = self._pack(signal, model, embeddings, wbits, prune)
            best = (data, wbits, prune)
            if target_bytes is None or len(data) <= 1.02 * target_bytes:
                break
        data, wbits, prune = best
        self.last_report = EncodeReport(
            fc_dim=fc_dim,
            parameters=model.parameter_count(num_frames),
            epochs=result.epochs,
            fit_seconds=result.seconds,
            fit_psnr=result.psnr[-1] if result.psnr else float("nan"),
            weight_bits=wbits,
            prune=prune,
            bytes=len(data),
        )
        return data

    def _pack(
        self, signal: Signal, model: FrameDecoder, embeddings: torch.Tensor | None, wbits: int, prune: float
    ) -> bytes:
        named = [(n, p) for n, p in model.named_parameters() if not n.startswith("encoder.")]
        weights = [p for n, p in named if p.ndim > 1]
        masks = iter(prune_mask(weights, prune))
        ints, steps = [], []
        for _, p in named:
            value = p.detach() * next(masks) if p.ndim > 1 else p.detach()
            q, step = quantize_symmetric(value, wbits)
            ints.append(q)
            steps.append(step)
        header = {
            "arch": model.config_dict(),
            "frames": int(signal.data.shape[0]),
            "size": [int(signal.data.shape[2]), int(signal.data.shape[3])],
            "wbits": wbits,
        }
        sections = {
            "weights": encode_integers(np.concatenate(ints)),
            "wscale": np.concatenate(steps).astype("<f2").tobytes(),
        }
        if embeddings is not None:
            q, params = quantize_minmax(embeddings, self.embed_bits, axis=1)
            header["ebits"] = self.embed_bits
            sections["embed"] = encode_integers(q)
            sections["escale"] = params.astype("<f4").tobytes()
        return pack(Container.for_signal(self.name, self.version, signal, header, sections))

    # -- decoding ---------------------------------------------------------
    def decode(self, data: bytes, frames: tuple[int, int] | None = None) -> Signal:
        """Decode the whole clip, or only frames ``start ≤ t < stop`` when ``frames=(start, stop)``.

        Frames are decoded one at a time: a batched matrix product may round
        differently from a single one, and a frame must decode to the same
        values whether it is asked for alone or with the whole clip."""
        container = unpack(data)
        if container.codec != self.name:
            raise BitstreamError(f"this is a {container.codec!r} file, not {self.name!r}")
        if container.codec_version != self.version:
            raise BitstreamError(
                f"{self.name} file of codec version {container.codec_version}; this decoder reads {self.version}"
            )
        model, num_frames, size, embeddings = self._unpack_model(container)
        start, stop = (0, num_frames) if frames is None else (int(frames[0]), int(frames[1]))
        if not 0 <= start < stop <= num_frames:
            raise InputError(f"frame range ({start}, {stop}) is not within the clip's {num_frames} frames")
        out = []
        with torch.no_grad():
            for index in torch.arange(start, stop).split(1):
                x = embeddings[index] if embeddings is not None else model.index_inputs(index, num_frames)
                out.append(model(x)[..., : size[0], : size[1]])
        meta = container.signal_meta()
        meta["shape"] = [stop - start, *meta["shape"][1:]]
        return meta_to_signal(meta, torch.cat(out).clamp(0, 1))

    def _unpack_model(self, c: Container):
        h = c.header
        try:
            num_frames, size, wbits = int(h["frames"]), [int(v) for v in h["size"]], int(h["wbits"])
            arch = h["arch"]
        except (KeyError, TypeError, ValueError) as e:
            raise BitstreamError(f"{self.name} header is missing or has a malformed field: {e}") from None
        if c.modality != "video" or len(c.shape) != 4 or c.shape[0] != num_frames or c.shape[2:] != size:
            raise BitstreamError(f"{self.name} header disagrees with the container shape {c.shape}")
        if not isinstance(arch, dict) or arch.get("name") != self.model_cls.name:
            raise BitstreamError(f"{self.name} file describes a {arch!r} network")
        if not 2 <= wbits <= 16:
            raise BitstreamError(f"weight bit depth {wbits} is outside 2..16")
        try:
            with torch.device("meta"):
                count = field_from_config(arch).parameter_count(0)
            if count > MAX_DECODER_PARAMS:
                raise BitstreamError(f"the network has {count} parameters, over the limit {MAX_DECODER_PARAMS}")
            model = field_from_config(arch).eval()
        except (InputError, TypeError, ValueError, RuntimeError) as e:
            raise BitstreamError(f"{self.name} file has an invalid architecture: {e}") from None
        if model.frame_size[0] < size[0] or model.frame_size[1] < size[1] or model.out_channels != c.shape[1]:
            raise BitstreamError(f"network frame size {model.frame_size} cannot cover the clip {c.shape}")

        named = [(n, p) for n, p in model.named_parameters() if not n.startswith("encoder.")]
        total = sum(p.numel() for _, p in named)
        rows = sum(p.shape[0] if p.ndim > 1 else 1 for _, p in named)
        q = decode_integers(c.section("weights"), total)
        steps = _floats(c.section("wscale"), rows, "wscale", "<f2")
        state, pos, row = {}, 0, 0
        for n, p in named:
            r = p.shape[0] if p.ndim > 1 else 1
            state[n] = dequantize_symmetric(q[pos : pos + p.numel()], steps[row : row + r], tuple(p.shape))
            pos, row = pos + p.numel(), row + r
        model.load_state_dict(state, strict=False)

        embeddings = None
        if model.uses_embeddings:
            shape = (num_frames, *model.embedding_shape())
            ebits = int(h.get("ebits", 0))
            if not 2 <= ebits <= 16:
                raise BitstreamError(f"embedding bit depth {ebits} is outside 2..16")
            eq = decode_integers(c.section("embed"), math.prod(shape))
            params = _floats(c.section("escale"), 2 * shape[1], "escale", "<f4").reshape(shape[1], 2)
            embeddings = dequantize_minmax(eq, params, shape, axis=1)
        return model, num_frames, size, embeddings


def _floats(raw: bytes, count: int, what: str, dtype: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    if len(raw) != size * count:
        raise BitstreamError(f"section {what!r} has {len(raw)} bytes, expected {size * count}")
    values = np.frombuffer(raw, dtype=dtype).astype(np.float32)
    if not np.isfinite(values).all():
        raise BitstreamError(f"section {what!r} holds non-finite numbers")
    return values


def _pad(frames: torch.Tensor) -> torch.Tensor:
    h, w = frames.shape[-2:]
    ph, pw = -h % PAD, -w % PAD
    if ph == 0 and pw == 0:
        return frames.contiguous()
    return F.pad(frames, (0, pw, 0, ph), mode="replicate")


@register_codec("nerv")
class NeRVCodec(VideoINRCodec):
    """NeRV (Chen et al., NeurIPS 2021): frame index → frame."""

    name = "nerv"
    model_cls = NeRV


@register_codec("hnerv")
class HNeRVCodec(VideoINRCodec):
    """HNeRV (Chen et al., CVPR 2023): content-adaptive embeddings + decoder."""

    name = "hnerv"
    model_cls = HNeRV


@register_codec("nervpp")
class NeRVPlusPlusCodec(VideoINRCodec):
    """NeRV++ (Ghorbel et al., 2024): NeRV with separable residual blocks and a bilinear skip."""

    name = "nervpp"
    model_cls = NeRVPlusPlus


__all__ = ["EncodeReport", "HNeRVCodec", "NeRVCodec", "NeRVPlusPlusCodec", "VideoINRCodec"]
