from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.transformer_dubbing import DubbingTransformer3DModel

TINY = {
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "num_layers": 2,
    "ffn_dim": 48,
    "freq_dim": 16,
    "audio_dim": 8,
    "audio_window_tokens": 4,
    "rope_max_seq_len": 32,
}


def make_model(**changes: object) -> DubbingTransformer3DModel:
    torch.manual_seed(0)
    return DubbingTransformer3DModel(**{**TINY, **changes}).eval()  # type: ignore[arg-type]


def inputs(batch: int = 1, frames: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(batch, 36, frames, 4, 6, generator=generator)
    timestep = torch.full((batch,), 500.0)
    audio = torch.randn(batch, frames, 4, 8, generator=generator)
    return hidden, timestep, audio


def test_output_is_the_latent_shape_and_reference_tokens_are_not_predicted() -> None:
    model = make_model()
    hidden, timestep, audio = inputs(batch=2)
    plain = model(hidden, timestep, audio).sample
    assert plain.shape == (2, 16, 3, 4, 6)
    reference = torch.randn(2, 16, 2, 4, 6)
    with_reference = model(hidden, timestep, audio, reference).sample
    assert with_reference.shape == plain.shape
    # The reference tokens join the self-attention, so they change the prediction.
    assert not torch.allclose(with_reference, plain)


def test_each_latent_frame_hears_only_its_own_audio_window() -> None:
    # One block: self-attention comes before the audio cross-attention, and the feed-forward and output
    # projection act per token, so any audio from another window reaching a frame would be a leak.
    model = make_model(num_layers=1)
    hidden, timestep, audio = inputs(frames=3)
    audio.requires_grad_(True)
    output = model(hidden, timestep, audio).sample
    for latent_frame in range(3):
        (gradient,) = torch.autograd.grad(output[:, :, latent_frame].sum(), audio, retain_graph=True)
        per_window = gradient.abs().sum(dim=(0, 2, 3))
        assert per_window[latent_frame] > 0
        assert torch.count_nonzero(per_window) == 1


def test_wrong_number_of_audio_windows_is_refused() -> None:
    model = make_model()
    hidden, timestep, audio = inputs(frames=3)
    with pytest.raises(ValueError, match="one per latent frame"):
        model(hidden, timestep, audio[:, :2])


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    hidden, timestep, audio = inputs()
    gradients = []
    for checkpointing in (False, True):
        model = make_model()
        if checkpointing:
            model.enable_gradient_checkpointing()
        model.train()
        model(hidden, timestep, audio).sample.square().mean().backward()
        used = [parameter.grad.flatten() for parameter in model.parameters() if parameter.grad is not None]
        gradients.append(torch.cat(used))
    assert torch.allclose(gradients[0], gradients[1], atol=1e-6)


def test_save_and_load_round_trip_exactly(tmp_path: Path) -> None:
    model = make_model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = DubbingTransformer3DModel.from_pretrained(tmp_path).eval()
    for parameter in loaded.parameters():
        parameter.data = parameter.data.clone()  # out of the memory map, as load_pipeline does
    hidden, timestep, audio = inputs()
    with torch.no_grad():
        assert torch.equal(model(hidden, timestep, audio).sample, loaded(hidden, timestep, audio).sample)
