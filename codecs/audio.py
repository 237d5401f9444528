"""Weight codecs for audio: a waveform stored as the weights of small sine networks.

Backbones: SIREN (Sitzmann et al., "Implicit Neural Representations with Periodic
Activation Functions", NeurIPS 2020; reference code github.com/vsitzmann/siren,
whose audio experiments use ``first_omega_0 = 3000``) and SPDER (Shah and Sitawarin,
"SPDER: Semiperiodic Damping-Enabled Object Representation", ICLR 2024; reference
code github.com/katop1234/SPDER, whose audio activation is ``sin(z)·arctan(z)``).
The compression recipe (fit, quantize uniformly, fine-tune with the quantizer in the
loop, entropy-code the integer weights) is COIN's (Dupont et al., ICLR-W 2021) with
Strümpler et al.'s quantization-aware fine-tuning (ECCV 2022), as in
:mod:`inrkit.codecs.image`.

Chunking. The waveform is cut into fixed-length chunks (``chunk_seconds``, 0.25 s by
default); each chunk is its own small field over local coordinates in ``[-1, 1]``
(sample centres), with every channel as an output. All fields of a group of chunks
are trained at once, their parameters stacked on a leading axis and evaluated with
``torch.func.vmap``, and groups are fitted one after another, so memory is bounded by
``group_chunks`` chunks however long the clip. The last chunk is zero-padded to the
full length (the padding is fitted too, which costs little).

Quantization: one step per tensor per chunk; the first layer at 16 bits (its
weights are scaled by ω0, so their rounding error becomes ω0 times larger phase
error), the rest at the rate controller's bit width.

Rate control. ``Rate(kbps=r)`` gives each chunk ``r · chunk_seconds`` bits; the
field width is the largest whose parameter count fits at about ``BITS_PER_PARAM``
coded bits per weight; after fitting, the quantization bit width (4–12) whose
*measured* file is nearest ``r`` is kept, and if none is within ±10 % the width is
scaled by the measured ratio and the fit repeated once. Steps are per-chunk Adam
steps on the full chunk; ``EncodeOptions.steps`` and ``time_budget`` bound them.

ω0. SIREN's audio setting is ``first_omega_0 = 3000`` on coordinates ``[-100, 100]``
spanning its 7 s clip, a first-layer bandwidth of about 13.6 kHz. Carried over
literally to per-chunk networks of a few hundred weights it fits speech badly
(measured on a 0.125 s speech chunk, width 28, 300 Adam steps: 0.0 dB SNR, against
12.7 dB for a quarter of that bandwidth). We therefore apply ``first_omega_0 = 3000``
to a chunk's own ``[-1, 1]`` grid at the default 0.25 s chunk (about 3.8 kHz) and
scale it with the chunk duration for other lengths (:func:`chunk_omega`). Each chunk
is peak-normalised before fitting, as SIREN normalises its clip; the scales are
stored as float32. ``spder-audio`` uses the same ω0 and SPDER's audio activation;
SPDER's own audio script (``SPDER_audio.py``) keeps ω0 = 30 on every layer over
coordinates in ``[-100, 100]`` with learning rate 5e-5, a first-layer bandwidth about
a hundred times lower in Hz; that setting was not measured here.

Departures: the SIREN and SPDER papers fit whole clips with one large network and do
not compress; chunking, per-chunk quantization steps (one per tensor per chunk) and
the rate controller are ours. The learning rate (1e-4 in SIREN) is raised to 1e-3
with a cosine schedule, as the small per-chunk networks tolerate it and the budget
on a CPU is short.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack
from inrkit.codecs.bitstream.quantize import (
    deserialize_quantized,
    fake_quantize,
    load_quantized_state,
    quantize_state,
    serialize_quantized,
    spec_of,
)
from inrkit.datasets.grids import axis_coords
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.field import build_field
from inrkit.inr.fields.chunks import ChunkFields
from inrkit.registry import register_codec

from .base import (
    Codec,
    EncodeOptions,
    Rate,
    check_positive_option,
    check_whole_option,
    single_threaded,
)

BITS_PER_PARAM = 7.0
"""Coded bits per weight at 8-bit quantization, measured on fitted audio chunks."""

HEADER_BYTES = 420
"""Approximate container header size, subtracted from the budget before sizing."""

SCALE_SECTION = "scale"
MAX_CHUNKS = 1 << 16
MAX_WEIGHTS = 1 << 26  # decoder allocation bound (256 MB of float32)
MAX_ACTIVATIONS = 1 << 27
"""The decoder refuses a header whose chunks would render more hidden activations at once
than this (512 MB of float32) before building anything."""


REFERENCE_CHUNK_SECONDS = 0.25
"""``first_omega_0`` is SIREN's 3000 on a chunk of this length; see :func:`chunk_omega`."""


