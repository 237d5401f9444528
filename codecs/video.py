"""Video codecs "nerv", "hnerv" and "nervpp": fit a frame decoder, prune, quantize, entropy-code.

Papers: NeRV (Chen et al., NeurIPS 2021), HNeRV (Chen et al., CVPR 2023),
NeRV++ (Ghorbel et al., 2024); the architectures are in :mod:`inrkit.inr.frames.nerv`,
:mod:`inrkit.inr.frames.hnerv`, :mod:`inrkit.inr.frames.nervpp`, the training in
:mod:`inrkit.inr.frames.video_fit`. Reference code: github.com/haochen-rye/NeRV
(``train_nerv.py``: pruning and fine-tuning) and github.com/haochen-rye/HNeRV
(``train_nerv_all.py``: 8-bit weights, 6-bit embeddings, per-channel min/max).

Encoding: the clip is padded (edge replication, bottom and right) to the size
:func:`~inrkit.inr.frames.nerv.padded_size` chooses, at most an eighth more pixels,
so that the base grid stays small (HNeRV's 2×4 embeddings at 180×320 too); the
parameter budget for a target bpp is ``(bits − overhead) / bits-per-parameter``
and the width is solved from it; the network is trained. Rate control then
walks a ladder of (weight bits, pruning fraction) and keeps the first rung
whose *measured* file size is within the target. A pruned rung zeroes the
smallest-magnitude weights and, as NeRV does, fine-tunes with the mask held
(``torch.nn.utils.prune``); the fine-tuned network is kept if its file still fits.

Quantization and entropy coding are the shared ones (:mod:`inrkit.codecs.bitstream.quantize`,
:mod:`inrkit.codecs.bitstream.entropy`): decoder weights symmetric, one step per output
channel where a channel has at least ``MIN_ROW`` = 32 weights (else one per
tensor, so a float32 step never costs more than a bit per weight); HNeRV embeddings per channel over the channel's
range — each channel is centred on the midpoint of its minimum and maximum and
then quantized symmetrically, which is the reference's min/max grid with
``2^b − 1`` levels instead of ``2^b``.

Departures from the references: Adam's learning rate is 1e-2, not the
references' 1e-3. On the CPU-sized clips this toolkit trains (60k–240k
parameters, 150 epochs of 32 frames), 1e-3 is far too slow: on 32 frames of Bunny
at 64×128 HNeRV gave 29.3 dB at 1e-3, 32.0 at 3e-3, 33.4 at 5e-3, 34.4 at 1e-2,
34.3 at 2e-2 and diverged at 3e-2; with 4× the parameters 37.7 dB at 3e-3 and
40.5 at 1e-2; on carphone (144×176) 29.0 dB at 1e-3 and 33.1 at 1e-2 (docs/video.md).
Pruning removes the same fraction from every
layer (:func:`~inrkit.codecs.bitstream.quantize.prune_by_magnitude`), where NeRV prunes
globally across layers; fine-tuning after pruning is short (``prune_finetune``
× the training epochs, 10 % by default, against NeRV's 100 epochs after 300)
and at a tenth of the training rate, to keep CPU encoding affordable, and it
is kept only if it lowers the error; the integers are rANS-coded (the
references Huffman-code them); weights are quantized symmetrically, not by
min/max as in the references, so that pruned weights stay 0; steps are float32 (the HNeRV reference stores
float16 scales); HNeRV's quantizer picks the best of several axes per tensor,
this one always uses the channel axis.

Bitstream (``.inrk`` container, docs/bitstream.md): the fixed fields carry the
clip's shape ``T×C×H×W`` (before padding); header ``{"arch": decoder config,
"q": quantization header}``; sections ``q.steps`` and ``q.sym`` from
:func:`~inrkit.codecs.bitstream.quantize.serialize_quantized` (the decoder's parameters in
state order, then, for HNeRV, the ``C×T×h×w`` embeddings) and, for HNeRV,
``ecentre`` (float32 channel centres). The architecture fixes every shape.

Decoding treats the file as hostile: the architecture is type-checked and
bounded, built on the meta device, and refused before anything is allocated if
its parameter count or activation memory is over a limit; it then runs the
network only on the requested frames (``decode(data, frames=(start, stop))``),
one frame at a time, so a frame decodes identically alone or within the clip.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import operator
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack
from inrkit.codecs.bitstream.header import Float, Int, IntList, read_config
from inrkit.codecs.bitstream.quantize import (
    QuantizedTensor,
    dequantize,
    deserialize_quantized,
    load_quantized_state,
    prune_by_magnitude,
    quantize_tensor,
    serialize_quantized,
    spec_of,
)
from inrkit.datasets.limits import max_bytes, max_pixels
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.field import check_config_numbers
from inrkit.inr.frames.hnerv import HNeRV
from inrkit.inr.frames.nerv import (
    FrameDecoder,
    NeRV,
    padded_size,
    parameter_count,
    width_for_budget,
)
from inrkit.inr.frames.nervpp import NeRVPlusPlus
from inrkit.inr.frames.video_fit import VideoFitConfig, fit_frames
from inrkit.registry import register_codec

from .base import (
    Codec,
    EncodeOptions,
    Rate,
    check_positive_option,
    check_whole_option,
    single_threaded,
)

QUALITY_BPP = (0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)  # Rate(quality=q) → QUALITY_BPP[q - 1]
PRUNE_LADDER = ((8, 0.0), (8, 0.1), (8, 0.2), (7, 0.2), (7, 0.3), (6, 0.3), (6, 0.4), (5, 0.5))
MIN_ROW = 32  # weights per output channel from which a channel gets its own step (≤ 1 bit/weight)
EMBEDDINGS = "embeddings"  # name of the embedding tensor among the quantized ones
CENTRE_SECTION = "ecentre"

# What a file may ask the decoder to build: parameters of the whole network (an HNeRV's encoder
# included, as the decoder builds it) plus all embeddings; and bounds on single config values.
MAX_PARAMETERS = 50_000_000
MAX_STAGES, MAX_STRIDE = 12, 16
_CONFIG_BOUNDS = {
    **{key: Int(1, 15) for key in ("kernel", "kernel_min", "kernel_max", "sep_kernel")},
    "pe_levels": Int(1, 4096), "reduce": Float(1.0, 16.0), "pe_base": Float(1e-3, 16.0),
}
MAX_CONFIG_INT, MAX_CONFIG_FLOAT = 1 << 16, (1e-6, 1e3)


def max_padded(size: int) -> int:
    """The largest padded height (or width) a file may declare for frames ``size`` pixels high
    (or wide): :func:`~inrkit.inr.frames.nerv.padded_size` adds at most an eighth of the frame's
    area, so at most an eighth of either side; version 2 padded to a multiple of 8."""
    return size + max(size // 8, 7)


# -- the stored part of a frame decoder ------------------------------------------------


def decoder_view(model: FrameDecoder) -> nn.Module:
    """The part of ``model`` that goes into the bitstream, as a module whose parameter names
    are ``model``'s own: its top-level children whose parameters are all decoder parameters
    (an HNeRV's encoder is left out). The shared quantizer works on whole modules."""
    stored = {id(p) for p in model.decoder_parameters()}
    view = nn.ModuleDict(
        {name: child for name, child in model.named_children() if all(id(p) in stored for p in child.parameters())}
    )
    if sum(p.numel() for p in view.parameters()) != sum(p.numel() for p in model.decoder_parameters()):
        raise TypeError(f"{model.name}: decoder parameters must be whole top-level submodules")
    return view


def prune(model: FrameDecoder, fraction: float) -> tuple[FrameDecoder, dict[str, torch.Tensor]]:
    """A copy of ``model`` with the ``fraction`` smallest-magnitude weights of every decoder
    layer but the output head zeroed (NeRV prunes its stem and block convolutions, not the
    head), and the keep-masks by parameter name."""
    pruned = copy.deepcopy(model)
    body = nn.ModuleDict({n: m for n, m in decoder_view(pruned).items() if n != "head"})
    return pruned, prune_by_magnitude(body, fraction)


def finetune_pruned(
    model: FrameDecoder, masks: dict[str, torch.Tensor], frames: torch.Tensor, config: VideoFitConfig
) -> None:
    """Train ``model`` on ``frames`` in place with the pruned weights held at zero, as NeRV does
    (``torch.nn.utils.prune`` reparametrises each masked weight as ``weight_orig * mask``).

    The training runs on a copy whose weights are then loaded back: undoing the
    reparametrisation re-registers each weight after its bias, and the bitstream
    stores the parameters in the architecture's own order."""
    work = copy.deepcopy(model)
    held = []
    for name, mask in masks.items():
        owner, _, attr = name.rpartition(".")
        module = work.get_submodule(owner)
        torch_prune.custom_from_mask(module, attr, mask)
        held.append((module, attr))
    try:
        fit_frames(work, frames, config)
    finally:
        for module, attr in held:
            torch_prune.remove(module, attr)  # the masked weight becomes a plain parameter again
    model.load_state_dict(work.state_dict())


@torch.no_grad()
def clip_mse(model: FrameDecoder, frames: torch.Tensor) -> float:
    """Mean squared error of ``model`` (unquantized) on the ``T × C × H × W`` clip it was fitted to."""
    device = next(model.parameters()).device
    index = torch.arange(len(frames), device=device)
    total = 0.0
    for b, i in zip(frames.split(8), index.split(8), strict=True):
        b = b.to(device)
        total += F.mse_loss(model(model.frame_inputs(b, i, len(frames))), b, reduction="sum").item()
    return total / frames.numel()


@torch.no_grad()
def frame_embeddings(model: FrameDecoder, frames: torch.Tensor) -> torch.Tensor | None:
    """The per-frame embeddings a model stores (``T × C × h × w`` on the CPU), or None."""
    if not model.uses_embeddings:
        return None
    device = next(model.parameters()).device
    batches = [b.to(device) for b in frames.split(8)]
    return torch.cat([model.frame_inputs(b, torch.zeros(len(b), device=device), len(frames)).cpu() for b in batches])


def quantize_embeddings(embeddings: torch.Tensor, bits: int) -> tuple[np.ndarray, QuantizedTensor]:
    """Per-channel range quantization of ``T × C × h × w`` embeddings: returns the float32
    channel centres ``(min + max) / 2`` and the centred embeddings, channel-first
    (``C × T × h × w``), quantized symmetrically with one step per channel."""
    by_channel = embeddings.detach().to(torch.float32).movedim(1, 0).contiguous()
    rows = by_channel.reshape(by_channel.shape[0], -1)
    centre = (rows.amax(dim=1) + rows.amin(dim=1)) / 2
    centred = by_channel - centre.view(-1, *[1] * (by_channel.ndim - 1))
    return centre.numpy(), quantize_tensor(centred, bits, per_channel=True, name=EMBEDDINGS)


def dequantize_embeddings(centre: np.ndarray, q: QuantizedTensor) -> torch.Tensor:
    """Inverse of :func:`quantize_embeddings`: ``T × C × h × w`` float32."""
    by_channel = dequantize(q)
    return (by_channel + torch.from_numpy(centre).view(-1, *[1] * (by_channel.ndim - 1))).movedim(0, 1)


# -- the codec ----------------------------------------------------------------


@dataclass
class EncodeReport:
    """What the last :meth:`VideoFieldCodec.encode` did (for benchmarks and logs)."""

    fc_dim: int
    parameters: int
    epochs: int
    fit_seconds: float
    fit_psnr: float
    weight_bits: int
    prune: float
    bytes: int
    finetune_epochs: int = 0  # epochs of fine-tuning after pruning in the kept file (0: none)
    recoveries: int = 0  # divergences the training's guard recovered from (video_fit.fit_frames)


class VideoFieldCodec(Codec):
    """Shared encoder/decoder of the frame-decoder codecs; subclasses set ``model_cls``."""

    modalities = ("video",)
    rate_kinds = ("bpp", "quality")
    decode_options = {"video": ("frames",)}
    version = 3
    older_versions = (2,)  # version 2 padded every clip to a multiple of 8 pixels; decoding is the same
    model_cls: ClassVar[type[FrameDecoder]]

    def __init__(
        self,
        epochs: int = 300,
        batch_size: int = 2,
        lr: float = 1e-2,
        loss: str = "l2",
        embed_bits: int = 6,
        bits_per_param: float = 7.5,
        prune_finetune: float = 0.1,
        memory_limit: int | None = None,
        **arch: Any,
    ):
        check_whole_option(self.name, "epochs", epochs, 1)
        check_whole_option(self.name, "batch_size", batch_size, 1)
        check_positive_option(self.name, "lr", lr)
        check_positive_option(self.name, "bits_per_param", bits_per_param)
        if memory_limit is not None and (isinstance(memory_limit, bool) or not isinstance(memory_limit, int)
                                         or memory_limit < 1):  # fmt: skip
            raise InputError(f"{self.name}: memory_limit must be a positive number of bytes, got {memory_limit!r}")
        self._check_arch(arch)
        self.fit = VideoFitConfig(epochs=epochs, batch_size=batch_size, lr=lr, loss=loss, memory_limit=memory_limit)
        if not 2 <= embed_bits <= 16:
            raise InputError(f"embed_bits must be in 2..16, got {embed_bits}")
        if not 0.0 <= prune_finetune <= 1.0:
            raise InputError(f"prune_finetune is a fraction of the training epochs in [0, 1], got {prune_finetune}")
        self.embed_bits = embed_bits
        self.bits_per_param = bits_per_param
        self.prune_finetune = prune_finetune
        self.arch = arch
        self.last_report: EncodeReport | None = None

    def _check_arch(self, arch: dict[str, Any]) -> None:
        """Architecture overrides: options of the model's Config other than those the codec
        sets from the clip and the rate, of the Config's types; strides at least 1."""
        settable = sorted({f.name for f in dataclasses.fields(self.model_cls.Config)}
                          - {"height", "width", "fc_dim", "channels"})  # fmt: skip
        unknown = sorted(set(arch) - set(settable))
        if unknown:
            raise InputError(f"{self.name}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(settable)}")
        check_config_numbers(self.name, self.model_cls.Config, arch)
        strides = arch.get("strides")
        if strides is not None and not (
            isinstance(strides, tuple | list) and strides
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in strides)
        ):  # fmt: skip
            raise InputError(f"{self.name}: strides must be whole numbers of at least 1, got {strides!r}")

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
        padded = self._pad(frames)
        ph, pw = padded.shape[-2:]
        budget = self.parameter_budget(signal, rate)
        smallest = parameter_count(self.model_cls, 1, ph, pw, num_frames, channels=channels, **self.arch)
        if smallest > budget:
            need = (smallest * self.bits_per_param + 8 * 600) / signal.num_samples
            height, width = frames.shape[-2:]
            raise InputError(
                f"{self.name}: {rate} is too small for these {num_frames} frames of {height}×{width}: "
                f"the smallest {self.name} takes {smallest} parameters; give --bpp {need:.3g} or more, "
                "or more frames"
            )
        fc_dim = width_for_budget(self.model_cls, budget, ph, pw, num_frames, channels=channels, **self.arch)

        torch.manual_seed(options.seed)
        model = self.model_cls(
            self.model_cls.Config(height=ph, width=pw, fc_dim=fc_dim, channels=channels, **self.arch)
        ).to(options.device)
        fit = replace(
            self.fit,
            epochs=options.steps_or(self.fit.epochs, self.name),
            seed=options.seed,
            time_budget=options.time_budget,
            progress=options.progress,
        )
        result = fit_frames(model, padded, fit)
        # NeRV fine-tunes a pruned network at the training's rate for 100 epochs; a short
        # fine-tune that restarts at the peak rate undoes more than it recovers, so it uses a tenth.
        epochs = round(self.prune_finetune * result.epochs)
        finetune = replace(fit, epochs=epochs, lr=fit.lr / 10, warmup=0.0, time_budget=None) if epochs else None
        target = rate.bpp * signal.num_samples / 8 if rate.kind == "bpp" else math.inf
        data, wbits, fraction, tuned = self._rate_ladder(signal, model, padded, target, finetune)
        self.last_report = EncodeReport(
            fc_dim=fc_dim,
            parameters=model.parameter_count(num_frames),
            epochs=result.epochs,
            fit_seconds=result.seconds,
            fit_psnr=result.psnr[-1] if result.psnr else float("nan"),
            weight_bits=wbits,
            prune=fraction,
            bytes=len(data),
            finetune_epochs=tuned,
            recoveries=result.recoveries,
        )
        return data

    def _pad(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` padded on the bottom and right, by edge replication, to the size
        :func:`~inrkit.inr.frames.nerv.padded_size` chooses for this architecture."""
        h, w = frames.shape[-2:]
        strides = self.arch.get("strides")
        size = padded_size(h, w, self.model_cls.min_grid, None if strides is None else tuple(strides))
        if size[0] > max_padded(h) or size[1] > max_padded(w):
            raise InputError(
                f"{self.name}: strides {tuple(strides)} multiply to more than frames of {w}×{h} can be padded to"
            )
        ph, pw = size[0] - h, size[1] - w
        if ph == 0 and pw == 0:
            return frames.contiguous()
        return F.pad(frames, (0, pw, 0, ph), mode="replicate")

    def _rate_ladder(
        self,
        signal: Signal,
        model: FrameDecoder,
        padded: torch.Tensor,
        target: float,
        finetune: VideoFitConfig | None,
    ) -> tuple[bytes, int, float, int]:
        """The file of the first (weight bits, pruning fraction) rung of :data:`PRUNE_LADDER`
        whose measured size is within 2 % of ``target`` bytes (else the last rung's), with its
        bits, fraction and fine-tuning epochs. A pruned rung that fits is fine-tuned with its
        mask held; the fine-tuned network replaces it if it fits the clip better and its
        file still fits the target."""
        embeddings = frame_embeddings(model, padded)
        for wbits, fraction in PRUNE_LADDER:
            tuned = 0
            pruned, masks = prune(model, fraction) if fraction else (model, {})
            data = self._pack(signal, pruned, embeddings, wbits)
            fits = len(data) <= 1.02 * target
            if fits and fraction and finetune is not None:
                candidate = copy.deepcopy(pruned)
                finetune_pruned(candidate, masks, padded, finetune)
                if clip_mse(candidate, padded) < clip_mse(pruned, padded):
                    retuned = self._pack(signal, candidate, frame_embeddings(candidate, padded), wbits)
                    if len(retuned) <= 1.02 * target:
                        data, tuned = retuned, finetune.epochs
            if fits:
                break
        return data, wbits, fraction, tuned

    def _pack(self, signal: Signal, model: FrameDecoder, embeddings: torch.Tensor | None, wbits: int) -> bytes:
        qts = [
            quantize_tensor(p, wbits, per_channel=p.ndim > 1 and p[0].numel() >= MIN_ROW, name=n)
            for n, p in decoder_view(model).named_parameters()
        ]
        extra = {}
        if embeddings is not None:
            centre, q = quantize_embeddings(embeddings, self.embed_bits)
            qts.append(q)
            extra[CENTRE_SECTION] = centre.astype("<f4").tobytes()
        qheader, sections = serialize_quantized(qts)
        header = {"arch": model.config_dict(), "q": qheader}
        return pack(Container.for_signal(self.name, self.version, signal, header, {**sections, **extra}))

    # -- decoding ---------------------------------------------------------
    @single_threaded
    def decode(self, data: bytes, frames: tuple[int, int | None] | None = None) -> Signal:
        """Decode the whole clip, or only frames ``start ≤ t < stop`` when ``frames=(start, stop)``
        (``stop=None``: to the end).

        Frames are decoded one at a time: a batched matrix product may round
        differently from a single one, and a frame must decode to the same
        values whether it is asked for alone or with the whole clip."""
        container = self.open(data)
        if container.modality != "video" or len(container.shape) != 4:
            raise BitstreamError(f"{self.name} file holds a {container.modality} of shape {container.shape}")
        num_frames, channels, height, width = container.shape
        try:
            start, stop = (0, None) if frames is None else frames
            start = operator.index(start)
            stop = num_frames if stop is None else operator.index(stop)
        except (TypeError, ValueError):
            raise InputError(f"frames must be a (start, stop) pair of integers, got {frames!r}") from None
        if not 0 <= start < stop <= num_frames:
            raise InputError(f"frame range ({start}, {stop}) is not within the clip's {num_frames} frames")
        if height * width > max_pixels():
            raise BitstreamError(
                f"{self.name} file has {width}×{height} frames, over the limit of {max_pixels()} pixels "
                "(INRKIT_MAX_PIXELS)"
            )
        if 4 * (stop - start) * channels * height * width > max_bytes():
            raise BitstreamError(
                f"decoding {stop - start} frames of {channels}×{height}×{width} needs more than the "
                f"{max_bytes()} bytes allowed (INRKIT_MAX_BYTES); decode a range with frames=(start, stop)"
            )

        model, embeddings = self._rebuild(container)
        out = []
        with torch.no_grad():
            for index in torch.arange(start, stop).split(1):
                x = embeddings[index] if embeddings is not None else model.index_inputs(index, num_frames)
                frame = model(x)[..., :height, :width]
                if not torch.isfinite(frame).all():
                    raise BitstreamError(f"{self.name} file decodes to non-finite values")
                out.append(frame.clamp_(0, 1))
        meta = container.signal_meta()
        meta["shape"] = [stop - start, channels, height, width]
        return meta_to_signal(meta, torch.cat(out)).quantized()

    def _rebuild(self, c: Container) -> tuple[FrameDecoder, torch.Tensor | None]:
        """The network and embeddings a file describes, each header value checked first."""
        num_frames, channels, height, width = c.shape
        config = self._config(c.header.get("arch"), channels, height, width)
        with _as_bitstream_error(f"{self.name} file has an invalid architecture"), torch.device("meta"):
            probe = self.model_cls(config)  # shapes only: nothing is allocated
        per_frame = math.prod(probe.embedding_shape()) if probe.uses_embeddings else 0
        count = sum(p.numel() for p in probe.parameters()) + num_frames * per_frame
        if count > MAX_PARAMETERS:
            raise BitstreamError(
                f"{self.name} file describes a network of {count} parameters, over the limit of {MAX_PARAMETERS}"
            )
        with _as_bitstream_error(f"{self.name} file's network cannot run"), torch.device("meta"):
            blank = torch.zeros(1, channels, config.height, config.width)
            shape = tuple(probe(probe.frame_inputs(blank, torch.zeros(1), 1)).shape)
            activations = probe.activation_elements(1)
        if shape != (1, channels, config.height, config.width):
            raise BitstreamError(f"{self.name} file's network makes {shape} frames, not {channels}×{height}×{width}")
        if 4 * activations > max_bytes():
            raise BitstreamError(
                f"{self.name} file's network needs {4 * activations} bytes of activations per frame, "
                f"over the {max_bytes()} allowed (INRKIT_MAX_BYTES)"
            )

        model = self.model_cls(config).eval()
        view = decoder_view(model)
        spec = spec_of(view)
        if model.uses_embeddings:
            embed_dim, *grid = model.embedding_shape()
            spec.append((EMBEDDINGS, (embed_dim, num_frames, *grid)))
        qts = deserialize_quantized(c.header.get("q"), c.sections, spec)
        embeddings = None
        if model.uses_embeddings:
            centre = _floats(c.section(CENTRE_SECTION), embed_dim, CENTRE_SECTION)
            embeddings = dequantize_embeddings(centre, qts.pop())
        load_quantized_state(view, qts)
        return model, embeddings

    def _config(self, arch: Any, channels: int, height: int, width: int):
        """The architecture config from a header, every value type-checked and bounded
        (``type(v) is int``: JSON ``true`` is an int to Python)."""
        cls = self.model_cls
        if not isinstance(arch, dict) or arch.get("name") != cls.name or not isinstance(arch.get("config"), dict):
            raise BitstreamError(f"{self.name} file describes {arch!r}, not a {cls.name} network")
        config = read_config(cls.Config, arch["config"], f"{self.name} architecture", bounds=_CONFIG_BOUNDS,
                             ints=Int(1, MAX_CONFIG_INT), floats=Float(*MAX_CONFIG_FLOAT),
                             lists=IntList(1, MAX_STRIDE, MAX_STAGES, nullable=True))
        if config.channels != channels:
            raise BitstreamError(f"{self.name} architecture has {config.channels!r} channels, the clip {channels}")
        for key, size in (("height", height), ("width", width)):
            if not size <= getattr(config, key) <= max_padded(size):
                raise BitstreamError(
                    f"{self.name} architecture pads frames of {width}×{height} to {key} {getattr(config, key)}, "
                    f"outside {size}..{max_padded(size)}"
                )
        return config


@contextlib.contextmanager
def _as_bitstream_error(what: str):
    """Turn the errors that building or running a network from bad values raises into BitstreamError."""
    try:
        yield
    except BitstreamError:
        raise
    except (ArithmeticError, IndexError, InputError, RuntimeError, TypeError, ValueError) as e:
        raise BitstreamError(f"{what}: {e}") from None


def _floats(raw: bytes, count: int, what: str) -> np.ndarray:
    if len(raw) != 4 * count:
        raise BitstreamError(f"section {what!r} has {len(raw)} bytes, expected {4 * count}")
    values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.isfinite(values).all():
        raise BitstreamError(f"section {what!r} holds non-finite numbers")
    return values


@register_codec("nerv")
class NeRVCodec(VideoFieldCodec):
    """NeRV (Chen et al., NeurIPS 2021): frame index → frame."""

    name = "nerv"
    model_cls = NeRV


@register_codec("hnerv")
class HNeRVCodec(VideoFieldCodec):
    """HNeRV (Chen et al., CVPR 2023): content-adaptive embeddings + decoder."""

    name = "hnerv"
    model_cls = HNeRV


@register_codec("nervpp")
class NeRVPlusPlusCodec(VideoFieldCodec):
    """NeRV++ (Ghorbel et al., 2024): NeRV with separable residual blocks and a bilinear skip."""

    name = "nervpp"
    model_cls = NeRVPlusPlus


__all__ = [
    "EncodeReport",
    "HNeRVCodec",
    "NeRVCodec",
    "NeRVPlusPlusCodec",
    "VideoFieldCodec",
    "clip_mse",
    "decoder_view",
    "dequantize_embeddings",
    "finetune_pruned",
    "frame_embeddings",
    "prune",
    "quantize_embeddings",
]
