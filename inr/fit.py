"""Fitting a coordinate field to a signal: :func:`fit` and the loop beneath it.

:func:`fit` turns a :class:`~inrkit.datasets.Signal` into coordinates and
values in ``[-1, 1]``, builds the field (or takes one ready-made) and calls
:func:`fit_values`, the general loop that codecs reuse with their own loss
(quantization-aware fine-tuning, rate terms)::

    result = fit(signal, "siren", width=64, depth=3, time_budget=30)
    result.field, result.psnr, result.history["psnr"]

    def qat_loss(field, coords, values):
        mse = torch.mean((quantized(field)(coords) - values) ** 2)
        return {"loss": mse + lmbda * rate_bits(field), "mse": mse}

    fit_values(field, coords, values, loss_fn=qat_loss, steps=500, lr=1e-5)

Conventions.

* Adam on the MSE in the ``[-1, 1]`` fitting range, with the field's
  ``default_lr`` and ``optimizer_kwargs`` (e.g. Instant-NGP's betas and eps)
  unless told otherwise; ``lr_schedule="cosine"`` anneals the learning rate
  to 0 over the budget (steps or seconds, whichever runs out first).
* ``batch_size=None`` trains on every sample each step; otherwise each step
  draws ``batch_size`` samples uniformly with replacement from a
  ``torch.Generator`` seeded with ``seed``, so runs reproduce.
* PSNR is ``10 log10(2² / MSE)``: the fitting range is 2 wide, so this is
  the PSNR on the signal's own ``[0, 1]`` scale (images, video) or of audio in
  ``[-1, 1]`` with peak-to-peak 2.
* ``history`` (a dict of equal-length lists) describes the parameters after
  ``step`` updates, measured on the whole signal every ``log_every`` steps and
  at the end: ``loss``, ``psnr`` (dB), ``step_seconds`` (mean wall time per
  update since the previous record) and ``seconds`` (wall time since the loop
  started, compilation and evaluation included), plus any other scalar a
  custom loss returns. In full-batch mode the measurement is the training
  step's own loss, so it is free; with minibatches it costs one forward pass
  over the signal without gradients, which is why ``log_every`` then defaults
  to about two epochs (some 15% of the fitting time).
* The loop stops at the step budget, the time budget, or the first record
  reaching ``target_psnr``, whichever comes first. With ``keep_best`` the
  returned field holds the parameters with the lowest recorded finite loss (so a
  run that diverges to nan returns its last good state).
* ``collapse_db`` (off by default) guards against divergence during training:
  when a record's PSNR falls more than that many dB below the best record, the
  field and Adam's state go back to the best record's and the learning rate is
  halved for the rest of the run (:class:`~inrkit.inr.divergence.DivergenceGuard`;
  ``FitResult.recoveries`` counts the falls; the history then holds two records of
  that step, the fall and the restored state). It needs a loss with an ``"mse"``
  term.
* Ctrl-C (``KeyboardInterrupt``) propagates, so a codec or a sweep never writes
  what a cut-short fit made. With ``keep_on_interrupt=True`` (interactive use) it
  ends the loop instead, and the field fitted so far is returned with
  ``stopped_by == "interrupt"`` (``result.interrupted``); a second Ctrl-C during
  the final evaluation then propagates as usual.
* ``compile``: ``True`` wraps the loss computation (forward and backward) in
  ``torch.compile``; ``"auto"`` does so only when the run is long enough for
  compilation to pay off. Measured on the 2-core CPU this was written on
  (one thread, COIN's SIREN of 10 layers of width 28, full batch): at 128×128
  compiling took 20 s and cut the step from 93 to 47 ms (break-even after
  about 440 steps, 41 s of eager work); at 256×256 on a busy machine it took
  57 s and cut the step from 590 to 392 ms (break-even near 290 steps, 170 s);
  with two threads on the busy machine the compiled step was slower than the
  eager one. So ``"auto"`` times a few eager steps and compiles only when the
  eager remainder of the run is estimated above :data:`AUTO_COMPILE_SECONDS`
  (on CPU only where a C++ compiler exists). A compilation failure is reported
  once as a warning and the loop continues eagerly.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from inrkit.datasets.grids import coordinate_grid
from inrkit.datasets.signal import Signal
from inrkit.devices import check_device
from inrkit.errors import InputError
from inrkit.registry import FIELDS

from .divergence import DivergenceGuard
from .field import Field, build_field

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], "torch.Tensor | dict[str, torch.Tensor]"]

DEFAULT_STEPS = 2000
AUTO_COMPILE_SECONDS = 180.0  # eager seconds a run must have left for "auto" to compile
AUTO_COMPILE_PROBE_STEPS = 5  # eager steps timed before "auto" decides
EVAL_CHUNK = 1 << 18  # points per forward pass when evaluating the whole signal
SCHEDULES = ("cosine", "constant")
FIELD_RANGE = 2.0  # peak-to-peak of the [-1, 1] fitting range


def psnr_from_mse(mse: float, peak_to_peak: float = FIELD_RANGE) -> float:
    """PSNR in dB of a mean squared error measured on data spanning ``peak_to_peak``."""
    if mse <= 0:
        return math.inf
    return 10.0 * math.log10(peak_to_peak**2 / mse)


def mse_loss(field: nn.Module, coords: torch.Tensor, values: torch.Tensor) -> dict[str, torch.Tensor]:
    """The default objective: mean squared error in the fitting range."""
    mse = torch.mean((field(coords) - values) ** 2)
    return {"loss": mse, "mse": mse}


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` and :func:`fit_values` return. ``field`` is in eval mode."""

    field: nn.Module
    history: dict[str, list[float]]
    stopped_by: str  # "steps", "time", "target" or "interrupt"
    steps: int  # parameter updates made
    seconds: float  # wall time of the loop
    loss: float  # objective of the returned parameters on the whole signal
    psnr: float  # PSNR of the returned parameters (NaN when the loss reports no "mse")
    compiled: bool
    recoveries: int = 0  # times collapse_db's guard went back to the best record
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # the settings used

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupt"

    def seconds_to_psnr(self, db: float) -> float | None:
        """Wall seconds until a record first reached ``db`` dB, or None if none did."""
        for seconds, psnr in zip(self.history["seconds"], self.history["psnr"], strict=True):
            if psnr >= db:
                return seconds
        return None


