"""``inrkit demo``: the whole pipeline on the photograph matplotlib ships.

Load Grace Hopper's portrait (512×600 RGB, no download), fit and encode it with one of
inrkit's image codecs on a step budget (so the result does not depend on the machine's
load), decode the file, and put JPEG, WebP and AVIF beside it at the same file size
(each at its largest quality whose file is no larger). It prints one line per codec
(bytes, bpp, PSNR, seconds) and writes the ``.inrk`` file, the decoded PNG and one PNG
with the four decoded images side by side, in that order, to ``out_dir``.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from inrkit import api
from inrkit.codecs.classical import ClassicalCodec
from inrkit.codecs.specs import check_inrk_codec, make_codec
from inrkit.datasets.files import output_folder
from inrkit.datasets.samples import sample_image_path
from inrkit.datasets.signal import Signal

REFERENCES = ("jpeg", "webp", "avif")
"""The classical codecs the demo puts beside inrkit's, at the same file size."""


def run_demo(out_dir: Path, codec: str = "hashgrid", seconds: float | None = None, seed: int = 0,
             bpp: float = 1.0, steps: int | None = None) -> list[dict]:
    """Run the demo; returns one row per codec (``codec``, ``bytes``, ``bpp``, ``psnr``,
    ``encode_seconds``, ``decode_seconds``), inrkit's first.

    Raises:
        InputError: a codec that does not write ``.inrk`` images, or an unusable ``out_dir``
            (both before any work).
    """
    from inrkit.eval.metrics import image_metrics

    check_inrk_codec(codec, "image")
    out_dir = output_folder(out_dir)
    source = sample_image_path()
    image = api.load(source)
    print(f"sample: {source.name} {tuple(image.data.shape)} (from matplotlib's bundled data)")

    start = time.perf_counter()
    data = api.encode(image, codec, bpp=bpp, steps=steps, time_budget=seconds, seed=seed,
                      progress=True)
    encode_seconds = time.perf_counter() - start
    inrk_path = api.save(data, out_dir / "grace_hopper.inrk")
    start = time.perf_counter()
    restored = api.decode(inrk_path)
    decode_seconds = time.perf_counter() - start
    png_path = api.save(restored, out_dir / "grace_hopper_decoded.png")
    rows = [_row(codec, data, image, restored, encode_seconds, decode_seconds, image_metrics)]

    decoded = [restored]
    for name in REFERENCES:
        reference = make_codec(name)
        assert isinstance(reference, ClassicalCodec)  # REFERENCES are classical codecs
        start = time.perf_counter()
        _, ref_data = reference.find_quality(image, 8 * len(data) / image.num_samples)
        ref_encode = time.perf_counter() - start
        start = time.perf_counter()
        ref_restored = reference.decode(ref_data)
        rows.append(_row(name, ref_data, image, ref_restored, ref_encode, time.perf_counter() - start,
                         image_metrics))
        decoded.append(ref_restored)
    row_of_images = Signal(torch.cat([d.data for d in decoded], dim=-1), "image")  # C×H×(4W)
    side_by_side = api.save(row_of_images, out_dir / "grace_hopper_side_by_side.png")

    for row in rows:
        print(f"{row['codec']:>9}: {row['bytes']:6d} bytes, {row['bpp']:.3f} bpp, PSNR {row['psnr']:.2f} dB, "
              f"encode {row['encode_seconds']:.1f} s, decode {row['decode_seconds']:.2f} s")
    print(f"wrote {inrk_path}, {png_path} and {side_by_side} ({codec}, {', '.join(REFERENCES)}, "
          "left to right)")
    return rows


def _row(codec, data, image, restored, encode_seconds, decode_seconds, image_metrics) -> dict:
    return {"codec": codec, "bytes": len(data), "bpp": 8 * len(data) / image.num_samples,
            "psnr": image_metrics(image, restored)["psnr-rgb"], "encode_seconds": encode_seconds,
            "decode_seconds": decode_seconds}
