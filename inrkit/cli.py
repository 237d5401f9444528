"""The ``inrkit`` command line: encode, decode, info, demo, eval, train.

Every command is a ``main(argv)`` function that tests call directly (the
CompressAI habit). inrkit's own errors become one line on stderr and a
non-zero exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from inrkit.arguments import ArgumentParser, positive, run_command, seed_type
from inrkit.errors import InputError
from inrkit.version import __version__

RATE_FLAGS = ("bpp", "kbps", "quality", "lmbda")


def _parse_range(text: str) -> tuple[int, int | None]:
    """``"10:42"`` → (10, 42), frames 10 to 41; ``":32"`` → (0, 32); ``"10:"`` → (10, None),
    frame 10 to the end."""
    try:
        start, colon, stop = text.partition(":")
        if not colon:
            raise ValueError
        return int(start or 0), int(stop) if stop.strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP (e.g. 0:32 or 10:), got {text!r}") from None


def _parse_size(text: str) -> tuple[int, int]:
    """``"180x320"`` → (180, 320) as height × width."""
    try:
        h, w = text.lower().split("x")
        return int(h), int(w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH (e.g. 180x320), got {text!r}") from None


def _check_not_input(inp: Path, out: Path) -> None:
    if out.exists() and inp.exists() and out.resolve() == inp.resolve():
        raise InputError(f"refusing to overwrite the input file {inp}; choose another -o")
    if inp.is_dir() and inp.resolve() in out.resolve().parents:
        raise InputError(f"refusing to write {out} into the input folder {inp}; choose another -o")


def _progress_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- encode ----------------------------------------------------------------
def cmd_encode(args: argparse.Namespace) -> int:
    from inrkit import api
    from inrkit.codecs.base import Codec
    from inrkit.codecs.specs import check_inrk_codec, parse_spec
    from inrkit.datasets.io import modality_of
    from inrkit.eval.metrics import signal_metrics

    inp, out = Path(args.input), Path(args.out)
    _check_not_input(inp, out)
    if modality_of(out):
        raise InputError(
            f"-o {out}: encode writes an .inrk file, not {modality_of(out)} "
            f"(decode turns the .inrk into {out.suffix}); name it e.g. {out.with_suffix('.inrk')}"
        )
    codec_name, spec_options = parse_spec(args.codec)
    check_inrk_codec(codec_name)
    load_options = {}
    if args.frames:
        load_options["frames"] = args.frames
    if args.resize:
        load_options["resize"] = args.resize
    signal = api.load(inp, **load_options)
    rates = {k: getattr(args, k) for k in RATE_FLAGS if getattr(args, k) is not None}
    codec_kwargs = {"model": args.model} if args.model else {}
    start = time.perf_counter()
    data = api.encode(
        signal,
        args.codec,
        steps=args.steps,
        time_budget=args.time,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        **rates,
        **codec_kwargs,
    )
    seconds = time.perf_counter() - start
    # The summary is measured on the decoded bytes before the file is written, so a
    # failure there leaves no file behind.
    decoded = api.decode(data, model=spec_options.get("model", args.model))
    rate = Codec.measured_rate(signal, data)
    rate_text = f"{rate:.2f} kbps" if signal.modality == "audio" else f"{rate:.4f} bpp"
    metrics = signal_metrics(signal, decoded)
    if signal.modality == "audio":
        quality = f"PSNR {_db(metrics['psnr'])}, SI-SDR {_db(metrics['si-sdr'])}"
    else:
        quality = f"PSNR {_db(metrics['psnr-rgb'])}"
    api.save(data, out)
    print(f"{out}: {rate_text} ({len(data)} bytes), {quality}, encoded in {seconds:.1f} s")
    target = args.bpp if args.bpp is not None else args.kbps
    if target is not None and not 1 / 1.1 <= rate / target <= 1.1:
        # Usually a target outside what the codec can make of this input (below its
        # smallest file, or above its largest: a learned codec's finest setting, SHACIRA's
        # largest table after few steps); say so rather than let the summary pass for a hit.
        flag = "--kbps" if args.kbps is not None else "--bpp"
        side = "above" if rate > target else "below"
        print(f"inrkit: note: the file's rate, {rate_text}, is more than 10 % {side} the "
              f"{flag} target of {target:g}", file=sys.stderr)
    return 0


def _db(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} dB"


# -- decode ----------------------------------------------------------------
def cmd_decode(args: argparse.Namespace) -> int:
    from inrkit import api

    inp, out = Path(args.input), Path(args.out)
    _check_not_input(inp, out)
    from inrkit.codecs.bitstream.container import read_file_bytes
    from inrkit.datasets.io import check_writable_as

    check_writable_as(out, read_file_bytes(inp)[1].modality)  # before a long decode
    options = {}
    if args.scale != 1.0:
        options["scale"] = args.scale
    if args.frames:
        options["frames"] = args.frames
    start = time.perf_counter()
    signal = api.decode(inp, model=args.model, max_pixels=args.max_pixels, max_samples=args.max_samples,
                        **options)
    seconds = time.perf_counter() - start
    api.save(signal, out)
    print(f"{out}: {signal.modality} {tuple(signal.data.shape)}, decoded in {seconds:.2f} s")
    return 0


# -- info ------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from inrkit.codecs.bitstream.info import describe

    report = describe(Path(args.input))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    width = max(len(k) for k in report)
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{key:<{width}}")
            for name, bits in value.items():
                print(f"  {name:<{width}} {bits}")
        else:
            print(f"{key:<{width}} {value}")
    return 0


# -- demo ------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from inrkit.demo import run_demo

    run_demo(out_dir=Path(args.out), codec=args.codec, seconds=args.time, seed=args.seed,
             steps=args.steps)
    return 0


# -- delegated command groups ------------------------------------------------
def cmd_eval(argv: list[str]) -> int:
    from inrkit.eval.cli import main as eval_main

    return eval_main(argv)


TRAINERS = {
    "rvqgan": "inrkit.inr.train.rvqgan",
    "vcinr": "inrkit.inr.train.vcinr",
    "adacode": "inrkit.inr.train.adacode",
}
"""``inrkit train NAME ...`` → the module whose ``main(argv)`` trains that model."""


def cmd_train(argv: list[str]) -> int:
    import importlib

    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: inrkit train {{{','.join(sorted(TRAINERS)) or 'none'}}} [options]")
        return 0 if argv else 2
    if argv[0] not in TRAINERS:
        raise InputError(f"unknown model to train {argv[0]!r}; known: {', '.join(sorted(TRAINERS))}")
    module = importlib.import_module(TRAINERS[argv[0]])
    return module.main(argv[1:])


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="inrkit", description="Implicit neural representations and neural compression."
    )
    parser.add_argument("--version", action="version", version=f"inrkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    enc = sub.add_parser("encode", help="compress a media file into a .inrk file")
    enc.add_argument("input", help="image, video or audio file (or a folder of frames)")
    enc.add_argument("-o", "--out", "--output", dest="out", required=True, help="output .inrk file")
    enc.add_argument("--codec", default="siren", help="codec spec: a name (default siren; an unknown name lists them), optionally "
                     "with options NAME:key=value:... (e.g. shacira:log2_hashmap_size=14)")
    rate = enc.add_mutually_exclusive_group()
    rate.add_argument("--bpp", type=positive(float), help="target bits per pixel (images, video)")
    rate.add_argument("--kbps", type=positive(float), help="target kilobits per second (audio)")
    rate.add_argument("--quality", type=int, choices=range(1, 9), metavar="1..8", help="preset ladder")
    rate.add_argument("--lambda", dest="lmbda", type=positive(float), help="codec-specific λ")
    enc.add_argument("--steps", type=positive(int), help="optimisation steps (epochs for video)")
    enc.add_argument(
        "--time", type=positive(float),
        help="time budget in seconds: fitting stops when it runs out or after the codec's "
        "default steps, whichever comes first (raise --steps to use a long budget); "
        "vcinr spends it refining the latents",
    )  # fmt: skip
    enc.add_argument("--seed", type=seed_type, default=0)
    enc.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    enc.add_argument("--model", help="trained model file (safetensors) for learned codecs")
    enc.add_argument("--frames", type=_parse_range, help="video frame range START:STOP")
    enc.add_argument("--resize", type=_parse_size, help="resize video frames to HxW")
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    enc.set_defaults(func=cmd_encode)

    dec = sub.add_parser("decode", help="decode a .inrk file to a media file")
    dec.add_argument("input", help=".inrk file")
    dec.add_argument("-o", "--out", "--output", dest="out", required=True,
                     help="output media file (format from extension)")
    dec.add_argument("--scale", type=positive(float), default=1.0,
                     help="render at SCALE× resolution (images of siren, spder, polyinr, fourier, "
                          "hashgrid, shacira)")
    dec.add_argument("--frames", type=_parse_range,
                     help="decode only frames START:STOP (nerv, hnerv, nervpp)")
    dec.add_argument("--model", help="trained model file for learned codecs")
    dec.add_argument("--max-pixels", metavar="N",
                     help="refuse a file that decodes to more pixels per image or frame "
                          "(K/M/G suffixes; default $INRKIT_MAX_PIXELS or 64M)")
    dec.add_argument("--max-samples", metavar="N",
                     help="refuse a file that decodes to more samples in all (K/M/G suffixes; "
                          "default $INRKIT_MAX_BYTES / 4, 1 Gi samples)")
    dec.set_defaults(func=cmd_decode)

    info = sub.add_parser("info", help="describe a .inrk file")
    info.add_argument("input")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)

    demo = sub.add_parser("demo", help="fit, encode and decode the bundled sample photograph")
    demo.add_argument("--out", default="inrkit-demo", help="folder for the outputs")
    demo.add_argument("--codec", default="hashgrid")
    demo.add_argument("--time", type=positive(float), default=None,
                      help="also stop fitting after this many seconds (default: none; the step "
                           "budget alone decides, whatever the machine's load)")
    demo.add_argument("--steps", type=positive(int), default=1000,
                      help="fitting steps (default 1000: a budget that does not depend on the machine's load)")
    demo.add_argument("--seed", type=seed_type, default=0)
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("eval", help="rate–distortion sweeps and plots (inrkit eval -h)", add_help=False)
    sub.add_parser("train", help="train a learned codec (inrkit train -h)", add_help=False)
    return parser


def dispatch(argv: list[str]) -> int:
    """Parse ``argv`` (without ``--debug``) and run the command it names."""
    if argv and argv[0] == "eval":
        return cmd_eval(argv[1:])
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose flags these are not (argparse names inrkit)
        where = f"inrkit {args.command}" if getattr(args, "command", None) else "inrkit"
        raise InputError(f"{where}: unrecognized arguments: {' '.join(extra)} (see {where} --help)")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    """The ``inrkit`` console script; returns the exit code (errors as one line)."""
    return run_command(dispatch, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
