"""inrkit.inr: neural-field backbones and the fitting loop."""

from .field import Field, build_field, field_from_config
from .fit import FitResult, fit, fit_values, mse_loss, psnr_from_mse
from .fourier import FourierMLP
from .polyinr import PolyInr
from .siren import Siren
from .spder import Spder

__all__ = [
    "Field",
    "FitResult",
    "FourierMLP",
    "PolyInr",
    "Siren",
    "Spder",
    "build_field",
    "field_from_config",
    "fit",
    "fit_values",
    "mse_loss",
    "psnr_from_mse",
]
