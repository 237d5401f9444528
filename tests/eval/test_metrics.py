import math

import pytest
import torch

from inrkit import InputError
from inrkit.datasets import Signal
from inrkit.eval import metrics


def _image(seed=0, shape=(3, 24, 32)):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(shape, generator=g) * 255) / 255


def test_psnr_of_a_known_mse():
    ref = torch.full((3, 8, 8), 100 / 255)
    rec = ref.clone()
    rec[:, ::2] += 10 / 255  # half the pixels off by 10 levels: MSE = 50
    assert metrics.psnr_frames(ref, rec)[0] == pytest.approx(10 * math.log10(255**2 / 50), abs=1e-9)


def test_psnr_rounds_to_8_bits_and_is_infinite_for_identical_images():
    ref = _image()
    assert metrics.psnr_frames(ref, ref + 0.4 / 255) == [math.inf]  # rounds to the same levels


def test_gray_against_rgb_and_rgba_use_the_rgb_part():
    gray = _image(shape=(1, 20, 20))
    assert metrics.psnr_frames(gray, gray.expand(3, -1, -1)) == [math.inf]
    rgba = torch.cat([_image(1, (3, 20, 20)), torch.zeros(1, 20, 20)])
    assert metrics.psnr_frames(rgba, rgba[:3]) == [math.inf]
    with pytest.raises(InputError, match="channels, got 5"):
        metrics.psnr_frames(torch.zeros(5, 5, 5), torch.zeros(5, 5, 5))


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="differ in shape"):
        metrics.image_metrics(_image(), _image(shape=(3, 24, 30)))


def test_ms_ssim_five_scales_matches_pytorch_msssim_and_small_images_use_fewer():
    from pytorch_msssim import ms_ssim

    ref = _image(0, (3, 176, 176))
    rec = (ref + 0.05 * torch.randn_like(ref)).clamp(0, 1)
    expected = ms_ssim(torch.round(ref[None] * 255), torch.round(rec[None] * 255), data_range=255)
    assert metrics.ms_ssim_frames(ref, rec)[0] == pytest.approx(float(expected), rel=1e-5)
    assert metrics.ms_ssim_scales(176, 200) == 5
    assert metrics.ms_ssim_scales(100, 300) == 4
    assert metrics.ms_ssim_scales(30, 30) == 2
    assert metrics.ms_ssim_scales(10, 10) == 0
    small = metrics.image_metrics(ref[:, :48, :48], rec[:, :48, :48])
    assert small["ms_ssim_scales"] == 3 and 0 < small["ms-ssim-rgb"] < 1
    assert metrics.ms_ssim_frames(ref[:, :40, :40], ref[:, :40, :40])[0] == pytest.approx(1.0)
    assert math.isnan(metrics.ms_ssim_frames(ref[:, :8, :8], rec[:, :8, :8])[0])


def test_video_metrics_are_frame_means():
    a = torch.stack([_image(i) for i in range(3)])
    b = a.clone()
    b[1] = _image(9)
    m = metrics.image_metrics(Signal(a, "video", frame_rate=25), Signal(b, "video", frame_rate=25))
    frames = m["psnr-rgb-frames"]
    assert math.isinf(frames[0]) and math.isinf(frames[2]) and math.isfinite(frames[1])
    assert len(m["ms-ssim-rgb-frames"]) == 3


def _tone(n=8000, rate=8000, freq=440.0):
    t = torch.arange(n) / rate
    return (0.5 * torch.sin(2 * math.pi * freq * t))[None]


def test_audio_psnr_snr_of_known_noise():
    x = _tone()
    noise = torch.full(x.shape, 0.01, dtype=torch.float64)
    x = x.double()
    assert metrics.audio_psnr(x, x + noise) == pytest.approx(40.0, abs=1e-6)
    power = float(x.pow(2).mean())
    assert metrics.snr(x, x + noise) == pytest.approx(10 * math.log10(power / 1e-4), abs=1e-6)


