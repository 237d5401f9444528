"""Audio rate–distortion: INR codecs and a small RVQGAN against MP3 and Opus.

One run (1) trains an RVQGAN on ``$INRKIT_DATA/audio/train`` within a time budget
(default 19 min; skipped when the model file exists, unless ``--retrain``), (2)
encodes ``ambi_piano.flac`` and ``speech_front_center.wav`` with ``siren-audio``,
``spder-audio``, ``shacira`` (a 1-D latent grid), ``rvqgan``, ``mp3`` and ``opus`` at
their rate points, and (3) writes one CompressAI-style JSON per clip and codec under
``benchmarks/results/`` or ``--out DIR`` (``audio_<clip>_<codec>.json``: ``kbps``, ``si-sdr``,
``mel-distance``, ``psnr``, ``encoding_time``, ``decoding_time``, sorted by rate) plus
``audio_summary.json`` (training data and time), and prints a table. Rates are
measured file sizes.

    python benchmarks/audio_rd.py [--train-seconds 1140] [--retrain] [--inr-steps 1000] [--inr-kbps 24,32]
        [--codecs siren-audio,spder-audio,shacira,rvqgan,mp3,opus] [--clips speech_front_center.wav]
        [--out benchmarks/results]

Runs with non-default settings should name their own ``--out`` folder, so that
their files do not replace those of the default run that the docs quote.

``--inr-kbps`` sets the rate points of ``siren-audio``, ``spder-audio`` and ``shacira``
(defaults: 24 and 32 kbps for the first two, 16, 24 and 32 for ``shacira``).

The RVQGAN here is deliberately tiny (16 kHz, hop 320, 16 codebooks of 1024, encoder
width 8, decoder width 128, discriminators at 1/8 of DAC's width) so that it trains
on a 2-core CPU; see docs/audio.md for how it compares with DAC's published numbers.
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
from inrkit.eval.metrics import audio_metrics
from inrkit.eval.results import write_json
from inrkit.eval.round_trip import round_trip
from inrkit.registry import CODECS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL = ROOT / "benchmarks" / "models" / "rvqgan_16k_tiny.safetensors"
CLIPS = ("speech_front_center.wav", "ambi_piano.flac")
RATES = {
    "siren-audio": [Rate(kbps=24), Rate(kbps=32)],
    "spder-audio": [Rate(kbps=24), Rate(kbps=32)],
    "shacira": [Rate(kbps=16), Rate(kbps=24), Rate(kbps=32)],
    "rvqgan": [Rate(quality=n) for n in (2, 4, 8, 12, 16)],  # codebooks kept
    "mp3": [Rate(kbps=k) for k in (32, 48, 64)],  # MPEG-1 Layer III starts at 32 kbps
    "opus": [Rate(kbps=k) for k in (6, 8, 12, 16, 24, 32)],
}
TRAIN_ARGS = [
    "--sample-rate", "16000", "--encoder-rates", "2,4,5,8", "--decoder-rates", "8,5,4,2",
    "--n-codebooks", "16", "--codebook-size", "1024", "--codebook-dim", "8",
    "--encoder-dim", "8", "--decoder-dim", "128", "--disc-width", "0.125",
    "--batch-size", "4", "--segment-seconds", "0.38", "--gan-start", "800", "--lr", "5e-4",
    "--steps", "100000", "--save-every", "100", "--threads", "1", "--seed", "0",
]  # fmt: skip


def data_root() -> Path:
    return Path(os.environ.get("INRKIT_DATA", ROOT.parent / "shared" / "data"))


def train_rvqgan(model: Path, seconds: float) -> None:
    from inrkit.inr.train.rvqgan import main as train_main

    model.parent.mkdir(parents=True, exist_ok=True)
    args = ["--data", str(data_root() / "audio" / "train"), "--out", str(model), *TRAIN_ARGS]
    train_main([*args, "--time", str(seconds)])


def training_info(model: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(model), framework="pt") as f:
        meta = f.metadata()
    info = json.loads(meta["training"])
    return {"config": json.loads(meta["config"]), **info}


def codec_for(name: str, model: Path, inr_steps: int):
    cls = CODECS.get(name)
    if name == "rvqgan":
        return cls(model=model)
    if name.endswith("-audio"):
        return cls(steps=inr_steps, qat_steps=max(1, inr_steps // 10))
    return cls()


def run_point(codec, signal, rate: Rate, seed: int) -> dict:
    result = round_trip(codec, signal, rate, EncodeOptions(seed=seed))
    metrics = audio_metrics(signal, result.decoded)
    return {
        **result.row(),
        **{k: metrics[k] for k in ("si-sdr", "mel-distance", "psnr")},
        "rate": str(rate),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codecs", default=",".join(RATES))
    p.add_argument("--clips", default=",".join(CLIPS))
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--train-seconds", type=float, default=1140.0)
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--inr-steps", type=int, default=1000, help="Adam steps per chunk group")
    p.add_argument("--inr-kbps", help="rate points of the INR codecs (default: see above)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON files")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # one thread: a busy 2-core machine oversubscribes badly with more
    codecs = [c for c in args.codecs.split(",") if c]
    if args.inr_kbps:
        for name in ("siren-audio", "spder-audio", "shacira"):
            RATES[name] = [Rate(kbps=float(k)) for k in args.inr_kbps.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    if "rvqgan" in codecs and (args.retrain or not args.model.is_file()):
        print(f"training RVQGAN for up to {args.train_seconds:.0f} s -> {args.model}", flush=True)
        train_rvqgan(args.model, args.train_seconds)
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, 1 thread",
        "data": str(data_root() / "audio"),
    }
    if "rvqgan" in codecs:
        summary["rvqgan_training"] = training_info(args.model)

    rows = []
    for clip in args.clips.split(","):
        signal = load(data_root() / "audio" / clip)
        stem = Path(clip).stem
        for name in codecs:
            codec = codec_for(name, args.model, args.inr_steps)
            points = [run_point(codec, signal, rate, args.seed) for rate in RATES[name]]
            points.sort(key=lambda r: r["kbps"])
            keys = ("kbps", "si-sdr", "mel-distance", "psnr", "encoding_time", "decoding_time")
            doc = {
                "name": name,
                "description": f"{name} on {clip} ({signal.channels} ch, {signal.sample_rate:g} Hz, "
                f"{signal.duration:.2f} s); rates measured from file sizes",
                "results": {k: [pt[k] for pt in points] for k in keys},
                "rates": [pt["rate"] for pt in points],
            }
            write_json(args.out / f"audio_{stem}_{name}.json", doc)
            rows += [(stem, name, pt) for pt in points]
            for pt in points:
                print(
                    f"{stem:22s} {name:12s} {pt['kbps']:7.2f} kbps  SI-SDR {pt['si-sdr']:7.2f} dB  "
                    f"mel {pt['mel-distance']:5.2f}  enc {pt['encoding_time']:7.2f} s  dec {pt['decoding_time']:6.2f} s",
                    flush=True,
                )
    summary_path = args.out / "audio_summary.json"
    done = {(c, n) for c, n, _ in rows}
    kept = []
    if summary_path.is_file():  # keep other codecs' points from earlier runs
        earlier = json.loads(summary_path.read_text())
        kept = [pt for pt in earlier.get("points", []) if (pt["clip"], pt["codec"]) not in done]
        summary = {**earlier, **summary}
    summary["points"] = kept + [{"clip": c, "codec": n, **pt} for c, n, pt in rows]
    write_json(summary_path, summary)

    print("\n| clip | codec | kbps | SI-SDR (dB) | mel distance | encode (s) | decode (s) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for clip, name, pt in rows:
        print(
            f"| {clip} | {name} | {pt['kbps']:.2f} | {pt['si-sdr']:.2f} | {pt['mel-distance']:.3f} | "
            f"{pt['encoding_time']:.2f} | {pt['decoding_time']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
