"""inrkit.eval.round_trip: one timed encode/decode with the rate read off the file."""

import math

import torch

from inrkit.codecs import Rate
from inrkit.codecs.base import Codec
from inrkit.datasets import Signal
from inrkit.datasets.samples import load_sample_image
from inrkit.eval.round_trip import round_trip
from inrkit.registry import CODECS


def test_image_round_trip_rate_in_bpp():
    image = load_sample_image((0, 0, 48, 64))
    result = round_trip(CODECS.get("jpeg")(), image, Rate(bpp=1.0))
    assert result.rate_key == "bpp" and result.rate == 8 * len(result.data) / (48 * 64)
    assert result.decoded.data.shape == image.data.shape
    assert result.encoding_time >= 0 and result.decoding_time >= 0
    row = result.row()
    assert row == {"bpp": result.rate, "bytes": len(result.data),
                   "encoding_time": result.encoding_time, "decoding_time": result.decoding_time}  # fmt: skip


def test_audio_rate_in_kbps():
    t = torch.arange(8000) / 8000
    tone = Signal(0.3 * torch.sin(2 * math.pi * 440 * t)[None], "audio", sample_rate=8000)
    assert Codec.measured_rate(tone, bytes(4000)) == 32.0  # 32,000 bits in one second
    result = round_trip(CODECS.get("mp3")(), tone, Rate(kbps=32))
    assert result.rate_key == "kbps" and math.isclose(result.rate, 8 * len(result.data) / 1000)
