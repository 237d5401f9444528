"""NeRV, HNeRV and NeRV++ frame decoders: shapes, geometry, budget solver, training."""

import math

import pytest
import torch

from inrkit.errors import InputError
from inrkit.inr import field_from_config
from inrkit.inr.frames.hnerv import HNeRV
from inrkit.inr.frames.nerv import (
    MAX_PADDING,
    NeRV,
    choose_strides,
    padded_size,
    positional_encoding,
    width_for_budget,
)
from inrkit.inr.frames.nervpp import NeRVPlusPlus
from inrkit.inr.frames.video_fit import VideoFitConfig, fit_frames, lr_multiplier

MODELS = (NeRV, HNeRV, NeRVPlusPlus)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions run far faster on one thread, above all on a shared, loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_strides_match_the_reference_configurations():
    assert choose_strides(640, 1280, 2) == (5, 4, 4, 2, 2)  # HNeRV Bunny: 16×2×4 embedding
    assert choose_strides(640, 1280, 8) == (5, 4, 2, 2)  # NeRV baseline: 8×16 grid
    assert choose_strides(32, 64, 2) == (4, 2, 2)
    assert choose_strides(7, 9, 2) == ()


def test_padding_keeps_the_papers_base_grids_for_awkward_sizes():
    # 180 = 2²·3²·5 and 320 = 2⁶·5 share only 20: HNeRV pads the width to 360 for a 2×4 grid,
    # where a multiple of 8 (184×320) would leave 23×40 embedding cells per frame.
    assert padded_size(180, 320, HNeRV.min_grid) == (180, 360)
    assert choose_strides(180, 360, HNeRV.min_grid) == (5, 3, 3, 2)
    assert padded_size(640, 1280, HNeRV.min_grid) == (640, 1280)  # already 2×4: no padding
    assert padded_size(64, 128, HNeRV.min_grid) == (64, 128)
    assert padded_size(180, 320, NeRV.min_grid) == (180, 320)  # 9×16 cells at stride 20
    assert padded_size(30, 50, 2, strides=(4, 2)) == (32, 56)  # given strides: next multiples


@pytest.mark.parametrize("min_grid", [2, 8])
def test_padding_adds_at_most_an_eighth_and_leaves_min_grid_rows(min_grid):
    for height in range(1, 200, 7):
        for width in (height, height + 13, 2 * height + 5, 3 * height):
            ph, pw = padded_size(height, width, min_grid)
            assert ph >= height and pw >= width and ph * pw <= (1 + MAX_PADDING) * height * width
            stride = math.prod(choose_strides(ph, pw, min_grid))
            assert ph % stride == 0 and pw % stride == 0
            assert min(ph, pw) // stride >= min_grid or stride == 1


def test_positional_encoding_is_sines_then_cosines():
    pe = positional_encoding(torch.tensor([0.0, 0.5]), 1.25, 80)
    assert pe.shape == (2, 160)
    assert torch.allclose(pe[0, :80], torch.zeros(80)) and torch.allclose(pe[0, 80:], torch.ones(80))
    assert math.isclose(pe[1, 1].item(), math.sin(0.5 * 1.25 * math.pi), abs_tol=1e-6)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("size", [(32, 64), (48, 48), (40, 120)])
def test_frame_shapes(cls, size):
    torch.manual_seed(0)
    model = cls(cls.Config(height=size[0], width=size[1], fc_dim=16, lower_width=4))
    frames = torch.rand(2, 3, *size)
    out = model(model.frame_inputs(frames, torch.tensor([0, 1]), 4))
    assert out.shape == (2, 3, *size)
    assert 0 <= out.min() and out.max() <= 1


