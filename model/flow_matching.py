"""The rectified-flow (flow matching) objective that the 3-step Euler sampler integrates.

x_sigma = (1 - sigma) * x_0 + sigma * noise, and the transformer predicts the velocity noise - x_0, so one
Euler step from sigma to sigma' is x + (sigma' - sigma) * velocity (FlowMatchEulerDiscreteScheduler.step).
"""

from __future__ import annotations

import torch

from model.configs import DEFAULT_SIGMAS
from model.pipeline_dubbing import DubbingCondition
from model.transformer_dubbing import DubbingTransformer3DModel

TIMESTEP_SCALE = 1000.0  # the scheduler's timesteps are sigma * num_train_timesteps


def noise_latents(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Points on the straight path from data (sigma 0) to noise (sigma 1); `sigmas` is (batch,)."""
    sigma = sigmas.view(-1, *([1] * (latents.ndim - 1)))
    return (1 - sigma) * latents + sigma * noise


def velocity_target(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - latents


def sample_training_sigmas(
    batch_size: int,
    generator: torch.Generator | None = None,
    inference_sigmas: tuple[float, ...] = DEFAULT_SIGMAS,
    inference_fraction: float = 0.5,
) -> torch.Tensor:
    """Sigmas for a training batch: part at the exact sampling sigmas, the rest logit-normal over (0, 1).

    A 3-step sampler only ever evaluates the model at its three sigmas, so training puts weight there; the
    logit-normal rest keeps the velocity field smooth between them.
    """
    logit_normal = torch.sigmoid(torch.randn(batch_size, generator=generator))
    choices = torch.tensor(inference_sigmas)[
        torch.randint(len(inference_sigmas), (batch_size,), generator=generator)
    ]
    use_inference = torch.rand(batch_size, generator=generator) < inference_fraction
    return torch.where(use_inference, choices, logit_normal)


def drop_audio(
    audio_windows: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero every audio window of each clip with `probability` (the clip is then trained without audio).

    All-zero windows are what the pipeline's unconditional branch feeds the model under audio guidance
    (`guidance_scale` > 1), so a model trained with some dropped audio learns what that branch means.
    `audio_windows` is (batch, latent_frames, window_tokens, audio_dim); a new tensor is returned.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    batch_size = audio_windows.shape[0]
    drop = torch.rand(batch_size, generator=generator) < probability
    dropped = drop.to(audio_windows.device).view(batch_size, *([1] * (audio_windows.ndim - 1)))
    return torch.where(dropped, torch.zeros_like(audio_windows), audio_windows)


def predict_velocity(
    transformer: DubbingTransformer3DModel,
    noisy: torch.Tensor,
    condition: DubbingCondition,
    sigmas: torch.Tensor,
) -> torch.Tensor:
    """The transformer's velocity for `noisy` latents at `sigmas`, packed as the pipeline packs them."""
    # (batch, 2 * channels + frames_per_latent, latent_frames, h, w)
    model_input = torch.cat([noisy, condition.masked_latents, condition.latent_mask.to(noisy.dtype)], dim=1)
    return transformer(
        model_input,
        sigmas * TIMESTEP_SCALE,
        condition.audio_windows,
        condition.reference_latents,
    ).sample


def clean_estimate(noisy: torch.Tensor, velocity: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """The one-step estimate of the clean latents: x_0 = x_sigma - sigma * velocity."""
    return noisy - sigmas.view(-1, *([1] * (noisy.ndim - 1))) * velocity


def sampler_states(
    transformer: DubbingTransformer3DModel,
    noise: torch.Tensor,
    condition: DubbingCondition,
    steps: torch.Tensor,
    inference_sigmas: tuple[float, ...] = DEFAULT_SIGMAS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the sampler stands after `steps[i]` of its own Euler steps from `noise` (at inference_sigmas[0]).

    Returns (latents, sigmas), both per sample. The pipeline's later steps start from these states, not from
    noised truths: a few-step sampler's first step leaves a blurred estimate, and a model trained only on
    noised truths has never seen one (exposure bias). Run without gradients; `steps` is (batch,) in
    [0, len(inference_sigmas)] (all of them: the sampler's output, at sigma 0).
    """
    path = torch.tensor((*inference_sigmas, 0.0), dtype=torch.float32, device=noise.device)
    steps = steps.to(noise.device)
    states = noise.clone()
    latents = noise.float()
    with torch.no_grad():
        for index in range(int(steps.max()) if steps.numel() else 0):
            sigma = path[index].expand(noise.shape[0])
            velocity = predict_velocity(transformer, latents.to(noise.dtype), condition, sigma).float()
            latents = latents + (path[index + 1] - path[index]) * velocity
            reached = steps == index + 1
            states[reached] = latents[reached].to(states.dtype)
    return states, path[steps]


def implied_noise(noisy: torch.Tensor, latents: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """The noise that puts `noisy` on the straight path from `latents` at `sigmas`: the velocity target of a
    point that is not a noised truth (a sampler state) is then implied_noise - latents, which points from it
    straight to the truth."""
    sigma = sigmas.view(-1, *([1] * (latents.ndim - 1)))
    return latents + (noisy - latents) / sigma


def velocity_loss(
    prediction: torch.Tensor,
    latents: torch.Tensor,
    noise: torch.Tensor,
    latent_mask: torch.Tensor,
    mask_weight: float = 4.0,
) -> torch.Tensor:
    """Mean squared velocity error; latents the model must generate weigh `mask_weight` times the rest."""
    # (batch, 1, latent_frames, h, w): a latent is generated if any of its frames is masked there.
    generated = latent_mask.amax(dim=1, keepdim=True)
    weight = 1 + (mask_weight - 1) * generated
    error = (prediction.float() - velocity_target(latents, noise).float()) ** 2
    return (error * weight).sum() / (weight.sum() * latents.shape[1])


def flow_matching_loss(
    transformer: DubbingTransformer3DModel,
    latents: torch.Tensor,
    condition: DubbingCondition,
    sigmas: torch.Tensor,
    noise: torch.Tensor,
    mask_weight: float = 4.0,
) -> torch.Tensor:
    """The velocity loss of one batch (see `velocity_loss`).

    Args:
        latents: clean normalised latents of the target frames (batch, channels, latent_frames, h, w).
        condition: the masked-source latents, packed mask and audio windows of the same clips.
        sigmas: (batch,) noise levels in [0, 1].
        noise: standard normal, the shape of `latents`.
    """
    noisy = noise_latents(latents, noise, sigmas)
    prediction = predict_velocity(transformer, noisy, condition, sigmas)
    return velocity_loss(prediction, latents, noise, condition.latent_mask, mask_weight)
