"""Image rate–distortion benchmark: INR weight codecs against JPEG and WebP.

On one image (default ``kodim07.png`` from ``$INRKIT_DATA`` or
``../shared/data``), every codec is asked for the same bpp targets in the same
process; rate is measured from the bytes, quality on the decoded 8-bit image.
Writes one CompressAI-format JSON per codec under ``--out`` plus
``summary.json`` (with the weight codecs' PSNR before and after quantization),
and prints a table.

    python benchmarks/image_rd.py --time 120
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from inrkit import api
from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.eval.metrics import image_metrics
from inrkit.eval.results import make_results, write_json
from inrkit.eval.round_trip import round_trip

INR_CODECS = ("siren", "spder", "polyinr", "fourier", "hashgrid")
DEFAULT_CODECS = (*INR_CODECS, "jpeg", "webp")


def data_root() -> Path:
    env = os.environ.get("INRKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=data_root() / "images" / "kodim07.png")
    parser.add_argument("--codecs", default=",".join(DEFAULT_CODECS))
    parser.add_argument("--bpp", default="0.25,0.5,1.0", help="comma-separated bpp targets")
    parser.add_argument("--time", type=float, default=120.0, help="fitting budget per encode (s)")
    parser.add_argument("--steps", type=int, default=None, help="fitting step budget per encode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/image_rd"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    image = api.load(args.image)
    targets = [float(v) for v in args.bpp.split(",")]
    options = EncodeOptions(steps=args.steps or 10**9, time_budget=args.time, seed=args.seed)
    rows: list[dict] = []
    for name in args.codecs.split(","):
        codec = api.make_codec(name)
        codec_rows = []
        for target in targets:
            result = round_trip(codec, image, Rate(bpp=target), options)
            metrics = image_metrics(image, result.decoded)
            row = {
                "codec": name, "target_bpp": target, **result.row(),
                "psnr-rgb": metrics["psnr-rgb"], "ms-ssim-rgb": metrics["ms-ssim-rgb"],
                **{f"inr_{k}": v for k, v in getattr(codec, "last_report", {}).items()},
            }
            codec_rows.append(row)
            print(f"{name:>9} target {target:<5g} bpp {row['bpp']:.4f}  PSNR {row['psnr-rgb']:6.2f} dB  "
                  f"MS-SSIM {row['ms-ssim-rgb']:.4f}  enc {row['encoding_time']:7.1f} s  "
                  f"dec {row['decoding_time']:6.2f} s", file=sys.stderr, flush=True)
        description = (f"{name} on {args.image.name}; " +
                       (f"fitting budget {args.time:g} s per encode" if name in INR_CODECS
                        else "Pillow, largest quality at or under each target"))
        write_json(args.out / f"{name}.json",
                   make_results(name, description, codec_rows, "bpp", ("psnr-rgb", "ms-ssim-rgb")))
        rows.extend(codec_rows)

    summary = {
        "image": str(args.image), "shape": list(image.data.shape), "targets_bpp": targets,
        "time_budget_s": args.time, "threads": torch.get_num_threads(), "rows": rows,
    }
    write_json(args.out / "summary.json", summary)
    print(table(rows, targets))
    return 0


def table(rows: list[dict], targets: list[float]) -> str:
    """Markdown: one row per codec, PSNR (measured bpp) per target."""
    codecs = list(dict.fromkeys(r["codec"] for r in rows))
    head = "| codec | " + " | ".join(f"{t:g} bpp" for t in targets) + " | encode s (mean) |"
    lines = [head, "|" + "---|" * (len(targets) + 2)]
    for name in codecs:
        mine = [r for r in rows if r["codec"] == name]
        cells = []
        for t in targets:
            r = next(r for r in mine if r["target_bpp"] == t)
            cells.append(f"{r['psnr-rgb']:.2f} dB ({r['bpp']:.3f})")
        mean_enc = sum(r["encoding_time"] for r in mine) / len(mine)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean_enc:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
