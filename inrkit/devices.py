"""Where inrkit computes: ``"cpu"`` or ``"cuda[:N]"``, checked before any work.

A device this machine lacks is the user's to fix, so it is one
:class:`~inrkit.errors.InputError` naming it, not torch's driver error from
the first tensor moved there, and never a silent fall back to the CPU.
"""

from __future__ import annotations

import torch

from inrkit.errors import InputError


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device`, or an InputError if it is not a CPU or a
    CUDA device this machine has."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"device {device!r}: expected 'cpu' or 'cuda' (or 'cuda:N')") from None
    if parsed.type == "cpu":
        return parsed
    if parsed.type != "cuda":
        raise InputError(f"device {device!r}: inrkit runs on 'cpu' or 'cuda', not {parsed.type}")
    if not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU or driver found"
        raise InputError(f"device {str(device)!r}: CUDA is not available here ({why}); use device 'cpu'")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InputError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return parsed
