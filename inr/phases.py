"""One optimisation loop driven by declared phases (Cool-chic's ``TrainerPhase`` idea).

A recipe is a list of :class:`Phase` objects; :func:`run_phases` runs them in order on one
model. Each phase declares

* its budget: ``steps`` and/or ``seconds`` (whichever runs out first ends the phase);
* its learning rate and schedule: ``"constant"``, or ``"cosine"`` from ``lr`` down to
  ``lr_floor`` over the phase's budget (C3 / Cool-chic 3+);
* how latents are quantized while it trains: a ``inrkit.inr.latents.pyramid.quantize`` mode
  (``"noise"``, ``"softround"``, ``"ste"``, ...), with the soft-round ``temperature`` and the
  Kumaraswamy ``noise`` parameter each either a constant or a ``(start, end)`` pair scheduled
  linearly over the phase (Cool-chic's ``softround_temperature`` / ``noise_parameter``);
* which parameter groups train (``train``; the others are left untouched);
* ``keep_best``: restore, at the end of the phase, the state of the lowest loss seen in it;
* nothing about progress display: ``run_phases(progress=True)`` shows one tqdm bar per phase
  whose total is the real budget (steps, or seconds for a phase bounded by time alone).

The loop knows nothing about the model beyond ``nn.Module``. ``loss_fn(model, step)`` gets a
:class:`Step` (phase, index, progress fraction, quantization mode and its current temperature
and noise parameter) and returns ``(loss, terms)``: a scalar tensor to minimise and a dict of
floats to report (e.g. ``{"mse": ..., "bpp": ...}``).

Contract:

* A fresh Adam optimiser is built for each phase over the parameters of the groups it trains
  (Cool-chic also restarts its optimiser per phase); parameters outside those groups get no
  update (their gradients are cleared).
* The loss of step ``t`` is measured before that step's update, so ``keep_best`` restores the
  parameters that produced the best loss (a snapshot of ``model.state_dict()``).
* A non-finite loss skips the update (it is not counted as the best) and is reported in
  ``PhaseResult.skipped``.
* ``KeyboardInterrupt`` (Ctrl-C) is never swallowed: the progress bar is closed and the
  exception propagates to the caller; the model keeps the state it had reached.
* Deterministic for a given seed when every phase is bounded by steps; a ``seconds`` budget
  makes the number of steps (and the schedules' progress, which then follows the clock)
  depend on the machine.

This module is meant to become the project's single loop; only the Cool-chic codec uses it
so far (docs/design.md, "Not yet as designed").
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from inrkit.errors import InputError

__all__ = ["Phase", "PhaseResult", "RunResult", "Step", "run_phases"]

SCHEDULES = ("constant", "cosine")
QUANTIZE_MODES = ("none", "noise", "softround", "softround_alone", "ste", "round")
Schedule = float | tuple[float, float] | None


def _check_schedule(name: str, value: Schedule) -> None:
    if value is None:
        return
    vals = value if isinstance(value, tuple) else (value,)
    if len(vals) not in (1, 2) or not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in vals):
        raise InputError(f"phase {name} must be a positive number or a (start, end) pair, got {value!r}")


def _at(value: Schedule, frac: float) -> float | None:
    """A constant, or the linear interpolation of a (start, end) pair at ``frac``."""
    if value is None or not isinstance(value, tuple):
        return value
    return value[0] + (value[1] - value[0]) * frac


@dataclass(frozen=True)
class Phase:
    """One phase of a recipe.

    Attributes:
        name: a label for progress bars and results.
        steps: at most this many optimiser steps (``None``: bounded by ``seconds`` alone).
        seconds: at most this much wall time (``None``: bounded by ``steps`` alone).
        lr: Adam's learning rate (the start of a cosine schedule).
        schedule: ``"constant"`` or ``"cosine"`` (from ``lr`` to ``lr_floor``).
        lr_floor: the learning rate a cosine schedule ends at.
        quantize: the latent quantization mode while training (``pyramid.MODES``).
        temperature: soft-round temperature, a constant or a linear ``(start, end)``.
        noise: Kumaraswamy noise parameter ``a`` (``1`` or ``None``: uniform), constant or
            ``(start, end)``.
        train: names of the parameter groups that train (``None``: all groups).
        keep_best: restore the best-loss state seen in this phase when it ends.
        betas: Adam's betas.

    Raises:
        InputError: no budget, a non-positive budget or rate, an unknown schedule or mode.
    """

    name: str = "phase"
    steps: int | None = None
    seconds: float | None = None
    lr: float = 1e-2
    schedule: str = "constant"
    lr_floor: float = 0.0
    quantize: str = "noise"
    temperature: Schedule = None
    noise: Schedule = None
    train: tuple[str, ...] | None = None
    keep_best: bool = False
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.steps is None and self.seconds is None:
            raise InputError(f"phase {self.name!r} needs a budget: steps, seconds or both")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0):
            raise InputError(f"phase {self.name!r}: steps must be a whole number >= 0, got {self.steps!r}")
        if self.seconds is not None and not (isinstance(self.seconds, int | float) and self.seconds > 0):
            raise InputError(f"phase {self.name!r}: seconds must be positive, got {self.seconds!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not 0 <= self.lr_floor <= self.lr:
            raise InputError(f"phase {self.name!r}: need lr > 0 and 0 <= lr_floor <= lr")
        if self.schedule not in SCHEDULES:
            raise InputError(f"phase {self.name!r}: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.quantize not in QUANTIZE_MODES:
            raise InputError(f"phase {self.name!r}: quantize must be one of {QUANTIZE_MODES}, got {self.quantize!r}")
        _check_schedule("temperature", self.temperature)
        _check_schedule("noise", self.noise)
        if self.quantize in ("softround", "softround_alone") and self.temperature is None:
            raise InputError(f"phase {self.name!r}: {self.quantize} needs a temperature")

    def lr_at(self, frac: float) -> float:
        """The learning rate at progress ``frac`` in [0, 1]."""
        if self.schedule == "constant":
            return self.lr
        return self.lr_floor + 0.5 * (self.lr - self.lr_floor) * (1.0 + math.cos(math.pi * min(1.0, frac)))

    def scaled(self, factor: float) -> Phase:
        """This phase with its budget (steps and seconds) times ``factor`` (steps at least 1)."""
        steps = None if self.steps is None else max(1, round(self.steps * factor))
        seconds = None if self.seconds is None else self.seconds * factor
        return dataclasses.replace(self, steps=steps, seconds=seconds)


@dataclass(frozen=True)
class Step:
    """What ``loss_fn`` is told about the current step."""

    phase: Phase
    index: int  # step within the phase, from 0
    frac: float  # progress through the phase's budget, in [0, 1)
    mode: str  # latent quantization mode
    temperature: float | None
    noise: float | None


@dataclass
class PhaseResult:
    """What one phase did: steps run, seconds, the last and the best loss and their terms."""

    name: str
    steps: int = 0
    seconds: float = 0.0
    final_loss: float = math.nan
    final_terms: dict[str, float] = field(default_factory=dict)
    best_loss: float = math.inf
    best_terms: dict[str, float] = field(default_factory=dict)
    best_step: int = -1
    restored_best: bool = False
    skipped: int = 0


@dataclass
class RunResult:
    """What :func:`run_phases` did: one :class:`PhaseResult` per phase and the total time."""

    phases: list[PhaseResult]
    seconds: float

    @property
    def steps(self) -> int:
        return sum(p.steps for p in self.phases)

    @property
    def final(self) -> PhaseResult:
        return self.phases[-1]


def _groups(model: nn.Module, groups: Mapping[str, Iterable[nn.Parameter]] | None) -> dict[str, list[nn.Parameter]]:
    if groups is None:
        return {"all": [p for p in model.parameters()]}
    out = {name: list(params) for name, params in groups.items()}
    seen: set[int] = set()
    for name, params in out.items():
        for p in params:
            if id(p) in seen:
                raise InputError(f"parameter group {name!r} shares a parameter with another group")
            seen.add(id(p))
    return out


def _terms(terms: Mapping[str, float] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (terms or {}).items()}


def run_phases(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Step], tuple[Tensor, Mapping[str, float]]],
    phases: Sequence[Phase],
    *,
    groups: Mapping[str, Iterable[nn.Parameter]] | None = None,
    progress: bool = False,
    deadline: float | None = None,
) -> RunResult:
    """Run ``phases`` in order on ``model``.

    Args:
        model: the module to optimise (trained in place).
        loss_fn: ``loss_fn(model, step) -> (loss, terms)``: the scalar loss of one step and the
            floats to report with it.
        phases: the recipe.
        groups: named parameter groups (``Phase.train`` picks among them); default one group
            ``"all"`` with every parameter of ``model``.
        progress: show a tqdm bar per phase (total = the phase's steps, or its seconds when it
            is bounded by time alone).
        deadline: a ``time.perf_counter()`` value past which every phase stops (an overall
            time budget on top of the phases' own).

    Returns:
        A :class:`RunResult`.

    Raises:
        InputError: an empty recipe, or a phase training a group that does not exist.
        KeyboardInterrupt: re-raised as it came (the loop never swallows Ctrl-C).
    """
    if not phases:
        raise InputError("run_phases needs at least one phase")
    named = _groups(model, groups)
    for ph in phases:
        missing = sorted(set(ph.train or ()) - set(named))
        if missing:
            raise InputError(f"phase {ph.name!r} trains unknown parameter groups {missing}; have {sorted(named)}")
    start = time.perf_counter()
    results = [_run_one(model, loss_fn, ph, named, progress, deadline) for ph in phases]
    return RunResult(results, time.perf_counter() - start)


def _run_one(model, loss_fn, ph: Phase, named, progress: bool, deadline: float | None) -> PhaseResult:
    trained = [p for name, ps in named.items() if ph.train is None or name in ph.train for p in ps]
    frozen = [p for name, ps in named.items() if ph.train is not None and name not in ph.train for p in ps]
    result = PhaseResult(ph.name)
    if ph.steps == 0 or not trained:
        return result
    opt = torch.optim.Adam(trained, lr=ph.lr, betas=ph.betas)
    t0 = time.perf_counter()
    end = None if ph.seconds is None else t0 + ph.seconds
    if deadline is not None:
        end = deadline if end is None else min(end, deadline)
    best_state = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        by_time = ph.steps is None
        bar = tqdm(total=round(ph.seconds, 1) if by_time else ph.steps, desc=ph.name,
                   unit="s" if by_time else "step", leave=False, dynamic_ncols=True)
    try:
        step = 0
        while True:
            now = time.perf_counter()
            if ph.steps is not None and step >= ph.steps:
                break
            if end is not None and now >= end:
                break
            frac_steps = 0.0 if ph.steps is None else step / ph.steps
            frac_time = 0.0 if ph.seconds is None else (now - t0) / ph.seconds
            frac = min(1.0, max(frac_steps, frac_time))
            lr = ph.lr_at(frac)
            for g in opt.param_groups:
                g["lr"] = lr
            info = Step(ph, step, frac, ph.quantize, _at(ph.temperature, frac), _at(ph.noise, frac))
            loss, terms = loss_fn(model, info)
            value = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            if math.isfinite(value):
                loss.backward()
                for p in frozen:
                    p.grad = None
                result.final_loss, result.final_terms = value, _terms(terms)
                if ph.keep_best and value < result.best_loss:
                    best_state = copy.deepcopy(model.state_dict())
                if value < result.best_loss:
                    result.best_loss, result.best_terms, result.best_step = value, _terms(terms), step
                opt.step()
            else:
                result.skipped += 1
            step += 1
            if bar is not None:
                if ph.steps is None:
                    bar.n = round(min(time.perf_counter() - t0, float(ph.seconds or 0.0)), 1)
                    bar.refresh()
                else:
                    bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in _terms(terms).items()}, refresh=False)
        result.steps = step
        if ph.keep_best and best_state is not None:
            model.load_state_dict(best_state)
            result.restored_best = True
    finally:
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - t0
    return result
