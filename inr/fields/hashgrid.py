"""Multiresolution hash encoding and the hash-grid field of Instant-NGP.

Müller, Evans, Schied, Keller, "Instant Neural Graphics Primitives with a
Multiresolution Hash Encoding", SIGGRAPH 2022. Reference code: NVlabs/instant-ngp
(``configs/image/base.json``) and NVlabs/tiny-cuda-nn
(``include/tiny-cuda-nn/encodings/grid.h``).

``L`` levels of grids with resolutions growing geometrically from ``N_min`` to
``N_max`` (growth factor ``b = exp((ln N_max - ln N_min) / (L - 1))``). Each
level owns a table of ``F``-dimensional features; a grid vertex is looked up
directly when the level's vertices fit in its table (dense level) and through
the spatial hash ``XOR_i(x_i * pi_i) mod 2^T`` with
``pi = (1, 2654435761, 805459861)`` otherwise. A point's feature at a level is
the d-linear interpolation of its cell's ``2^d`` corners; the levels'
features are concatenated and fed to a small ReLU MLP.

The PyTorch path reproduces tiny-cuda-nn's conventions, so the two backends
share one parameter layout and a table trained with one evaluates with the other
at the same corner indices (interpolation weights agree to about 2e-4:
tiny-cuda-nn forms the grid position with one fused multiply-add, this path
rounds twice):

* inputs in ``[-1, 1]`` are mapped to ``u = (x + 1) / 2 in [0, 1]``;
* level ``l`` has ``scale_l = N_min * b^l - 1`` (evaluated in float32 as
  ``exp2(l * log2 b) * N_min - 1``) and ``ceil(scale_l) + 1`` vertices per
  axis: ``N_min`` counts vertices, not cells, which gives power-of-two
  tables;
* a point sits at grid position ``u * scale_l + 0.5`` (the half-cell offset
  de-aligns the levels' vertices from each other);
* level ``l``'s table has ``min(round_up(res_l^d, 8), 2^T)`` entries; it is
  dense when ``res_l^d <= 2^T`` (index ``x + y*res + z*res^2``), hashed
  otherwise, and every index is taken modulo the table size;
* all tables live in one ``[entries, F]`` parameter, level after level, and
  the corners are enumerated with bit ``k`` of the corner number selecting
  ``+1`` along axis ``k``.

A consequence of tiny-cuda-nn's convention that we keep for compatibility:
when ``scale_l`` is an integer (e.g. level 0 with ``N_min = 16``), points in
the top half-cell of an axis interpolate towards vertex ``res_l``, which the
dense index (mod the table size) wraps onto the next row. It touches a border
strip half a coarse cell wide and is harmless for fitting.

Departures from the paper and the reference code:

* ``log2_hashmap_size`` defaults to 15 rather than 19 (NeRF) or 24
  (instant-ngp's image config, ``configs/image/base.json``): a 768×512 image has 2^18.6 pixels, and
  2^15 entries × 16 levels × 2 features ≈ 1M parameters already exceed its
  1.2M sample values' worth of detail; smaller tables also keep Adam's state and
  CPU memory traffic small. ``finest_resolution`` defaults to 1024, about the
  side of the images inrkit fits; set it to the largest side of the signal.
* tiny-cuda-nn only accelerates the encoding here (for d = 2, 3 on CUDA); the
  MLP is ``torch.nn`` in float32 rather than the half-precision FullyFusedMLP.
  Like FullyFusedMLP it has no biases and Xavier-uniform weights.
* Instant-NGP's Adam is (lr 1e-2, betas (0.9, 0.99), eps 1e-15) with an L2
  regulariser of 1e-6 on the MLP weights; the fitting loop reads the first three
  from ``Field.default_lr`` and ``Field.optimizer_kwargs`` and we drop the tiny
  L2 term. tiny-cuda-nn's Adam also skips table entries whose gradient is exactly
  zero (their moments do not move them), where PyTorch's Adam keeps moving them on
  old momentum; on a 256×256 crop with 8,192-point minibatches a sparse Adam gave
  42.36 / 42.34 dB against 42.92 / 42.35 dB (two seeds), within noise. Instant-NGP
  decays the rate by 0.33 every 10k steps after 20k; the fitting loop uses a cosine
  schedule instead. Its image config leaves ``per_level_scale`` at tiny-cuda-nn's
  default 2.0, where we derive ``b`` from ``finest_resolution`` as the paper does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from inrkit.errors import InputError
from inrkit.inr.field import Field
from inrkit.registry import register_field

PRIMES = (1, 2654435761, 805459861)
"""The per-axis hash primes of Instant-NGP (tiny-cuda-nn's ``fast_hash``)."""

IMPLEMENTATIONS = ("auto", "torch", "tcnn")
_UINT32 = 0xFFFFFFFF


def growth_factor(n_levels: int, base_resolution: int, finest_resolution: int) -> float:
    """Per-level scale ``b = exp((ln N_max - ln N_min) / (L - 1))`` (Eq. 3 of the paper)."""
    if n_levels == 1:
        return 1.0
    return math.exp((math.log(finest_resolution) - math.log(base_resolution)) / (n_levels - 1))


def _tcnn_available() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import tinycudann  # noqa: F401
    except Exception:  # ImportError, or a build for another CUDA/driver
        return False
    return True


class MultiresGrid(nn.Module):
    """The geometry of a multiresolution hash grid, without any table.

    It answers, for each input point and level, which ``2^d`` table rows hold
    the corners of the point's cell and with what d-linear weights; the caller
    owns the table. :class:`HashEncoding` stores float features in it,
    SHACIRA's latent grid stores quantized latents.
    """

    def __init__(
        self,
        in_dim: int,
        n_levels: int,
        log2_hashmap_size: int,
        base_resolution: int,
        finest_resolution: int,
    ):
        super().__init__()
        if in_dim not in (1, 2, 3):
            raise InputError(f"hash grids take 1-, 2- or 3-D coordinates, got in_dim={in_dim}")
        if n_levels < 1 or not 1 <= log2_hashmap_size <= 30:
            raise InputError(
                f"need n_levels >= 1 and 1 <= log2_hashmap_size <= 30, got {n_levels} and {log2_hashmap_size}"
            )
        if not 2 <= base_resolution <= finest_resolution:
            raise InputError(
                f"need 2 <= base_resolution <= finest_resolution, got {base_resolution} and {finest_resolution}"
            )
        self.in_dim = in_dim
        self.n_levels = n_levels
        self.log2_hashmap_size = log2_hashmap_size
        self.base_resolution = base_resolution
        self.finest_resolution = finest_resolution
        self.per_level_scale = growth_factor(n_levels, base_resolution, finest_resolution)

        # tiny-cuda-nn evaluates the scales in float32; so do we, bit for bit.
        log2_b = np.log2(np.float32(self.per_level_scale))
        levels = np.arange(n_levels, dtype=np.float32)
        scales = np.exp2(levels * log2_b) * np.float32(base_resolution) - np.float32(1.0)
        resolutions = np.ceil(scales).astype(np.int64) + 1
        vertices = resolutions.astype(np.float64) ** in_dim
        max_entries = 1 << log2_hashmap_size
        sizes = np.minimum(np.ceil(np.minimum(vertices, 2**40) / 8) * 8, max_entries).astype(
            np.int64
        )
        dense = vertices <= max_entries
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        strides = resolutions[:, None] ** np.arange(in_dim)[None, :]
        strides[~dense] = 0  # hashed levels never use them (and they could overflow)

        # Corner c of a cell adds bit k of c along axis k: [2^d, d].
        corners = (torch.arange(1 << in_dim)[:, None] >> torch.arange(in_dim)) & 1

        self.register_buffer(
            "scales", torch.from_numpy(scales.astype(np.float32)), persistent=False
        )
        self.register_buffer("resolutions", torch.from_numpy(resolutions), persistent=False)
        self.register_buffer("table_sizes", torch.from_numpy(sizes), persistent=False)
        self.register_buffer("offsets", torch.from_numpy(offsets), persistent=False)
        self.register_buffer("dense", torch.from_numpy(dense), persistent=False)
        self.register_buffer("strides", torch.from_numpy(strides), persistent=False)
        self.register_buffer(
            "primes", torch.tensor(PRIMES[:in_dim], dtype=torch.int64), persistent=False
        )
        self.register_buffer("corner_offsets", corners, persistent=False)
        self.register_buffer("_lower_upper", torch.tensor([0, 1]), persistent=False)
        self.n_dense = int(dense.sum())  # resolutions grow, so the dense levels come first
        self._plans: dict = {}

    @property
    def num_entries(self) -> int:
        """Rows of the table all levels share (the sum of the per-level sizes)."""
        return int(self.table_sizes.sum())

    def level_slices(self) -> list[slice]:
        """Row range of each level in the shared table."""
        return [
            slice(int(o), int(o) + int(s))
            for o, s in zip(self.offsets.tolist(), self.table_sizes.tolist(), strict=True)
        ]

    def corners(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Table rows and d-linear weights of the cell corners around each point.

        ``coords``: ``[N, d]`` in ``[-1, 1]``. Returns ``indices`` (int64) and
        ``weights`` (coords' dtype), both ``[N, L, 2^d]``; ``indices`` point
        into the shared table (level offsets included).
        """
        u = (coords + 1) * 0.5
        pos = u[:, None, :] * self.scales[:, None] + 0.5  # [N, L, d]
        cell = torch.floor(pos)
        frac = pos - cell
        # Each axis contributes one of two terms to a corner (its lower or upper
        # vertex), so work per axis on [N, L, d, 2] and combine per corner.
        vertex = cell.long()[..., None] + self._lower_upper  # [N, L, d, 2]
        n_dense = self.n_dense
        parts = []
        if n_dense:
            terms = vertex[:, :n_dense] * self.strides[:n_dense, :, None]
            index = self._per_corner(terms, torch.add)
            parts.append(index % self.table_sizes[:n_dense, None])
        if n_dense < self.n_levels:  # hashed levels: tables of exactly 2^T rows
            terms = (vertex[:, n_dense:] * self.primes[:, None]) & _UINT32
            index = self._per_corner(terms, torch.bitwise_xor)
            parts.append(index & ((1 << self.log2_hashmap_size) - 1))
        indices = torch.cat(parts, dim=1) + self.offsets[:, None]
        weights = self._per_corner(torch.stack((1 - frac, frac), dim=-1), torch.mul)
        return indices, weights

    @staticmethod
    def _per_corner(terms: torch.Tensor, combine) -> torch.Tensor:
        """``terms [N, L, d, 2]`` (lower, upper term per axis) → ``[N, L, 2^d]``, combining
        the axes' terms of every corner with ``combine``; bit k of the corner number
        picks axis k's upper term."""
        out = terms[:, :, 0, :]
        for k in range(1, terms.shape[2]):
            out = combine(out[:, :, None, :], terms[:, :, k, :, None]).flatten(2)
        return out

    @staticmethod
    def interpolate(
        table: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Gather rows of ``table`` ([entries, F]) and blend them: ``[N, L, F]``."""
        rows = table.index_select(0, indices.reshape(-1)).view(*indices.shape, table.shape[-1])
        return (rows * weights[..., None]).sum(-2)

    # -- full regular grids (separable interpolation) ---------------------------------

    def axis_cells(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-axis factors of :meth:`corners` for coordinates ``x [n]`` of one axis:
        lower lattice vertex (int64) and fractional offset, both ``[n, L]``."""
        pos = ((x + 1) * 0.5)[:, None] * self.scales + 0.5
        cell = torch.floor(pos)
        return cell.long(), pos - cell

    def lattice_rows(self, level: int, vertices: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Table rows of lattice vertices of a level: int64 ``[n_0, ..., n_{d-1}]`` for the
        vertex numbers ``vertices[k]`` along axis k (default: all of ``0..res``, where
        ``res`` is the upper corner of the last cell)."""
        if vertices is None:
            everything = torch.arange(int(self.resolutions[level]) + 1, device=self.scales.device)
            vertices = [everything] * self.in_dim
        shapes = [[-1 if j == k else 1 for j in range(self.in_dim)] for k in range(self.in_dim)]
        if bool(self.dense[level]):
            terms = [(v * self.strides[level, k]).view(shapes[k]) for k, v in enumerate(vertices)]
            rows = sum(terms[1:], terms[0]) % self.table_sizes[level]
        else:
            terms = [((v * self.primes[k]) & _UINT32).view(shapes[k]) for k, v in enumerate(vertices)]
            rows = terms[0]
            for term in terms[1:]:
                rows = rows ^ term
            rows = rows & ((1 << self.log2_hashmap_size) - 1)
        return rows + self.offsets[level]

    def grid_plan(
        self, shape: tuple[int, ...], first: slice | torch.Tensor | None = None
    ) -> list[tuple[torch.Tensor, ...]]:
        """What :meth:`interpolate_grid` needs per level for a grid ``shape`` (restricted
        along axis 0 to the slice or int64 indices ``first``), cached: the table rows of
        the lattice vertices the grid touches, and per axis the positions of each
        sample's two vertices among them and its weight."""
        pick: torch.Tensor | slice
        if isinstance(first, torch.Tensor):
            pick = first.to(torch.long)
            key_first = tuple(pick.tolist())
        else:
            rows = slice(*(first or slice(None)).indices(int(shape[0])))
            pick, key_first = rows, (rows.start, rows.stop, rows.step)
        key = (tuple(int(n) for n in shape), key_first, self.scales.device)
        if key in self._plans:
            return self._plans[key]
        from inrkit.datasets.grids import axis_coords

        coords = [axis_coords(int(n), self.scales.device, self.scales.dtype) for n in shape]
        axes = [self.axis_cells(x) for x in [coords[0][pick], *coords[1:]]]
        plan = []
        for level in range(self.n_levels):
            vertices, per_axis = [], []
            for cell, frac in axes:
                c = cell[:, level]
                used, where = torch.unique(torch.cat((c, c + 1)), sorted=True, return_inverse=True)
                vertices.append(used)
                per_axis += [where[: len(c)], where[len(c) :], frac[:, level]]
            plan.append((self.lattice_rows(level, vertices), *per_axis))
        self._plans = {key: plan}  # keep one: the shape being trained on
        return plan

    def interpolate_grid(
        self, table: torch.Tensor, shape: tuple[int, ...], first: slice | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Features of every sample centre of a grid ``shape`` (or of the part ``first``
        along its axis 0, a slice or int64 indices): ``[*shape, L, F]``.

        The same function as :meth:`corners` + :meth:`interpolate` on
        :func:`~inrkit.datasets.grids.coordinate_grid` (equal up to float
        rounding), computed separably: the lattice vertices the grid touches are
        gathered once per level and interpolated along the last axis, then along
        each axis before it. For a full image this reads each vertex once instead
        of each pixel's ``2^d`` corners at every level, which makes full-image
        training several times faster on a CPU.
        """
        d = self.in_dim
        if len(shape) != d:
            raise InputError(f"interpolate_grid takes a {d}-D grid on a {d}-D hash grid, got {shape}")
        levels = []
        for rows, *per_axis in self.grid_plan(shape, first):
            values = table.index_select(0, rows.reshape(-1)).view(*rows.shape, -1)
            for axis in reversed(range(d)):
                lower, upper, frac = per_axis[3 * axis : 3 * axis + 3]
                frac = frac.view([-1] + [1] * (d - axis))  # over the later axes and F
                values = torch.lerp(values.index_select(axis, lower), values.index_select(axis, upper), frac)
            levels.append(values)
        return torch.stack(levels, dim=d)

    def extra_repr(self) -> str:
        res = self.resolutions.tolist()
        n_dense = int(self.dense.sum())
        return (
            f"in_dim={self.in_dim}, levels={self.n_levels} (resolutions {res[0]}..{res[-1]}, "
            f"{n_dense} dense), table=2^{self.log2_hashmap_size}, b={self.per_level_scale:.4f}"
        )


class HashEncoding(nn.Module):
    """Instant-NGP's multiresolution hash encoding: ``[N, d] -> [N, L*F]``.

    ``implementation``: ``"torch"`` always works; ``"tcnn"`` uses
    tiny-cuda-nn's fused kernel (needs ``tinycudann``, CUDA and d = 2 or 3);
    ``"auto"`` takes tiny-cuda-nn when it is usable and the table lives on a
    CUDA device, PyTorch otherwise. Both paths read the same ``table``
    parameter.
    """

    def __init__(
        self,
        in_dim: int = 2,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 15,
        base_resolution: int = 16,
        finest_resolution: int = 1024,
        implementation: str = "auto",
    ):
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise InputError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        if n_features_per_level < 1:
            raise InputError(f"n_features_per_level must be >= 1, got {n_features_per_level}")
        self.grid = MultiresGrid(
            in_dim, n_levels, log2_hashmap_size, base_resolution, finest_resolution
        )
        self.n_features_per_level = n_features_per_level
        self.table = nn.Parameter(torch.empty(self.grid.num_entries, n_features_per_level))
        nn.init.uniform_(self.table, -1e-4, 1e-4)

        self._tcnn: tuple = ()  # the tiny-cuda-nn module, kept out of the module tree
        use_tcnn = implementation == "tcnn" or (
            implementation == "auto" and _tcnn_available() and in_dim > 1
        )
        if use_tcnn:
            self._tcnn = (self._make_tcnn(),)
        self.implementation = "tcnn" if use_tcnn else "torch"

    @property
    def output_dim(self) -> int:
        return self.grid.n_levels * self.n_features_per_level

    def _make_tcnn(self):
        if self.grid.in_dim == 1:
            raise InputError(
                "implementation='tcnn': tiny-cuda-nn's grid encoding takes 2-D or 3-D inputs only"
            )
        if self.n_features_per_level not in (1, 2, 4, 8):
            raise InputError("implementation='tcnn': n_features_per_level must be 1, 2, 4 or 8")
        if not torch.cuda.is_available():
            raise InputError(
                "implementation='tcnn' needs CUDA, which is not available; use 'torch' or 'auto'"
            )
        try:
            import tinycudann as tcnn
        except Exception as error:
            raise InputError(
                f"implementation='tcnn' needs the tinycudann package, which does not import ({error}); "
                "use 'torch' or 'auto'"
            ) from None
        module = tcnn.Encoding(
            n_input_dims=self.grid.in_dim,
            encoding_config={
                "otype": "HashGrid",
                "n_levels": self.grid.n_levels,
                "n_features_per_level": self.n_features_per_level,
                "log2_hashmap_size": self.grid.log2_hashmap_size,
                "base_resolution": self.grid.base_resolution,
                "per_level_scale": self.grid.per_level_scale,
            },
            dtype=torch.float32,
        )
        if module.params.numel() != self.table.numel():
            raise InputError(
                f"tiny-cuda-nn allocated {module.params.numel()} grid parameters, the PyTorch layout "
                f"{self.table.numel()}; this tinycudann version uses another table layout"
            )
        del module._parameters["params"]  # it reads our table instead, see forward()
        return module

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """``coords [..., d]`` in ``[-1, 1]`` → features ``[..., L*F]``, level after level."""
        lead = coords.shape[:-1]
        flat = coords.reshape(-1, self.grid.in_dim)
        if self._tcnn and self.table.is_cuda:
            module = self._tcnn[0]
            module.params = self.table.view(-1)
            features = module(((flat + 1) * 0.5).float().contiguous()).to(coords.dtype)
        else:
            indices, weights = self.grid.corners(flat)
            features = self.grid.interpolate(self.table, indices, weights)
        return features.reshape(*lead, self.output_dim)


@register_field("hashgrid")
class HashGridField(Field):
    """Hash encoding followed by a bias-free ReLU MLP with a linear output layer."""

    name = "hashgrid"
    default_lr = 1e-2
    optimizer_kwargs = {"betas": (0.9, 0.99), "eps": 1e-15}

    @dataclass
    class Config:
        in_dim: int = 2
        out_channels: int = 3
        n_levels: int = 16
        n_features_per_level: int = 2
        log2_hashmap_size: int = 15
        base_resolution: int = 16
        finest_resolution: int = 1024
        mlp_width: int = 64
        mlp_depth: int = 2  # hidden layers
        implementation: str = "auto"

    def __init__(self, config: Config):
        super().__init__(config)
        c = config
        if c.out_channels < 1 or c.mlp_width < 1 or c.mlp_depth < 0:
            raise InputError(
                f"hashgrid needs out_channels >= 1, mlp_width >= 1, mlp_depth >= 0; got "
                f"{c.out_channels}, {c.mlp_width}, {c.mlp_depth}"
            )
        self.encoding = HashEncoding(
            c.in_dim,
            c.n_levels,
            c.n_features_per_level,
            c.log2_hashmap_size,
            c.base_resolution,
            c.finest_resolution,
            c.implementation,
        )
        widths = [self.encoding.output_dim] + [c.mlp_width] * c.mlp_depth + [c.out_channels]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            linear = nn.Linear(n_in, n_out, bias=False)
            nn.init.xavier_uniform_(linear.weight)
            layers.append(linear)
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
        self.mlp = nn.Sequential(*layers)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoding(coords))
