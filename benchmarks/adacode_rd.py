"""Rate–distortion of M-AdaCode (m = 1..K) beside JPEG and WebP at matched bpp.

Trains (unless the model file exists) ``inrkit train adacode`` on
``images/train`` under a wall-clock budget, then codes the held-out images
``kodim07`` and ``riaphotographs_500`` at every ``m``, and JPEG and WebP at the bpp
each ``m`` measured (``Rate(bpp=...)``; every rate is measured from the file, header
included). Writes CompressAI JSON per image and codec to
``benchmarks/results/adacode_<image>_<codec>.json``, a summary with the training
record and BD numbers to ``benchmarks/results/adacode_summary.json`` (or both under
``--out DIR``: a run with another model should name its own folder), and prints a
table.

    python benchmarks/adacode_rd.py [--model benchmarks/models/adacode_k4.safetensors]
        [--train-time 2400] [--crop 96] [--threads 1] [--images kodim07,riaphotographs_500]
        [--out benchmarks/results]

Data are read from ``../shared/data`` relative to the repository, or from
``$INRKIT_DATA``. Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from inrkit.codecs.base import Rate
from inrkit.datasets.io import load
from inrkit.eval.bdrate import bd_quality, bd_rate
from inrkit.eval.metrics import signal_metrics
from inrkit.eval.results import IMAGE_METRICS, make_results, write_json
from inrkit.eval.round_trip import round_trip
from inrkit.inr.model_files import read_metadata
from inrkit.registry import CODECS

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INRKIT_DATA", ROOT.parent.parent / "shared" / "data"))
OUT = ROOT / "results"


def train(model: Path, seconds: float, crop: int, threads: int) -> None:
    from inrkit.inr.train.adacode import main as train_main

    argv = [
        "--data", str(DATA / "images" / "train"), "--out", str(model), "--crop", str(crop),
        "--time", str(seconds), "--stage1-steps", "1000", "--stage2-steps", "2500",
        "--threads", str(threads), "--no-progress",
    ]  # fmt: skip
    print("training:", "inrkit train adacode", " ".join(argv), flush=True)
    train_main(argv)


def point(codec, signal, rate: Rate) -> dict:
    result = round_trip(codec, signal, rate)
    return {**result.row(), **signal_metrics(signal, result.decoded), "rate": str(rate)}


def compare(anchor: list[dict], test: list[dict]) -> dict:
    """BD-rate and BD-PSNR of ``test`` against ``anchor`` (value None with a note if undefined)."""
    curves = ([r["bpp"] for r in anchor], [r["psnr-rgb"] for r in anchor],
              [r["bpp"] for r in test], [r["psnr-rgb"] for r in test])  # fmt: skip
    return {"bd-rate-psnr %": vars(bd_rate(*curves)), "bd-psnr dB": vars(bd_quality(*curves))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "adacode_k4.safetensors")
    parser.add_argument("--train-time", type=float, default=2400.0, help="seconds, if training")
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", default="kodim07,riaphotographs_500")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON files")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if not args.model.is_file():
        args.model.parent.mkdir(parents=True, exist_ok=True)
        train(args.model, args.train_time, args.crop, args.threads)
    training = json.loads(read_metadata(args.model).get("training", "{}"))
    config = json.loads(read_metadata(args.model)["config"])
    adacode = CODECS.get("adacode")(model=args.model)
    summary = {"model": args.model.name, "config": config,
               "training": training, "images": {}}  # fmt: skip
    print(
        f"model: {config['codebooks']} codebooks × {config['codebook_size']}, widths "
        f"{config['widths']}; trained {training.get('stage1_steps')} + "
        f"{training.get('stage2_steps')} steps in {training.get('seconds')} s"
    )

    lines = [
        f"{'image':20s} {'codec':8s} {'rate':12s} {'bpp':>7s} {'PSNR':>7s} {'MS-SSIM':>8s} "
        f"{'enc s':>7s} {'dec s':>7s}"
    ]
    for name in args.images.split(","):
        signal = load(DATA / "images" / f"{name}.png")
        rows = {"adacode": [point(adacode, signal, r) for r in adacode.ladder(config["codebooks"])]}
        for other in ("jpeg", "webp"):
            codec = CODECS.get(other)()
            rows[other] = [point(codec, signal, Rate(bpp=row["bpp"])) for row in rows["adacode"]]
        bd = {other: compare(rows[other], rows["adacode"]) for other in ("jpeg", "webp")}
        for codec_name, points in rows.items():
            desc = (
                f"{codec_name} on {name} ({signal.source}); inrkit benchmarks/adacode_rd.py; "
                + (
                    f"model trained {training.get('seconds')} s on images/train"
                    if codec_name == "adacode"
                    else "rate targets = the bpp of each adacode point"
                )
            )
            doc = make_results(codec_name, desc, points, "bpp", IMAGE_METRICS)
            if codec_name == "adacode":
                doc["training"] = training
            write_json(args.out / f"adacode_{name}_{codec_name}.json", doc)
            for r in sorted(points, key=lambda r: r["bpp"]):
                lines.append(
                    f"{name:20s} {codec_name:8s} {r['rate']:12s} {r['bpp']:7.4f} {r['psnr-rgb']:7.2f} "
                    f"{r['ms-ssim-rgb']:8.4f} {r['encoding_time']:7.2f} {r['decoding_time']:7.2f}"
                )
        summary["images"][name] = {"points": rows, "adacode_vs": bd}
        for other, values in bd.items():
            lines.append(
                f"{name:20s} adacode vs {other}: BD-rate (PSNR) "
                f"{_fmt(values['bd-rate-psnr %'], '%')}, BD-PSNR {_fmt(values['bd-psnr dB'], ' dB')}"
            )
    write_json(args.out / "adacode_summary.json", summary)
    print("\n".join(lines))
    return 0


def _fmt(result: dict, unit: str) -> str:
    if result["value"] is not None:
        return f"{result['value']:+.2f}{unit}"
    return f"n/a ({result['note']})" if result["note"] else "n/a"


if __name__ == "__main__":
    sys.exit(main())