def chunk_omega(omega_0: float, chunk: int, sample_rate: float) -> float:
    """The first-layer ω0 for a chunk of ``chunk`` samples: ``omega_0`` on a
    :data:`REFERENCE_CHUNK_SECONDS` chunk, scaled with the chunk's duration so its
    first-layer sines reach the same frequencies in Hz (3000 → about 3.8 kHz), and
    capped at the chunk's Nyquist rate so that none aliases."""
    seconds = chunk / sample_rate
    return min(omega_0 * seconds / REFERENCE_CHUNK_SECONDS, math.pi * chunk / 2)


FIRST_LAYER_BITS = 16


def bit_width(name: str, bits: int) -> int:
    """Bits of a parameter: the first layer's weights and bias are multiplied by the
    large ω0, which turns a quantization step δ into a phase error of ω0·δ, so they
    get :data:`FIRST_LAYER_BITS` (they are ``2 × width`` numbers per chunk).

    Not :func:`~inrkit.codecs.bitstream.quantize.widen_small_tensors`, the image codecs' rule
    (+4 bits for biases and small layers): a chunk's first-layer ω0
    (:func:`chunk_omega`, SIREN's audio 3000 carried over) is 100 times the
    images' 30 at the default 0.25 s chunks, so 4 extra bits would leave its phase
    error ω0·δ large. The hidden biases keep ``bits`` here; widening them too was
    not measured on audio."""
    first = name.split(".")[-1].startswith("layers__0__") or name.startswith("layers.0.")
    return max(bits, FIRST_LAYER_BITS) if first else bits


def _mlp_params(width: int, depth: int, channels: int) -> int:
    """Parameters of a sine MLP with ``depth`` hidden layers after the first, on 1-D input."""
    return 2 * width + depth * (width * width + width) + width * channels + channels


