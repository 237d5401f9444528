"""inrkit.codecs: quantization, entropy coding, the .inrk container and the codecs."""

from .base import Codec, EncodeOptions, Rate

__all__ = ["Codec", "EncodeOptions", "Rate"]
