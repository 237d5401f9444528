"""inrkit.eval: metrics, rate–distortion sweeps, BD-rate and plots."""

from typing import TYPE_CHECKING

from inrkit.lazy import lazy_exports

if TYPE_CHECKING:
    from .bdrate import BDResult, bd_quality, bd_rate
    from .metrics import audio_metrics, image_metrics, signal_metrics
    from .plot import plot_results
    from .rd import SweepReport, sweep
    from .results import read_results, write_json

_EXPORTS = {
    "BDResult": ".bdrate",
    "bd_quality": ".bdrate",
    "bd_rate": ".bdrate",
    "audio_metrics": ".metrics",
    "image_metrics": ".metrics",
    "signal_metrics": ".metrics",
    "plot_results": ".plot",
    "SweepReport": ".rd",
    "sweep": ".rd",
    "read_results": ".results",
    "write_json": ".results",
}
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
__getattr__ = lazy_exports(__name__, _EXPORTS)
