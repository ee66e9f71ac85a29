from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from model.checkpoints import load_pipeline
from model.configs import DEFAULT_SIGMAS
from model.flow_matching import TIMESTEP_SCALE
from model.pipeline_dubbing import DubbingPipeline
from tests.model.conftest import Clip


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_through_every_stage(pipeline: DubbingPipeline, clip: Clip) -> None:
    with torch.no_grad():
        condition = pipeline.encode_condition(clip.frames, clip.masks, clip.audio, frame_rate=25.0)
        # 9 frames -> 3 latent frames (1 + 4 + 4); 32x48 -> 4x6 latents
        assert condition.masked_latents.shape == (1, 16, 3, 4, 6)
        assert condition.latent_mask.shape == (1, 4, 3, 4, 6)
        assert condition.audio_windows.shape == (1, 3, 16, 32)
        assert condition.reference_latents is None
        latents = pipeline.denoise(condition, generator=seeded())
        assert latents.shape == (1, 16, 3, 4, 6)
        decoded = pipeline.decode(latents)
        assert decoded.shape == clip.frames.shape
        assert float(decoded.min()) >= 0
        assert float(decoded.max()) <= 1


def test_mask_packing_keeps_each_frame_in_its_latent(pipeline: DubbingPipeline) -> None:
    masks = torch.zeros(1, 9, 32, 48)
    masks[:, 6, 0:8, 0:8] = 1.0  # frame 6 lies in latent frame 2 (frames 5..8), slot 1
    packed = pipeline.pack_mask(masks)
    assert packed.shape == (1, 4, 3, 4, 6)
    assert torch.nonzero(packed).tolist() == [[0, 1, 2, 0, 0]]


def test_pixels_outside_the_mask_are_the_source_exactly(pipeline: DubbingPipeline, clip: Clip) -> None:
    output = pipeline(clip.frames, clip.masks, clip.audio, generator=seeded())
    outside = (clip.masks == 0)[:, :, None].expand_as(clip.frames)
    assert torch.equal(output.frames[outside], clip.frames[outside])
    assert not torch.equal(output.frames[~outside], clip.frames[~outside])


def test_gradients_cannot_cross_the_mask(pipeline: DubbingPipeline, clip: Clip) -> None:
    frames = clip.frames.clone().requires_grad_(True)
    audio = clip.audio.clone().requires_grad_(True)
    output = pipeline.generate(frames, clip.masks, audio, generator=seeded()).frames
    inside = (clip.masks > 0)[:, :, None].expand_as(frames)
    # The source's own mouth never reaches the output: nothing inside the mask flows anywhere.
    (frame_gradient,) = torch.autograd.grad(output.sum(), frames, retain_graph=True)
    assert torch.count_nonzero(frame_gradient[inside]) == 0
    assert torch.count_nonzero(frame_gradient[~inside]) > 0
    # Nothing the model computes reaches outside the mask: those pixels depend on the source pixel alone.
    outside_sum = output[~inside].sum()
    (audio_gradient,) = torch.autograd.grad(outside_sum, audio, retain_graph=True)
    assert torch.count_nonzero(audio_gradient) == 0
    parameters = list(pipeline.transformer.parameters())
    parameter_gradients = torch.autograd.grad(outside_sum, parameters, allow_unused=True, retain_graph=True)
    assert all(gradient is None or torch.count_nonzero(gradient) == 0 for gradient in parameter_gradients)
    # ... while the masked pixels do hear the audio.
    (audio_gradient,) = torch.autograd.grad(output[inside].sum(), audio)
    assert torch.count_nonzero(audio_gradient) > 0


def test_a_seed_gives_the_same_frames_and_another_seed_others(pipeline: DubbingPipeline, clip: Clip) -> None:
    first = pipeline(clip.frames, clip.masks, clip.audio, generator=seeded(1)).frames
    again = pipeline(clip.frames, clip.masks, clip.audio, generator=seeded(1)).frames
    other = pipeline(clip.frames, clip.masks, clip.audio, generator=seeded(2)).frames
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_a_batch_dubs_each_clip_as_if_alone(pipeline: DubbingPipeline, clip: Clip) -> None:
    second_frames = clip.frames.flip(-1)
    second_audio = clip.audio.roll(4000, dims=1)
    noise = torch.randn(2, 16, 3, 4, 6, generator=seeded(3))
    batch = pipeline(
        torch.cat([clip.frames, second_frames]),
        clip.masks.repeat(2, 1, 1, 1),
        torch.cat([clip.audio, second_audio]),
        latents=noise,
    ).frames
    alone = pipeline(second_frames, clip.masks, second_audio, latents=noise[1:]).frames
    assert torch.allclose(batch[1:], alone, atol=1e-5)


