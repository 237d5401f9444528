"""The ``rvqgan`` codec: DAC-style residual-VQ codes, entropy-coded into a ``.inrk`` file.

Kumar et al., "High-Fidelity Audio Compression with Improved RVQGAN", NeurIPS 2023
(arXiv:2306.06546); reference code github.com/descriptinc/descript-audio-codec
(``dac/model/base.py``, ``dac/utils/encode.py``). The model (:mod:`inrkit.inr.learned.rvqgan`)
is trained once with ``inrkit train rvqgan`` and shared by encoder and decoder; the
file carries the SHA-256 of the model's tensors, and decoding with a missing or
different model file is a :class:`inrkit.ModelError`.

Each channel is coded as a mono signal (as DAC does), after resampling to the model's
rate. The bitrate is set by how many of the model's codebooks are kept (quantizer
dropout trained the model for every prefix): ``Rate(quality=n)`` keeps ``n``;
``Rate(kbps=r)`` keeps the most whose *measured* file rate, header included, is at
most ``r`` (one codebook if even that is more).

Like DAC's ``compress``, the encoder brings each channel to the level the model was
trained at (-16 dB RMS here, -16 LUFS in DAC; :func:`inrkit.inr.learned.rvqgan.level_gain_db`)
and stores the gain (``gain_db``, one per channel, in 0.01 dB steps) in the header; the
decoder undoes it. Version 1 files, written before this, carry no gain.

Departures from DAC: DAC stores raw 10-bit codes in a pickled ``.dac`` file; here the
codes of each codebook level go through :func:`inrkit.codecs.bitstream.entropy.encode_integers`
(one stream and integer frequency table per level, so decoding the codes is bit-exact
everywhere) into section ``codes.<level>`` of the ``.inrk`` container. DAC's chunked inference for long files is not reproduced: the whole clip
is encoded in one pass, channel by channel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from inrkit.codecs.bitstream.container import Container, meta_to_signal, pack
from inrkit.codecs.bitstream.entropy import decode_integers, encode_integers
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError, ModelError
from inrkit.inr.learned.rvqgan import RVQGAN, level_gain_db, load_model, resample
from inrkit.registry import register_codec

from .base import EncodeOptions, LearnedCodec, Rate, single_threaded


@register_codec("rvqgan")
class RVQGANCodec(LearnedCodec):
    name = "rvqgan"
    version = 2
    older_versions = (1,)  # no gain_db: decoded at the coded level
    modalities = ("audio",)
    rate_kinds = ("kbps", "quality")

    def load_model(self, path: Path) -> tuple[RVQGAN, str]:
        return load_model(path)

    # -- encoding ------------------------------------------------------------
    @torch.no_grad()
    def codes(self, signal: Signal) -> tuple[torch.Tensor, list[float]]:
        """Codes ``[C, n_codebooks, T]`` of every codebook, one row per channel, and the
        gain (dB) each channel was brought to the training level with."""
        model, _ = self._model()
        rate = model.config.sample_rate
        audio = resample(signal.data, int(round(signal.sample_rate)), rate)
        gains = [level_gain_db(channel) for channel in audio]
        levelled = audio * torch.tensor([10 ** (g / 20) for g in gains])[:, None]
        return model.encode(levelled[:, None, :].to(torch.float32)).codes, gains

    def encode(self, signal: Signal, rate: Rate, options: EncodeOptions | None = None) -> bytes:
        self.check(signal, rate)
        if round(signal.sample_rate) != signal.sample_rate:
            raise InputError(f"rvqgan needs an integer sample rate, got {signal.sample_rate}")
        model, digest = self._model()
        codes, gains = self.codes(signal)
        n_max = model.config.n_codebooks
        if rate.kind == "quality":
            return self._pack(signal, codes[:, : min(int(rate.value), n_max)], gains, model, digest)
        files = []
        for n in range(1, n_max + 1):
            data = self._pack(signal, codes[:, :n], gains, model, digest)
            if n > 1 and self.measured_rate(signal, data) > rate.value:
                break
            files.append(data)
        return files[-1]

    def _pack(self, signal: Signal, codes: torch.Tensor, gains: list[float], model: RVQGAN,
              digest: str) -> bytes:
        cfg = model.config
        header = {
            "model": {"sha256": digest, "sample_rate": cfg.sample_rate, "hop": cfg.hop_length},
            "codebooks": int(codes.shape[1]),
            "frames": int(codes.shape[2]),
            "gain_db": gains,
        }
        # One stream (and frequency table) per codebook level: their statistics differ.
        sections = {
            f"codes.{i}": encode_integers(codes[:, i].to(torch.int64).numpy().ravel())
            for i in range(codes.shape[1])
        }
        return pack(Container.for_signal(self.name, self.version, signal, header, sections))

    # -- decoding ------------------------------------------------------------
    @single_threaded
    @torch.no_grad()
    def decode(self, data: bytes, **options) -> Signal:
        c = self.open(data)
        meta = c.signal_meta()
        head = c.header
        if not isinstance(head.get("model"), dict):
            raise BitstreamError("rvqgan file header lacks the model description")
        model, digest = self._model()
        if head["model"].get("sha256") != digest:
            raise ModelError(
                f"this file was encoded with the RVQGAN model sha256={head['model'].get('sha256')!r}, "
                f"but {str(self.model_path)!r} has sha256={digest!r}; pass the model it was made with"
            )
        channels, length = int(c.shape[0]), int(c.shape[1])
        sample_rate = meta.get("sample_rate")
        n, frames = head.get("codebooks"), head.get("frames")
        if not (isinstance(n, int) and 1 <= n <= model.config.n_codebooks):
            raise BitstreamError(
                f"rvqgan header: codebooks must be 1..{model.config.n_codebooks}, found {n!r}"
            )
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise BitstreamError(
                f"rvqgan header: an integer sample rate expected, found {sample_rate!r}"
            )
        expected = -(-length * model.config.sample_rate // sample_rate) if length else 0
        if frames != -(-expected // model.hop_length):
            raise BitstreamError(
                f"rvqgan header: {frames!r} frames do not fit {length} samples at {sample_rate} Hz"
            )
        if len(c.sections) != n:
            raise BitstreamError(f"rvqgan file has {len(c.sections)} sections for {n} codebooks")
        levels = []
        for i in range(n):
            symbols = decode_integers(c.section(f"codes.{i}"), channels * frames)
            if symbols.min(initial=0) < 0 or symbols.max(initial=0) >= model.config.codebook_size:
                raise BitstreamError(
                    f"rvqgan codes of level {i} outside 0..{model.config.codebook_size - 1}"
                )
            levels.append(np.asarray(symbols, dtype=np.int64).reshape(channels, frames))
        gains = _gains(head, channels) if c.codec_version >= 2 else [0.0] * channels
        codes = torch.from_numpy(np.stack(levels, axis=1))
        audio = model.decode_codes(codes).squeeze(1)  # C, frames * hop
        audio = audio * torch.tensor([10 ** (-g / 20) for g in gains], dtype=audio.dtype)[:, None]
        audio = resample(audio, model.config.sample_rate, sample_rate)[:, :length]
        return meta_to_signal(meta, audio.clamp(-1.0, 1.0).contiguous()).quantized()


MAX_GAIN_DB = 200.0
"""Beyond any real level change (float32 audio spans about ±150 dB)."""


def _gains(head: dict, channels: int) -> list[float]:
    """The per-channel gains of a version-2 header, checked."""
    gains = head.get("gain_db")
    if not (isinstance(gains, list) and len(gains) == channels and all(
        type(g) in (int, float) and math.isfinite(g) and abs(g) <= MAX_GAIN_DB for g in gains
    )):
        raise BitstreamError(
            f"rvqgan header: gain_db must be {channels} finite gains within ±{MAX_GAIN_DB:g} dB, "
            f"found {gains!r}"
        )
    return [float(g) for g in gains]
