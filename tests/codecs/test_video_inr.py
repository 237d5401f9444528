"""The "nerv", "hnerv" and "nervpp" video codecs: round trip, rate, frame ranges, bad input."""

import math

import pytest
import torch

from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.codecs.container import Container, pack, unpack
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.registry import CODECS

EPOCHS = 60
SMALL = {  # tiny architectures so that a 4-frame 32×64 clip trains in seconds
    "nerv": dict(pe_levels=16, strides=(4, 2), lower_width=6),
    "hnerv": dict(lower_width=6, encoder_dim=16),
    "nervpp": dict(pe_levels=16, strides=(4, 2), lower_width=6),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def clip(frames: int = 4, height: int = 32, width: int = 60) -> Signal:
    """Smooth moving colour ramps (width 60 also exercises the pad-to-8 path)."""
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    data = torch.stack(
        [torch.stack([0.2 + 0.6 * x, 0.8 - 0.5 * y, 0.3 + 0.4 * x * y + 0.05 * t]) for t in range(frames)]
    )
    return Signal(data, "video", frame_rate=25.0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return -10 * math.log10(((a - b) ** 2).mean().item())


@pytest.fixture(scope="module", params=sorted(SMALL))
def encoded(request):
    torch.set_num_threads(1)
    codec = CODECS.get(request.param)(lr=5e-3, **SMALL[request.param])
    signal = clip()
    data = codec.encode(signal, Rate(bpp=8.0), EncodeOptions(steps=EPOCHS, seed=1))
    return codec, signal, data


def test_round_trip_quality_and_rate(encoded):
    codec, signal, data = encoded
    decoded = codec.decode(data)
    assert decoded.data.shape == signal.data.shape and decoded.frame_rate == 25.0
    assert psnr(decoded.data, signal.data) > 24
    bpp = 8 * len(data) / signal.num_samples
    assert 5.0 < bpp <= 8.0 * 1.02
    assert codec.last_report.bytes == len(data) and codec.last_report.epochs == EPOCHS


def test_frame_range_equals_full_decode(encoded):
    codec, _, data = encoded
    full = codec.decode(data)
    assert torch.equal(codec.decode(data, frames=(1, 3)).data, full.data[1:3])
    assert torch.equal(codec.decode(data, frames=(3, 4)).data, full.data[3:])


def test_decoding_is_deterministic(encoded):
    codec, _, data = encoded
    fresh = CODECS.get(codec.name)()
    assert torch.equal(codec.decode(data).data, fresh.decode(data).data)


def test_bad_frame_range(encoded):
    codec, _, data = encoded
    for frames in [(2, 2), (-1, 2), (0, 5)]:
        with pytest.raises(InputError, match="frame range"):
            codec.decode(data, frames=frames)


def test_corrupt_or_foreign_files_are_bitstream_errors(encoded):
    codec, _, data = encoded
    with pytest.raises(BitstreamError):
        codec.decode(data[:-10])
    c = unpack(data)
    other = "hnerv" if codec.name != "hnerv" else "nerv"
    with pytest.raises(BitstreamError):
        CODECS.get(other)().decode(data)
    for mutate in (
        lambda h: h.pop("arch"),
        lambda h: h.__setitem__("wbits", 40),
        lambda h: h["arch"]["config"].__setitem__("fc_dim", 10**6),
        lambda h: h["arch"]["config"].__setitem__("bogus", 1),
    ):
        header = {**c.header, "arch": {**c.header["arch"], "config": dict(c.header["arch"]["config"])}}
        mutate(header)
        bad = pack(Container(c.codec, c.codec_version, c.modality, c.shape, header, c.sections))
        with pytest.raises(BitstreamError):
            codec.decode(bad)
    truncated = dict(c.sections, wscale=c.sections["wscale"][:-2])
    with pytest.raises(BitstreamError):
        codec.decode(pack(Container(c.codec, c.codec_version, c.modality, c.shape, c.header, truncated)))


def test_quality_ladder_orders_the_budget():
    codec = CODECS.get("hnerv")()
    signal = clip(8, 64, 128)
    budgets = [codec.parameter_budget(signal, Rate(quality=q)) for q in range(1, 9)]
    assert budgets == sorted(budgets) and budgets[0] < budgets[-1]


def test_refuses_other_modalities_and_rates():
    codec = CODECS.get("nerv")()
    image = Signal(torch.rand(3, 8, 8), "image")
    with pytest.raises(InputError, match="video"):
        codec.encode(image, Rate(bpp=1.0))
    with pytest.raises(InputError, match="bpp or quality"):
        codec.encode(clip(), Rate(kbps=10.0))


def test_zero_frame_video_is_an_input_error():
    with pytest.raises(InputError, match="empty"):
        Signal(torch.zeros(0, 3, 16, 16), "video")


def test_too_large_clip_is_refused_before_training():
    codec = CODECS.get("hnerv")(memory_limit=1 << 20)
    with pytest.raises(InputError, match="GiB"):
        codec.encode(clip(8, 64, 128), Rate(bpp=8.0), EncodeOptions(steps=1))
