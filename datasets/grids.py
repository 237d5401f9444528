"""Coordinate grids for 1-D, 2-D and 3-D signals.

Convention: coordinates lie in ``[-1, 1]`` and sit at **sample centres**,
``x_i = (2i + 1) / n - 1`` for ``i = 0..n-1`` (the ``align_corners=False``
convention of ``torch.nn.functional.grid_sample``). Departure from SIREN's
reference code, which uses ``linspace(-1, 1, n)``: with centres, a grid of
``2n`` samples interleaves the grid of ``n``, so rendering a field on a finer
grid is a faithful super-resolution of the same continuous signal.
Axis order follows the signal's layout: ``(y, x)`` for images, ``(t, y, x)``
for video, ``(t,)`` for audio.
"""

from __future__ import annotations

import torch


def axis_coords(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The ``n`` sample-centre coordinates of one axis, in ``(-1, 1)``."""
    return (torch.arange(n, device=device, dtype=dtype) * 2 + 1) / n - 1


def coordinate_grid(shape: tuple[int, ...], device=None, dtype=torch.float32) -> torch.Tensor:
    """Coordinates of every sample of a grid: a tensor ``[*shape, len(shape)]``."""
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"coordinate grids are 1-D, 2-D or 3-D, got shape {shape}")
    axes = [axis_coords(int(n), device, dtype) for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh, dim=-1)