def test_save_and_load_round_trip_bit_exactly(pipeline: DubbingPipeline, clip: Clip, tmp_path: Path) -> None:
    pipeline.save_pretrained(tmp_path)
    assert sorted(path.name for path in tmp_path.rglob("*.safetensors")) == [
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.safetensors",
        "model.safetensors",
    ]
    loaded = load_pipeline(tmp_path, device="cpu")
    assert loaded.config.audio_context_frames == pipeline.config.audio_context_frames
    before = pipeline(clip.frames, clip.masks, clip.audio, generator=seeded(5)).frames
    after = loaded(clip.frames, clip.masks, clip.audio, generator=seeded(5)).frames
    assert torch.equal(before, after)


def test_motion_frames_fix_the_latents_they_cover(pipeline: DubbingPipeline, clip: Clip) -> None:
    previous = torch.rand(1, 5, 3, 32, 48, generator=seeded(6))
    with torch.no_grad():
        condition = pipeline.encode_condition(
            clip.frames, clip.masks, clip.audio, 25.0, motion_frames=previous
        )
        # Five given frames cover latent frames 0 (frame 0) and 1 (frames 1..4), unmasked.
        assert condition.known_latent_frames == 2
        assert torch.count_nonzero(condition.latent_mask[:, :, :2]) == 0
        assert torch.count_nonzero(condition.latent_mask[:, :, 2:]) > 0
        latents = pipeline.denoise(condition, generator=seeded())
        own_encoding = pipeline.encode_video(previous)
    # The seam continues the previous segment: its latents are exactly those of the given frames.
    assert torch.allclose(latents[:, :, :2], own_encoding[:, :, :2], atol=1e-5)
    assert torch.allclose(latents[:, :, :2], condition.masked_latents[:, :, :2])


def test_reference_frames_condition_the_result(pipeline: DubbingPipeline, clip: Clip) -> None:
    plain = pipeline(clip.frames, clip.masks, clip.audio, generator=seeded()).frames
    with_reference = pipeline(
        clip.frames, clip.masks, clip.audio, reference_frames=clip.frames[:, :2], generator=seeded()
    ).frames
    assert with_reference.shape == plain.shape
    assert not torch.equal(with_reference, plain)


