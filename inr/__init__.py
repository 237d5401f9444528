"""inrkit.inr: neural-field backbones and the fitting loop."""

from .field import Field, build_field, field_from_config

__all__ = ["Field", "build_field", "field_from_config"]
