import math
import time

import numpy as np
import pytest
import torch
from PIL import Image

from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.codecs.bitstream.container import pack, section_sizes
from inrkit.codecs.shacira import (
    QUALITY_IMAGE,
    ShaciraCodec,
    pack_model,
    unpack_model,
)
from inrkit.datasets.samples import sample_image_path
from inrkit.datasets.signal import Signal
from inrkit.errors import BitstreamError, InputError
from inrkit.inr.latents.latent_grid import LatentGrid, sga_round
from inrkit.inr.latents.shacira import ShaciraConfig, ShaciraModel, TrainConfig, train
from inrkit.registry import CODECS

STEPS = 150
SMALL = dict(n_levels=6, log2_hashmap_size=8, base_resolution=4, finest_resolution=32)  # fast


def photo_crop(h=48, w=64) -> Signal:
    image = Image.open(sample_image_path()).convert("RGB").crop((230, 120, 230 + w, 120 + h))
    return Signal(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255, "image")


def psnr(a: Signal, b: Signal) -> float:
    return 10 * math.log10(1 / float(torch.mean((a.data - b.data) ** 2)))


@pytest.fixture(scope="module")
def encoded():
    torch.manual_seed(0)
    signal = photo_crop()
    data = ShaciraCodec(**SMALL).encode(signal, Rate(lmbda=1e-3), EncodeOptions(steps=STEPS, seed=1))
    return signal, data


def test_registered():
    assert CODECS.get("shacira") is ShaciraCodec
    assert set(ShaciraCodec.modalities) == {"image", "video", "audio"}


def test_image_round_trip(encoded):
    signal, data = encoded
    decoded = ShaciraCodec().decode(data)
    assert decoded.modality == "image" and decoded.data.shape == signal.data.shape
    assert psnr(signal.quantized(), decoded) > 20  # a plain mean colour gives ~12 dB here
    # The decoded values are 8-bit levels.
    assert torch.equal(decoded.data, decoded.quantized().data)


def test_image_renders_on_a_finer_grid(encoded):
    # The hash grid is continuous: a 2× render is the same image sampled more densely,
    # so its 2×2 means come back close to the 1× decode (measured: 53.5 dB).
    signal, data = encoded
    once = ShaciraCodec().decode(data)
    twice = ShaciraCodec().decode(data, scale=2.0)
    _, h, w = signal.data.shape
    assert twice.data.shape == (3, 2 * h, 2 * w)
    pooled = torch.nn.functional.avg_pool2d(twice.data[None], 2)[0]
    assert psnr(once, Signal(pooled, "image")) > 40
    with pytest.raises(InputError, match="--scale must be in"):
        ShaciraCodec().decode(data, scale=100.0)


def test_encode_is_reproducible_and_decode_deterministic(encoded):
    signal, data = encoded
    again = ShaciraCodec(**SMALL).encode(signal, Rate(lmbda=1e-3), EncodeOptions(steps=STEPS, seed=1))
    assert again == data
    codec = ShaciraCodec()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.decode(data).data
        two = codec.decode(data).data
        torch.set_num_threads(2)
        many = codec.decode(data).data
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and torch.equal(one, many)


def test_bits_accounted_by_section(encoded):
    _, data = encoded
    sizes = section_sizes(data)
    assert sum(sizes.values()) == 8 * len(data)
    assert {"latents", "ldec", "q.steps", "q.sym", "header", "framing"} <= set(sizes)
    assert sizes["latents"] > 0 and sizes["q.sym"] > 0
    assert sizes["ldec"] == 8 * 4 * 2  # one shared 1×1 decoder: weight and shift


def test_latents_survive_the_file_exactly(encoded):
    _, data = encoded
    model, container = unpack_model(data)
    again = pack_model(model, ShaciraCodec().decode(data), mlp_bits=container.header["q"]["b"])
    assert again == data  # integers, decoder and MLP all reproduce bit for bit


@pytest.mark.slow
def test_larger_lambda_gives_smaller_files():
    signal = photo_crop()
    codec = ShaciraCodec(**SMALL)
    files = [codec.encode(signal, Rate(lmbda=lam), EncodeOptions(steps=STEPS)) for lam in (1e-4, 1e-1)]
    latent_bits = [section_sizes(data)["latents"] for data in files]
    assert latent_bits[1] < 0.9 * latent_bits[0]


