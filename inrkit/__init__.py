"""inrkit: implicit neural representations and neural compression.

Public API: :func:`load`, :func:`fit`, :func:`encode`, :func:`decode`, :func:`save`.
"""

from .errors import BitstreamError, InputError, InrkitError, ModelError

__version__ = "0.1.0"

__all__ = ["BitstreamError", "InputError", "InrkitError", "ModelError", "__version__"]
