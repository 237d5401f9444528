"""Rate–distortion of the INR video codecs (NeRV, HNeRV, NeRV++) against x264 and x265.

Big Buck Bunny (``video/bigbuckbunny_132f_720p.mp4`` under ``../shared/data`` or
``$INRKIT_DATA``), the clip NeRV and HNeRV report on, centre-cropped to 1:2 as
they do (640×1280) and scaled down so that it trains on a laptop CPU: by
default 32 frames of 64×128. The three INR codecs get the same parameter
budget (decoder + embeddings) and the same number of epochs (NeRV and NeRV++
use a 4×8 stem grid instead of the paper's 8×16, which at this budget would eat
every parameter); x264 and x265
(preset medium, CRF searched), in YCbCr 4:2:0 and 4:4:4, are then run at the
largest quality whose measured bpp does not exceed each INR file's bpp, and
their PSNR at exactly that bpp is interpolated (linear in log-bpp) between that
quality and the next one up. PSNR
and MS-SSIM are per-frame means on 8-bit RGB. The INR codecs code RGB at full
resolution, so at high rates on small frames 4:2:0 caps the classical codecs'
RGB PSNR (about 34 dB here); the 4:4:4 rows show what they reach without that cap.
Timings are wall-clock on this machine.

    python benchmarks/video_rd.py                       # ~5 min on 2 cores
    python benchmarks/video_rd.py --frames 8 --epochs 20   # smoke run

Writes ``benchmarks/results/video_rd.json`` (CompressAI-style entries per codec)
and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.datasets import Signal, load
from inrkit.eval.metrics import ms_ssim_frames, psnr_frames
from inrkit.inr.frames.nerv import choose_strides
from inrkit.registry import CODECS

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INRKIT_DATA", ROOT.parent.parent / "shared" / "data"))
CLIP = "video/bigbuckbunny_132f_720p.mp4"


def load_clip(frames: int, height: int, width: int) -> Signal:
    """First ``frames`` frames, centre-cropped to the aspect ``height:width`` then resized."""
    path = DATA / CLIP
    src = load(path, frames=frames)
    _, _, h, w = src.data.shape
    ch, cw = (h, h * width // height) if h * width // height <= w else (w * height // width, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    data = src.data[:, :, top : top + ch, left : left + cw]
    data = torch.nn.functional.interpolate(data, size=(height, width), mode="area")
    return Signal(data.clamp(0, 1), "video", frame_rate=src.frame_rate, source=str(path))


def measure(name: str, codec, signal: Signal, data: bytes, encode_s: float) -> dict:
    start = time.perf_counter()
    decoded = codec.decode(data)
    decode_s = time.perf_counter() - start
    frames = signal.data.shape[0]
    return {
        "codec": name,
        "bpp": 8 * len(data) / signal.num_samples,
        "bytes": len(data),
        "psnr-rgb": sum(psnr_frames(signal, decoded)) / frames,
        "ms-ssim-rgb": sum(ms_ssim_frames(signal, decoded)) / frames,
        "encoding_time": encode_s,
        "decoding_time": decode_s,
        "decode_fps": frames / decode_s,
    }


def at_equal_rate(label: str, codec, signal: Signal, quality: int, below: dict, bpp: float) -> dict:
    """The classical codec's PSNR at exactly ``bpp``: linear in log-bpp between the
    quality found (rate ≤ ``bpp``) and the next one up (rate > ``bpp``).

    One CRF step changes the rate by about 12 %, so "the largest quality under the
    INR's rate" alone can leave the classical codec up to half a dB short.
    """
    if below["bpp"] > bpp or quality >= len(codec.levels):
        return {"psnr_at_matched_bpp": None}
    above = measure(label, codec, signal, codec.encode(signal, Rate(quality=quality + 1)), 0.0)
    t = math.log(bpp / below["bpp"]) / math.log(above["bpp"] / below["bpp"])
    return {
        "psnr_at_matched_bpp": below["psnr-rgb"] + t * (above["psnr-rgb"] - below["psnr-rgb"]),
        "next_quality": {"bpp": above["bpp"], "psnr-rgb": above["psnr-rgb"]},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--params", type=int, default=60_000, help="parameter budget of every INR codec")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0, help="seed of the INR codecs' initialisation and batches")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--codecs", default="nerv,hnerv,nervpp")
    parser.add_argument("--chroma", default="420,444",
                        help="chroma formats of x264/x265: 420 (what players expect) and/or 444")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "video_rd.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    signal = load_clip(args.frames, args.height, args.width)
    print(f"clip: {signal.data.shape[0]} frames of {args.width}×{args.height} from {CLIP}", file=sys.stderr)
    rows = []
    for name in args.codecs.split(","):
        # NeRV's stem is a linear layer onto an 8×16 grid at 640×1280; at this small budget
        # that grid alone would take the whole budget, so NeRV and NeRV++ get a 4-row grid.
        arch = {} if name == "hnerv" else {"strides": choose_strides(args.height, args.width, 4)}
        codec = CODECS.get(name)(**arch)
        # Rate(bpp) that gives exactly the requested parameter budget at the codec's bits/param estimate.
        bpp = (args.params * codec.bits_per_param + 8 * 600) / signal.num_samples
        start = time.perf_counter()
        data = codec.encode(signal, Rate(bpp=bpp), EncodeOptions(steps=args.epochs, seed=args.seed, progress=True))
        row = measure(name, codec, signal, data, time.perf_counter() - start)
        report = codec.last_report
        row.update(parameters=report.parameters, fc_dim=report.fc_dim, epochs=report.epochs,
                   weight_bits=report.weight_bits, prune=report.prune, fit_psnr=report.fit_psnr,
                   recoveries=report.recoveries)
        rows.append(row)
        print(f"{name}: {row['psnr-rgb']:.2f} dB at {row['bpp']:.3f} bpp", file=sys.stderr)
        for classical in ("x264", "x265"):
            for chroma in args.chroma.split(","):
                c = CODECS.get(classical)(chroma=chroma)
                start = time.perf_counter()
                quality, cdata = c.find_quality(signal, row["bpp"])
                label = classical if chroma == "420" else f"{classical}-{chroma}"
                crow = measure(label, c, signal, cdata, time.perf_counter() - start)
                crow.update(matched_to=name, quality=quality,
                            **at_equal_rate(label, c, signal, quality, crow, row["bpp"]))
                rows.append(crow)

    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings.update(clip=CLIP, torch=torch.__version__, machine=platform.machine(), cpus=os.cpu_count())
    by_codec: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["bpp"]):
        entry = by_codec.setdefault(row["codec"], {
            "name": row["codec"], "description": f"{row['codec']} on Bunny {args.width}×{args.height}",
            "results": {k: [] for k in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time")},
            "runs": [],
        })
        for k in entry["results"]:
            entry["results"][k].append(row[k])
        entry["runs"].append(row)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"settings": settings, "codecs": by_codec}, indent=1))
    os.replace(tmp, args.output)

    print(f"\n{'codec':<9} {'matched':<8} {'params':>8} {'bpp':>7} {'PSNR dB':>8} {'MS-SSIM':>8} "
          f"{'enc s':>8} {'dec fps':>8} {'PSNR at matched bpp':>20}")
    for r in rows:
        params = r.get("parameters", "")
        equal = r.get("psnr_at_matched_bpp")
        print(f"{r['codec']:<9} {r.get('matched_to', ''):<8} {params!s:>8} {r['bpp']:>7.3f} "
              f"{r['psnr-rgb']:>8.2f} {r['ms-ssim-rgb']:>8.4f} {r['encoding_time']:>8.1f} "
              f"{r['decode_fps']:>8.1f} {'' if equal is None else f'{equal:.2f}':>20}")
    best = max((r for r in rows if "parameters" in r), key=lambda r: r["psnr-rgb"])
    print()
    for x265 in (r for r in rows if r["codec"].startswith("x265") and r["matched_to"] == best["codec"]):
        gap = best["psnr-rgb"] - x265["psnr-rgb"]
        line = f"best INR ({best['codec']}) − {x265['codec']}: {gap:+.2f} dB at ≤ its bpp"
        if x265["psnr_at_matched_bpp"] is not None:
            line += f", {best['psnr-rgb'] - x265['psnr_at_matched_bpp']:+.2f} dB at its bpp (interpolated)"
        print(line)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
