"""SHACIRA image variants at a fixed λ, each judged at equal rate against the default.

Every variant trains the image codec once at one λ with one change to the
architecture or to the optimisation (see :data:`VARIANTS`) and is measured from its
file. The default is trained twice in the same run, at λ = 1e-3 and 1e-4 with
tables of 2^13 (quality presets 5 and 6, about 0.42 and 0.60 bpp on kodim07), and
each variant's gain is its PSNR minus the default curve's at the variant's rate:
interpolated linearly in log-bpp between the two default points, extended along
their slope outside them (flagged ``extrapolated``, since the slope is not constant
far from them).

    python benchmarks/shacira_ablation.py [--variants all|name,...] [--jobs 2]
        [--threads 1] [--steps N] [--seed 0] [--image PATH] [--out benchmarks/results/shacira_ablation.json]

The image defaults to Kodak image 7 in ``../shared/data`` (or ``$INRKIT_DATA``).
Encode times share the machine with the other jobs of the run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.codecs.shacira import ShaciraCodec
from inrkit.datasets.io import load
from inrkit.errors import InputError
from inrkit.eval.executors import make_executor
from inrkit.eval.metrics import signal_metrics
from inrkit.eval.results import write_json

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INRKIT_DATA", ROOT.parent.parent / "shared" / "data"))
OUT = ROOT / "results" / "shacira_ablation.json"

DEFAULT_TABLE = 13
REFERENCE_POINTS = {"default@1e-3": 1e-3, "default@1e-4": 1e-4}
VARIANTS: dict[str, tuple[float, dict, dict, str]] = {
    # name: (λ, ShaciraConfig overrides, TrainConfig overrides, what it tests)
    "levels16": (1e-3, {"n_levels": 16}, {}, "16 levels (16 to 512) instead of 24"),
    "mlp32": (1e-3, {"mlp_width": 32}, {}, "MLP 32 wide instead of 16"),
    "mlp_depth1": (1e-3, {"mlp_depth": 1}, {}, "one hidden layer, as the reference's kodak.yaml (num_layers: 1)"),
    "decoder_per_level": (1e-3, {"decoder_per_level": True}, {}, "one latent decoder per level"),
    "dense12": (5e-3, {"n_levels": 12, "log2_hashmap_size": 19}, {},
                "12 dense levels (no hashing, 4.5x the latents; λ scaled to match)"),
    "dense8": (3e-3, {"n_levels": 8, "log2_hashmap_size": 19}, {},
               "8 dense levels (no hashing, 3.3x the latents; λ scaled to match)"),
    "sga70": (1e-3, {}, {"decay_period": 0.7}, "straight-through rounding from 70 % of training"),
    "latent_lr_4e-2": (1e-3, {}, {"lr_latents": 4e-2}, "latents learn at 4e-2 instead of 2e-2"),
    "latent_dim2": (1e-3, {"latent_dim": 2, "feature_dim": 2, "log2_hashmap_size": 12}, {},
                    "2 latents decoded to 2 features per entry, tables of 2^12 (same latent count)"),
    "latent_dim4": (1e-3, {"latent_dim": 4, "feature_dim": 4, "log2_hashmap_size": 11}, {},
                    "4 latents decoded to 4 features per entry, tables of 2^11 (same latent count)"),
    "lambda_flat": (1e-3, {}, {"lmbda_end_ratio": 1.0}, "λ constant instead of a cosine decay to a tenth"),
}


def encode_variant(image_path: str, lmbda: float, arch: dict, training: dict, steps: int | None,
                   seed: int, threads: int) -> dict:
    """Train, write and decode one variant; the file's bpp, PSNR and encode time."""
    torch.set_num_threads(threads)
    image = load(image_path)
    codec = ShaciraCodec(**{"log2_hashmap_size": DEFAULT_TABLE, **arch})
    codec.training = replace(codec.training, **training)
    start = time.perf_counter()
    data = codec.encode(image, Rate(lmbda=lmbda), EncodeOptions(steps=steps, seed=seed))
    seconds = time.perf_counter() - start
    decoded = ShaciraCodec().decode(data)
    return {"bpp": codec.measured_rate(image, data), "psnr-rgb": signal_metrics(image, decoded)["psnr-rgb"],
            "encode_s": seconds}


def default_psnr_at(bpp: float, low: dict, high: dict) -> tuple[float, bool]:
    """The default curve's PSNR at ``bpp`` (log-bpp line through its two points) and
    whether ``bpp`` lies outside them."""
    slope = (high["psnr-rgb"] - low["psnr-rgb"]) / math.log(high["bpp"] / low["bpp"])
    psnr = low["psnr-rgb"] + slope * math.log(bpp / low["bpp"])
    return psnr, not low["bpp"] <= bpp <= high["bpp"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="all", help=f"all, or some of {','.join(VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=2, help="encodes run at once (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per encode")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the codec's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every encode (initialisation, batches, SGA)")
    parser.add_argument("--image", type=Path, default=DATA / "images" / "kodim07.png")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not args.image.is_file():
        parser.error(f"no image at {args.image} (set --image or $INRKIT_DATA)")

    run = (args.steps, args.seed, args.threads)
    tasks = [(name, (str(args.image), lmbda, {}, {}, *run)) for name, lmbda in REFERENCE_POINTS.items()]
    tasks += [(name, (str(args.image), *VARIANTS[name][:3], *run)) for name in names]
    try:
        executor = make_executor("local", args.jobs)
    except InputError as err:
        parser.error(str(err))
    results: dict[str, dict] = {}
    try:
        for name, row in executor.run(encode_variant, tasks):
            results[name] = row
            print(f"  {name:18s} bpp {row['bpp']:.4f}  PSNR {row['psnr-rgb']:.2f} dB  enc {row['encode_s']:6.1f} s",
                  flush=True)
    finally:
        executor.close()

    low, high = results["default@1e-3"], results["default@1e-4"]
    if not high["bpp"] > low["bpp"]:
        print(f"the default points did not separate in rate ({low['bpp']:.4f} and {high['bpp']:.4f} bpp): "
              "no curve to measure gains against; train longer (--steps)", file=sys.stderr)
        return 1
    rows = []
    print(f"\n{'variant':18s} {'bpp':>7s} {'PSNR':>7s} {'gain dB':>8s}  change")
    for name in names:
        row = results[name]
        reference, outside = default_psnr_at(row["bpp"], low, high)
        gain = row["psnr-rgb"] - reference
        lmbda, arch, training, what = VARIANTS[name]
        rows.append({"variant": name, "change": what, "lmbda": lmbda, "arch": arch, "training": training,
                     **row, "gain_db": gain, "extrapolated": outside})
        print(f"{name:18s} {row['bpp']:7.4f} {row['psnr-rgb']:7.2f} {gain:+8.2f}{'*' if outside else ' '} {what}")
    print("* outside the default points: gain measured along their slope")
    write_json(args.out, {
        "image": str(args.image), "steps": args.steps, "seed": args.seed, "threads": args.threads,
        "jobs": args.jobs,
        "default": {"log2_hashmap_size": DEFAULT_TABLE, "points": {k: results[k] for k in REFERENCE_POINTS}},
        "variants": rows,
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
