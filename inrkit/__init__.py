"""inrkit: implicit neural representations and neural compression.

Public API: :func:`load`, :func:`fit`, :func:`encode`, :func:`decode`, :func:`save`,
:func:`make_codec` (see :mod:`inrkit.api`). They are imported on first use, so
``import inrkit`` stays light.
"""

from typing import TYPE_CHECKING

from .errors import BitstreamError, InputError, InrkitError, ModelError
from .lazy import lazy_exports
from .version import __version__

if TYPE_CHECKING:
    from .api import decode, encode, fit, load, make_codec, save

_EXPORTS = {name: ".api" for name in ("load", "fit", "encode", "decode", "save", "make_codec")}
__all__ = ["BitstreamError", "InputError", "InrkitError", "ModelError", "__version__",
           "decode", "encode", "fit", "load", "make_codec", "save"]
__getattr__ = lazy_exports(__name__, _EXPORTS)