def test_video_round_trip():
    frames = photo_crop(24, 32).data
    video = Signal(torch.stack([frames.roll(2 * t, dims=2) for t in range(4)]), "video", frame_rate=25)
    codec = ShaciraCodec(**SMALL)
    data = codec.encode(video, Rate(quality=5), EncodeOptions(steps=60))
    decoded = codec.decode(data)
    assert decoded.modality == "video" and decoded.data.shape == video.data.shape
    assert decoded.frame_rate == 25
    assert psnr(video.quantized(), decoded) > 12
    assert torch.equal(codec.decode(data).data, decoded.data)
    with pytest.raises(InputError, match="--scale renders images; this shacira file holds video"):
        codec.decode(data, scale=2.0)
    from inrkit import api

    for option in ({"scale": 2.0}, {"frames": (0, 2)}):  # one consistent line for either
        with pytest.raises(InputError, match="shacira video files decode with no options, not"):
            api.decode(data, **option)


def test_video_trains_on_batches_of_whole_frames(monkeypatch):
    """With a batch smaller than the clip, each step renders whole random frames (2 of
    the 6 here) separably; training still fits the clip."""
    frames = photo_crop(8, 8).data
    video = Signal(torch.stack([frames.roll(t, dims=2) for t in range(6)]), "video")
    seen = []
    real = LatentGrid.features_on_grid

    def recording(self, table, shape, first=None):
        seen.append(None if first is None else first.tolist())
        return real(self, table, shape, first)

    monkeypatch.setattr(LatentGrid, "features_on_grid", recording)
    torch.manual_seed(0)
    model = ShaciraModel(ShaciraConfig.for_signal(video, **SMALL))
    first = train(model, video, TrainConfig(steps=1, batch_size=128))
    last = train(model, video, TrainConfig(steps=150, batch_size=128))
    assert all(len(f) == 2 and f == sorted(f) and 0 <= f[0] < f[1] < 6 for f in seen)
    assert len({tuple(f) for f in seen}) > 5  # different frames at different steps
    assert last["mse"] < 0.5 * first["mse"]


def test_image_trains_on_random_halves_of_the_rows(monkeypatch):
    """Each image training step renders a random half of the rows, separably; the
    encoded file still fits the image."""
    signal = photo_crop(16, 24)
    picked = []
    real = LatentGrid.features_on_grid

    def recording(self, table, shape, first=None):
        if isinstance(first, torch.Tensor):  # training steps (decoding renders slices)
            picked.append(first.tolist())
        return real(self, table, shape, first)

    monkeypatch.setattr(LatentGrid, "features_on_grid", recording)
    codec = ShaciraCodec(**SMALL)
    data = codec.encode(signal, Rate(lmbda=1e-3), EncodeOptions(steps=STEPS, seed=1))
    assert len(picked) == STEPS
    assert all(len(rows) == 8 and rows == sorted(set(rows)) and 0 <= rows[0] and rows[-1] < 16
               for rows in picked)
    assert len({tuple(rows) for rows in picked}) > STEPS // 2
    assert psnr(signal.quantized(), codec.decode(data)) > 28


def test_codec_training_settings_reach_the_fit(monkeypatch):
    """``codec.training`` (how benchmarks/shacira_ablation.py varies the optimisation) is
    what each encode trains with, except the steps, λ, batch and budget the encode sets."""
    import inrkit.codecs.shacira as shacira

    seen = []
    real = shacira.train

    def recording(model, signal, cfg, **kwargs):
        seen.append(cfg)
        return real(model, signal, cfg, **kwargs)

    monkeypatch.setattr(shacira, "train", recording)
    codec = ShaciraCodec(**SMALL)
    codec.training = TrainConfig(steps=999, lmbda=1.0, lr_latents=0.03, decay_period=0.5, time_budget=1e6)
    codec.encode(photo_crop(8, 8), Rate(lmbda=2e-3), EncodeOptions(steps=3))
    (cfg,) = seen
    assert (cfg.lr_latents, cfg.decay_period) == (0.03, 0.5)
    assert (cfg.steps, cfg.lmbda, cfg.batch_size, cfg.time_budget) == (3, 2e-3, 32, None)
    assert ShaciraCodec().training == TrainConfig()  # each codec starts from the defaults


