"""Rate–distortion of SHACIRA beside classical and weight codecs, on one image and one clip.

Image: Kodak image 7 (768×512). Video: the first 32 frames of Big Buck Bunny
(720p), downscaled to 320×180. Every codec runs in this process, one rate point
after the other, and every rate is measured from the file (header included).
Results are CompressAI JSON files, one per codec and signal, under
``benchmarks/results/shacira_<signal>_<codec>.json`` (or under ``--out DIR``: a run with
other settings should name its own folder), and a table is printed.

    python benchmarks/shacira_rd.py [--codecs shacira,jpeg,webp,avif,siren,hashgrid]
        [--points 4] [--qualities 3,4,6,8] [--steps N] [--threads 1] [--skip-video] [--skip-image]
        [--video-codecs shacira,...] [--out benchmarks/results]

Data are read from ``../shared/data`` relative to the repository, or from
``$INRKIT_DATA``. Timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from inrkit.codecs.base import EncodeOptions, Rate
from inrkit.datasets.io import load
from inrkit.eval.metrics import signal_metrics
from inrkit.eval.results import make_results, metric_keys, rate_key, write_json
from inrkit.eval.round_trip import round_trip
from inrkit.registry import CODECS

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("INRKIT_DATA", ROOT.parent.parent / "shared" / "data"))
OUT = ROOT / "results"


def run_codec(name: str, signal, points: int, options: EncodeOptions,
              qualities: list[int] | None = None) -> list[dict]:
    codec = CODECS.get(name)()
    rows = []
    rates = [Rate(quality=q) for q in qualities] if qualities and name == "shacira" else codec.ladder(points)
    for rate in rates:
        result = round_trip(codec, signal, rate, options)
        row = {**result.row(), **signal_metrics(signal, result.decoded)}
        print(f"  {name:10s} {rate!s:14s} bpp {row['bpp']:.4f}  PSNR {row['psnr-rgb']:.2f} dB  "
              f"enc {result.encoding_time:7.1f} s  dec {result.decoding_time:5.2f} s", flush=True)
        rows.append(row)
    return rows


def bench(tag: str, signal, codecs: list[str], points: int, options: EncodeOptions,
          qualities: list[int] | None = None, out: Path = OUT) -> None:
    print(f"{tag}: {signal}")
    for name in codecs:
        rows = run_codec(name, signal, points, options, qualities)
        doc = make_results(f"{name}", f"{name} on {tag} ({signal.source}); inrkit benchmarks/shacira_rd.py",
                           rows, rate_key(signal.modality), metric_keys(signal.modality))
        write_json(out / f"shacira_{tag}_{name}.json", doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default="shacira,jpeg,webp,avif,siren,hashgrid")
    parser.add_argument("--video-codecs", default="shacira")
    parser.add_argument("--points", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None, help="training steps of the learned codecs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--skip-image", action="store_true")
    parser.add_argument("--qualities", default=None,
                        help="SHACIRA image quality presets to run (e.g. 3,4,6,8) instead of its ladder")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the JSON files")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = EncodeOptions(steps=args.steps)

    if not args.skip_image:
        image = load(DATA / "images" / "kodim07.png")
        qualities = [int(q) for q in args.qualities.split(",")] if args.qualities else None
        bench("kodim07", image, args.codecs.split(","), args.points, options, qualities, args.out)
    if not args.skip_video:
        video = load(DATA / "video" / "bigbuckbunny_132f_720p.mp4", frames=(0, 32), resize=(180, 320))
        bench("bbb32", video, args.video_codecs.split(","), args.points, options, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
