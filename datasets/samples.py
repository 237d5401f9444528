"""Sample media that installed packages ship, for the demo and the unit tests.

No network: the default photograph is Grace Hopper's portrait
(``grace_hopper.jpg``, 512×600 RGB JPEG) from matplotlib's bundled sample data.
"""

from __future__ import annotations

from pathlib import Path

from inrkit.errors import InputError


def sample_image_path() -> Path:
    """Path of the default sample photograph shipped with matplotlib."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise InputError(f"matplotlib's sample photograph is missing: expected {path}")
    return path
