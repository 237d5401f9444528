"""Rate–distortion plots of CompressAI results files (PNG and SVG).

One figure per quality metric found in the results, rate on the x axis.
MS-SSIM is drawn in decibels, ``-10·log10(1 - MS-SSIM)``, as CompressAI
does, so differences near 1 stay visible. Published curves (the packaged
Kodak anchors, :func:`kodak_reference`) are drawn dashed, labelled as
published. Figures are built on matplotlib's Agg canvas directly (no pyplot,
no global backend switch) and written atomically.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

from inrkit.datasets.files import output_folder

from .bdrate import ms_ssim_db
from .results import RATE_KEYS, TIME_KEYS, results_rate_key, validate_results

LABELS = {
    "psnr-rgb": "PSNR (RGB) [dB]",
    "ms-ssim-rgb": "MS-SSIM (RGB) [dB]",
    "psnr": "PSNR [dB]",
    "si-sdr": "SI-SDR [dB]",
    "mel-distance": "mel distance (lower is better)",
    "snr": "SNR [dB]",
    "lsd": "log-spectral distance (lower is better)",
    "bpp": "bits per pixel",
    "kbps": "kbit/s",
}
_NOT_PLOTTED = {*RATE_KEYS, *TIME_KEYS, "ms_ssim_scales"}


def kodak_reference() -> dict:
    """Published Kodak curves packaged with inrkit (``reference/kodak_published.json``)."""
    text = resources.files("inrkit.eval").joinpath("reference/kodak_published.json").read_text("utf-8")
    return json.loads(text)


def _y(metric: str, values: list) -> list[float]:
    values = [math.nan if v is None else float(v) for v in values]
    return [ms_ssim_db(v) for v in values] if metric.startswith("ms-ssim") else values


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.8), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def plot_results(docs: list[dict], out_dir, reference: dict | None = None,
                 title: str | None = None) -> list[Path]:
    """Draw every metric of ``docs`` (CompressAI results) into ``out_dir/rd-<metric>.{png,svg}``."""
    docs = [validate_results(doc, f"results of {doc.get('name', '?')}") for doc in docs]
    if not docs:
        return []
    out_dir = output_folder(out_dir)
    rate = results_rate_key(docs[0])
    metrics = []
    for doc in docs:
        metrics += [k for k in doc["results"] if k not in _NOT_PLOTTED and k not in metrics]
    written = []
    for metric in metrics:
        figure = _figure()
        axes = figure.add_subplot()
        for doc in docs:
            res = doc["results"]
            if metric in res and results_rate_key(doc) == rate:
                axes.plot(res[rate], _y(metric, res[metric]), marker="o", markersize=4,
                          linewidth=1.5, label=doc["name"])
        if reference and rate == "bpp":
            from matplotlib import colormaps

            palette = colormaps["tab20b"]  # kept apart from the default cycle of our curves
            curves = [(n, c) for n, c in reference.get("methods", {}).items() if metric in c]
            for i, (name, curve) in enumerate(curves):
                axes.plot(curve["bpp"], _y(metric, curve[metric]), linestyle="--", linewidth=1,
                          color=palette(i / max(1, len(curves))), label=f"{name} (published)")
        axes.set_xlabel(LABELS.get(rate, rate))
        axes.set_ylabel(LABELS.get(metric, metric))
        axes.grid(True, alpha=0.3)
        axes.set_title(title or (reference or {}).get("title") or "rate–distortion", fontsize="medium")
        entries = len(axes.get_lines())
        axes.legend(fontsize="x-small" if entries > 8 else "small", ncol=2 if entries > 8 else 1)
        figure.tight_layout()
        for suffix in ("png", "svg"):
            written.append(_save(figure, out_dir / f"rd-{metric}.{suffix}"))
    return written


def _save(figure, path: Path) -> Path:
    from inrkit.datasets.files import atomic_output

    with atomic_output(path) as temp:
        figure.savefig(temp, format=path.suffix[1:])
    return path


def plot_files(paths: list, out_dir, with_kodak: bool = False) -> list[Path]:
    """Re-plot existing CompressAI results files (``inrkit eval plot``)."""
    from .results import read_results

    docs = [read_results(p) for p in paths]
    rates = {results_rate_key(d) for d in docs}
    if len(rates) > 1:
        from inrkit.errors import InputError

        raise InputError(f"results mix rate units ({', '.join(sorted(rates))}); plot one modality at a time")
    return plot_results(docs, out_dir, reference=kodak_reference() if with_kodak else None)
