"""Bjøntegaard-delta rate and quality between two rate–distortion curves.

G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
VCEG-M33 (2001), computed with the ``bjontegaard`` package (Herglotz et al.,
"The Bjøntegaard Bible — Why your way of comparing video codecs may be wrong",
IEEE TIP 2024). The default interpolation is piecewise cubic Hermite
(``pchip``), the one of the JVET common-test-conditions spreadsheet; ``akima``
and VCEG-M33's ``cubic`` polynomial can be chosen.

BD-rate is the average rate difference of the test curve against the anchor at
equal quality, in percent (negative = the test needs fewer bits); BD-quality
(BD-PSNR for PSNR) is the average quality difference at equal rate. Both are
only defined where the curves overlap and when quality increases strictly with
rate; instead of an exception this module returns ``value=None`` with a note a
reader can act on. Curves of two or three points are accepted (``pchip`` and
``akima`` need two) and flagged, since the interpolation is then close to
linear.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import bjontegaard

from inrkit.errors import InputError

METHODS = ("pchip", "akima", "cubic")


@dataclass(frozen=True)
class BDResult:
    """A BD value (``None`` when undefined) and a note explaining caveats or why."""

    value: float | None
    note: str = ""

    def format(self, unit: str, digits: int = 2) -> str:
        if self.value is None:
            return "n/a"
        return f"{self.value:+.{digits}f}{unit}" + (" *" if self.note else "")


def _curve(rate, quality, label: str) -> tuple[list[float], list[float], str]:
    """Sorted finite points of a curve, or an explanation why it cannot be used."""
    if len(rate) != len(quality):
        raise InputError(f"{label}: {len(rate)} rates but {len(quality)} quality values")
    points = sorted(
        (float(r), float(q)) for r, q in zip(rate, quality, strict=True)
        if r is not None and q is not None and math.isfinite(r) and math.isfinite(q) and r > 0
    )
    if len(points) < 2:
        return [], [], f"{label} has {len(points)} usable point(s); BD needs at least 2"
    rates, qualities = [p[0] for p in points], [p[1] for p in points]
    for (r0, q0), (r1, q1) in zip(points, points[1:], strict=False):
        if r1 <= r0 or q1 <= q0:
            return [], [], (
                f"{label} is not strictly increasing ({r0:.4g}→{r1:.4g} rate, "
                f"{q0:.4g}→{q1:.4g} quality); BD undefined"
            )
    return rates, qualities, ""


def _bd(kind: str, anchor: tuple, test: tuple, method: str) -> BDResult:
    if method not in METHODS:
        raise InputError(f"BD interpolation: expected one of {', '.join(METHODS)}, got {method!r}")
    ra, qa, why_a = _curve(anchor[0], anchor[1], "anchor curve")
    rt, qt, why_t = _curve(test[0], test[1], "test curve")
    if why_a or why_t:
        return BDResult(None, why_a or why_t)
    needed = 4 if method == "cubic" else 2
    if min(len(ra), len(rt)) < needed:
        return BDResult(None, f"the {method} interpolation needs {needed} points per curve")
    notes = []
    if min(len(ra), len(rt)) < 4:
        notes.append(f"only {min(len(ra), len(rt))} points on a curve; the interpolation is rough")
    function = bjontegaard.bd_rate if kind == "rate" else bjontegaard.bd_psnr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = function(ra, qa, rt, qt, method=method, require_matching_points=False)
    notes += [_short(str(w.message)) for w in caught]
    if value is None or not math.isfinite(value):
        return BDResult(None, "; ".join(notes) or "the curves do not overlap")
    return BDResult(float(value), "; ".join(notes))


def _short(message: str) -> str:
    """The bjontegaard package's overlap warning, without its advice on silencing it."""
    found = re.search(r"overlap: '([\d.]+)'\. Minimum overlap: '([\d.]+)'", message)
    if found:
        return f"the curves overlap on {found[1]} % of their range (less than {found[2]} %)"
    return message


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip") -> BDResult:
    """Average rate difference in percent of the test curve against the anchor at equal quality."""
    return _bd("rate", (anchor_rate, anchor_quality), (test_rate, test_quality), method)


def bd_quality(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip") -> BDResult:
    """Average quality difference (dB for PSNR) of the test curve against the anchor at equal rate."""
    return _bd("quality", (anchor_rate, anchor_quality), (test_rate, test_quality), method)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the decibel scale CompressAI plots, ``-10·log10(1 - MS-SSIM)``."""
    if value is None or not math.isfinite(value):
        return math.nan
    return math.inf if value >= 1 else -10.0 * math.log10(1.0 - value)
