"""inrkit.datasets: media I/O, the Signal type, coordinate grids and dataset folders."""

from .folders import list_media
from .grids import axis_coords, coordinate_grid
from .io import load, modality_of, save
from .samples import load_sample_image, sample_image_path
from .signal import Signal

__all__ = [
    "Signal",
    "axis_coords",
    "coordinate_grid",
    "list_media",
    "load",
    "load_sample_image",
    "modality_of",
    "sample_image_path",
    "save",
]