def test_si_sdr_scale_invariance_and_known_noise():
    x = _tone()
    assert metrics.si_sdr(x, 0.5 * x) == math.inf
    g = torch.Generator().manual_seed(1)
    e = torch.randn(x.shape, generator=g, dtype=torch.float64)
    e = e - e.mean()
    xs = x.double() - x.double().mean()
    e = e - (e @ xs[0]) / (xs[0] @ xs[0]) * xs  # orthogonal to the signal
    e = e * math.sqrt(float(xs.pow(2).sum()) / float(e.pow(2).sum())) * 0.1  # 20 dB below
    assert metrics.si_sdr(x, 3.0 * (x + e)) == pytest.approx(20.0, abs=1e-6)


def test_si_sdr_of_a_silent_or_constant_estimate_is_minus_infinity():
    # 0/0 once the means are removed; it used to pass the "exact copy" test and read +inf.
    x = _tone()
    assert metrics.si_sdr(x, torch.zeros_like(x)) == -math.inf
    assert metrics.si_sdr(x, torch.full_like(x, 0.3)) == -math.inf
    # a constant reference (one sample, say) leaves nothing to measure: undefined, not an error
    assert math.isnan(metrics.si_sdr(torch.full_like(x, 0.25), x))


def test_gray_with_alpha_is_compared_on_its_gray_channel():
    gray = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0))
    with_alpha = torch.cat([gray, torch.ones_like(gray)])
    other_alpha = torch.cat([gray, torch.zeros_like(gray)])
    assert metrics.psnr_frames(with_alpha, other_alpha) == [math.inf]
    assert metrics.psnr_frames(with_alpha, gray) == [math.inf]


def test_mel_filterbank_is_slaney():
    fb = metrics.mel_filterbank(16000.0, 512, 40)
    assert fb.shape == (40, 257) and bool((fb >= 0).all())
    # Slaney normalisation: each triangle has unit area in Hz
    bin_hz = 16000 / 512
    area = fb.sum(1) * bin_hz
    assert torch.allclose(area[5:], torch.ones(35), atol=0.05)
    # below 1 kHz the scale is linear: band centres 200/3 Hz apart in mel terms
    assert metrics._hz_to_mel(1000.0) == pytest.approx(15.0)
    assert float(metrics._mel_to_hz(torch.tensor(15.0 + 27.0))) == pytest.approx(6400.0)


def test_mel_distance_and_lsd():
    x = _tone(16000, 16000)
    sig = Signal(x, "audio", bit_depth=16, sample_rate=16000)
    assert metrics.mel_distance(sig, sig) == 0.0
    assert metrics.log_spectral_distance(x, x) == 0.0
    near = x + 1e-3 * torch.randn_like(x)
    far = x + 1e-1 * torch.randn_like(x)
    assert 0 < metrics.mel_distance(x, near, 16000) < metrics.mel_distance(x, far, 16000)
    assert 0 < metrics.log_spectral_distance(x, near) < metrics.log_spectral_distance(x, far)
    m = metrics.audio_metrics(sig, Signal(near, "audio", sample_rate=16000))
    assert set(m) == {"psnr", "snr", "si-sdr", "mel-distance", "lsd"}
    with pytest.raises(InputError, match="sample rates differ"):
        metrics.audio_metrics(sig, Signal(near, "audio", sample_rate=8000))


def test_audio_is_rounded_to_its_own_bit_depth():
    # an 8-bit clip: values within half an 8-bit step of the reference write the same file
    ref = Signal(torch.round(torch.linspace(-0.9, 0.9, 2048) * 128)[None] / 128, "audio",
                 bit_depth=8, sample_rate=8000)
    near = Signal(ref.data + 0.3 / 128, "audio", bit_depth=8, sample_rate=8000)
    assert metrics.audio_metrics(ref, near)["psnr"] == math.inf
    as16 = Signal(near.data, "audio", bit_depth=16, sample_rate=8000)
    assert metrics.audio_metrics(ref, as16)["psnr"] < 60  # at 16 bits the offset is kept