def fit(
    signal: Signal,
    model: str | Field = "siren",
    *,
    steps: int | None = None,
    time_budget: float | None = None,
    target_psnr: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    lr_schedule: str = "cosine",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    compile: bool | str = "auto",
    log_every: int | None = None,
    keep_best: bool = True,
    collapse_db: float | None = None,
    keep_on_interrupt: bool = False,
    **field_config: Any,
) -> FitResult:
    """Fit a coordinate field to ``signal``.

    ``model`` is a registered field name (built with ``field_config``, its
    ``in_dim`` and ``out_channels`` taken from the signal, its initialisation
    seeded with ``seed`` without touching the global RNG) or a ready
    :class:`Field`, which is trained in place. Without ``steps`` or
    ``time_budget`` the loop runs :data:`DEFAULT_STEPS` steps. The other
    arguments are those of :func:`fit_values`.
    """
    if not isinstance(signal, Signal):
        raise InputError(f"fit() needs an inrkit Signal, got {type(signal).__name__}")
    grid = signal.grid_shape
    if isinstance(model, Field):
        if field_config:
            raise InputError(
                f"fit() got field options {sorted(field_config)} together with a ready-made field"
            )
        field = model
        if field.in_dim != len(grid) or field.out_channels != signal.channels:
            raise InputError(
                f"the {field.name or type(field).__name__} field maps {field.in_dim}-D coordinates to "
                f"{field.out_channels} channels, but the {signal.modality} has a {len(grid)}-D grid "
                f"and {signal.channels} channels"
            )
    elif isinstance(model, str):
        for key in ("in_dim", "out_channels"):
            if key in field_config:
                raise InputError(f"fit() takes {key} from the signal; do not pass it")
        if model in FIELDS and not _is_coordinate_field(model):
            coordinate_fields = [n for n in FIELDS.names() if _is_coordinate_field(n)]
            raise InputError(
                f"{model!r} decodes whole video frames, not coordinates: fit it with "
                f"inrkit.inr.frames.video_fit.fit_frames; fit() takes {', '.join(coordinate_fields)}"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            field = build_field(model, in_dim=len(grid), out_channels=signal.channels, **field_config)
    else:
        raise InputError(
            f"model must be a field name ({', '.join(FIELDS.names())}) or a Field, "
            f"got {type(model).__name__}"
        )
    coords = coordinate_grid(grid)
    values = signal.to_values()
    return fit_values(
        field, coords, values,
        steps=steps if steps is not None or time_budget is not None else DEFAULT_STEPS,
        time_budget=time_budget, target_psnr=target_psnr, lr=lr, batch_size=batch_size,
        lr_schedule=lr_schedule, seed=seed, device=device, progress=progress,
        compile=compile, log_every=log_every, keep_best=keep_best, collapse_db=collapse_db,
        keep_on_interrupt=keep_on_interrupt,
    )


def _is_coordinate_field(name: str) -> bool:
    return {"in_dim", "out_channels"} <= {f.name for f in dataclasses.fields(FIELDS.get(name).Config)}


def fit_values(
    field: nn.Module,
    coords: torch.Tensor,
    values: torch.Tensor,
    *,
    loss_fn: LossFn | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    steps: int | None = DEFAULT_STEPS,
    time_budget: float | None = None,
    target_psnr: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    lr_schedule: str = "cosine",
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    compile: bool | str = "auto",
    log_every: int | None = None,
    keep_best: bool = True,
    collapse_db: float | None = None,
    keep_on_interrupt: bool = False,
) -> FitResult:
    """Train ``field`` so that ``field(coords) ≈ values``; the general fitting loop.

    ``coords`` is ``[..., in_dim]`` and ``values`` ``[..., C]`` with the same
    leading shape. ``loss_fn(field, coords, values)`` returns a scalar tensor
    or a dict of scalars holding ``"loss"`` (minimised) and optionally
    ``"mse"`` (for PSNR; required with ``target_psnr``) and any other terms
    to record; the default is :func:`mse_loss`. ``optimizer`` replaces the
    default Adam (``lr`` is then ignored; the schedule scales each of its
    groups' learning rates). ``steps`` and ``time_budget`` (seconds) bound the
    run; at least one is required. The field is moved to ``device`` and
    returned there, in eval mode. See the module docstring for the rest.
    """
    steps, time_budget, target_psnr, batch_size, log_every = _check_budget(
        steps, time_budget, target_psnr, batch_size, log_every, lr_schedule, compile
    )
    guard = None if collapse_db is None else DivergenceGuard(collapse_db)
    if lr is not None and not (_real(lr) and 0 < lr < math.inf):
        raise InputError(f"lr must be a positive number, got {lr!r}")
    coords, values = _flatten(field, coords, values)
    device = check_device(device)
    field.to(device).train()
    coords, values = coords.to(device), values.to(device)
    n = coords.shape[0]
    full_batch = batch_size is None or batch_size >= n
    if log_every is None:
        log_every = 10 if full_batch else max(10, 2 * math.ceil(n / batch_size))
    loss_fn = loss_fn or mse_loss
    if optimizer is None:
        params = [p for p in field.parameters() if p.requires_grad]
        if not params:
            raise InputError("the field has no trainable parameters")
        lr = lr if lr is not None else getattr(field, "default_lr", 1e-3)
        optimizer = torch.optim.Adam(params, lr=lr, **getattr(field, "optimizer_kwargs", {}))
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    generator = torch.Generator(device=device).manual_seed(seed)
    step_loss = _Stepper(field, loss_fn, compile, device)
    history: dict[str, list[float]] = {}
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    stopped_by, step, last_record = "steps", 0, (0, 0.0)

    def record(step: int, seconds: float, terms: dict[str, float]) -> float:
        nonlocal best, last_record
        if "mse" not in terms and (target_psnr is not None or guard is not None):
            option = "target_psnr" if target_psnr is not None else "collapse_db"
            raise InputError(f"{option} needs a loss_fn that returns an 'mse' term")
        row = {
            "step": step,
            "loss": terms["loss"],
            "psnr": psnr_from_mse(terms["mse"]) if "mse" in terms else math.nan,
            "step_seconds": (seconds - last_record[1]) / max(step - last_record[0], 1),
            "seconds": seconds,
            **{k: v for k, v in terms.items() if k not in ("loss", "mse")},
        }
        for key, value in row.items():
            history.setdefault(key, []).append(float(value))
        last_record = (step, seconds)
        if keep_best and math.isfinite(terms["loss"]) and (best is None or terms["loss"] < best[0]):
            best = (terms["loss"], {k: v.detach().clone() for k, v in field.state_dict().items()})
        return row["psnr"]

    bar = _progress_bar(progress, steps)
    start = time.perf_counter()
    measured_at = -1  # step whose parameters the last record measured
    try:
        while True:
            elapsed = time.perf_counter() - start
            if steps is not None and step >= steps:
                break
            if time_budget is not None and elapsed >= time_budget:
                stopped_by = "time"
                break
            _set_lr(optimizer, lr_schedule, step, steps, elapsed, time_budget,
                    1.0 if guard is None else guard.lr_scale)
            if full_batch:
                batch_coords, batch_values = coords, values
            else:
                index = torch.randint(n, (batch_size,), device=device, generator=generator)
                batch_coords, batch_values = coords[index], values[index]
            optimizer.zero_grad(set_to_none=True)
            terms = step_loss(batch_coords, batch_values)
            terms["loss"].backward()
            if step % log_every == 0:
                # Measure the parameters before this update: free in full-batch mode.
                if full_batch:
                    measured = {k: float(v.detach()) for k, v in terms.items()}
                else:
                    measured = _evaluate(field, loss_fn, coords, values)
                psnr = record(step, time.perf_counter() - start, measured)
                measured_at = step
                bar.set_postfix(psnr=f"{psnr:.2f}")
                if target_psnr is not None and psnr >= target_psnr:
                    stopped_by = "target"
                    break
                if guard is not None and guard.update(psnr, field, optimizer):
                    continue  # this step's gradient belongs to the state just left behind
            optimizer.step()
            step += 1
            bar.update()
            step_loss.maybe_compile(step, steps, time.perf_counter() - start, time_budget)
    except KeyboardInterrupt:
        if not keep_on_interrupt:
            raise
        stopped_by = "interrupt"
    finally:
        bar.close()
    if measured_at != step:
        psnr = record(step, time.perf_counter() - start, _evaluate(field, loss_fn, coords, values))
    # not (last <= best): a run that diverged to nan also gets its best finite state back
    if keep_best and best is not None and not history["loss"][-1] <= best[0]:
        field.load_state_dict(best[1])
        index = history["loss"].index(best[0])
    else:
        index = len(history["loss"]) - 1
    field.eval()
    return FitResult(
        field=field,
        history=history,
        stopped_by=stopped_by,
        steps=step,
        seconds=time.perf_counter() - start,
        loss=history["loss"][index],
        psnr=history["psnr"][index],
        compiled=step_loss.compiled,
        recoveries=0 if guard is None else guard.recoveries,
        config={
            "steps": steps, "time_budget": time_budget, "target_psnr": target_psnr,
            "lr": [g["initial_lr"] for g in optimizer.param_groups], "batch_size": batch_size,
            "lr_schedule": lr_schedule, "seed": seed, "device": str(device),
            "log_every": log_every, "keep_best": keep_best, "compile": compile,
            "collapse_db": collapse_db,
            "field": field.config_dict() if isinstance(field, Field) else None,
        },
    )


class _Stepper:
    """Computes the loss terms of a batch, eagerly or through ``torch.compile``."""

    def __init__(self, field: nn.Module, loss_fn: LossFn, compile: bool | str, device: torch.device):
        self.field, self.loss_fn, self.mode = field, loss_fn, compile
        self.compiled = False
        self._fn: Callable | None = None
        self._eager_seconds: list[float] = []
        self._last = time.perf_counter()
        self.can_compile = _compiler_available(device)
        if compile is True:
            self._try_compile()

    def _try_compile(self) -> None:
        self.mode = False  # decided, whatever happens
        if not self.can_compile:
            warnings.warn("torch.compile needs a C++ compiler on CPU; fitting eagerly", stacklevel=3)
            return
        field, loss_fn = self.field, self.loss_fn

        def terms(coords, values):
            return _as_terms(loss_fn(field, coords, values))

        self._fn = torch.compile(terms)
        self.compiled = True

    def maybe_compile(self, step: int, steps: int | None, elapsed: float, time_budget: float | None) -> None:
        """For ``compile="auto"``: after a few timed eager steps, compile if the run is long."""
        if self.mode != "auto":
            return
        now = time.perf_counter()
        self._eager_seconds.append(now - self._last)
        self._last = now
        if step < AUTO_COMPILE_PROBE_STEPS:
            return
        per_step = min(self._eager_seconds[1:])  # the first step pays for allocation
        remaining = math.inf
        if steps is not None:
            remaining = (steps - step) * per_step
        if time_budget is not None:
            remaining = min(remaining, time_budget - elapsed)
        if remaining > AUTO_COMPILE_SECONDS and self.can_compile:
            self._try_compile()
        else:
            self.mode = False

    def __call__(self, coords: torch.Tensor, values: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._fn is not None:
            try:
                return self._fn(coords, values)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # noqa: BLE001 - any compiler failure: fall back once
                warnings.warn(
                    f"torch.compile failed ({type(error).__name__}: {error}); fitting eagerly",
                    stacklevel=2,
                )
                self._fn, self.compiled = None, False
        return _as_terms(self.loss_fn(self.field, coords, values))


def _as_terms(out: torch.Tensor | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    terms = dict(out) if isinstance(out, dict) else {"loss": out}
    if "loss" not in terms or terms["loss"].ndim != 0:
        raise InputError("loss_fn must return a scalar tensor or a dict with a scalar 'loss'")
    return terms


@torch.no_grad()
def _evaluate(field: nn.Module, loss_fn: LossFn, coords: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
    """Loss terms over the whole signal, averaged over chunks weighted by their size."""
    total: dict[str, float] = {}
    n = coords.shape[0]
    for c, v in zip(coords.split(EVAL_CHUNK), values.split(EVAL_CHUNK), strict=True):
        for key, value in _as_terms(loss_fn(field, c, v)).items():
            total[key] = total.get(key, 0.0) + float(value) * c.shape[0] / n
    return total


def _set_lr(optimizer, schedule: str, step: int, steps: int | None, elapsed: float, budget: float | None,
            scale: float = 1.0) -> None:
    if schedule == "constant":
        if scale != 1.0:
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * scale
        return
    progress = 0.0
    if steps is not None:
        progress = step / steps
    if budget is not None:
        progress = max(progress, elapsed / budget)
    factor = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor * scale


def _flatten(field: nn.Module, coords: torch.Tensor, values: torch.Tensor):
    in_dim = getattr(field, "in_dim", coords.shape[-1])
    channels = getattr(field, "out_channels", values.shape[-1])
    if coords.shape[-1] != in_dim or values.shape[-1] != channels or coords.shape[:-1] != values.shape[:-1]:
        raise InputError(
            f"a field from {in_dim}-D coordinates to {channels} channels needs coords [..., {in_dim}] "
            f"and values [..., {channels}] with the same leading shape; got {tuple(coords.shape)} "
            f"and {tuple(values.shape)}"
        )
    if coords.numel() == 0:
        raise InputError("nothing to fit: coords are empty")
    return coords.reshape(-1, in_dim).float(), values.reshape(-1, channels).float()


def _check_budget(steps, time_budget, target_psnr, batch_size, log_every, lr_schedule, compile):
    if steps is None and time_budget is None:
        raise InputError("give a step budget (steps) or a time budget (seconds), or both")
    if steps is not None and not _positive_whole(steps):
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    if time_budget is not None and not (_real(time_budget) and time_budget > 0):
        raise InputError(f"time_budget must be a positive number of seconds, got {time_budget!r}")
    if target_psnr is not None and not (_real(target_psnr) and math.isfinite(target_psnr)):
        raise InputError(f"target_psnr must be a finite number of dB, got {target_psnr!r}")
    if batch_size is not None and not _positive_whole(batch_size):
        raise InputError(f"batch_size must be a positive integer or None (full batch), got {batch_size!r}")
    if log_every is not None and not _positive_whole(log_every):
        raise InputError(f"log_every must be a positive integer, got {log_every!r}")
    if lr_schedule not in SCHEDULES:
        raise InputError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {lr_schedule!r}")
    if compile not in (True, False, "auto"):
        raise InputError(f"compile must be True, False or 'auto', got {compile!r}")
    return (
        None if steps is None else int(steps),
        None if time_budget is None else float(time_budget),
        None if target_psnr is None else float(target_psnr),
        None if batch_size is None else int(batch_size),
        None if log_every is None else int(log_every),
    )


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive_whole(value) -> bool:
    """An int, or a float with a whole value (``1e4`` steps), that is at least 1."""
    return _real(value) and math.isfinite(value) and int(value) == value and value >= 1


def _compiler_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return shutil.which("g++") is not None or shutil.which("c++") is not None


def _progress_bar(enabled: bool, steps: int | None):
    from tqdm import tqdm

    return tqdm(total=steps, file=sys.stderr, disable=not enabled, unit="step", desc="fitting")


__all__ = ["FitResult", "LossFn", "fit", "fit_values", "mse_loss", "psnr_from_mse"]

