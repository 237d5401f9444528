"""Rate–distortion of the classical image codecs on the benchmark photographs.

One command sweeps JPEG, WebP, AVIF, JPEG 2000 and HEVC-intra (BPG's codec)
over the top-level images of ``$INRKIT_DATA/images`` (default
``../shared/data`` beside the repository; the ``train/`` folder is not used),
writes CompressAI JSON under ``benchmarks/results/classical_rd/``, and puts
the tables, BD-rates against JPEG, timings and plots into ``docs/results/classical.md``
(between its ``classical_rd`` markers) and ``docs/results/classical_rd_*.png``.
Finished points are reused, so a second run only rebuilds the report.

    python benchmarks/classical_rd.py [--points 8] [--jobs 1] [--codecs jpeg,webp,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from inrkit.codecs.classical import IMAGE_CODECS, ffmpeg_exe
from inrkit.eval.bdrate import bd_quality, bd_rate, ms_ssim_db
from inrkit.eval.plot import kodak_reference, plot_results
from inrkit.eval.rd import sweep
from inrkit.eval.results import write_text

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- classical_rd:begin -->", "<!-- classical_rd:end -->"


def data_root() -> Path:
    return Path(os.environ.get("INRKIT_DATA", ROOT.parent / "shared" / "data"))


def library_versions() -> str:
    import subprocess

    from PIL import __version__ as pillow
    from PIL import features

    ffmpeg = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout
    parts = [f"Pillow {pillow}"] + [
        f"{name} {features.version(key)}" for name, key in
        (("libjpeg-turbo", "libjpeg_turbo"), ("libwebp", "webp"), ("libavif", "avif"), ("OpenJPEG", "jpg_2000"))
    ]
    parts.append(ffmpeg.splitlines()[0].split(" Copyright")[0] if ffmpeg else "ffmpeg ?")
    return ", ".join(parts)


def table(doc: dict) -> list[str]:
    res = doc["results"]
    lines = ["| bpp | PSNR-RGB (dB) | MS-SSIM (dB) | encode (s) | decode (s) |",
             "|---:|---:|---:|---:|---:|"]
    for i in range(len(res["bpp"])):
        lines.append(f"| {res['bpp'][i]:.3f} | {res['psnr-rgb'][i]:.2f} | "
                     f"{ms_ssim_db(res['ms-ssim-rgb'][i]):.2f} | {res['encoding_time'][i]:.3f} | "
                     f"{res['decoding_time'][i]:.3f} |")
    return lines


def bd_table(docs: dict[str, dict], anchor: str) -> list[str]:
    base = docs[anchor]["results"]
    lines = ["| codec | BD-rate PSNR | BD-PSNR | BD-rate MS-SSIM | BD-MS-SSIM |",
             "|---|---:|---:|---:|---:|"]
    notes = []
    for name, doc in docs.items():
        if name == anchor:
            continue
        res = doc["results"]
        cells = [name]
        for metric, convert in (("psnr-rgb", list), ("ms-ssim-rgb", lambda v: [ms_ssim_db(x) for x in v])):
            args = (base["bpp"], convert(base[metric]), res["bpp"], convert(res[metric]))
            for result, unit in ((bd_rate(*args), "%"), (bd_quality(*args), " dB")):
                cells.append(result.format(unit))
                if result.note:
                    notes.append(f"{name} ({metric}): {result.note}")
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", "\\* " + "; ".join(dict.fromkeys(notes))]
    return lines


def _shown(path: Path) -> str:
    """``path`` as the docs show it: relative to the repository where it can be, never a
    machine's absolute path to the default media folder."""
    try:
        return os.path.relpath(path.resolve(), ROOT)
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--codecs", default=",".join(IMAGE_CODECS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "classical_rd"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)

    images = sorted(p for p in (data_root() / "images").iterdir() if p.is_file())
    if not images:
        print(f"no images in {data_root() / 'images'} (set INRKIT_DATA)", file=sys.stderr)
        return 1
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    out, docs_dir = Path(args.out), Path(args.docs)
    start = time.perf_counter()
    report = sweep(images, codecs, out, points=args.points, per_image=True, anchor="jpeg",
                   jobs=args.jobs, progress=True)
    wall = time.perf_counter() - start
    docs = {name: json.loads(path.read_text()) for name, path in report.results.items()}

    docs_dir.mkdir(parents=True, exist_ok=True)
    for metric in ("psnr-rgb", "ms-ssim-rgb"):
        shutil.copyfile(out / f"rd-{metric}.png", docs_dir / f"classical_rd_{metric}.png")
    kodim = [p for p in report.per_image if p.stem.startswith("kodim")]
    kodak_plot = []
    if kodim:
        per_image = [json.loads(p.read_text()) for p in kodim]
        plot_dir = out / "kodim-vs-published"
        plot_results(per_image, plot_dir, reference=kodak_reference(),
                     title=f"{kodim[0].stem} (ours) vs published Kodak-24 means")
        shutil.copyfile(plot_dir / "rd-psnr-rgb.png", docs_dir / "classical_rd_kodim_vs_published.png")
        kodak_plot = [
            "", f"### {kodim[0].stem} beside published Kodak curves", "",
            "Our single-image curves (solid) with the packaged published means over all 24 Kodak "
            "images (dashed; sources in `eval/reference/kodak_published.json`). One image is not "
            "the 24-image mean, so this is a sanity check of our settings, not a comparison.", "",
            "![kodim vs published](classical_rd_kodim_vs_published.png)",
        ]

    command = f"python benchmarks/classical_rd.py --points {args.points} --jobs {args.jobs}"
    lines = [
        BEGIN, "## Classical image codecs", "",
        f"Data: {', '.join(p.name for p in images)} (`{_shown(data_root() / 'images')}`, top level). "
        f"Command: `{command}` ({report.computed} points computed, {report.reused} reused, "
        f"{wall:.0f} s wall). Means over the images per rate point; PSNR and MS-SSIM on 8-bit RGB; "
        "MS-SSIM shown as -10·log10(1-MS-SSIM). Rates are the real file sizes.", "",
        f"Libraries: {library_versions()}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores. Times are wall-clock seconds per image (encoders use their "
        "default threading) on a machine shared with other jobs, so treat them as rough.", "",
        "Settings: JPEG 4:2:0 optimized Huffman, quality 10–95; WebP method 6, quality 10–95; "
        "AVIF 4:4:4 speed 6, quality 10–90; JPEG 2000 one layer at a target PSNR of 26–44 dB; "
        "HEVC intra (x265, preset medium, 4:4:4, QP 45–20, raw Annex-B stream).", "",
        "### BD against JPEG (pchip)", "", *bd_table(docs, "jpeg"), "",
        "![PSNR](classical_rd_psnr-rgb.png) ![MS-SSIM](classical_rd_ms-ssim-rgb.png)", "",
    ]
    for name, doc in docs.items():
        lines += [f"### {name}", "", *table(doc), ""]
    lines += kodak_plot + ["", END]
    section = "\n".join(lines)

    results_md = docs_dir / "classical.md"
    text = results_md.read_text(encoding="utf-8") if results_md.exists() else "# Results\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    write_text(results_md, text)
    print("\n".join(bd_table(docs, "jpeg")))
    for name, doc in docs.items():
        print(f"\n{name}")
        print("\n".join(table(doc)))
    print(f"\nwrote {results_md} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
