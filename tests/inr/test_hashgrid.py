import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from inrkit.datasets.grids import coordinate_grid
from inrkit.datasets.samples import sample_image_path
from inrkit.errors import InputError
from inrkit.inr import build_field, field_from_config
from inrkit.inr.fields.hashgrid import HashEncoding, MultiresGrid, growth_factor


def reference_encoding(enc: HashEncoding, point: list[float]) -> np.ndarray:
    """Instant-NGP's encoding of one point, written out corner by corner in plain Python
    from the tiny-cuda-nn conventions (see the module docstring), not from the module's buffers."""
    grid, table = enc.grid, enc.table.detach().double().numpy()
    d, T = grid.in_dim, grid.log2_hashmap_size
    primes = (1, 2654435761, 805459861)
    log2_b = np.log2(
        np.float32(growth_factor(grid.n_levels, grid.base_resolution, grid.finest_resolution))
    )
    features, offset = [], 0
    for level in range(grid.n_levels):
        scale = np.exp2(np.float32(level) * log2_b) * np.float32(grid.base_resolution) - np.float32(
            1
        )
        res = math.ceil(float(scale)) + 1
        size = min(-(-(res**d) // 8) * 8, 2**T)
        pos = [float(np.float32((x + 1) * 0.5) * scale + np.float32(0.5)) for x in point]
        cell = [math.floor(p) for p in pos]
        frac = [p - c for p, c in zip(pos, cell, strict=True)]
        value = np.zeros(table.shape[1])
        for corner in range(2**d):
            bits = [(corner >> k) & 1 for k in range(d)]
            vertex = [c + b for c, b in zip(cell, bits, strict=True)]
            weight = math.prod(f if b else 1 - f for f, b in zip(frac, bits, strict=True))
            if res**d <= 2**T:
                index = sum(v * res**k for k, v in enumerate(vertex))
            else:
                index = 0
                for v, p in zip(vertex, primes, strict=False):
                    index ^= (v * p) % 2**32
            value += weight * table[offset + index % size]
        features.append(value)
        offset += size
    assert offset == grid.num_entries
    return np.concatenate(features)


def make_encoding(d, **kw):
    options = dict(
        n_levels=6,
        n_features_per_level=2,
        log2_hashmap_size=8,
        base_resolution=4,
        finest_resolution=40,
    )
    options.update(kw)
    enc = HashEncoding(in_dim=d, implementation="torch", **options)
    with torch.no_grad():
        enc.table.uniform_(-1, 1)  # make every row distinguishable
    return enc


@pytest.mark.parametrize("d", [1, 2, 3])
def test_output_shapes(d):
    field = build_field(
        "hashgrid",
        in_dim=d,
        out_channels=3,
        n_levels=4,
        log2_hashmap_size=10,
        implementation="torch",
    )
    assert field.encoding.output_dim == 8
    out = field(torch.rand(5, 7, d) * 2 - 1)
    assert out.shape == (5, 7, 3)
    assert field.render((6,) * d).shape == (*((6,) * d), 3)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_torch_path_matches_brute_force_reference(d):
    log2_size = {1: 4, 2: 8, 3: 9}[d]
    enc = make_encoding(d, finest_resolution=40 if d < 3 else 12, log2_hashmap_size=log2_size)
    grid = enc.grid
    assert 0 < grid.n_dense < grid.n_levels, "the test should cover dense and hashed levels"
    points = torch.rand(9, d, generator=torch.Generator().manual_seed(d)) * 2 - 1
    points[0] = 0.999  # the upper border (the wrap-around case of integer scales)
    points[1] = -0.999
    out = enc(points).detach().double().numpy()
    for point, row in zip(points.tolist(), out, strict=True):
        np.testing.assert_allclose(row, reference_encoding(enc, point), rtol=0, atol=1e-5)


def test_dense_and_hashed_levels():
    grid = MultiresGrid(
        in_dim=2, n_levels=8, log2_hashmap_size=10, base_resolution=8, finest_resolution=256
    )
    res = grid.resolutions
    assert torch.equal(grid.dense, res**2 <= 1024)
    assert grid.dense[0] and not grid.dense[-1]
    assert torch.all(grid.table_sizes[~grid.dense] == 1024)
    assert torch.all(grid.table_sizes[grid.dense] >= res[grid.dense] ** 2)
    assert grid.num_entries == int(grid.table_sizes.sum())
    # On a dense level, distinct vertices own distinct rows; sample centres of a fine
    # grid reach every vertex of the coarsest level that is not on the top border.
    coords = coordinate_grid((64, 64)).reshape(-1, 2)
    indices, weights = grid.corners(coords)
    assert weights.shape == indices.shape == (64 * 64, 8, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(64 * 64, 8))
    level0 = indices[:, 0]
    assert int(level0.min()) >= 0 and int(level0.max()) < int(grid.table_sizes[0])
    assert len(torch.unique(level0)) >= (int(res[0]) - 1) ** 2
    # Hashed levels stay inside their own slice of the shared table.
    for level, rows in enumerate(grid.level_slices()):
        assert (
            rows.start <= int(indices[:, level].min()) and int(indices[:, level].max()) < rows.stop
        )


def test_growth_factor_and_resolutions_follow_tcnn():
    assert growth_factor(16, 16, 512) == pytest.approx(math.exp(math.log(32) / 15))
    grid = MultiresGrid(
        in_dim=2, n_levels=16, log2_hashmap_size=19, base_resolution=16, finest_resolution=512
    )
    # scale_l = 16 b^l - 1, ceil(scale_l) + 1 vertices; level 0 has exactly 16.
    assert int(grid.resolutions[0]) == 16 and float(grid.scales[0]) == 15.0
    assert float(grid.scales[-1]) == pytest.approx(511.0)


def test_init_range():
    enc = HashEncoding(in_dim=2, n_levels=4, log2_hashmap_size=12, implementation="torch")
    table = enc.table.detach()
    assert float(table.abs().max()) <= 1e-4
    assert float(table.std()) > 3e-5  # uniform on ±1e-4 has std 5.8e-5


def test_gradients_reach_the_table_and_the_mlp():
    field = build_field(
        "hashgrid",
        in_dim=2,
        out_channels=3,
        n_levels=4,
        log2_hashmap_size=10,
        implementation="torch",
    )
    coords = torch.rand(50, 2) * 2 - 1
    field(coords).square().sum().backward()
    grad = field.encoding.table.grad
    assert grad is not None and int((grad.abs().sum(-1) > 0).sum()) >= 50
    assert all(
        layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
        for layer in field.mlp[::2]
    )


def test_fits_a_photo_crop():
    image = Image.open(sample_image_path()).convert("RGB").crop((200, 100, 248, 148))
    target = torch.from_numpy(np.array(image)).float() / 127.5 - 1  # [48, 48, 3]
    field = build_field(
        "hashgrid",
        in_dim=2,
        out_channels=3,
        n_levels=8,
        log2_hashmap_size=12,
        finest_resolution=48,
        implementation="torch",
    )
    coords = coordinate_grid((48, 48))
    opt = torch.optim.Adam(field.parameters(), lr=field.default_lr, **field.optimizer_kwargs)
    for _ in range(60):
        opt.zero_grad()
        loss = (field(coords) - target).square().mean()
        loss.backward()
        opt.step()
    mse = float((field.render((48, 48)) - target).square().mean()) / 4  # in [0, 1] units
    assert 10 * math.log10(1 / mse) > 30


def test_config_round_trip():
    field = build_field(
        "hashgrid",
        in_dim=3,
        out_channels=1,
        n_levels=3,
        log2_hashmap_size=9,
        implementation="torch",
    )
    again = field_from_config(field.config_dict())
    assert again.config == field.config
    assert again.encoding.table.shape == field.encoding.table.shape


def test_bad_arguments():
    with pytest.raises(InputError, match="implementation"):
        HashEncoding(implementation="cuda")
    with pytest.raises(InputError, match="in_dim"):
        HashEncoding(in_dim=4, implementation="torch")
    with pytest.raises(InputError, match="base_resolution"):
        HashEncoding(base_resolution=64, finest_resolution=32, implementation="torch")


def test_auto_without_tcnn_uses_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinycudann", None)  # makes `import tinycudann` fail
    assert HashEncoding(implementation="auto").implementation == "torch"


def test_tcnn_requested_without_tinycudann_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "tinycudann", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(InputError, match="tinycudann"):
        HashEncoding(implementation="tcnn")
    with pytest.raises(InputError, match="2-D or 3-D"):
        HashEncoding(in_dim=1, implementation="tcnn")


@pytest.mark.gpu
@pytest.mark.parametrize("d", [2, 3])
def test_tcnn_matches_torch(d):
    pytest.importorskip("tinycudann")
    options = dict(
        in_dim=d, n_levels=8, log2_hashmap_size=12, base_resolution=8, finest_resolution=128
    )
    fast = HashEncoding(implementation="tcnn", **options).cuda()
    slow = HashEncoding(implementation="torch", **options).cuda()
    with torch.no_grad():
        fast.table.uniform_(-1, 1)
        slow.table.copy_(fast.table)
    coords = torch.rand(4096, d, device="cuda") * 2 - 1
    torch.testing.assert_close(fast(coords), slow(coords), atol=1e-4, rtol=1e-4)
    fast(coords).sum().backward()
    slow(coords).sum().backward()
    torch.testing.assert_close(fast.table.grad, slow.table.grad, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("shape", [(40,), (6, 10), (5, 6, 7)])
def test_grid_interpolation_of_part_of_axis_0_matches_the_whole(shape):
    """``interpolate_grid`` on a slice or on chosen indices of axis 0 gives those rows
    of the whole grid's features, for dense and hashed levels."""
    log2_table = 4 if len(shape) == 1 else 6
    grid = MultiresGrid(len(shape), n_levels=5, log2_hashmap_size=log2_table, base_resolution=2,
                        finest_resolution=32)  # fmt: skip
    assert 0 < grid.n_dense < 5
    table = torch.randn(grid.num_entries, 2)
    whole = grid.interpolate_grid(table, shape)
    assert whole.shape == (*shape, 5, 2)
    torch.testing.assert_close(grid.interpolate_grid(table, shape, slice(1, 3)), whole[1:3])
    rows = torch.tensor([0, 2, shape[0] - 1])
    torch.testing.assert_close(grid.interpolate_grid(table, shape, rows), whole[rows])
