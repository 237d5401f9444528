"""inrkit.eval: metrics, rate–distortion sweeps, BD-rate and plots."""

from .bdrate import BDResult, bd_quality, bd_rate
from .metrics import audio_metrics, image_metrics, signal_metrics
from .plot import plot_results
from .rd import SweepReport, sweep
from .results import read_results, write_json

__all__ = [
    "BDResult",
    "SweepReport",
    "audio_metrics",
    "bd_quality",
    "bd_rate",
    "image_metrics",
    "plot_results",
    "read_results",
    "signal_metrics",
    "sweep",
    "write_json",
]
