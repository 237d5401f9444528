"""Round trips of the classical baselines on small real and synthetic signals."""

import math

import pytest
import torch

from inrkit import BitstreamError, InputError
from inrkit.codecs import Rate
from inrkit.codecs.classical import AUDIO_CODECS, IMAGE_CODECS, VIDEO_CODECS, has_encoder
from inrkit.datasets import Signal, load_sample_image
from inrkit.eval.metrics import audio_metrics, image_metrics
from inrkit.registry import CODECS

FFMPEG_ENCODER = {"hevc": "libx265", "x264": "libx264", "x265": "libx265", "av1": "libsvtav1",
                  "mp3": "libmp3lame", "opus": "libopus", "aac": "aac"}


def _codec(name):
    encoder = FFMPEG_ENCODER.get(name)
    if encoder and not has_encoder(encoder):
        pytest.skip(f"the ffmpeg binary has no {encoder} encoder")
    return CODECS.get(name)()


@pytest.fixture(scope="module")
def photo():
    return load_sample_image((100, 150, 64, 80))


@pytest.fixture(scope="module")
def clip(photo):
    """8 frames of a crop panning across the photograph, 12.5 fps."""
    full = load_sample_image((60, 100, 64, 120)).data
    frames = torch.stack([full[:, :48, 4 * t: 4 * t + 64] for t in range(8)])
    return Signal(frames, "video", frame_rate=12.5)


