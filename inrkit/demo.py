"""``inrkit demo``: the whole pipeline on the photograph matplotlib ships.

Load Grace Hopper's portrait (512×600 RGB, no download), fit and encode it
with a coordinate-network codec, decode the file, and report PSNR, bpp and
time; the reconstruction and the ``.inrk`` file are written to ``out_dir``.
"""

from __future__ import annotations

import time
from pathlib import Path

from inrkit import api
from inrkit.codecs.specs import check_inrk_codec
from inrkit.datasets.files import output_folder
from inrkit.datasets.samples import sample_image_path


def run_demo(out_dir: Path, codec: str = "hashgrid", seconds: float | None = None, seed: int = 0,
             bpp: float = 1.0, steps: int | None = None) -> dict:
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

    result = {
        "codec": codec,
        "bpp": 8 * len(data) / image.num_samples,
        "bytes": len(data),
        "psnr": image_metrics(image, restored)["psnr-rgb"],
        "encode_seconds": encode_seconds,
        "decode_seconds": decode_seconds,
    }
    print(
        f"{codec}: {result['bpp']:.3f} bpp ({result['bytes']} bytes), PSNR {result['psnr']:.2f} dB, "
        f"encode {encode_seconds:.1f} s, decode {decode_seconds:.2f} s"
    )
    print(f"wrote {inrk_path} and {png_path}")
    return result
