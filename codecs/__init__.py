"""inrkit.codecs: quantization, entropy coding, the .inrk container and the codecs."""

from typing import TYPE_CHECKING

from inrkit.lazy import lazy_exports

if TYPE_CHECKING:
    from .base import Codec, EncodeOptions, Rate

_EXPORTS = {
    "Codec": ".base",
    "EncodeOptions": ".base",
    "Rate": ".base",
}
__all__ = [
    "Codec",
    "EncodeOptions",
    "Rate",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