@pytest.fixture(scope="module")
def sound():
    """0.25 s of a stereo chord with a little noise, 44.1 kHz (Opus resamples it)."""
    rate = 44100
    t = torch.arange(rate // 4) / rate
    g = torch.Generator().manual_seed(0)
    left = sum(0.2 * torch.sin(2 * math.pi * f * t) for f in (220.0, 277.2, 329.6))
    right = 0.5 * torch.sin(2 * math.pi * 440.0 * t) * torch.exp(-3 * t)
    data = torch.stack([left, right]) + 0.003 * torch.randn(2, t.numel(), generator=g)
    return Signal(data.clamp(-1, 1), "audio", bit_depth=16, sample_rate=rate)


@pytest.mark.parametrize("name", IMAGE_CODECS)
def test_image_round_trip_and_size_monotone_in_quality(name, photo):
    codec = _codec(name)
    ladder = codec.ladder(3)
    assert [r.kind for r in ladder] == ["quality"] * 3
    sizes, psnrs = [], []
    for rate in ladder:
        data = codec.encode(photo, rate)
        out = codec.decode(data)
        assert out.modality == "image" and out.data.shape == photo.data.shape and out.bit_depth == 8
        sizes.append(len(data))
        psnrs.append(image_metrics(photo, out)["psnr-rgb"])
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    assert psnrs == sorted(psnrs)
    assert psnrs[0] > 22 and psnrs[-1] > 34, psnrs


@pytest.mark.parametrize("name", ["jpeg", "webp"])
def test_bpp_target_is_met_from_below(name, photo):
    codec = _codec(name)
    data = codec.encode(photo, Rate(bpp=1.0))
    bpp = 8 * len(data) / photo.num_samples
    assert 0.6 < bpp <= 1.0
    quality, same = codec.find_quality(photo, 1.0)
    assert same == data
    next_up = codec.encode(photo, Rate(quality=quality + 1))
    assert 8 * len(next_up) / photo.num_samples > 1.0


def test_gray_images_and_bad_inputs(photo):
    gray = Signal(photo.data[:1], "image")
    jpeg = CODECS.get("jpeg")()
    assert jpeg.decode(jpeg.encode(gray, Rate(quality=80))).channels == 1
    webp = CODECS.get("webp")()
    out = webp.decode(webp.encode(gray, Rate(quality=80)))  # libwebp returns RGB
    assert out.channels == 3 and image_metrics(gray, out)["psnr-rgb"] > 30
    rgba = Signal(torch.cat([photo.data, torch.ones_like(photo.data[:1])]), "image")
    with pytest.raises(InputError, match="4 channels"):
        jpeg.encode(rgba, Rate(quality=50))
    with pytest.raises(InputError, match="quality 1…100"):
        jpeg.encode(photo, Rate(quality=101))
    with pytest.raises(InputError, match="kbps"):
        jpeg.encode(photo, Rate(kbps=64))
    with pytest.raises(BitstreamError, match="jpeg"):
        jpeg.decode(b"\xff\xd8 garbage")


@pytest.mark.parametrize("name", VIDEO_CODECS)
def test_video_round_trip_keeps_frames_and_rate(name, clip):
    codec = _codec(name)
    low, high = codec.ladder(2)
    small, large = codec.encode(clip, low), codec.encode(clip, high)
    assert len(small) < len(large)
    out = codec.decode(large)
    assert out.data.shape == clip.data.shape and out.frame_rate == pytest.approx(12.5)
    assert image_metrics(clip, out)["psnr-rgb"] > 30
    assert image_metrics(clip, codec.decode(small))["psnr-rgb"] > 20


def test_video_needs_even_size(clip):
    odd = Signal(clip.data[:, :, :47], "video", frame_rate=10)
    with pytest.raises(InputError, match="even frame size"):
        _codec("x264").encode(odd, Rate(quality=20))


@pytest.mark.parametrize("name", ["x264", "x265"])
def test_444_chroma_keeps_colour_detail_that_420_loses(name):
    # Alternating red and blue columns: 4:2:0 averages the chroma of each column pair.
    _codec(name)
    columns = torch.arange(32) % 2 == 0
    frame = torch.stack([columns.float(), torch.zeros(32), (~columns).float()])[:, None, :].expand(3, 16, 32)
    stripes = Signal(frame[None].repeat(4, 1, 1, 1).contiguous(), "video", frame_rate=25.0)
    psnr = {}
    for chroma in ("420", "444"):
        codec = CODECS.get(name)(chroma=chroma)
        out = codec.decode(codec.encode(stripes, Rate(quality=45)))  # CRF 7: near lossless
        psnr[chroma] = image_metrics(stripes, out)["psnr-rgb"]
    assert psnr["444"] > psnr["420"] + 10


def test_chroma_format_is_checked():
    with pytest.raises(InputError, match="420"):
        CODECS.get("av1")(chroma="444")
    with pytest.raises(InputError, match="chroma"):
        CODECS.get("x265")(chroma="422")


@pytest.mark.parametrize("name", AUDIO_CODECS)
def test_audio_round_trip_keeps_length_and_sample_rate(name, sound):
    codec = _codec(name)
    ladder = codec.ladder(3)
    sizes, sdrs = [], []
    for rate in ladder:
        data = codec.encode(sound, rate)
        out = codec.decode(data)
        assert out.sample_rate == sound.sample_rate and out.data.shape == sound.data.shape
        sizes.append(len(data))
        sdrs.append(audio_metrics(sound, out)["si-sdr"])
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    assert sdrs[-1] > 15 and sdrs[-1] > sdrs[0], sdrs



@pytest.mark.parametrize("rate", [8000, 16000, 24000, 22050])
def test_opus_keeps_rates_it_codes_natively_and_others(rate):
    """libopus decodes at 48 kHz whatever went in; 8-24 kHz come back from the OpusHead."""
    t = torch.arange(rate // 2 + 3) / rate
    tone = Signal(0.3 * torch.sin(2 * math.pi * 440.0 * t)[None], "audio", bit_depth=16, sample_rate=rate)
    out = _codec("opus").decode(_codec("opus").encode(tone, Rate(kbps=32)))
    assert out.sample_rate == rate and out.data.shape == tone.data.shape
    assert audio_metrics(tone, out)["si-sdr"] > 20


def test_kbps_target(sound):
    codec = _codec("mp3")
    data = codec.encode(sound, Rate(kbps=100))
    assert 8 * len(data) / sound.duration / 1000 <= 100
    with pytest.raises(BitstreamError):
        codec.decode(b"not an mp3 at all")
