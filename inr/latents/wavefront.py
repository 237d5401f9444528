"""Wavefront decoding of a latent pyramid with the integer ARM.

References:
    Ladune et al., "COOL-CHIC: Coordinate-based Low Complexity Hierarchical Image Codec", ICCV 2023.
    Leguay et al., "Low-complexity Overfitted Neural Image Codec", MMSP 2023 (integer ARM decoder).
    Kim et al., "C3: High-performance and low-complexity neural compression from a single image
    or video", CVPR 2024.

A latent can be decoded once all its causal neighbours are. With integer weights ``c`` such that
``c . o <= -1`` for every context offset ``o`` (for rank 2, ``t = x + a*y`` where ``a`` exceeds the
neighbourhood's reach to the right per row above: ``a = 2, 3, 4, 5`` for Cool-chic's 8, 16, 24,
32-context masks), every latent of wavefront ``t = c . p`` depends only on wavefronts ``< t``. The
decoder decodes one wavefront per step: one batched ``IntegerArm`` call and one call of the
entropy decoder (``inrkit.codecs.bitstream.laplace.LaplaceDecoder.decode``, one rANS
``decode_stream``). Levels are independent (same-level contexts, shared ARM), so step ``t``
decodes wavefront ``t`` of *every* level at once: the number of steps is that of the finest
level, ``W + a (H - 1)``.

The encoder knows the whole pyramid and runs the same integer ARM on all contexts at once
(``level_parameters``); row-wise integer arithmetic makes its parameters identical to the
decoder's. Symbols are coded in the decoder's order: by wavefront, then level, then raster order.

This module is entropy-coder agnostic (the floor plan lets ``inr`` import nothing from
``codecs``): the encoder gets (values, mu, scale index) in decoding order and hands them to the
coder; the decoder takes any object with ``decode(mu_fp, scale_idx) -> values``.

Departures from Cool-chic and why: Cool-chic's C++ decoder visits latents one by one in raster
order per level (CABAC is sequential anyway); here the order is by wavefront so that numpy can
batch the ARM. The schedule is derived for grids of any rank from the offset list; only rank 2
is exercised.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from inrkit.errors import InputError
from inrkit.inr.latents.arm import IntegerArm

__all__ = [
    "LatentDecoder",
    "WavefrontSchedule",
    "build_schedule",
    "decode_levels",
    "level_parameters",
    "wavefront_weights",
]


class LatentDecoder(Protocol):
    """What ``decode_levels`` needs from an entropy decoder."""

    def decode(self, mu_fp: np.ndarray, scale_idx: np.ndarray) -> np.ndarray: ...


def wavefront_weights(offsets) -> tuple[int, ...]:
    """Smallest positive integer weights ``c`` (last one 1) with ``c . o <= -1`` for every offset.

    Raises:
        InputError: an offset that is not causal in raster order.
    """
    offsets = [tuple(int(v) for v in o) for o in offsets]
    rank = len(offsets[0])
    c = [0] * rank
    c[-1] = 1
    for o in offsets:
        first = next((i for i, v in enumerate(o) if v != 0), None)
        if first is None or o[first] > 0:
            raise InputError(f"context offset {o} is not causal in raster order")
    for d in range(rank - 2, -1, -1):
        need = 1
        for o in offsets:
            first = next(i for i, v in enumerate(o) if v != 0)
            if first == d:
                later = sum(c[e] * o[e] for e in range(d + 1, rank))
                need = max(need, later // (-o[d]) + 1)
        c[d] = need
    return tuple(c)


@dataclass(frozen=True, eq=False)
class WavefrontSchedule:
    """Decoding order of a pyramid of grids and the index arrays the decoder needs.

    All levels live in one flat zero-padded buffer whose axes after the first have a common
    padded extent, so one list of flat deltas ``rel`` reaches the contexts of any level.

    Attributes:
        shapes: grid shape of each level.
        weights: wavefront weights ``c`` (``t = c . position``).
        buffer_size: size of the flat buffer.
        level_pos: per level, the flat buffer index of each position (C order).
        order: flat buffer index of each latent, in decoding order.
        rel: ``(N,)`` flat deltas from a latent to its contexts.
        bounds: ``order[bounds[t]:bounds[t+1]]`` is step ``t``.
        raster: for each latent in decoding order, its index in the concatenation of the levels'
            C-order rasters.
    """

    shapes: tuple
    weights: tuple
    buffer_size: int
    level_pos: tuple
    order: np.ndarray
    rel: np.ndarray
    bounds: np.ndarray
    raster: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.bounds) - 1

    @property
    def n_latents(self) -> int:
        return len(self.order)

    def scatter(self, levels) -> np.ndarray:
        """Write integer grids into a fresh zero-padded flat buffer."""
        buf = np.zeros(self.buffer_size, np.int64)
        for pos, g, shape in zip(self.level_pos, levels, self.shapes, strict=True):
            g = np.asarray(g)
            if g.shape != shape:
                raise InputError(f"wavefront: level of shape {g.shape}, schedule expects {shape}")
            buf[pos] = g.astype(np.int64).reshape(-1)
        return buf

    def gather(self, buf: np.ndarray) -> list[np.ndarray]:
        """Read the grids back from a flat buffer."""
        return [buf[pos].reshape(shape) for pos, shape in zip(self.level_pos, self.shapes, strict=True)]

    def contexts_t(self, buf: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Integer contexts, feature-major ``(N, n)``, of the latents ``order[start:stop]``."""
        return buf[self.rel[:, None] + self.order[None, start:stop]]


