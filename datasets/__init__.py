"""inrkit.datasets: media I/O, the Signal type and coordinate grids."""

from .grids import axis_coords, coordinate_grid
from .signal import Signal

__all__ = ["Signal", "axis_coords", "coordinate_grid"]
