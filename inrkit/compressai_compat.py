"""CompressAI's entropy models and rANS coder, imported without its import-time noise.

CompressAI imports torch_geometric (for point-cloud datasets inrkit does not use),
which calls the deprecated ``torch.jit.script`` at import time, so a plain
``import compressai`` prints a FutureWarning about code that is neither ours nor the
user's on every command. The warning is silenced for this import only; the same
warning from anyone else's code still shows.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from compressai.ans import RansDecoder, RansEncoder
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional

__all__ = ["EntropyBottleneck", "GaussianConditional", "RansDecoder", "RansEncoder"]
