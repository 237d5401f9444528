"""The rvqgan codec: entropy-coded RVQ codes, rate by codebook count, model identity."""

import math

import numpy as np
import pytest
import torch

from inrkit import api
from inrkit.codecs import Rate
from inrkit.codecs.bitstream.container import pack, unpack
from inrkit.codecs.rvqgan import RVQGANCodec
from inrkit.datasets import Signal
from inrkit.errors import BitstreamError, InputError, ModelError
from inrkit.inr.learned.rvqgan import LEVEL_DB, RVQGAN, RVQGANConfig, level_gain_db, save_model
from inrkit.registry import CODECS

CONFIG = dict(
    sample_rate=8000,
    encoder_dim=4,
    encoder_rates=(2, 4),
    decoder_dim=32,
    decoder_rates=(4, 2),
    n_codebooks=4,
    codebook_size=64,
    codebook_dim=4,
)


@pytest.fixture
def model_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_model(RVQGAN(RVQGANConfig(**CONFIG)), path)
    return path


def clip(channels=2, rate=11025, seconds=0.3) -> Signal:
    n = round(rate * seconds)
    t = torch.arange(n) / rate
    data = torch.stack([0.4 * torch.sin(2 * math.pi * f * t) for f in (220, 330)[:channels]])
    data = data + 0.05 * torch.randn(channels, n)
    return Signal(data.clamp(-1, 1), "audio", bit_depth=16, sample_rate=rate)


def test_registered():
    assert CODECS.get("rvqgan") is RVQGANCodec


def test_round_trip_shape_rate_and_determinism(model_path):
    codec = RVQGANCodec(model=model_path)
    sig = clip()
    data = codec.encode(sig, Rate(quality=3))
    c = unpack(data)
    assert c.codec == "rvqgan" and c.header["codebooks"] == 3
    assert len(c.header["model"]["sha256"]) == 64
    out = codec.decode(data)
    assert out.data.shape == sig.data.shape
    assert out.sample_rate == sig.sample_rate and out.bit_depth == 16
    assert out.data.abs().max() <= 1
    again = RVQGANCodec(model=model_path).decode(data)
    assert torch.equal(out.data, again.data)
    # the decoder reproduces exactly what the model makes of the encoder's codes
    codes, gains = codec.codes(sig)
    codes = codes[:, :3]
    assert c.header["gain_db"] == gains and len(gains) == 2
    assert torch.equal(torch.from_numpy(_symbols(data)).reshape(codes.shape), codes)


def _symbols(data):
    from inrkit.codecs.bitstream.entropy import decode_integers

    c = unpack(data)
    n, frames = c.header["codebooks"], c.header["frames"]
    levels = [
        decode_integers(c.section(f"codes.{i}"), 2 * frames).reshape(2, frames) for i in range(n)
    ]
    return np.stack(levels, axis=1)


