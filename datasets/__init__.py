"""inrkit.datasets: media I/O, the Signal type, coordinate grids and dataset folders."""

from typing import TYPE_CHECKING

from inrkit.lazy import lazy_exports

if TYPE_CHECKING:
    from .folders import list_media
    from .grids import axis_coords, coordinate_grid
    from .io import load, modality_of, save
    from .samples import load_sample_image, sample_image_path
    from .signal import Signal

_EXPORTS = {
    "list_media": ".folders",
    "axis_coords": ".grids",
    "coordinate_grid": ".grids",
    "load": ".io",
    "modality_of": ".io",
    "save": ".io",
    "load_sample_image": ".samples",
    "sample_image_path": ".samples",
    "Signal": ".signal",
}
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
__getattr__ = lazy_exports(__name__, _EXPORTS)
