"""Stage `dit`: masked flow matching on the cached latents, with the tricks inference relies on.

- Audio dropout: some samples hear nothing (zero audio windows), so guidance can contrast with them.
- Motion frames: some samples get their first frames given (unmasked target latents), as the renderer gives
  the previous segment's output at a seam.
- Reference frames of the same person always come from the SOURCE clip (another utterance), so the model
  learns to take identity from them but never the mouth shape.
- Sigmas: half at the three sampling sigmas, half logit-normal; an EMA of the weights is what ships.
- Sync loss (`sync_weight` > 0): the frozen latent mouth probe scores the one-step clean estimate against the
  true opening, for every sample that hears its audio (see probe_stage).
- Sampler rollout (`rollout_fraction` > 0): that share of samples starts where the sampler itself stands after
  its first one or two steps from noise (no gradient through them), and learns the straight velocity from
  there to the truth: the later steps then correct the first step's blur instead of assuming a noised truth.
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel

from model.configs import DEFAULT_SIGMAS
from model.flow_matching import (
    clean_estimate,
    drop_audio,
    implied_noise,
    noise_latents,
    predict_velocity,
    sample_training_sigmas,
    sampler_states,
    velocity_loss,
)
from model.pipeline_dubbing import DubbingCondition
from model.training.config import TrainConfig
from model.training.loop import Stage, optimizer_step, run_steps, step_generator, warmup_constant
from model.training.probe_stage import LatentMouthProbe
from model.transformer_dubbing import DubbingTransformer3DModel


def training_batch(
    latents: dict[str, torch.Tensor], config: TrainConfig, generator: torch.Generator
) -> tuple[torch.Tensor, DubbingCondition, torch.Tensor]:
    """A random batch with audio dropout and motion frames applied: (target latents, condition, opening)."""
    settings = config.dit
    count = latents["target_latents"].shape[0]
    picks = torch.randint(count, (settings.batch_size,), generator=generator)
    target = latents["target_latents"][picks]
    masked = latents["masked_latents"][picks].clone()
    mask = latents["latent_mask"][picks].clone()
    audio = latents["audio_windows"][picks]
    references = latents["reference_latents"][picks]

    audio = drop_audio(audio, settings.audio_dropout, generator)
    latent_frames = target.shape[2]
    for sample in range(settings.batch_size):
        if bool(torch.rand(1, generator=generator) < settings.motion_probability):
            upper = min(settings.max_motion_frames, latent_frames - 1)
            given = int(torch.randint(1, upper + 1, (1,), generator=generator))
            # The first frames are known: visible in the condition and never masked.
            masked[sample, :, :given] = target[sample, :, :given]
            mask[sample, :, :given] = 0
    if "opening" in latents:
        opening = latents["opening"][picks]
    else:  # latents encoded before the probe existed: no sync loss can be computed from them
        opening = torch.zeros(target.shape[0], latent_frames)
    return target, DubbingCondition(masked, mask, audio, references, known_latent_frames=0), opening


def sync_loss(
    probe: LatentMouthProbe,
    clean: torch.Tensor,
    condition: DubbingCondition,
    standard_opening: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-frame predicted opening): the probe's squared error on samples that hear their audio.

    A sample whose audio was dropped has no way to know its mouth, so it adds nothing.
    """
    heard = condition.audio_windows.flatten(1).abs().amax(dim=1) > 0
    predicted = probe(clean.float(), condition.latent_mask)
    error = ((predicted - standard_opening) ** 2).mean(dim=1)
    return (error * heard).sum() / heard.sum().clamp(min=1), predicted