def test_kbps_picks_codebook_count_by_measured_rate(model_path):
    codec = RVQGANCodec(model=model_path)
    sig = clip(channels=1, seconds=0.5)
    sizes = [len(codec.encode(sig, Rate(quality=n))) for n in range(1, 5)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    kbps = [8 * s / sig.duration / 1000 for s in sizes]
    target = (kbps[1] + kbps[2]) / 2
    data = codec.encode(sig, Rate(kbps=target))
    assert unpack(data).header["codebooks"] == 2  # the most codebooks under the target
    assert unpack(codec.encode(sig, Rate(kbps=0.001))).header["codebooks"] == 1
    raw = sig.channels * sig.bit_depth * sig.sample_rate / 1000  # the highest target allowed
    assert kbps[-1] < raw and unpack(codec.encode(sig, Rate(kbps=raw))).header["codebooks"] == 4
    with pytest.raises(InputError, match="above the uncompressed rate"):  # asked by a user
        api.encode(sig, "rvqgan", kbps=raw + 1, model=model_path)


def test_codes_are_entropy_coded_not_raw(model_path):
    codec = RVQGANCodec(model=model_path)
    sig = Signal(
        torch.zeros(1, 4000), "audio", bit_depth=16, sample_rate=8000
    )  # silence: one repeated code
    c = unpack(codec.encode(sig, Rate(quality=4)))
    raw_bytes = 4 * c.header["frames"] * 6 / 8  # 6 bits a code for 64 entries
    assert sum(len(v) for v in c.sections.values()) < raw_bytes / 4


def test_missing_or_different_model(model_path, tmp_path):
    data = RVQGANCodec(model=model_path).encode(clip(), Rate(quality=2))
    with pytest.raises(ModelError, match="not found"):
        RVQGANCodec(model=tmp_path / "nope.safetensors").decode(data)
    with pytest.raises(ModelError, match="model file"):
        RVQGANCodec().decode(data)
    torch.manual_seed(1)
    other = tmp_path / "other.safetensors"
    save_model(RVQGAN(RVQGANConfig(**CONFIG)), other)
    with pytest.raises(ModelError, match="sha256"):
        RVQGANCodec(model=other).decode(data)


def test_malformed_files(model_path):
    codec = RVQGANCodec(model=model_path)
    data = codec.encode(clip(channels=1), Rate(quality=2))
    with pytest.raises(BitstreamError):
        codec.decode(data[:-3])
    c = unpack(data)
    c.header["codebooks"] = 9
    with pytest.raises(BitstreamError, match="codebooks"):
        codec.decode(pack(c))
    c = unpack(data)
    c.header["frames"] += 1
    with pytest.raises(BitstreamError, match="frames"):
        codec.decode(pack(c))


def test_level_gain_brings_the_training_level_and_spares_the_peak():
    t = torch.arange(8000) / 8000
    sine = 0.01 * torch.sin(2 * math.pi * 50 * t)  # RMS 0.00707: -43.0 dB
    gain = level_gain_db(sine)
    levelled = sine * 10 ** (gain / 20)
    assert abs(20 * math.log10(float(levelled.square().mean().sqrt())) - LEVEL_DB) < 0.01
    assert gain == round(gain, 2)
    spiky = sine.clone()
    spiky[100] = 0.9  # at -16 dB RMS this sample would clip: the gain stops at peak 1
    assert float(spiky.abs().max()) * 10 ** (level_gain_db(spiky) / 20) <= 1.0
    assert level_gain_db(torch.zeros(100)) == 0.0 and level_gain_db(torch.zeros(0)) == 0.0


def test_decoder_restores_the_input_level(model_path):
    codec = RVQGANCodec(model=model_path)
    loud = clip(channels=1)
    quiet = Signal(loud.data * 0.1, "audio", bit_depth=16, sample_rate=loud.sample_rate)
    g_loud, g_quiet = (unpack(codec.encode(s, Rate(quality=4))).header["gain_db"][0] for s in (loud, quiet))
    assert abs(g_quiet - g_loud - 20.0) < 0.02  # a tenth of the level: 20 dB more gain
    rms = [float(codec.decode(codec.encode(s, Rate(quality=4))).data.square().mean().sqrt())
           for s in (loud, quiet)]
    assert rms[1] / rms[0] == pytest.approx(0.1, rel=0.05)


def test_version_1_files_decode_without_gain(model_path):
    codec = RVQGANCodec(model=model_path)
    c = unpack(codec.encode(clip(channels=1), Rate(quality=2)))
    gain = c.header.pop("gain_db")[0]
    assert gain != 0
    c.codec_version = 1
    v1 = codec.decode(pack(c))
    c.codec_version, c.header["gain_db"] = 2, [0.0]
    assert torch.equal(v1.data, codec.decode(pack(c)).data)


@pytest.mark.parametrize("gains", [None, [], [1.0, 2.0], ["3"], [True], [1e9]])
def test_malformed_gain(model_path, gains):
    codec = RVQGANCodec(model=model_path)
    c = unpack(codec.encode(clip(channels=1), Rate(quality=2)))
    if gains is None:
        del c.header["gain_db"]
    else:
        c.header["gain_db"] = gains
    with pytest.raises(BitstreamError, match="gain_db"):
        codec.decode(pack(c))


def test_rejects_images_and_bpp(model_path):
    codec = RVQGANCodec(model=model_path)
    with pytest.raises(InputError, match="takes a rate as kbps or quality, not bpp"):
        codec.encode(clip(), Rate(bpp=1.0))
    with pytest.raises(InputError, match="handles audio, not image"):
        codec.encode(Signal(torch.rand(3, 8, 8), "image"), Rate(kbps=8))


def test_decoding_runs_on_one_thread_and_restores_the_count(model_path, monkeypatch):
    codec = RVQGANCodec(model=model_path)
    data = codec.encode(clip(), Rate(quality=4))
    model = codec._model()[0]
    seen, decode_codes = [], model.decode_codes
    monkeypatch.setattr(model, "decode_codes", lambda codes: (seen.append(torch.get_num_threads()), decode_codes(codes))[1])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        codec.decode(data)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen == [1] and after == 2


def test_every_inrk_codec_decodes_on_one_thread():
    from inrkit.codecs.classical import ClassicalCodec

    inrk = [n for n in CODECS.names() if not issubclass(CODECS.get(n), ClassicalCodec)]
    assert len(inrk) >= 10
    unwrapped = [n for n in inrk if not hasattr(CODECS.get(n).decode, "__wrapped__")]
    assert unwrapped == []
