import math

import pytest
import torch

from inrkit.datasets import Signal, load_sample_image


def _psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


@pytest.fixture(scope="session")
def photo() -> Signal:
    """A 32×48 crop of the sample photograph, 3×32×48 in [0, 1], 8-bit."""
    return load_sample_image((200, 220, 32, 48))


def _clip(frames: int = 4, channels: int = 3, height: int = 32, width: int = 48, bit_depth: int = 8,
         frame_rate: float = 24.0) -> Signal:
    """A small moving gradient-and-noise clip, already on its bit depth's grid."""
    t = torch.arange(frames).view(-1, 1, 1, 1)
    y = torch.linspace(0, 1, height).view(1, 1, -1, 1)
    x = torch.linspace(0, 1, width).view(1, 1, 1, -1)
    c = torch.arange(channels).view(1, -1, 1, 1)
    data = (0.5 + 0.4 * torch.sin(6 * x + 4 * y + t * 0.7 + c)).expand(frames, channels, height, width)
    data = (data + 0.05 * torch.rand(frames, channels, height, width)).clamp(0, 1)
    return Signal(data, "video", bit_depth=bit_depth, frame_rate=frame_rate).quantized()


def _tone(channels: int = 2, rate: int = 16000, seconds: float = 0.25, bit_depth: int = 16) -> Signal:
    """Sines of different pitch per channel, on the bit depth's grid."""
    n = int(rate * seconds)
    t = torch.arange(n) / rate
    freqs = torch.tensor([220.0 * (1 + k * 0.5) for k in range(channels)]).view(-1, 1)
    data = 0.5 * torch.sin(2 * math.pi * freqs * t)
    return Signal(data, "audio", bit_depth=bit_depth, sample_rate=rate).quantized()


@pytest.fixture(scope="session")
def psnr():
    return _psnr


@pytest.fixture(scope="session")
def make_clip():
    return _clip


@pytest.fixture(scope="session")
def make_tone():
    return _tone
