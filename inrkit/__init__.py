"""inrkit: implicit neural representations and neural compression.

Public API: :func:`load`, :func:`fit`, :func:`encode`, :func:`decode`, :func:`save`
(see :mod:`inrkit.api`). They are imported on first use, so ``import inrkit``
stays light.
"""

from inrkit.errors import BitstreamError, InputError, InrkitError, ModelError

__version__ = "0.1.0"

_API = ("load", "fit", "encode", "decode", "save", "make_codec")

__all__ = ["BitstreamError", "InputError", "InrkitError", "ModelError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from inrkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'inrkit' has no attribute {name!r}")