def test_hnerv_embedding_and_parameter_count():
    model = HNeRV(HNeRV.Config(height=640, width=1280, fc_dim=8))
    assert model.embedding_shape() == (16, 2, 4)
    decoder = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder."))
    assert model.parameter_count(10) == decoder + 10 * 16 * 2 * 4


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("budget", [750_000, 3_000_000])  # HNeRV paper sizes
def test_width_solver_hits_the_budget(cls, budget):
    fc_dim = width_for_budget(cls, budget, 640, 1280, 132)
    count = cls(cls.Config(height=640, width=1280, fc_dim=fc_dim)).parameter_count(132)
    assert 0.95 * budget <= count <= budget
    bigger = cls(cls.Config(height=640, width=1280, fc_dim=fc_dim + 1)).parameter_count(132)
    assert bigger > budget


def test_width_solver_refuses_a_budget_below_the_smallest_model():
    with pytest.raises(InputError, match="too small"):
        width_for_budget(HNeRV, 1000, 640, 1280, 132)


def test_config_round_trip_rebuilds_the_same_architecture():
    model = NeRVPlusPlus(NeRVPlusPlus.Config(height=32, width=64, fc_dim=8, lower_width=4))
    rebuilt = field_from_config(model.config_dict())
    assert type(rebuilt) is NeRVPlusPlus
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_nerv_render_gives_the_field_range():
    model = NeRV(NeRV.Config(height=16, width=32, fc_dim=4, lower_width=4, pe_levels=8))
    out = model.render((3, 16, 32))
    assert out.shape == (3, 16, 32, 3) and out.min() >= -1 and out.max() <= 1
    with pytest.raises(InputError):
        model.render((3, 8, 8))


def test_lr_schedule_warms_up_then_decays():
    assert lr_multiplier(0.0, 0.1, 0.1) == pytest.approx(0.1)
    assert lr_multiplier(0.1, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_multiplier(1.0, 0.1, 0.1) == pytest.approx(0.0, abs=1e-12)


def test_fit_improves_psnr():
    torch.manual_seed(0)
    y = torch.linspace(0, 1, 16)[:, None].expand(16, 32)
    frames = torch.stack([torch.stack([y, y.flip(0), y * 0 + t / 4]) for t in range(4)])
    model = NeRVPlusPlus(NeRVPlusPlus.Config(height=16, width=32, fc_dim=8, lower_width=8, pe_levels=8))
    result = fit_frames(model, frames, VideoFitConfig(epochs=30, lr=1e-2))
    assert result.epochs == 30 and len(result.psnr) == 30
    assert result.psnr[-1] > result.psnr[0] + 5 and result.psnr[-1] > 20


def test_divergence_guard_restores_the_best_epoch_and_halves_the_rate():
    y = torch.linspace(0, 1, 16)[:, None].expand(16, 32)
    frames = torch.stack([torch.stack([y, y.flip(0), y * 0 + t / 4]) for t in range(4)])

    def fit(guard):
        torch.manual_seed(0)
        model = HNeRV(HNeRV.Config(height=16, width=32, fc_dim=8, lower_width=6, encoder_dim=16))
        return fit_frames(model, frames, VideoFitConfig(epochs=40, lr=0.3, collapse_db=guard))

    with pytest.raises(InputError, match="collapse_db"):
        VideoFitConfig(collapse_db=0.0)
    unguarded, guarded = fit(None), fit(3.0)
    assert unguarded.recoveries == 0 and unguarded.psnr[-1] < max(unguarded.psnr) - 3  # collapsed for good
    assert guarded.recoveries >= 1 and guarded.psnr[-1] > unguarded.psnr[-1] + 5


def test_fit_refuses_a_clip_too_large_for_memory():
    model = NeRV(NeRV.Config(height=64, width=128, fc_dim=8, lower_width=4))
    with pytest.raises(InputError, match="GiB"):
        fit_frames(model, torch.rand(2, 3, 64, 128), VideoFitConfig(epochs=1, memory_limit=1 << 20))


def test_fit_refuses_empty_or_mismatched_frames():
    model = NeRV(NeRV.Config(height=16, width=32, fc_dim=4, lower_width=4))
    with pytest.raises(InputError):
        fit_frames(model, torch.rand(0, 3, 16, 32), VideoFitConfig(epochs=1))
    with pytest.raises(InputError):
        fit_frames(model, torch.rand(2, 3, 16, 16), VideoFitConfig(epochs=1))