class AudioFieldCodec(Codec):
    """Chunked sine-network weight codec for audio (see the module notes)."""

    name: ClassVar[str] = ""
    backbone: ClassVar[str] = ""
    field_options: ClassVar[dict[str, Any]] = {}
    version = 1
    modalities = ("audio",)
    rate_kinds = ("kbps",)

    def __init__(
        self,
        chunk_seconds: float = 0.25,
        depth: int = 2,
        steps: int = 1500,
        qat_steps: int = 200,
        lr: float = 1e-3,
        group_chunks: int = 32,
    ):
        for name, value, least in (("depth", depth, 0), ("steps", steps, 1), ("qat_steps", qat_steps, 0),
                                   ("group_chunks", group_chunks, 1)):  # fmt: skip
            check_whole_option(self.name, name, value, least)
        check_positive_option(self.name, "chunk_seconds", chunk_seconds)
        check_positive_option(self.name, "lr", lr)
        self.chunk_seconds = chunk_seconds
        self.depth = depth
        self.steps = steps
        self.qat_steps = qat_steps
        self.lr = lr
        self.group_chunks = group_chunks

    # -- sizing ------------------------------------------------------------------
    def description(
        self, width: int, channels: int, chunk: int, sample_rate: float
    ) -> dict[str, Any]:
        """The field config of one chunk; ``first_omega_0`` is SIREN's 3000 carried over
        from its time axis to the chunk's (see :func:`chunk_omega`)."""
        options = dict(self.field_options)
        options["first_omega_0"] = chunk_omega(options["first_omega_0"], chunk, sample_rate)
        field = build_field(
            self.backbone, in_dim=1, out_channels=channels, width=width, depth=self.depth, **options
        )
        return field.config_dict()

    def width_for(self, bits_per_chunk: float, channels: int) -> int:
        params = bits_per_chunk / BITS_PER_PARAM
        width = 2
        while _mlp_params(width + 1, self.depth, channels) <= params:
            width += 1
        return width

    # -- encoding ------------------------------------------------------------------
    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        self.check(signal, rate)
        options = options or EncodeOptions()
        chunk = max(1, round(self.chunk_seconds * signal.sample_rate))
        values = self.chunked_values(signal, chunk)
        scales = values.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-6)
        values = values / scales
        if values.shape[0] > MAX_CHUNKS:
            raise InputError(
                f"{self.name}: {values.shape[0]} chunks, more than the limit {MAX_CHUNKS}"
            )
        budget_bits = rate.value * 1000 * signal.duration - 8 * HEADER_BYTES
        if budget_bits <= 0:
            header_kbps = 8 * HEADER_BYTES / signal.duration / 1000
            raise InputError(
                f"{self.name}: {rate} leaves no room for weights after the file header; "
                f"this clip needs --kbps above {header_kbps:.3g}"
            )
        steps = options.steps_or(self.steps, self.name)
        width = self.width_for(budget_bits / values.shape[0], signal.channels)
        started = time.monotonic()
        data = None
        for attempt in range(2):
            budget = None if options.time_budget is None else options.time_budget / 2
            description = self.description(width, signal.channels, chunk, signal.sample_rate)
            fields = self.fit(values, description, steps, budget, options)
            data, bits, kbps = self.best_bit_width(signal, fields, scales, chunk, rate.value)
            if abs(kbps / rate.value - 1) <= 0.1 or attempt == 1:
                break
            new_width = max(2, round(width * math.sqrt(rate.value / kbps)))
            if new_width == width:
                break
            width = new_width
        if self.qat_steps:
            qat_budget = None
            if options.time_budget is not None:
                qat_budget = max(0.0, options.time_budget - (time.monotonic() - started))
            # QAT gets about a tenth of the fitting steps, as in the image codecs.
            qat_steps = min(self.qat_steps, max(10, steps // 10))
            self.optimize(fields, values, qat_steps, self.lr * 0.1, qat_budget, bits=bits)
            data = self._pack(signal, fields, scales, chunk, bits)
        assert data is not None  # the loop runs at least once
        return data

    @staticmethod
    def chunked_values(signal: Signal, chunk: int) -> torch.Tensor:
        """``[K, chunk, C]`` values in ``[-1, 1]``, the last chunk zero-padded."""
        values = signal.to_values()  # N, C
        pad = -values.shape[0] % chunk
        values = nn.functional.pad(values, (0, 0, 0, pad))
        return values.reshape(-1, chunk, values.shape[-1])

    def fit(self, values, description, steps, time_budget, options) -> ChunkFields:
        """Fit one field per chunk, ``group_chunks`` chunks at a time."""
        groups = []
        for g, start in enumerate(range(0, values.shape[0], self.group_chunks)):
            part = values[start : start + self.group_chunks]
            fields = ChunkFields(description, part.shape[0], seed=options.seed * 100_003 + g)
            budget = None if time_budget is None else time_budget * part.shape[0] / values.shape[0]
            self.optimize(fields, part, steps, self.lr, budget)
            groups.append(fields)
        return _concat(description, groups)

    def optimize(
        self, fields: ChunkFields, values, steps, lr, time_budget, bits: int | None = None
    ) -> None:
        """Adam on the mean squared error, cosine-annealed; with ``bits``, quantization
        in the loop (straight-through) and the best quantized state kept."""
        coords = axis_coords(values.shape[1])[:, None]
        optim = torch.optim.Adam(fields.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, max(1, steps))

        def quantized(name, p):
            return fake_quantize(p, bit_width(name, bits), per_channel=True)  # a step per chunk

        transform = None if bits is None else quantized
        best, best_state = math.inf, None
        started = time.monotonic()
        for _ in range(steps):
            loss = torch.mean((fields(coords, fields.params(transform)) - values) ** 2)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            if bits is not None and loss.item() < best:
                best, best_state = (
                    loss.item(),
                    {k: v.detach().clone() for k, v in fields.state_dict().items()},
                )
            if time_budget is not None and time.monotonic() - started > time_budget:
                break
        if best_state is not None:
            fields.load_state_dict(best_state)

    def best_bit_width(
        self, signal, fields, scales, chunk, target_kbps
    ) -> tuple[bytes, int, float]:
        best: tuple[bytes, int, float] | None = None
        for bits in range(4, 13):
            data = self._pack(signal, fields, scales, chunk, bits)
            kbps = self.measured_rate(signal, data)
            if best is None or abs(kbps - target_kbps) < abs(best[2] - target_kbps):
                best = (data, bits, kbps)
        assert best is not None  # the range of widths is not empty
        return best

    def _pack(self, signal: Signal, fields: ChunkFields, scales, chunk: int, bits: int) -> bytes:
        qts = quantize_state(fields, lambda name, p: bit_width(name, bits), per_channel=True)
        qheader, sections = serialize_quantized(qts)
        sections[SCALE_SECTION] = scales.reshape(-1).numpy().astype("<f4").tobytes()
        header = {"field": fields.description, "chunk": chunk, "chunks": fields.count, "q": qheader}
        return pack(Container.for_signal(self.name, self.version, signal, header, sections))

    # -- decoding ------------------------------------------------------------------
    @single_threaded
    @torch.no_grad()
    def decode(self, data: bytes, **options) -> Signal:
        c = self.open(data)
        meta = c.signal_meta()
        head = c.header
        channels, length = int(c.shape[0]), int(c.shape[1])
        chunk, count, description = head.get("chunk"), head.get("chunks"), head.get("field")
        if not (
            isinstance(chunk, int)
            and isinstance(count, int)
            and 1 <= count <= MAX_CHUNKS
            and chunk >= 1
        ):
            raise BitstreamError(
                f"{self.name} header: bad chunking chunk={chunk!r} chunks={count!r}"
            )
        if count != -(-length // chunk):
            raise BitstreamError(
                f"{self.name} header: {count} chunks of {chunk} do not cover {length} samples"
            )
        if not isinstance(description, dict) or description.get("name") != self.backbone:
            raise BitstreamError(
                f"{self.name} header: expected a {self.backbone!r} field description"
            )
        cfg = description.get("config")
        if (
            not isinstance(cfg, dict)
            or cfg.get("in_dim") != 1
            or cfg.get("out_channels") != channels
        ):
            raise BitstreamError(
                f"{self.name} header: field config does not fit {channels}-channel audio"
            )
        width, depth = cfg.get("width"), cfg.get("depth")
        if not (
            isinstance(width, int)
            and isinstance(depth, int)
            and 0 < width <= 4096
            and 0 <= depth <= 64
        ):
            raise BitstreamError(
                f"{self.name} header: implausible field width={width!r} depth={depth!r}"
            )
        activations = chunk * width * min(count, self.group_chunks)
        if activations > MAX_ACTIVATIONS:
            raise BitstreamError(
                f"{self.name} header: chunks of {chunk} samples through width {width} take "
                f"{activations} activations at once, more than the limit {MAX_ACTIVATIONS}"
            )
        weights = count * _mlp_params(width, depth, channels)
        if weights > min(MAX_WEIGHTS, 64 * len(data)):  # the encoder spends >= 1/8 bit a weight
            raise BitstreamError(
                f"{self.name} header: {weights} weights, more than the file could hold"
            )
        try:
            fields = ChunkFields(description, count)
        except InputError as e:
            raise BitstreamError(f"{self.name} header: {e}") from None
        load_quantized_state(
            fields, deserialize_quantized(head.get("q"), c.sections, spec_of(fields))
        )
        raw = c.section(SCALE_SECTION)
        if len(raw) != 4 * count:
            raise BitstreamError(
                f"{self.name}: {len(raw)} bytes of chunk scales for {count} chunks"
            )
        scales = torch.from_numpy(np.frombuffer(raw, "<f4").astype(np.float32))
        if not torch.isfinite(scales).all():
            raise BitstreamError(f"{self.name}: non-finite chunk scales")
        coords = axis_coords(chunk)[:, None]
        out = torch.cat(
            [self._render(fields, coords, s) for s in range(0, count, self.group_chunks)]
        )
        out = out * scales[:, None, None]
        values = out.reshape(-1, channels)[:length]
        return meta_to_signal(meta, values.t().clamp(-1, 1).contiguous()).quantized()

    def _render(self, fields: ChunkFields, coords, start: int) -> torch.Tensor:
        params = {k: v[start : start + self.group_chunks] for k, v in fields.params().items()}
        return fields(coords, params)


def _concat(description: dict[str, Any], groups: list[ChunkFields]) -> ChunkFields:
    fields = ChunkFields(description, sum(g.count for g in groups))
    with torch.no_grad():
        for key, p in fields.stacked.items():
            p.copy_(torch.cat([g.stacked[key] for g in groups]))
    return fields


def _register(name: str, backbone: str, **field_options: Any) -> type[AudioFieldCodec]:
    cls = type(
        name.title().replace("-", "") + "Codec",
        (AudioFieldCodec,),
        {
            "name": name,
            "backbone": backbone,
            "field_options": field_options,
            "__module__": __name__,
        },
    )
    return register_codec(name)(cls)


SirenAudioCodec = _register("siren-audio", "siren", first_omega_0=3000.0)
SpderAudioCodec = _register("spder-audio", "spder", first_omega_0=3000.0, activation="arctan")