def rollout_inputs(
    transformer: DubbingTransformer3DModel,
    target: torch.Tensor,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    condition: DubbingCondition,
    fraction: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(noisy, sigmas, noise) for a batch: noised truths, except a `fraction` of samples replaced by the
    sampler's own state after 1 or 2 steps, with the noise that state implies (see `implied_noise`)."""
    noisy = noise_latents(target, noise, sigmas)
    if fraction <= 0:  # no draws either: a run without rollout keeps its random stream
        return noisy, sigmas, noise
    chosen = torch.rand(target.shape[0], generator=generator) < fraction
    steps = torch.randint(1, len(DEFAULT_SIGMAS), (target.shape[0],), generator=generator)
    if not bool(chosen.any()):
        return noisy, sigmas, noise
    picks = torch.nonzero(chosen).flatten().to(target.device)
    subset = DubbingCondition(
        condition.masked_latents[picks],
        condition.latent_mask[picks],
        condition.audio_windows[picks],
        None if condition.reference_latents is None else condition.reference_latents[picks],
        0,
    )
    states, state_sigmas = sampler_states(transformer, noise[picks], subset, steps[chosen])
    noisy, sigmas, noise = noisy.clone(), sigmas.clone(), noise.clone()
    noisy[picks] = states.to(noisy.dtype)
    sigmas[picks] = state_sigmas.to(sigmas.dtype)
    noise[picks] = implied_noise(states, target[picks], state_sigmas).to(noise.dtype)
    return noisy, sigmas, noise


def train_transformer(
    transformer: DubbingTransformer3DModel,
    latents: dict[str, torch.Tensor],
    config: TrainConfig,
    run_dir: Path,
    accelerator: Accelerator,
    stop_after: int | None = None,
    probe: tuple[LatentMouthProbe, float, float] | None = None,
) -> tuple[int, EMAModel]:
    """Train the transformer; `probe` (the frozen probe, opening mean, std) adds the sync loss."""
    settings = config.dit
    transformer.train()
    if settings.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_constant(settings.warmup_steps))
    ema = EMAModel(transformer.parameters(), decay=settings.ema_decay, foreach=True)
    transformer, optimizer = accelerator.prepare(transformer, optimizer)
    parameters = list(transformer.parameters())
    stage = Stage("dit", run_dir, {"transformer": transformer}, optimizer, schedule, ema=ema)

    def step(index: int) -> dict[str, float]:
        generator = step_generator(config.seed, "dit", index)
        target, condition, opening = training_batch(latents, config, generator)
        sigmas = sample_training_sigmas(target.shape[0], generator)
        noise = torch.randn(target.shape, generator=generator)
        device = accelerator.device
        condition = DubbingCondition(
            condition.masked_latents.to(device),
            condition.latent_mask.to(device),
            condition.audio_windows.to(device),
            None if condition.reference_latents is None else condition.reference_latents.to(device),
            0,
        )
        target, noise, sigmas = target.to(device), noise.to(device), sigmas.to(device)
        figures: dict[str, float] = {}
        with accelerator.autocast():
            noisy, sigmas, noise = rollout_inputs(
                transformer, target, noise, sigmas, condition, settings.rollout_fraction, generator
            )
            prediction = predict_velocity(transformer, noisy, condition, sigmas)
            loss = velocity_loss(prediction, target, noise, condition.latent_mask, settings.mask_weight)
            if probe is not None and settings.sync_weight > 0:
                mouth_probe, mean, std = probe
                standard = ((opening - mean) / std).to(device)
                clean = clean_estimate(noisy, prediction.float(), sigmas)
                sync, predicted = sync_loss(mouth_probe, clean, condition, standard)
                figures["velocity_loss"] = loss.item()
                figures["sync_loss"] = sync.item()
                with torch.no_grad():
                    pair = torch.stack([predicted.flatten(), standard.flatten()])
                    figures["sync_r"] = float(torch.nan_to_num(torch.corrcoef(pair)[0, 1]))
                loss = loss + settings.sync_weight * sync
        grad_norm = optimizer_step(accelerator, loss, parameters, optimizer, schedule)
        ema.step(accelerator.unwrap_model(transformer).parameters())
        return {"loss": loss.item(), "grad_norm": grad_norm, **figures}

    reached = run_steps(
        stage,
        accelerator,
        settings.steps,
        step,
        checkpoint_every=config.checkpoint_every,
        log_every=config.log_every,
        stop_after=stop_after,
    )
    return reached, ema