@functools.lru_cache(maxsize=16)
def _build(shapes: tuple, offsets: tuple) -> WavefrontSchedule:
    rank = len(offsets[0])
    c = np.asarray(wavefront_weights(offsets), np.int64)
    pad = [max(abs(o[d]) for o in offsets) for d in range(rank)]
    common = [max(s[d] for s in shapes) + 2 * pad[d] for d in range(rank)]
    strides = [1] * rank
    for d in range(rank - 2, -1, -1):
        strides[d] = strides[d + 1] * common[d + 1]
    strides = np.asarray(strides, np.int64)
    rel = np.asarray([int(np.dot(np.asarray(o, np.int64), strides)) for o in offsets], np.int64)
    level_pos, t_all = [], []
    base = 0
    for shape in shapes:
        coords = np.indices(shape, dtype=np.int64).reshape(rank, -1)
        pos = base + (coords + np.asarray(pad, np.int64)[:, None]).T @ strides
        level_pos.append(pos)
        t_all.append(c @ coords)
        base += (shape[0] + 2 * pad[0]) * int(strides[0])
    t = np.concatenate(t_all)
    perm = np.argsort(t, kind="stable")  # by wavefront, then level, then raster
    t_sorted = t[perm]
    n_steps = int(t_sorted[-1]) + 1
    bounds = np.searchsorted(t_sorted, np.arange(n_steps + 1), side="left").astype(np.int64)
    return WavefrontSchedule(
        shapes=shapes,
        weights=tuple(int(v) for v in c),
        buffer_size=int(base),
        level_pos=tuple(level_pos),
        order=np.ascontiguousarray(np.concatenate(level_pos)[perm]),
        rel=rel,
        bounds=bounds,
        raster=perm.astype(np.int64),
    )


def build_schedule(shapes, offsets) -> WavefrontSchedule:
    """Cached wavefront schedule of grids ``shapes`` (a list of shape tuples) for a neighbourhood.

    Args:
        shapes: grid shape of each level (finest first), all of the offsets' rank.
        offsets: causal context offsets.

    Returns:
        The schedule.

    Raises:
        InputError: no level, an empty grid, a shape of the wrong rank, or non-causal offsets.
    """
    shapes = tuple(tuple(int(s) for s in shape) for shape in shapes)
    offsets = tuple(tuple(int(v) for v in o) for o in offsets)
    if not offsets:
        raise InputError("wavefront: no context offsets")
    if not shapes or any(len(s) != len(offsets[0]) or min(s) < 1 for s in shapes):
        raise InputError(f"wavefront: level shapes {shapes} must be non-empty, of rank {len(offsets[0])}")
    return _build(shapes, offsets)


def level_parameters(levels, iarm: IntegerArm, chunk: int = 1 << 16):
    """Encoder side: integer parameters of every latent of known grids, in decoding order.

    Args:
        levels: integer grids (finest first), of the ARM's rank.
        iarm: the integer ARM.
        chunk: latents per ARM call (bounds memory only; results do not depend on it).

    Returns:
        (schedule, values, mu_fp, scale_idx): the last three are int64 arrays in decoding order;
        code ``values[i]`` with ``(mu_fp[i], scale_idx[i])`` in that order.

    Raises:
        InputError: grids of the wrong rank or empty.
    """
    levels = [np.asarray(g) for g in levels]
    sched = build_schedule([g.shape for g in levels], iarm.offsets)
    buf = sched.scatter(levels)
    mus, ks = [], []
    for s in range(0, sched.n_latents, chunk):
        mu, k = iarm.params_t(sched.contexts_t(buf, s, s + chunk))
        mus.append(mu)
        ks.append(k)
    return sched, buf[sched.order], np.concatenate(mus), np.concatenate(ks)


def decode_levels(shapes, iarm: IntegerArm, decoder: LatentDecoder) -> list[np.ndarray]:
    """Decode latent grids wavefront by wavefront.

    Args:
        shapes: the grid shapes (finest first), as given to the encoder.
        iarm: the integer ARM the encoder used.
        decoder: the entropy decoder positioned at the first latent, e.g.
            ``laplace.LaplaceDecoder(data, n_symbols, mu_frac_bits=iarm.act_frac_bits)``.

    Returns:
        The integer grids (int64 numpy arrays).

    Raises:
        Whatever ``decoder.decode`` raises on malformed data (``BitstreamError`` for laplace's).
    """
    sched = build_schedule(shapes, iarm.offsets)
    buf = np.zeros(sched.buffer_size, np.int64)
    order, rel_col, bounds = sched.order, sched.rel[:, None], sched.bounds.tolist()
    params, decode = iarm.params_t, decoder.decode
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        o = order[s:e]
        mu, k = params(buf[rel_col + o])
        buf[o] = decode(mu, k)
    return sched.gather(buf)