@pytest.mark.parametrize(
    ("frames", "masks", "audio", "message"),
    [
        ((1, 8, 3, 32, 48), (1, 8, 32, 48), (1, 100), "1 \\+ 4k"),
        ((1, 9, 3, 30, 48), (1, 9, 30, 48), (1, 100), "multiples of 16"),
        ((1, 9, 3, 32, 48), (1, 9, 32, 32), (1, 100), "masks must be"),
        ((1, 9, 3, 32, 48), (1, 9, 32, 48), (2, 100), "audio must be"),
    ],
)
def test_bad_shapes_are_refused_clearly(
    pipeline: DubbingPipeline,
    frames: tuple[int, ...],
    masks: tuple[int, ...],
    audio: tuple[int, ...],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        pipeline(torch.rand(frames), torch.ones(masks), torch.zeros(audio))


def test_motion_and_reference_frames_of_another_size_are_refused(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    wrong = torch.rand(1, 2, 3, 16, 48)
    with pytest.raises(ValueError, match="motion_frames"):
        pipeline(clip.frames, clip.masks, clip.audio, motion_frames=wrong)
    with pytest.raises(ValueError, match="reference_frames"):
        pipeline(clip.frames, clip.masks, clip.audio, reference_frames=wrong)


def test_bf16_runs_and_stays_close_to_fp32(clip: Clip, tmp_path: Path, pipeline: DubbingPipeline) -> None:
    pipeline.save_pretrained(tmp_path)
    half = load_pipeline(tmp_path, device="cpu", dtype=torch.bfloat16)
    assert half.transformer.dtype == torch.bfloat16
    assert half.transformer.scale_shift_table.dtype == torch.float32  # kept in fp32 for the modulation
    noise = torch.randn(1, 16, 3, 4, 6, generator=seeded())
    full = pipeline(clip.frames, clip.masks, clip.audio, latents=noise).frames
    reduced = half(clip.frames, clip.masks, clip.audio, latents=noise).frames
    inside = (clip.masks > 0)[:, :, None].expand_as(full)
    assert float((full - reduced)[inside].abs().mean()) < 0.05


def test_decoding_only_around_the_mask_matches_a_whole_frame_decode(pipeline: DubbingPipeline) -> None:
    generator = seeded(8)
    latents = torch.randn(1, 16, 2, 20, 24, generator=generator)
    frames = torch.rand(1, 5, 3, 160, 192, generator=generator)
    masks = torch.zeros(1, 5, 160, 192)
    masks[:, :, 72:96, 80:120] = 1.0
    with torch.no_grad():
        whole = pipeline.decode(latents)
        region = pipeline.decode_region(latents, frames, masks, margin=6)
    inside = (masks > 0)[:, :, None].expand_as(frames)
    assert float((region - whole)[inside].abs().mean()) < 0.01
    # Beyond the crop (latent rows 3..15, columns 4..21) the source stands in: it is never composited.
    assert torch.equal(region[..., :24, :], frames[..., :24, :])
    assert torch.equal(region[..., :, 176:], frames[..., :, 176:])


def test_the_raw_output_is_what_the_composite_blends(pipeline: DubbingPipeline, clip: Clip) -> None:
    masks = clip.masks.clone()
    masks[:, :, 16, 16:32] = 0.5  # a feathered row
    blended = pipeline(clip.frames, masks, clip.audio, generator=seeded(4)).frames
    raw = pipeline(clip.frames, masks, clip.audio, generator=seeded(4), composite_output=False).frames
    # Unblended: the feathered row holds generated pixels, not half the source's.
    assert not torch.allclose(raw[:, :, :, 16, 16:32], blended[:, :, :, 16, 16:32])
    assert torch.allclose(pipeline.composite(clip.frames, raw, masks), blended)


def forward_batches(pipeline: DubbingPipeline) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    """The batch size of every transformer forward from now on (remove the handle when done)."""
    batches: list[int] = []

    def record(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        batches.append(args[0].shape[0])

    return batches, pipeline.transformer.register_forward_pre_hook(record)


def test_steps_come_from_num_inference_steps_or_explicit_sigmas(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    noise = torch.randn(1, 16, 3, 4, 6, generator=seeded(9))
    pipeline(clip.frames, clip.masks, clip.audio, latents=noise, num_inference_steps=2)
    assert torch.allclose(pipeline.scheduler.sigmas, torch.tensor([1.0, 0.5, 0.0]))
    assert pipeline.num_timesteps == 2
    pipeline(clip.frames, clip.masks, clip.audio, latents=noise, sigmas=[1.0, 0.8, 0.4, 0.1])
    assert torch.allclose(pipeline.scheduler.sigmas, torch.tensor([1.0, 0.8, 0.4, 0.1, 0.0]))
    pipeline(clip.frames, clip.masks, clip.audio, latents=noise)
    assert torch.allclose(pipeline.scheduler.sigmas, torch.tensor([*DEFAULT_SIGMAS, 0.0]))
    with pytest.raises(ValueError, match="not both"):
        pipeline(clip.frames, clip.masks, clip.audio, num_inference_steps=3, sigmas=[1.0])
    with pytest.raises(ValueError, match="at least 1"):
        pipeline(clip.frames, clip.masks, clip.audio, num_inference_steps=0)


def test_audio_guidance_extrapolates_from_the_silent_prediction_in_one_forward(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    noise = torch.randn(1, 16, 3, 4, 6, generator=seeded(10))
    scale = 3.0
    with torch.no_grad():
        condition = pipeline.encode_condition(clip.frames, clip.masks, clip.audio, 25.0)
        batches, handle = forward_batches(pipeline)
        try:
            plain = pipeline.denoise(condition, latents=noise)
            assert batches == [1, 1, 1]
            assert torch.equal(pipeline.denoise(condition, latents=noise, guidance_scale=1.0), plain)
            batches.clear()
            guided = pipeline.denoise(condition, latents=noise, guidance_scale=scale)
            assert batches == [2, 2, 2]  # both branches in one forward per step
        finally:
            handle.remove()
        expected = noise
        silent = torch.zeros_like(condition.audio_windows)
        for sigma, next_sigma in zip(DEFAULT_SIGMAS, (*DEFAULT_SIGMAS[1:], 0.0), strict=True):
            model_input = torch.cat([expected, condition.masked_latents, condition.latent_mask], dim=1)
            timestep = torch.tensor([sigma * TIMESTEP_SCALE])
            conditional = pipeline.transformer(model_input, timestep, condition.audio_windows).sample
            unconditional = pipeline.transformer(model_input, timestep, silent).sample
            velocity = unconditional + scale * (conditional - unconditional)
            expected = expected + (next_sigma - sigma) * velocity
    assert torch.allclose(guided, expected, atol=1e-4)
    assert not torch.allclose(guided, plain, atol=1e-3)
    assert pipeline.guidance_scale == scale
    with pytest.raises(ValueError, match="guidance_scale"):
        pipeline(clip.frames, clip.masks, clip.audio, guidance_scale=0.5)


def test_output_types_and_the_tuple_return(pipeline: DubbingPipeline, clip: Clip) -> None:
    noise = torch.randn(1, 16, 3, 4, 6, generator=seeded(11))
    tensors = pipeline(clip.frames, clip.masks, clip.audio, latents=noise)
    arrays = pipeline(clip.frames, clip.masks, clip.audio, latents=noise, output_type="np")
    assert isinstance(arrays.frames, np.ndarray) and arrays.frames.shape == (1, 9, 32, 48, 3)
    assert isinstance(tensors.frames, torch.Tensor)
    assert np.array_equal(arrays.frames, tensors.frames.permute(0, 1, 3, 4, 2).numpy())
    latent = pipeline(clip.frames, clip.masks, clip.audio, latents=noise, output_type="latent")
    assert torch.equal(latent.frames, tensors.latents)
    frames, latents = pipeline(clip.frames, clip.masks, clip.audio, latents=noise, return_dict=False)
    assert torch.equal(frames, tensors.frames) and torch.equal(latents, tensors.latents)
    with pytest.raises(ValueError, match="output_type"):
        pipeline(clip.frames, clip.masks, clip.audio, output_type="pil")


def test_a_step_callback_sees_every_step_and_can_replace_the_latents(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    seen: list[tuple[int, float, list[str]]] = []

    def on_step(
        _pipeline: DubbingPipeline, step: int, timestep: torch.Tensor, tensors: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        seen.append((step, round(float(timestep), 1), sorted(tensors)))
        if step == 2:
            return {"latents": torch.zeros_like(tensors["latents"])}
        return tensors

    output = pipeline(
        clip.frames,
        clip.masks,
        clip.audio,
        generator=seeded(),
        output_type="latent",
        callback_on_step_end=on_step,
        callback_on_step_end_tensor_inputs=["latents", "velocity"],
    )
    assert seen == [
        (0, 1000.0, ["latents", "velocity"]),
        (1, 667.0, ["latents", "velocity"]),
        (2, 333.0, ["latents", "velocity"]),
    ]
    assert torch.count_nonzero(output.latents) == 0
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        pipeline(
            clip.frames,
            clip.masks,
            clip.audio,
            callback_on_step_end=on_step,
            callback_on_step_end_tensor_inputs=["noise"],
        )


def test_the_progress_bar_shows_the_steps_unless_silenced(
    pipeline: DubbingPipeline, clip: Clip, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        pipeline.set_progress_bar_config(disable=False)
        pipeline(clip.frames, clip.masks, clip.audio, generator=seeded())
        assert "3/3" in capsys.readouterr().err
    finally:
        pipeline.set_progress_bar_config(disable=True)
    pipeline(clip.frames, clip.masks, clip.audio, generator=seeded())
    assert capsys.readouterr().err == ""


def test_the_offload_sequence_is_the_order_a_call_uses_the_components(
    pipeline: DubbingPipeline, clip: Clip
) -> None:
    order: list[str] = []
    handles = []
    for name in ("vae", "audio_encoder", "transformer"):
        module = getattr(pipeline, name)
        # The VAE is used through encode/decode, which run its encoder and decoder submodules.
        targets = [module.encoder, module.decoder] if name == "vae" else [module]
        for target in targets:
            handles.append(target.register_forward_pre_hook(lambda *_args, name=name: order.append(name)))
    try:
        pipeline(clip.frames, clip.masks, clip.audio, generator=seeded())
    finally:
        for handle in handles:
            handle.remove()
    first_uses = list(dict.fromkeys(order))
    assert first_uses == pipeline.model_cpu_offload_seq.split("->")


def test_a_scheduler_that_would_move_the_sigmas_is_refused(pipeline: DubbingPipeline, clip: Clip) -> None:
    shifted = FlowMatchEulerDiscreteScheduler(shift=3.0)
    shifted.set_timesteps(sigmas=list(DEFAULT_SIGMAS))
    # What a shift does to explicit sigmas: they are moved, silently.
    assert torch.allclose(shifted.sigmas[:3], torch.tensor([1.0, 0.857, 0.6]), atol=1e-3)
    components = {name: getattr(pipeline, name) for name in ("vae", "transformer", "audio_encoder")}
    with pytest.raises(ValueError, match="moved the sigmas"):
        DubbingPipeline(**components, feature_extractor=pipeline.feature_extractor, scheduler=shifted)
    with pytest.raises(ValueError, match="Euler"):
        DubbingPipeline(
            **components,
            feature_extractor=pipeline.feature_extractor,
            scheduler=FlowMatchEulerDiscreteScheduler(stochastic_sampling=True),
        )
    original = pipeline.scheduler
    try:
        pipeline.scheduler = FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True)
        with pytest.raises(ValueError, match="moved the sigmas"):
            pipeline(clip.frames, clip.masks, clip.audio)
    finally:
        pipeline.scheduler = original
