"""``inrkit eval``: rate–distortion sweeps (``rd``) and re-plotting (``plot``).

The root CLI (``inrkit.cli``) hands ``inrkit eval ...`` to :func:`main`;
user mistakes raise :class:`inrkit.InputError`, which it prints as one line.

Examples::

    inrkit eval rd --data kodak/ --codecs jpeg,webp,avif,hevc --points 6 --out runs/kodak
    inrkit eval rd --data a.png b.png --codecs shacira,jpeg --steps 2000 --jobs 2 --out runs/x
    inrkit eval plot runs/kodak/*.json -o runs/kodak/plots --kodak
"""

from __future__ import annotations

import argparse
import sys

from inrkit.arguments import ArgumentParser, seed_type
from inrkit.errors import InputError


def _codec_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError("--codecs: expected comma-separated codec names, e.g. jpeg,webp")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="inrkit eval", description="Rate–distortion evaluation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    rd = sub.add_parser("rd", help="sweep files × codecs × rate points (resumable)")
    rd.add_argument("--data", nargs="+", required=True, metavar="PATH",
                    help="media files and/or folders (searched recursively)")
    rd.add_argument("--codecs", type=_codec_list, required=True,
                    help="comma-separated codec specs, e.g. shacira,siren,jpeg,webp or "
                         "shacira:log2_hashmap_size=14,adacode:model=m.safetensors")
    rd.add_argument("--points", type=int, default=6, help="rate points per codec (default 6)")
    rd.add_argument("--out", required=True, help="output folder (points/, JSON, summary, plots)")
    rd.add_argument("--per-image", action="store_true", help="also write per-file results")
    rd.add_argument("--anchor", help="codec the BD-rates are computed against (default: first)")
    rd.add_argument("--jobs", type=int, default=1, help="parallel workers (default 1)")
    rd.add_argument("--executor", choices=("local", "ray"), default="local")
    rd.add_argument("--address", help="Ray cluster address (with --executor ray)")
    rd.add_argument("--steps", type=int, help="fitting steps for INR codecs")
    rd.add_argument("--time", type=float, dest="time_budget", metavar="SECONDS",
                    help="fitting time budget per item for INR codecs")
    rd.add_argument("--seed", type=seed_type, default=0)
    rd.add_argument("--no-reference", action="store_true",
                    help="never draw the published Kodak curves")
    rd.add_argument("--quiet", action="store_true", help="no progress bar")

    plot = sub.add_parser("plot", help="re-plot CompressAI results JSON files")
    plot.add_argument("results", nargs="+", help="results JSON files")
    plot.add_argument("-o", "--out", required=True, help="folder for the PNG and SVG plots")
    plot.add_argument("--kodak", action="store_true", help="draw the published Kodak curves")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "rd":
        from .rd import sweep

        for name, value in (("--steps", args.steps), ("--time", args.time_budget)):
            if value is not None and value <= 0:
                raise InputError(f"{name} must be positive, got {value}")
        report = sweep(
            args.data, args.codecs, args.out, points=args.points, per_image=args.per_image,
            anchor=args.anchor, jobs=args.jobs, executor=args.executor, address=args.address,
            steps=args.steps, time_budget=args.time_budget, seed=args.seed,
            progress=not args.quiet, reference=None if args.no_reference else "auto",
        )
        print(f"{report.computed} points computed, {report.reused} reused; "
              f"summary: {report.summary}")
        for note in report.notes:
            print(f"note: {note}", file=sys.stderr)
        return 0
    from .plot import plot_files

    written = plot_files(args.results, args.out, with_kodak=args.kodak)
    print(f"wrote {len(written)} plot files to {args.out}")
    return 0
