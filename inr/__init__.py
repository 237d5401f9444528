"""inrkit.inr: neural-field backbones and the fitting loop."""

from inrkit.inr.fields.fourier import FourierMLP
from inrkit.inr.fields.polyinr import PolyInr
from inrkit.inr.fields.siren import Siren
from inrkit.inr.fields.spder import Spder

from .field import Field, build_field, field_from_config
from .fit import FitResult, fit, fit_values, mse_loss, psnr_from_mse

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