def voiced(seconds=0.25, rate=8000, channels=1) -> Signal:
    """A speech-like test tone: harmonics of a gliding 140–180 Hz pitch under a syllabic envelope."""
    t = torch.arange(int(seconds * rate)) / rate
    f0 = 140 + 40 * t / seconds
    phase = 2 * math.pi * torch.cumsum(f0, 0) / rate
    wave = sum(torch.sin(k * phase) / k for k in range(1, 6))
    envelope = torch.sin(math.pi * t / seconds) ** 2
    data = 0.4 * envelope * wave / 2.3
    return Signal(torch.stack([data * (1 - 0.3 * c) for c in range(channels)]), "audio", sample_rate=rate)


def si_sdr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    x, y = reference.double().flatten(), estimate.double().flatten()
    target = (y @ x) / (x @ x) * x
    return 10 * math.log10(float(target.square().sum() / (y - target).square().sum()))


def test_audio_grid_is_one_dimensional_and_dense():
    config = ShaciraConfig.for_signal(voiced(1.0, 48000))
    assert (config.in_dim, config.out_channels, config.finest_resolution) == (1, 1, 24000)
    assert 2**config.log2_hashmap_size >= config.finest_resolution  # no hash collisions
    assert ShaciraConfig.for_signal(voiced(1.0, 48000, channels=2)).out_channels == 2


@pytest.mark.parametrize("channels", [1, 2])
def test_audio_round_trip(channels):
    signal = voiced(channels=channels)
    codec = ShaciraCodec()
    data = codec.encode(signal, Rate(quality=6), EncodeOptions(steps=STEPS))
    decoded = codec.decode(data)
    assert decoded.modality == "audio" and decoded.data.shape == signal.data.shape
    assert decoded.sample_rate == signal.sample_rate
    assert si_sdr(signal.data, decoded.data) > 9  # silence would give 0 dB
    assert torch.equal(codec.decode(data).data, decoded.data)
    assert torch.equal(decoded.data, decoded.quantized().data)  # 16-bit samples
    assert sum(section_sizes(data).values()) == 8 * len(data)


def test_hostile_grid_size_is_refused_before_allocating(encoded):
    _, data = encoded
    container = ShaciraCodec.open(data)
    container.header["arch"].update(n_levels=64, log2_hashmap_size=24)
    with pytest.raises(BitstreamError, match="beyond the limit"):
        ShaciraCodec().decode(pack(container))


def test_audio_kbps_target_is_met():
    signal = voiced(0.5)
    data = ShaciraCodec().encode(signal, Rate(kbps=24), EncodeOptions(steps=100))
    assert abs(8 * len(data) / signal.duration / 1000 / 24 - 1) <= 0.10


def test_sga_rounds_between_floor_and_ceil():
    z = (torch.randn(1000) * 3).requires_grad_()
    soft = sga_round(z, temperature=1.0)
    assert torch.all(soft >= torch.floor(z) - 1e-6) and torch.all(soft <= torch.floor(z) + 1 + 1e-6)
    soft.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    # Cold: almost always the nearer integer.
    cold = sga_round(z.detach(), temperature=0.05)
    assert float((cold - torch.round(z.detach())).abs().lt(0.05).float().mean()) > 0.9


def test_a_time_budget_runs_the_schedules_to_their_end():
    """Cut short by ``time_budget``, training still reaches the straight-through phase
    and the final λ instead of stopping in the middle of its schedules."""
    seen = []

    class Recording(TrainConfig):
        def lmbda_at(self, t):
            seen.append(t)
            return super().lmbda_at(t)

    torch.manual_seed(0)
    model = ShaciraModel(ShaciraConfig(**SMALL))
    cfg = Recording(steps=10**7, time_budget=1.5)
    start = time.perf_counter()
    train(model, photo_crop(16, 16), cfg)
    assert time.perf_counter() - start < 30
    assert len(seen) > 10 and max(seen) > cfg.decay_period and max(seen) < 1.0
    assert seen == sorted(seen)


def test_latent_decoder_per_level_and_normalisation():
    grid = LatentGrid(2, n_levels=4, log2_hashmap_size=8, finest_resolution=64, latent_dim=2,
                      feature_dim=3, decoder_per_level=True)
    grid.normalise()
    assert torch.allclose(grid.div, grid.latents.detach().abs().amax(0))
    table = grid.decode_table(grid.quantized_latents("round"))
    assert table.shape == (grid.grid.num_entries, 3)
    weight, shift = grid.export_decoder()
    rows = grid.grid.level_slices()[2]
    z = torch.round(grid.latents.detach())[rows]
    torch.testing.assert_close(table[rows], z @ weight[2] + shift[2])
    bits = grid.bits()
    assert bits.ndim == 0 and float(bits.detach()) > 0


