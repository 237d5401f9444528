"""siren-audio and spder-audio: chunked sine-network weight codecs for audio."""

import math

import pytest
import torch

from inrkit.codecs import EncodeOptions, Rate
from inrkit.codecs.audio import SirenAudioCodec, SpderAudioCodec
from inrkit.codecs.bitstream.container import pack, unpack
from inrkit.datasets import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.field import build_field
from inrkit.inr.fields.chunks import ChunkFields
from inrkit.registry import CODECS


def tone(channels=1, rate=8000, seconds=0.25) -> Signal:
    t = torch.arange(round(rate * seconds)) / rate
    data = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (200, 300)[:channels]])
    return Signal(data, "audio", bit_depth=16, sample_rate=rate)


def snr_db(ref: torch.Tensor, rec: torch.Tensor) -> float:
    return 10 * math.log10(ref.square().sum() / (ref - rec).square().sum())


def test_registered_with_the_audio_backbones():
    assert CODECS.get("siren-audio") is SirenAudioCodec
    assert CODECS.get("spder-audio") is SpderAudioCodec
    assert SirenAudioCodec.field_options["first_omega_0"] == 3000
    assert SpderAudioCodec.field_options["activation"] == "arctan"


def test_chunk_fields_match_separate_fields():
    description = build_field("siren", in_dim=1, out_channels=2, width=8, depth=1).config_dict()
    fields = ChunkFields(description, 3, seed=0)
    coords = torch.linspace(-1, 1, 17)[:, None]
    out = fields(coords)
    assert out.shape == (3, 17, 2)
    for k in range(3):
        single = build_field("siren", in_dim=1, out_channels=2, width=8, depth=1)
        single.load_state_dict({n: p[k] for n, p in fields.params().items()})
        assert torch.allclose(single(coords), out[k], atol=1e-6)
    assert sorted(n for n, _ in fields.named_parameters()) == sorted(
        "stacked." + n.replace(".", "__") for n in fields.names
    )  # only the stacked tensors, not the template


def test_chunking_pads_the_last_chunk():
    sig = tone(channels=2, seconds=0.1)  # 800 samples
    values = SirenAudioCodec.chunked_values(sig, 300)
    assert values.shape == (3, 300, 2)
    assert torch.equal(values.reshape(-1, 2)[:800], sig.to_values())
    assert values.reshape(-1, 2)[800:].abs().max() == 0


@pytest.mark.parametrize("cls", [SirenAudioCodec, SpderAudioCodec])
def test_round_trip_rate_and_quality(cls):
    sig = tone(channels=2)
    codec = cls(chunk_seconds=0.05, steps=200, qat_steps=20)
    target = 96.0
    data = codec.encode(sig, Rate(kbps=target), EncodeOptions(seed=0))
    kbps = 8 * len(data) / sig.duration / 1000
    assert abs(kbps / target - 1) <= 0.1
    out = codec.decode(data)
    assert out.data.shape == sig.data.shape and out.sample_rate == 8000 and out.bit_depth == 16
    assert snr_db(sig.data, out.data) > 5  # a fitted tone, not noise
    assert torch.equal(codec.decode(data).data, out.data)
    assert unpack(data).header["chunks"] == 5


def test_rejects_bad_input():
    codec = SirenAudioCodec(steps=1)
    with pytest.raises(InputError, match="takes a rate as kbps, not bpp"):
        codec.encode(tone(), Rate(bpp=1))
    with pytest.raises(InputError, match=r"no room .* needs --kbps above [\d.]+"):
        codec.encode(tone(), Rate(kbps=1))
    for options, match in [({"chunk_seconds": 0}, "chunk_seconds must be a positive"),
                           ({"chunk_seconds": float("inf")}, "chunk_seconds"), ({"lr": -1}, "lr must be"),
                           ({"lr": 0}, "lr must be"), ({"depth": 1.5}, "depth must be a whole number"),
                           ({"steps": "5"}, "steps must be"), ({"group_chunks": 2.5}, "group_chunks")]:  # fmt: skip
        with pytest.raises(InputError, match=match):
            SirenAudioCodec(**options)


def test_steps_bound_the_quantization_aware_fine_tuning_too(monkeypatch):
    calls = []
    real = SirenAudioCodec.optimize

    def record(self, fields, values, steps, *args, **kwargs):
        calls.append(steps)
        return real(self, fields, values, steps, *args, **kwargs)

    monkeypatch.setattr(SirenAudioCodec, "optimize", record)
    SirenAudioCodec().encode(tone(), Rate(kbps=48), EncodeOptions(steps=30))
    assert calls[0] == 30 and calls[-1] == 10  # QAT: a tenth of the fit, at least 10 (was 200)


def test_a_target_above_the_uncompressed_rate_is_refused():
    from inrkit import api

    with pytest.raises(InputError, match="above the uncompressed rate of this audio .128 kbps"):
        api.encode(tone(), "siren-audio", kbps=129)  # 8 kHz × 16 bits × 1 channel = 128 kbps
    with pytest.raises(InputError, match="above the uncompressed rate of this image .24 bpp"):
        api.encode(Signal(torch.zeros(3, 8, 8), "image"), "siren", bpp=25)


def test_malformed_headers():
    codec = SirenAudioCodec(chunk_seconds=0.1, steps=2, qat_steps=0)
    data = codec.encode(tone(), Rate(kbps=48))
    for key, value in (("chunks", 7), ("chunk", -1), ("field", {"name": "hashgrid"})):
        c = unpack(data)
        c.header[key] = value
        with pytest.raises(BitstreamError):
            codec.decode(pack(c))
    c = unpack(data)
    c.header["field"]["config"]["width"] = 4000  # more weights than the file holds
    with pytest.raises(BitstreamError, match="weights"):
        codec.decode(pack(c))
    with pytest.raises(BitstreamError):
        SpderAudioCodec().decode(data)
