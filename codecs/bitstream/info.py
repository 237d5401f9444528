"""What ``inrkit info`` reports about a ``.inrk`` file, measured from the file itself."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .container import read_file_bytes, section_sizes


def describe(path: str | Path) -> dict[str, Any]:
    """Codec, modality, shape, measured rate and bits per section of a ``.inrk`` file.

    The rate is the file's size in bits divided by pixels (per frame for video:
    pixels × frames) or, for audio, by the duration in kilobits per second.
    """
    path = Path(path)
    data, container = read_file_bytes(path)
    meta = container.signal_meta()
    shape = [int(v) for v in container.shape]
    bits = 8 * len(data)
    report: dict[str, Any] = {
        "file": str(path),
        "codec": container.codec,
        "codec_version": container.codec_version,
        "encoder": f"inrkit {container.encoder_version}",
        "modality": container.modality,
        "shape": shape,
        "bytes": len(data),
    }
    if container.modality == "audio":
        seconds = shape[-1] / float(meta["sample_rate"]) if meta.get("sample_rate") else math.nan
        report["sample_rate"] = meta.get("sample_rate")
        report["kbps"] = round(bits / seconds / 1000, 4) if seconds == seconds else None
    else:
        pixels = shape[-1] * shape[-2] * (shape[0] if container.modality == "video" else 1)
        report["bpp"] = round(bits / pixels, 6)
        if container.modality == "video":
            report["frame_rate"] = meta.get("frame_rate")
    report["bit_depth"] = meta.get("bit_depth")
    report["bits_per_section"] = section_sizes(data)
    return report
