"""A divergence guard for training loops: fall back to the best state and halve the rate.

Not from a paper: a safeguard for networks trained at learning rates above their
references' (chosen because they gain a lot on short CPU budgets). The training loop
reports a PSNR after each measurement. When one is finite and at least the best so far,
the network's and the optimizer's state are kept; when one falls more than
``threshold_db`` below the best, or is not finite, both go back to that kept state and
every later learning rate is multiplied by a further 0.5 (:attr:`lr_scale`).

Used by :func:`inrkit.inr.frames.video_fit.fit_frames` (3 dB: NeRV collapsing to a constant
frame) and :func:`inrkit.inr.fit.fit_values` (``collapse_db``; the SIREN image codec
sets 1 dB, for the slow drift measured on long fits, see
:class:`~inrkit.codecs.image.SirenImageCodec`).
"""

from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import nn

from inrkit.errors import InputError


class DivergenceGuard:
    """Keeps the best state and restores it when the PSNR falls ``threshold_db`` below it."""

    def __init__(self, threshold_db: float):
        # numbers.Real as in fit.py's other options: numpy scalars are thresholds too
        if not (isinstance(threshold_db, numbers.Real) and not isinstance(threshold_db, bool)
                and 0 < threshold_db < math.inf):
            raise InputError(f"collapse_db is a PSNR drop in dB (> 0) or None, got {threshold_db!r}")
        self.threshold_db = float(threshold_db)
        self.best_psnr = -math.inf
        self.lr_scale = 1.0
        self.recoveries = 0
        self._state: tuple[dict, dict] | None = None

    def update(self, psnr: float, model: nn.Module, optimizer: torch.optim.Optimizer) -> bool:
        """Report a measurement of ``model``'s current state; True if it was just restored
        (the caller should then drop any gradient computed from the diverged state)."""
        if math.isfinite(psnr) and psnr >= self.best_psnr:
            self.best_psnr = psnr
            self._state = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
            return False
        if self._state is None or psnr >= self.best_psnr - self.threshold_db:
            return False
        model.load_state_dict(self._state[0])
        optimizer.load_state_dict(copy.deepcopy(self._state[1]))
        self.lr_scale *= 0.5
        self.recoveries += 1
        return True


__all__ = ["DivergenceGuard"]
