from __future__ import annotations

import pytest
import torch

from model.configs import DEFAULT_SIGMAS
from model.flow_matching import (
    TIMESTEP_SCALE,
    drop_audio,
    flow_matching_loss,
    implied_noise,
    noise_latents,
    sample_training_sigmas,
    sampler_states,
    velocity_target,
)
from model.pipeline_dubbing import DubbingPipeline
from tests.model.conftest import Clip


def test_the_path_runs_from_data_to_noise_and_its_velocity_leads_back() -> None:
    generator = torch.Generator().manual_seed(0)
    latents, noise = (
        torch.randn(2, 16, 3, 4, 6, generator=generator),
        torch.randn(2, 16, 3, 4, 6, generator=generator),
    )
    assert torch.equal(noise_latents(latents, noise, torch.zeros(2)), latents)
    assert torch.equal(noise_latents(latents, noise, torch.ones(2)), noise)
    # One Euler step with the true velocity lands on the data from any noise level.
    sigmas = torch.tensor([0.333, 0.9])
    noisy = noise_latents(latents, noise, sigmas)
    landed = noisy - sigmas.view(-1, 1, 1, 1, 1) * velocity_target(latents, noise)
    assert torch.allclose(landed, latents, atol=1e-5)


def test_the_sampler_takes_three_euler_steps_at_the_given_sigmas(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    noise = torch.randn(1, 16, 3, 4, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        condition = pipeline.encode_condition(clip.frames, clip.masks, clip.audio, 25.0)
        sampled = pipeline.denoise(condition, latents=noise)
        # No shift: the last step is a real one, not the 0.009 a shifted set_timesteps(3) leaves.
        assert torch.allclose(pipeline.scheduler.sigmas, torch.tensor([*DEFAULT_SIGMAS, 0.0]))
        expected = noise
        for sigma, next_sigma in zip(DEFAULT_SIGMAS, (*DEFAULT_SIGMAS[1:], 0.0), strict=True):
            model_input = torch.cat([expected, condition.masked_latents, condition.latent_mask], dim=1)
            velocity = pipeline.transformer(
                model_input, torch.tensor([sigma * TIMESTEP_SCALE]), condition.audio_windows
            ).sample
            expected = expected + (next_sigma - sigma) * velocity
    assert torch.allclose(sampled, expected, atol=1e-5)


def test_training_sigmas_are_seedable_and_include_the_sampling_sigmas() -> None:
    first = sample_training_sigmas(256, torch.Generator().manual_seed(0))
    again = sample_training_sigmas(256, torch.Generator().manual_seed(0))
    assert torch.equal(first, again)
    assert float(first.min()) > 0 and float(first.max()) <= 1
    for sigma in DEFAULT_SIGMAS:
        assert bool((first == sigma).any())


def test_the_objective_trains_the_transformer(pipeline: DubbingPipeline, clip: Clip) -> None:
    with torch.no_grad():
        condition = pipeline.encode_condition(clip.frames, clip.masks, clip.audio, 25.0)
        target = pipeline.encode_video(clip.frames)
    transformer = type(pipeline.transformer).from_config(pipeline.transformer.config)
    transformer.load_state_dict(pipeline.transformer.state_dict())
    transformer.train()
    optimizer = torch.optim.Adam(transformer.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(target.shape, generator=generator)
    sigmas = torch.tensor([0.667])
    losses = []
    for _ in range(8):
        loss = flow_matching_loss(transformer, target, condition, sigmas, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_drop_audio_zeroes_whole_clips_at_the_given_rate() -> None:
    windows = torch.randn(400, 3, 16, 32, generator=torch.Generator().manual_seed(3)) + 5
    assert torch.equal(drop_audio(windows, 0.0), windows)
    assert torch.count_nonzero(drop_audio(windows, 1.0)) == 0
    first = drop_audio(windows, 0.3, torch.Generator().manual_seed(4))
    assert torch.equal(first, drop_audio(windows, 0.3, torch.Generator().manual_seed(4)))
    dropped = (first == 0).flatten(1).all(dim=1)
    kept = (first == windows).flatten(1).all(dim=1)
    assert bool((dropped ^ kept).all())  # each clip keeps all of its audio or none
    assert 0.2 < float(dropped.float().mean()) < 0.4
    assert bool((windows > 0).flatten(1).any(dim=1).all())  # the input is left as it was
    with pytest.raises(ValueError, match="probability"):
        drop_audio(windows, 1.5)


def test_sampler_states_are_where_the_pipeline_stands_after_its_own_steps(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    noise = torch.randn(1, 16, 3, 4, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        condition = pipeline.encode_condition(clip.frames, clip.masks, clip.audio, 25.0)
        full = pipeline.denoise(condition, latents=noise)
    # The state after all three steps is the pipeline's output; after 0 steps it is the noise itself.
    states, sigmas = sampler_states(pipeline.transformer, noise, condition, torch.tensor([3]))
    assert torch.allclose(states, full, atol=1e-5) and float(sigmas[0]) == 0.0
    states, sigmas = sampler_states(pipeline.transformer, noise, condition, torch.tensor([0]))
    assert torch.equal(states, noise) and float(sigmas[0]) == 1.0
    one, sigma_one = sampler_states(pipeline.transformer, noise, condition, torch.tensor([1]))
    assert float(sigma_one[0]) == pytest.approx(DEFAULT_SIGMAS[1])
    assert not torch.allclose(one, noise) and not torch.allclose(one, full)


def test_the_implied_noise_makes_the_velocity_target_point_straight_at_the_truth() -> None:
    generator = torch.Generator().manual_seed(3)
    truth, state = (
        torch.randn(2, 16, 3, 4, 6, generator=generator),
        torch.randn(2, 16, 3, 4, 6, generator=generator),
    )
    sigmas = torch.tensor([0.667, 0.333])
    noise = implied_noise(state, truth, sigmas)
    # The state lies on the path from the truth to that noise: one Euler step of the target lands there.
    assert torch.allclose(noise_latents(truth, noise, sigmas), state, atol=1e-5)
    landed = state - sigmas.view(-1, 1, 1, 1, 1) * velocity_target(truth, noise)
    assert torch.allclose(landed, truth, atol=1e-5)
