"""Trained model files: safetensors weights, their config as JSON metadata, a content hash.

Codecs that rely on a shared trained model (RVQGAN, VC-INR, M-AdaCode) store the
model's :func:`tensor_hash` in each bitstream and load the weights from a local
file, never from the network (docs/design.md). Every such file is written atomically and
read through :func:`load_model`, which turns anything unexpected into
:class:`inrkit.ModelError`. No pickle anywhere: safetensors holds tensors only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from inrkit.errors import ModelError

ModelT = TypeVar("ModelT", bound=nn.Module)


def tensor_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over the tensors alone, in name order: name, dtype, shape, bytes.

    Metadata (config notes, training logs) does not change it; any weight does."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def atomic_save_file(tensors: dict[str, torch.Tensor], path, metadata: dict[str, str]) -> None:
    """``safetensors.torch.save_file`` through a temporary file in the same folder and
    ``os.replace``, so a crash never leaves a half-written model behind; makes the
    folder if it is missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    file_format: str,
    metadata: dict[str, str] | None = None,
) -> str:
    """Write ``model`` (which has a dataclass ``model.config``) to a safetensors file
    with metadata ``format=file_format`` and ``config`` as JSON; returns the
    :func:`tensor_hash` of what was written."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    model_config: Any = model.config
    config = json.dumps(dataclasses.asdict(model_config), sort_keys=True)
    atomic_save_file(tensors, path, {"format": file_format, "config": config, **(metadata or {})})
    return tensor_hash(tensors)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file, or :class:`ModelError` if it is not one."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"model file {str(path)!r} is a folder; give the .safetensors file")
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{str(path)!r} is not a readable safetensors model file: {exc}") from None


def load_model(
    path: str | os.PathLike,
    file_format: str,
    build: Callable[[dict], ModelT],
) -> tuple[ModelT, str]:
    """Load a file written by :func:`save_model`: check its ``format``, build the model
    from its JSON config with ``build(config_dict)``, load the weights strictly.

    Returns ``(model in eval mode, tensor hash)``; raises :class:`ModelError` if the
    file is missing, unreadable, of another format, or its weights do not fit its
    config."""
    meta = read_metadata(path)
    if meta.get("format") != file_format:
        raise ModelError(
            f"{str(path)!r}: expected an inrkit model of format {file_format!r}, "
            f"found format={meta.get('format')!r}"
        )
    try:
        tensors = load_file(str(path))
        model = build(json.loads(meta["config"]))
        model.load_state_dict(tensors)
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{str(path)!r}: model config and weights do not fit together: {exc}"
        ) from None
    return model.eval(), tensor_hash(tensors)
