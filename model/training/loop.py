"""The loop every stage shares: accelerate for devices and mixed precision, resumable checkpoints, logs.

Randomness is drawn per step from a generator seeded by (run seed, stage, step), and the model has no dropout,
so a run stopped after step k and resumed from its checkpoint computes exactly what an uninterrupted run
computes: the checkpoint holds the weights, the optimizer, the learning-rate schedule and the EMA.
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from tqdm import tqdm

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 2


def step_generator(seed: int, stage: str, step: int) -> torch.Generator:
    """The generator of one step's randomness: the same for a resumed run as for an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(stage.encode()) * 7919 + step)


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / max(1, warmup_steps))

    return factor


def warmup_cosine(warmup_steps: int, total_steps: int, floor: float = 0.1) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def optimizer_step(
    accelerator: Accelerator,
    loss: torch.Tensor,
    parameters: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LambdaLR,
    max_norm: float = 1.0,
) -> float:
    """Backward, clip the gradient norm to `max_norm`, step and clear; returns the norm before clipping."""
    accelerator.backward(loss)
    norm = accelerator.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return float(norm)


@dataclass
class Stage:
    """One stage's trainable state and where its checkpoints go."""

    name: str
    run_dir: Path
    modules: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    ema: EMAModel | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints" / self.name

    def latest_checkpoint(self) -> Path | None:
        paths = sorted(self.checkpoint_dir.glob("step-*.pt"))
        return paths[-1] if paths else None

    def save(self, step: int, accelerator: Accelerator) -> Path:
        path = self.checkpoint_dir / f"step-{step:07d}.pt"
        if accelerator.is_main_process:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            state = {
                "step": step,
                "modules": {
                    name: accelerator.unwrap_model(module).state_dict()
                    for name, module in self.modules.items()
                },
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "extra": self.extra,
            }
            partial = path.with_name(path.name + ".partial")
            torch.save(state, partial)
            os.replace(partial, path)
            for old in sorted(self.checkpoint_dir.glob("step-*.pt"))[:-KEEP_CHECKPOINTS]:
                old.unlink()
        accelerator.wait_for_everyone()
        return path

    def resume(self, accelerator: Accelerator) -> int:
        """Load the latest checkpoint, if any; return the step to continue from."""
        path = self.latest_checkpoint()
        if path is None:
            return 0
        # Not weights-only: the run's own checkpoint (optimizer and RNG state), written by this loop to its
        # own output folder; never a file from elsewhere.
        state = torch.load(path, map_location="cpu", weights_only=False)  # nosec B614
        for name, module in self.modules.items():
            accelerator.unwrap_model(module).load_state_dict(state["modules"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.extra = state["extra"]
        log.info("resumed", extra={"stage": self.name, "step": state["step"], "checkpoint": str(path)})
        return int(state["step"])


def run_steps(
    stage: Stage,
    accelerator: Accelerator,
    total_steps: int,
    step_function: Callable[[int], dict[str, float]],
    *,
    checkpoint_every: int,
    log_every: int,
    stop_after: int | None = None,
    progress: bool = True,
) -> int:
    """Run steps from the last checkpoint to `total_steps`; returns the step reached.

    `step_function(step)` does the forward, backward and optimizer step and returns scalars to log.
    `stop_after` stops early after that many steps of this call (tests use it to simulate a kill).
    """
    start = stage.resume(accelerator)
    bar = tqdm(
        total=total_steps,
        initial=start,
        desc=stage.name,
        unit="step",
        disable=not (progress and accelerator.is_main_process),
        mininterval=10,
    )
    step = start
    running: dict[str, float] = {}
    counted = 0
    while step < total_steps:
        if stop_after is not None and step - start >= stop_after:
            break
        scalars = step_function(step)
        step += 1
        counted += 1
        for name, value in scalars.items():
            running[name] = running.get(name, 0.0) + value
        if step % log_every == 0 or step == total_steps:
            averaged = {f"{stage.name}/{name}": value / counted for name, value in running.items()}
            averaged[f"{stage.name}/learning_rate"] = float(stage.schedule.get_last_lr()[0])
            accelerator.log(averaged, step=step)
            bar.set_postfix({name.split("/")[-1]: f"{value:.4f}" for name, value in averaged.items()})
            log.info("step", extra={"stage": stage.name, "step": step, **averaged})
            running, counted = {}, 0
        bar.update(1)
        if step % checkpoint_every == 0 or step == total_steps:
            stage.save(step, accelerator)
    bar.close()
    return step
