"""Rate–distortion results in CompressAI's JSON format, read and written atomically.

A results file (CompressAI ``results/image/kodak/*.json``)::

    {"name": "jpeg", "description": "...",
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...],
                 "encoding_time": [...], "decoding_time": [...]}}

with every list sorted by rate. Audio uses ``kbps`` and ``psnr``, ``si-sdr``,
``mel-distance`` (plus ``snr`` and ``lsd``). Non-finite numbers (an exact
reconstruction's infinite PSNR, MS-SSIM of a tiny image) are written as
``null`` so the file stays strict JSON.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

from inrkit.datasets.files import atomic_write_text
from inrkit.errors import InputError

RATE_KEYS = ("bpp", "kbps")
TIME_KEYS = ("encoding_time", "decoding_time")
IMAGE_METRICS = ("psnr-rgb", "ms-ssim-rgb")
AUDIO_METRICS = ("psnr", "si-sdr", "mel-distance", "snr", "lsd")
#: metrics where a smaller value is better (everything else: larger is better)
LOWER_IS_BETTER = ("mel-distance", "lsd")


def rate_key(modality: str) -> str:
    return "kbps" if modality == "audio" else "bpp"


def metric_keys(modality: str) -> tuple[str, ...]:
    return AUDIO_METRICS if modality == "audio" else IMAGE_METRICS


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path, obj) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically (temporary file, then rename)."""
    return atomic_write_text(path, json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n")


def write_text(path, text: str) -> Path:
    """Write a text file atomically."""
    return atomic_write_text(path, text)


def make_results(name: str, description: str, rows: list[dict], rate: str,
                 metrics: tuple[str, ...]) -> dict:
    """A CompressAI results document from per-point rows (dicts holding ``rate`` and metrics)."""
    rows = sorted(rows, key=lambda row: row[rate])
    keys = (rate, *metrics, *TIME_KEYS)
    return {
        "name": name,
        "description": description,
        "results": {k: [row.get(k) for row in rows] for k in keys},
    }


def validate_results(doc, source: str = "results") -> dict:
    """Check that ``doc`` is a CompressAI results document; return it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise InputError(f"{source}: expected a CompressAI results JSON object with a "
                         f"'results' mapping, found {type(doc).__name__}")
    if not isinstance(doc.get("name"), str):
        raise InputError(f"{source}: expected a string 'name'")
    results = doc["results"]
    rate = [k for k in RATE_KEYS if k in results]
    if len(rate) != 1:
        raise InputError(f"{source}: expected exactly one rate list ('bpp' or 'kbps') in "
                         f"'results', found keys {sorted(results)}")
    lengths = {k: len(v) for k, v in results.items() if isinstance(v, list)}
    if len(lengths) != len(results) or len(set(lengths.values())) != 1:
        raise InputError(f"{source}: every entry of 'results' must be a list of the same length, "
                         f"found {lengths or 'none'}")
    for key, values in results.items():
        if any(v is not None and not isinstance(v, (int, float)) for v in values):
            raise InputError(f"{source}: 'results.{key}' must hold numbers")
    return doc


def read_results(path) -> dict:
    """Read and validate a CompressAI results JSON file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such results file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: expected a JSON results file, could not read it ({exc})") from None
    return validate_results(doc, str(path))


def results_rate_key(doc: dict) -> str:
    return next(k for k in RATE_KEYS if k in doc["results"])


def quality_at_rate(doc: dict, rate: float, metric: str = "psnr-rgb") -> float | None:
    """``metric`` of a results document at exactly ``rate``, linear in log-rate between
    the two neighbouring points (how the docs' equal-rate gaps are computed); None
    outside the curve's rate range or where a neighbour lacks the metric."""
    results = validate_results(doc)["results"]
    if metric not in results:
        raise InputError(f"results {doc['name']!r} have no {metric!r} (found {sorted(results)})")
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise InputError(f"rate must be a positive number, got {rate!r}")
    points = sorted(((r, q) for r, q in zip(results[results_rate_key(doc)], results[metric], strict=True)
                     if r is not None and r > 0), key=lambda point: point[0])
    for (r0, q0), (r1, q1) in itertools.pairwise(points):
        if r0 <= rate <= r1:
            if q0 is None or q1 is None:
                return None
            if r1 == r0:
                return (q0 + q1) / 2
            return q0 + math.log(rate / r0) / math.log(r1 / r0) * (q1 - q0)
    if len(points) == 1 and points[0][0] == rate:
        return points[0][1]
    return None
