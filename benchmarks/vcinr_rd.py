"""VC-INR rate–distortion on held-out images and audio, beside classical and weight codecs.

One run (1) trains an image and an audio VC-INR model on ``$INRKIT_DATA/images/train``
and ``$INRKIT_DATA/audio/train`` within wall-clock budgets (skipped when the model
file exists, unless ``--retrain``), (2) encodes the held-out items at every λ of the
model, (3) encodes them with the baselines at matched rates: JPEG and WebP at VC-INR's
measured bpp and the ``siren`` weight codec (``EncodeOptions(time_budget=--siren-time)``)
at three of them for images; MP3 (32/48/64 kbps, its lowest rates) and ``siren-audio``
at VC-INR's kbps for audio, and (4) writes CompressAI-style JSON per item and codec
(``benchmarks/results/vcinr_<item>_<codec>.json``) and ``vcinr_summary.json`` (training
time and losses, every point), and prints a table. Rates are measured file sizes;
quality is measured on the decoded file (8-bit images, 16-bit audio).

    python benchmarks/vcinr_rd.py [--modalities image,audio] [--image-time 1380] [--audio-time 1000]
        [--retrain] [--siren-time 60] [--encode-steps N] [--refine-time S] [--variant NAME]

``--refine-time S`` adds a second VC-INR curve, ``vcinr-refined``: the same model and
λs, each encode spending about ``S`` seconds on encoder-side latent refinement
(``EncodeOptions(time_budget=S)``, :meth:`inrkit.inr.learned.vcinr.VCINR.refine`).

``--variant wide`` evaluates ``benchmarks/models/vcinr_audio_wide.safetensors``, trained
with ``inrkit train vcinr --modality audio --patch 64 --latent-dim 48 --width 96
--batch-size 64 --crops 48 --lambdas 0.004,0.016,0.064,0.25 --prior-warmup 3000``;
``--variant wideres`` evaluates ``vcinr_audio_wideres.safetensors`` (that model with its
priors retrained on residual transforms, ``--retrain-priors --transform residual``) and
``--variant residual`` ``vcinr_image_residual.safetensors`` (the image model, likewise),
``--variant long`` ``vcinr_image_long.safetensors`` (the image model meta-learned further
with ``--continue-meta``, residual transforms); docs/vcinr.md has the commands. Models
trained by this script itself use the trainer's default, residual, transforms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch

from inrkit.codecs import EncodeOptions, Rate
from inrkit.datasets import load
from inrkit.eval.metrics import signal_metrics
from inrkit.eval.results import make_results, write_json
from inrkit.eval.round_trip import round_trip
from inrkit.registry import CODECS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ROOT / "benchmarks" / "models"
ITEMS = {
    "image": ("kodim07.png", "riaphotographs_500.png"),
    "audio": ("speech_front_center.wav", "ambi_piano.flac"),
}
TRAIN_ARGS = {
    "image": [
        "--patch",
        "16",
        "--batch-size",
        "32",
        "--lambdas",
        "0.001,0.004,0.016,0.064",
        "--crops",
        "48",
    ],
    "audio": [
        "--patch",
        "128",
        "--batch-size",
        "64",
        "--lambdas",
        "0.001,0.004,0.016,0.064",
        "--crops",
        "48",
    ],
}


def data_root() -> Path:
    return Path(os.environ.get("INRKIT_DATA", ROOT.parent / "shared" / "data"))


REFINED = "vcinr-refined"  # the same codec and model, EncodeOptions(time_budget=--refine-time)
VARIANT = ""
"""``--variant NAME``: model files ``vcinr_<modality>_NAME.safetensors`` and results
``vcinr_NAME_*.json``, for models trained with other settings than ``TRAIN_ARGS``."""


def model_path(modality: str) -> Path:
    return MODELS / f"vcinr_{modality}{VARIANT and '_' + VARIANT}.safetensors"


def result_name(rest: str) -> str:
    return f"vcinr{VARIANT and '_' + VARIANT}_{rest}.json"


def train(modality: str, seconds: float) -> None:
    from inrkit.inr.train.vcinr import main as train_main

    MODELS.mkdir(parents=True, exist_ok=True)
    folder = "images" if modality == "image" else "audio"
    train_main(["--modality", modality, "--data", str(data_root() / folder / "train"),
                "--out", str(model_path(modality)), "--time", str(seconds), "--threads", "1",
                "--save-every", "200", *TRAIN_ARGS[modality]])  # fmt: skip


def training_info(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    return {"config": json.loads(meta["config"]), **json.loads(meta["training"])}


def run_point(codec, signal, rate: Rate, options: EncodeOptions) -> dict:
    result = round_trip(codec, signal, rate, options)
    m = signal_metrics(signal, result.decoded)
    keys = ("psnr", "si-sdr", "mel-distance") if signal.modality == "audio" else ("psnr-rgb", "ms-ssim-rgb")
    return {**result.row(), "rate": str(rate), **{k: m[k] for k in keys}}


def _print(item: str, name: str, row: dict) -> None:
    if "bpp" in row:
        q = f"{row['bpp']:6.3f} bpp   PSNR {row['psnr-rgb']:6.2f} dB  MS-SSIM {row['ms-ssim-rgb']:.4f}"
    else:
        q = f"{row['kbps']:6.2f} kbps  SI-SDR {row['si-sdr']:7.2f} dB  PSNR {row['psnr']:6.2f} dB"
    print(f"{item:24s} {name:12s} {q}  enc {row['encoding_time']:7.2f} s  dec {row['decoding_time']:6.2f} s",
          flush=True)  # fmt: skip


def _spread(values: list[float], n: int = 3) -> list[float]:
    values = sorted(values)
    if len(values) <= n:
        return values
    return [values[round(i * (len(values) - 1) / (n - 1))] for i in range(n)]


def evaluate(modality: str, args) -> list[tuple[str, str, dict]]:
    vcinr = CODECS.get("vcinr")(model=model_path(modality))
    steps_opt = EncodeOptions(steps=args.encode_steps, seed=args.seed)
    rows = []
    for name in ITEMS[modality]:
        signal = load(data_root() / ("images" if modality == "image" else "audio") / name)
        stem = Path(name).stem
        points = {"vcinr": [run_point(vcinr, signal, r, steps_opt) for r in vcinr.ladder(16)]}
        if args.refine_time:
            refined = EncodeOptions(steps=args.encode_steps, seed=args.seed,
                                    time_budget=args.refine_time)  # fmt: skip
            points[REFINED] = [run_point(vcinr, signal, r, refined) for r in vcinr.ladder(16)]
        for label, rows_of_label in points.items():
            for row in rows_of_label:
                _print(stem, label, row)
        if modality == "image":
            rates = [row["bpp"] for row in points["vcinr"]]
            plan = {
                "jpeg": [Rate(bpp=b) for b in rates],
                "webp": [Rate(bpp=b) for b in rates],
                "siren": [Rate(bpp=b) for b in _spread(rates)],
            }
        else:
            rates = [row["kbps"] for row in points["vcinr"]]
            plan = {"mp3": [Rate(kbps=k) for k in (32, 48, 64)],
                    "siren-audio": [Rate(kbps=k) for k in _spread(rates)]}  # fmt: skip
        for codec_name, rate_list in plan.items():
            codec = CODECS.get(codec_name)()
            opts = EncodeOptions(time_budget=args.siren_time, seed=args.seed) if "siren" in codec_name \
                else EncodeOptions(seed=args.seed)  # fmt: skip
            points[codec_name] = []
            for rate in rate_list:
                row = run_point(codec, signal, rate, opts)
                points[codec_name].append(row)
                _print(stem, codec_name, row)
        key = "bpp" if modality == "image" else "kbps"
        metrics = (
            ("psnr-rgb", "ms-ssim-rgb")
            if modality == "image"
            else ("si-sdr", "psnr", "mel-distance")
        )
        for codec_name, pts in points.items():
            doc = make_results(codec_name, f"{codec_name} on {name} (held out from VC-INR training); "
                               "rates measured from file sizes", pts, key, metrics)  # fmt: skip
            write_json(RESULTS / result_name(f"{stem}_{codec_name}"), doc)
            rows += [(stem, codec_name, pt) for pt in pts]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--modalities", default="image,audio")
    p.add_argument("--image-time", type=float, default=1380.0, help="training budget (s)")
    p.add_argument("--audio-time", type=float, default=1000.0, help="training budget (s)")
    p.add_argument("--retrain", action="store_true")
    p.add_argument(
        "--siren-time", type=float, default=60.0, help="fitting budget per weight-codec encode (s)"
    )
    p.add_argument(
        "--encode-steps", type=int, default=None, help="VC-INR inner steps at encode time"
    )
    p.add_argument(
        "--refine-time", type=float, default=0.0,
        help="also encode with this many seconds of latent refinement (codec 'vcinr-refined')",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="", help="evaluate vcinr_<modality>_VARIANT.safetensors")
    args = p.parse_args(argv)
    global VARIANT
    VARIANT = args.variant
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, 1 thread",
        "data": str(data_root()),
        "encode_steps": args.encode_steps,
        "refine_time": args.refine_time,
        "siren_time_budget": args.siren_time,
    }
    rows = []
    for modality in args.modalities.split(","):
        path = model_path(modality)
        if args.retrain or not path.is_file():
            seconds = args.image_time if modality == "image" else args.audio_time
            print(f"training VC-INR ({modality}) for up to {seconds:.0f} s -> {path}", flush=True)
            train(modality, seconds)
        summary[f"{modality}_training"] = training_info(path)
        rows += [(modality, *row) for row in evaluate(modality, args)]
    points = [{"item": i, "codec": c, "modality": m, **pt} for m, i, c, pt in rows]
    path = RESULTS / result_name("summary")
    if path.is_file():  # keep the other modality's results from an earlier run
        earlier = json.loads(path.read_text())
        done = set(args.modalities.split(","))
        points = [pt for pt in earlier.get("points", []) if pt.get("modality") not in done] + points
        summary = {**earlier, **summary}
    summary["points"] = points
    write_json(path, summary)

    for modality in args.modalities.split(","):
        t = summary[f"{modality}_training"]
        print(f"\nVC-INR {modality} model: trained {t['state']['seconds']:.0f} s "
              f"(stage {t['state']['stage']}), config {t['config']}")  # fmt: skip
    print("\n| item | codec | rate | PSNR (dB) | MS-SSIM / SI-SDR | encode (s) | decode (s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for _, item, name, pt in rows:
        if "bpp" in pt:
            rate, q, extra = f"{pt['bpp']:.3f} bpp", pt["psnr-rgb"], f"{pt['ms-ssim-rgb']:.4f}"
        else:
            rate, q, extra = f"{pt['kbps']:.1f} kbps", pt["psnr"], f"{pt['si-sdr']:.2f} dB"
        print(f"| {item} | {name} | {rate} | {q:.2f} | {extra} | {pt['encoding_time']:.2f} | "
              f"{pt['decoding_time']:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
