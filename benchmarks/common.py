"""What the benchmarks share: where the repository, its results and the media are.

``ROOT`` is the repository; ``RESULTS`` is ``benchmarks/results``; the media come from
``$INRKIT_DATA`` or ``../shared/data`` beside the repository (see its README).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def data_root() -> Path:
    """The benchmark media folder: ``$INRKIT_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("INRKIT_DATA", ROOT.parent / "shared" / "data"))


def media(*names: str) -> list[Path]:
    """Files of the media folder by relative name; a missing one exits with a clear message."""
    paths = [data_root() / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"benchmark media not found: {', '.join(missing)} (set INRKIT_DATA)")
    return paths
