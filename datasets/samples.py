"""Sample media that installed packages ship, for the demo and the unit tests.

No network: the default photograph is Grace Hopper's portrait
(``grace_hopper.jpg``, 512×600 RGB JPEG) from matplotlib's bundled sample data.
"""

from __future__ import annotations

from pathlib import Path

from inrkit.errors import InputError

from .image import read_image
from .signal import Signal


def sample_image_path() -> Path:
    """Path of the default sample photograph shipped with matplotlib."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise InputError(f"matplotlib's sample photograph is missing: expected {path}")
    return path


def load_sample_image(crop: tuple[int, int, int, int] | None = None) -> Signal:
    """The sample photograph as a 3×H×W image Signal, optionally cropped to
    ``crop = (top, left, height, width)`` (which must lie inside the 600×512 (H×W) picture)."""
    signal = read_image(sample_image_path())
    if crop is None:
        return signal
    _, height, width = signal.data.shape
    try:
        top, left, h, w = (int(v) for v in crop)
    except (TypeError, ValueError):
        raise InputError(f"crop: expected (top, left, height, width), got {crop!r}") from None
    if top < 0 or left < 0 or h < 1 or w < 1 or top + h > height or left + w > width:
        raise InputError(
            f"crop: expected (top, left, height, width) inside the {height}×{width} sample image, got {crop!r}"
        )
    signal.data = signal.data[:, top : top + h, left : left + w].contiguous()
    signal.meta["crop"] = (top, left, h, w)
    return signal
