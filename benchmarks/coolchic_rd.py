"""The coolchic codec beside the classical codecs and inrkit's other image codecs, in one sweep.

Every codec encodes the same images at ``--points`` rates on this machine
(:func:`inrkit.eval.rd.sweep`: resumable, CompressAI JSON per codec under ``--out``, a
summary with tables and BD-rates); this script adds BD-rate and BD-PSNR of every codec
against WebP and AVIF and prints them, with encode and decode seconds and coolchic's
MAC per pixel. Default: kodim07 and riaphotographs_500, coolchic at its default preset
and budget against JPEG, WebP, AVIF, HEVC-intra 4:4:4, SHACIRA and the SIREN weight codec.

Usage::

    python benchmarks/coolchic_rd.py                                  # the full run (hours)
    python benchmarks/coolchic_rd.py --images kodim07.png --codecs coolchic,jpeg,webp,avif
    python benchmarks/coolchic_rd.py --codecs coolchic:preset=2000,avif --time 3600
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from common import RESULTS, media

from inrkit.codecs.specs import parse_spec
from inrkit.eval.bdrate import bd_quality, bd_rate
from inrkit.eval.rd import spec_folder, sweep
from inrkit.eval.results import write_json
from inrkit.inr.latents.coolchic import mac_per_pixel
from inrkit.inr.latents.coolchic import preset as preset_config

DEFAULT_CODECS = "coolchic,jpeg,webp,avif,hevc,shacira,siren"


def _signed(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:+.2f}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="images/kodim07.png,images/riaphotographs_500.png",
                        help="comma-separated files of the media folder")
    parser.add_argument("--codecs", default=DEFAULT_CODECS, help="comma-separated codec specs")
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--time", type=float, default=None, help="seconds per encode for fitting codecs")
    parser.add_argument("--steps", type=int, default=None, help="steps per encode for fitting codecs")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "coolchic_rd"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    images = media(*[name if "/" in name else f"images/{name}" for name in args.images.split(",")])
    codecs = [c for c in args.codecs.split(",") if c]
    report = sweep([str(p) for p in images], codecs, args.out, points=args.points, jobs=args.jobs,
                   steps=args.steps, time_budget=args.time, anchor="webp" if "webp" in codecs else None)
    docs = {spec: json.loads(report.results[spec].read_text()) for spec in codecs}
    rows = []
    for spec, doc in docs.items():
        r = doc["results"]
        row = {"codec": spec, "bpp": r["bpp"], "psnr": r["psnr-rgb"],
               "encode_s": sum(r["encoding_time"]) / len(r["encoding_time"]),
               "decode_s": sum(r["decoding_time"]) / len(r["decoding_time"])}
        for anchor in ("webp", "avif"):
            if anchor in docs and anchor != spec:
                a = docs[anchor]["results"]
                row[f"bd_rate_vs_{anchor}"] = bd_rate(a["bpp"], a["psnr-rgb"], r["bpp"], r["psnr-rgb"]).value
                row[f"bd_psnr_vs_{anchor}"] = bd_quality(a["bpp"], a["psnr-rgb"], r["bpp"], r["psnr-rgb"]).value
        name, options = parse_spec(spec)
        if name == "coolchic":
            row["mac_per_pixel"] = round(mac_per_pixel(preset_config(options.get("preset", "1000")), (512, 768)))
        rows.append(row)
    summary = {"images": [p.name for p in images], "points": args.points, "time": args.time,
               "steps": args.steps, "rows": rows, "computed": report.computed, "reused": report.reused}
    write_json(f"{args.out}/coolchic_rd_summary.json", summary)
    print(f"{'codec':<24}{'BD-rate vs WebP':>16}{'vs AVIF':>10}{'BD-PSNR vs AVIF':>17}{'enc s':>9}{'dec s':>8}")
    for row in rows:
        cells = [_signed(row.get(k), u) for k, u in (("bd_rate_vs_webp", "%"), ("bd_rate_vs_avif", "%"),
                                                     ("bd_psnr_vs_avif", " dB"))]
        print(f"{row['codec']:<24}{cells[0]:>16}{cells[1]:>10}{cells[2]:>17}"
              f"{row['encode_s']:>9.1f}{row['decode_s']:>8.2f}")
    print(f"\nper-codec JSON in {args.out} ({', '.join(spec_folder(s) + '.json' for s in codecs)}); "
          f"summary {args.out}/coolchic_rd_summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
