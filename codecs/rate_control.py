"""Rate control shared by the codecs that fit a signal under a rate–distortion trade-off λ.

``search_lambda`` finds a λ whose *measured* file (its length in bytes, container and header
included) lands within :data:`RATE_TOLERANCE` of a target size. It is a secant search on
``log λ`` against ``log bytes``: the rate of a fitted codec falls roughly as a power of λ, so
the relation is close to a line in log–log coordinates. The first step uses a prior slope, the
later ones the secant through the two tried points nearest the target on either side when the
target is bracketed (else the last two), the slope clipped to a plausible range so a noisy
measurement cannot throw λ far away.

The codec supplies ``fit(λ, warm_start) -> (data, state)``: it fits at λ (starting from
``warm_start``, the ``state`` an earlier fit returned, or from scratch when ``warm_start`` is
``None``) and returns the complete file and whatever state a later fit may start from (a model,
a state dict). Each later fit is warm-started from the earlier fit whose λ is nearest in
``log λ``, so work is reused rather than repeated.

Only the codecs whose docstrings say so use this module yet (``coolchic``); the others keep
their own searches (docs/design.md, "Not yet as designed").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inrkit.errors import InputError

__all__ = ["MAX_FITS", "RATE_TOLERANCE", "SearchResult", "Trial", "search_lambda", "within_tolerance"]

RATE_TOLERANCE = 0.10
"""A searched file's size may miss its target by this fraction either way (±10 %)."""
MAX_FITS = 4
"""The most fits one search runs."""
PRIOR_SLOPE = -0.5
"""d log(bytes) / d log(λ) assumed before two points are known (images: about −0.5)."""
SLOPE_RANGE = (-2.0, -0.1)


def within_tolerance(measured: float, target: float, tolerance: float = RATE_TOLERANCE) -> bool:
    """Whether ``measured`` lies within ``tolerance`` (a fraction) of ``target``."""
    return abs(measured - target) <= tolerance * target


@dataclass
class Trial:
    """One fit of a search: its λ, the file's size in bytes, the file and the fit's state."""

    lmbda: float
    size: int
    data: bytes = field(repr=False)
    state: Any = field(default=None, repr=False)
    warm_from: float | None = None  # λ of the fit this one started from


@dataclass
class SearchResult:
    """The file chosen (the trial closest to the target in log size) and every trial."""

    data: bytes = field(repr=False)
    lmbda: float
    size: int
    converged: bool
    trials: list[Trial]


def search_lambda(
    fit: Callable[[float, Any], tuple[bytes, Any]],
    target_bytes: float,
    lmbda: float,
    *,
    max_fits: int = MAX_FITS,
    tolerance: float = RATE_TOLERANCE,
    prior_slope: float = PRIOR_SLOPE,
    lmbda_range: tuple[float, float] = (1e-7, 1.0),
    deadline: float | None = None,
) -> SearchResult:
    """Search λ so that ``len(fit(λ, ...)[0])`` lands within ``tolerance`` of ``target_bytes``.

    Args:
        fit: ``fit(λ, warm_start) -> (data, state)``; ``warm_start`` is ``None`` for the first
            fit, then the state of the earlier fit nearest in ``log λ``.
        target_bytes: the target file size.
        lmbda: the first λ to try.
        max_fits: at most this many fits (>= 1).
        tolerance: the accepted relative miss.
        prior_slope: ``d log(bytes) / d log(λ)`` used for the first step.
        lmbda_range: λ is kept within this range.
        deadline: a ``time.perf_counter()`` value after which no new fit starts.

    Returns:
        A :class:`SearchResult`; when no fit lands within the tolerance (the target is outside
        what the codec reaches, or the fits ran out) ``converged`` is False and the closest file
        is returned.

    Raises:
        InputError: a non-positive target or λ, or ``max_fits`` < 1.
    """
    if not target_bytes > 0 or not lmbda > 0 or max_fits < 1:
        raise InputError("search_lambda needs a positive target, a positive λ and at least one fit")
    lo_l, hi_l = (math.log(v) for v in lmbda_range)
    target = math.log(target_bytes)
    trials: list[Trial] = []
    log_l = min(hi_l, max(lo_l, math.log(lmbda)))
    for _ in range(max_fits):
        warm = min(trials, key=lambda t: abs(math.log(t.lmbda) - log_l), default=None)
        data, state = fit(math.exp(log_l), None if warm is None else warm.state)
        trials.append(Trial(math.exp(log_l), len(data), data, state, None if warm is None else warm.lmbda))
        if within_tolerance(len(data), target_bytes, tolerance):
            break
        if deadline is not None and time.perf_counter() >= deadline:
            break
        nxt = _next_log_lambda(trials, target, prior_slope)
        nxt = min(hi_l, max(lo_l, nxt))
        if any(abs(nxt - math.log(t.lmbda)) < 1e-9 for t in trials):
            break  # pinned at the range's edge: another fit would repeat one
        log_l = nxt
    best = min(trials, key=lambda t: abs(math.log(t.size) - target))
    return SearchResult(best.data, best.lmbda, best.size, within_tolerance(best.size, target_bytes, tolerance), trials)


def _next_log_lambda(trials: list[Trial], target: float, prior_slope: float) -> float:
    pts = [(math.log(t.lmbda), math.log(t.size)) for t in trials]
    last = pts[-1]
    if len(pts) == 1:
        slope = prior_slope
    else:
        above = [p for p in pts if p[1] > target]
        below = [p for p in pts if p[1] <= target]
        if above and below:  # bracketed: the secant through the nearest point on each side
            a = min(above, key=lambda p: p[1] - target)
            b = max(below, key=lambda p: p[1] - target)
        else:
            a, b = pts[-2], pts[-1]
        dl, db = b[0] - a[0], b[1] - a[1]
        slope = db / dl if abs(dl) > 1e-9 and db != 0 else prior_slope
        slope = min(SLOPE_RANGE[1], max(SLOPE_RANGE[0], slope))
        if above and below:
            return a[0] + (target - a[1]) / slope
    return last[0] + (target - last[1]) / slope