@pytest.mark.parametrize("shape", [(20, 30), (300,), (5, 12, 18)])
@pytest.mark.parametrize("chunk", [1 << 20, 100, 5])  # one slab, slabs along axis 0, per point
def test_fast_grid_path_matches_pointwise_path(shape, chunk):
    from inrkit.datasets.grids import coordinate_grid

    d = len(shape)
    # dense and hashed levels alike: the tables cannot hold the finer lattices
    model = ShaciraModel(ShaciraConfig(in_dim=d, n_levels=6, log2_hashmap_size=5 if d == 1 else 9,
                                       base_resolution=4, finest_resolution=64))  # fmt: skip
    assert 0 < model.grid.grid.n_dense < 6
    with torch.no_grad():
        model.grid.latents.normal_(0, 3)
    fast = model.render(shape, chunk=chunk)
    points = coordinate_grid(shape).reshape(-1, d)
    slow = model.mlp(model.grid(points, model.table())).reshape(*shape, 3)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_bad_input_and_bad_files(encoded):
    signal, data = encoded
    codec = ShaciraCodec()
    audio = Signal(torch.zeros(1, 100), "audio", sample_rate=8000)
    with pytest.raises(InputError, match="kbps"):
        codec.encode(audio, Rate(bpp=0.5))
    with pytest.raises(InputError, match="quality"):
        codec.encode(signal, Rate(quality=9))
    with pytest.raises(InputError, match="kbps"):
        codec.encode(signal, Rate(kbps=3))
    broken = bytearray(data)
    broken[len(broken) // 2] ^= 0xFF
    with pytest.raises(BitstreamError):
        codec.decode(bytes(broken))
    with pytest.raises(BitstreamError):
        codec.decode(data[: len(data) // 2])


@pytest.mark.slow
def test_bpp_target_is_met():
    signal = photo_crop(96, 128)  # header + MLP take ~0.6 bpp here, 150 steps reach ~1 bpp
    data = ShaciraCodec().encode(signal, Rate(bpp=0.9), EncodeOptions(steps=150))
    assert abs(8 * len(data) / signal.num_samples / 0.9 - 1) <= 0.10


def test_image_quality_ladder_grows_the_hash_table():
    """Image qualities choose (table size, λ) from QUALITY_IMAGE; an explicit table wins."""
    signal = photo_crop(16, 16)
    tables = []
    for q in (1, 8):
        data = ShaciraCodec(n_levels=2, base_resolution=2, finest_resolution=8).encode(
            signal, Rate(quality=q), EncodeOptions(steps=2)
        )
        tables.append(unpack_model(data)[0].config.log2_hashmap_size)
    assert tables == [QUALITY_IMAGE[1][0], QUALITY_IMAGE[8][0]]
    data = ShaciraCodec(**SMALL).encode(signal, Rate(quality=8), EncodeOptions(steps=2))
    assert unpack_model(data)[0].config.log2_hashmap_size == SMALL["log2_hashmap_size"]


def test_bpp_target_chooses_a_table_that_can_reach_it():
    kodak = Signal(torch.zeros(3, 512, 768), "image")
    codec = ShaciraCodec()
    chosen = [codec._table_for(kodak, bpp) for bpp in (0.1, 0.25, 0.5, 1.0)]
    assert chosen == sorted(chosen) and chosen[0] == 11 and chosen[-1] >= 14
    assert ShaciraCodec(log2_hashmap_size=12)._table_for(kodak, 1.0) is None


@pytest.mark.parametrize(
    ("options", "match"),
    [({"bogus": 1}, "unknown option.s. bogus"), ({"in_dim": 3}, "unknown option.s. in_dim"),
     ({"n_levels": 0}, "n_levels must be a whole number of at least 1"),
     ({"mlp_width": 2.5}, "mlp_width"), ({"decoder_per_level": 1}, "true or false")],
)  # fmt: skip
def test_constructor_options_are_checked_at_construction(options, match):
    with pytest.raises(InputError, match=match):
        ShaciraCodec(**options)
    ShaciraCodec(mlp_depth=0, **SMALL)  # zero hidden layers is a valid MLP
