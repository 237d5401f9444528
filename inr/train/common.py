"""Pieces every trainer of a shared model uses: process groups and resumable state.

Trainers (``inrkit train NAME``) write the model file the codecs load and, beside
it, a training-state file (optimizer moments, schedulers, step counters) in
safetensors, never pickle. Multi-process training is DistributedDataParallel
started by torchrun: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from inrkit.errors import InputError, ModelError
from inrkit.inr.model_files import atomic_save_file


@contextmanager
def distributed() -> Iterator[tuple[int, int, torch.device]]:
    """``with distributed() as (rank, world size, device):`` a trainer's whole run.

    Joins the process group torchrun set up, if any, and leaves it on the way
    out, also when training fails; a single process needs no group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        device = torch.device("cpu")
        if torch.cuda.is_available():
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        yield dist.get_rank(), world, device
    finally:
        dist.destroy_process_group()


def require_positive(args, *names: str) -> None:
    """Each named option of ``args`` (``None``: not given) must be a positive, finite
    number: a learning rate or budget of 0, -1 or nan is an :class:`InputError` here,
    not an optimizer's traceback later."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not 0 < value < math.inf:
            raise InputError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


def check_output(out: str | os.PathLike, data: str | os.PathLike) -> None:
    """Refuse, before any training, a model file ``out`` that would overwrite one of
    the training files under ``data`` (or have its training state do so), that is a
    folder, or whose folder cannot be made: a run should not end by losing its work.
    The folder itself is made only when the first checkpoint is written."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder; give the model file to write")
    data = Path(data)
    if data.exists():
        inputs = [data] if data.is_file() else [p for p in data.rglob("*") if p.is_file()]
        inputs = {p.resolve() for p in inputs}
        for target in (out, training_state_path(out)):
            if target.resolve() in inputs:
                raise InputError(f"--out {out}: would overwrite {target}, a file under --data {data}")
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: cannot write there ({ancestor} is not a writable folder)")


def training_state_path(out: str | os.PathLike) -> Path:
    """Where the resumable training state lives beside the model file ``out``."""
    out = Path(out)
    return out.with_name(out.stem + ".train.safetensors")


def write_training_state(
    out: str | os.PathLike, file_format: str, tensors: dict, metadata: dict[str, str]
) -> None:
    """Write the training state beside the model file ``out`` (atomically), tagged
    ``format=file_format``; ``metadata`` holds the JSON-encoded rest."""
    atomic_save_file(tensors, training_state_path(out), {"format": file_format, **metadata})


def read_training_state(
    out: str | os.PathLike, file_format: str, what: str
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """``(metadata, tensors)`` of the training state beside ``out``; :class:`ModelError`
    if it is unreadable or not of ``file_format`` (``what`` names it in the message,
    e.g. "an inrkit RVQGAN training state")."""
    path = training_state_path(out)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"training state {str(path)!r} unreadable: {exc}") from None
    if meta.get("format") != file_format:
        raise ModelError(f"training state {str(path)!r} is not {what}")
    return meta, tensors


def resume_weights(
    out: str | os.PathLike, model: torch.nn.Module, load, file_format: str, what: str
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Start a resumed run: load ``out`` with ``load`` (the model's ``load_model``), check
    that it was trained with ``model.config`` (:class:`ModelError` if not), read its
    training state (:func:`read_training_state`) and copy the weights into ``model``.
    Returns the training state's ``(metadata, tensors)``."""
    saved, _ = load(out)
    if saved.config != model.config:
        raise ModelError(
            f"cannot resume: {str(out)!r} was trained with a different config: {saved.config}"
        )
    meta, tensors = read_training_state(out, file_format, what)
    model.load_state_dict(saved.state_dict())
    return meta, tensors


def optimizer_to_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer's state into tensors (named ``prefix.<param>.<key>``, for
    safetensors) and the JSON-able rest (param groups and scalar entries)."""
    state = opt.state_dict()
    tensors, plain = {}, {}
    for idx, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def optimizers_to_tensors(optimizers: dict[str, torch.optim.Optimizer]) -> tuple[dict, dict]:
    """:func:`optimizer_to_tensors` for several optimizers, each under its name: all their
    tensors in one dict, and their JSON-able parts keyed by name."""
    tensors, meta = {}, {}
    for name, opt in optimizers.items():
        t, meta[name] = optimizer_to_tensors(name, opt)
        tensors.update(t)
    return tensors, meta


def optimizer_from_tensors(prefix: str, tensors: dict, meta: dict) -> dict:
    """The inverse of :func:`optimizer_to_tensors`: a dict for ``opt.load_state_dict``."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["plain"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}
