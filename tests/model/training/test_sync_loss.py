"""The latent sync loss: a mouth probe that really reads the latents, and a run that fine-tunes with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model.cards import read_model_card
from model.checkpoints import build_random_checkpoint
from model.pipeline_dubbing import DubbingCondition
from model.synth import make_pair
from model.training.config import TrainConfig
from model.training.corpus import pair_windows, save_shard
from model.training.dit_stage import sync_loss
from model.training.latents import latent_frame_opening
from model.training.probe_stage import LatentMouthProbe, load_probe, train_probe
from model.training.run import train


def test_each_latent_frame_takes_the_mean_opening_of_its_frames() -> None:
    opening = torch.arange(9, dtype=torch.float32)[None]
    # The causal VAE: latent 0 is frame 0, then 4 frames a latent.
    assert latent_frame_opening(opening, 4, 3).tolist() == [[0.0, 2.5, 6.5]]
    assert torch.equal(latent_frame_opening(opening, 1, 9), opening)


def _latents_with_a_mouth(count: int, seed: int) -> dict[str, torch.Tensor]:
    """Random latents where the opening brightens one channel inside the mask, and nowhere else."""
    generator = torch.Generator().manual_seed(seed)
    frames, size = 5, 8
    opening = torch.rand(count, frames, generator=generator) * 0.2
    target = torch.randn(count, 16, frames, size, size, generator=generator)
    mask = torch.zeros(count, 1, frames, size, size)
    for index in range(count):
        top, left = torch.randint(0, size - 3, (2,), generator=generator).tolist()
        mask[index, :, :, top : top + 3, left : left + 3] = 1
    target[:, 3] += 20 * opening[:, :, None, None] * mask[:, 0]
    return {"target_latents": target, "latent_mask": mask, "opening": opening}


def test_the_probe_learns_to_read_an_opening_the_latents_carry(tmp_path: Path) -> None:
    config = TrainConfig.from_dict({"seed": 2, "dit": {"probe_steps": 300}})
    latents = _latents_with_a_mouth(120, 0)
    path = tmp_path / "probe.safetensors"
    figures = train_probe(latents, config, path)
    assert figures["held_out_r"] > 0.85, figures

    probe, mean, std = load_probe(path, 16, 1)
    assert (mean, std) == pytest.approx((figures["opening_mean"], figures["opening_std"]))
    fresh = _latents_with_a_mouth(40, 1)
    with torch.no_grad():
        predicted = probe(fresh["target_latents"], fresh["latent_mask"]) * std + mean
    pair = torch.stack([predicted.flatten(), fresh["opening"].flatten()])
    assert torch.corrcoef(pair)[0, 1] > 0.85


def test_the_sync_loss_asks_nothing_of_samples_that_heard_no_audio() -> None:
    torch.manual_seed(0)
    probe = LatentMouthProbe(16, 1).eval().requires_grad_(False)
    clean = torch.randn(2, 16, 3, 8, 8)
    mask = torch.ones(2, 1, 3, 8, 8)
    audio = torch.randn(2, 3, 4, 8)
    audio[0] = 0  # dropped
    condition = DubbingCondition(torch.zeros_like(clean), mask, audio, None, 0)
    opening = torch.randn(2, 3)
    loss, predicted = sync_loss(probe, clean, condition, opening)
    assert predicted.shape == (2, 3)
    assert loss.item() == pytest.approx(((predicted[1] - opening[1]) ** 2).mean().item())
    changed = clean.clone()
    changed[0] += 5  # the dropped sample's estimate changes: the loss does not
    assert sync_loss(probe, changed, condition, opening)[0].item() == pytest.approx(loss.item())


def test_a_run_fine_tunes_a_saved_pipeline_with_the_sync_loss(tmp_path: Path) -> None:
    start = build_random_checkpoint(tmp_path / "start", "mini", seed=4)
    config = TrainConfig.from_dict(
        {
            "model_config": "mini",
            "checkpoint_every": 2,
            "init_from": str(start),
            "corpus": {"pairs": 1, "seconds": 0.8, "window_frames": 9, "crop_size": 32, "sizes": [[96, 96]]},
            "dit": {"steps": 3, "batch_size": 2, "sync_weight": 0.5, "probe_steps": 5},
            "decoder": {"steps": 0},
        }
    )
    run_dir = tmp_path / "run"
    pair = make_pair("clean", 3, "train", size=(96, 96), seconds=0.8)
    (run_dir / "corpus").mkdir(parents=True)
    windows = pair_windows(pair, config.corpus, np.random.default_rng(0))
    save_shard(windows, run_dir / "corpus" / "shard-00000.npz")

    pipeline_dir = train(
        config, run_dir, ("vae", "audio", "latents", "probe", "dit", "export"), progress=False
    )

    # The VAE and the audio encoder are the start's, untouched; the DiT started from its weights and moved.
    for part in ("vae", "audio_encoder"):
        saved = next((run_dir / part).glob("*.safetensors"))
        original = next((start / part).glob("*.safetensors"))
        expected = load_file(str(original))
        for name, tensor in load_file(str(saved)).items():
            assert torch.equal(tensor, expected[name]), (part, name)
    assert (run_dir / "mouth_probe.safetensors").is_file()
    tuned = load_file(str(next((run_dir / "transformer").glob("*.safetensors"))))
    initial = load_file(str(next((start / "transformer").glob("*.safetensors"))))
    assert tuned.keys() == initial.keys()
    assert any(not torch.equal(tuned[name], initial[name]) for name in tuned)
    # The card says where the run started and that it trained only the DiT, with the sync loss.
    card = read_model_card(pipeline_dir)
    assert card is not None and card.data["started_from"]["name"] == "random-mini-seed4"
    assert card.data["steps"] == {"vae": 0, "audio": 0, "dit": 3, "decoder": 0}
    assert card.data["sync_loss"]["weight"] == 0.5 and "held_out_r" in card.data["sync_loss"]["probe"]


def test_a_start_of_another_size_is_refused(tmp_path: Path) -> None:
    start = build_random_checkpoint(tmp_path / "start", "tiny", seed=4)
    config = TrainConfig.from_dict({"model_config": "mini", "init_from": str(start)})
    with pytest.raises(ValueError, match="does not fit this run's model_config"):
        train(config, tmp_path / "run", ("vae",), progress=False)
