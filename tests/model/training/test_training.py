"""Training on a tiny synthetic corpus: the loss falls on a fixed batch, and a killed run resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoints import build_pipeline
from model.flow_matching import flow_matching_loss, noise_latents
from model.synth import make_pair
from model.training.config import CorpusConfig, TrainConfig
from model.training.corpus import CorpusReader, crop_box, pair_windows, save_shard
from model.training.dit_stage import rollout_inputs, training_batch
from model.training.latents import encode_corpus, load_latents
from model.training.loop import step_generator
from model.training.run import RunMismatch, train


def small_config(**dit: object) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "model_config": "mini",
            "checkpoint_every": 2,
            "log_every": 1,
            "corpus": {"pairs": 1, "seconds": 0.8, "window_frames": 9, "crop_size": 32, "sizes": [[96, 96]]},
            "vae": {"steps": 4, "batch_size": 1, "frames": 5, "crop": 16},
            "audio": {"steps": 4, "batch_size": 2},
            "dit": {"steps": 4, "batch_size": 2, **dit},
            "decoder": {"steps": 4, "batch_size": 1, "frames": 5, "crop": 16},
        }
    )


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two windows cut from one real synthetic pair (espeak speech, a photo's mesh-warped mouth)."""
    config = small_config().corpus
    pair = make_pair("clean", 3, "train", size=(96, 96), seconds=0.8)
    windows = pair_windows(pair, config, np.random.default_rng(0))
    assert len(windows) == 2
    directory = tmp_path_factory.mktemp("corpus")
    save_shard(windows, directory / "shard-00000.npz")
    return directory


def _run_dir(tmp_path: Path, corpus_dir: Path, name: str) -> Path:
    run_dir = tmp_path / name
    (run_dir / "corpus").mkdir(parents=True)
    for shard in corpus_dir.glob("shard-*.npz"):
        (run_dir / "corpus" / shard.name).write_bytes(shard.read_bytes())
    return run_dir


def test_windows_are_crops_of_the_pair(corpus_dir: Path) -> None:
    reader = CorpusReader(corpus_dir)
    assert reader.arrays["target"].shape == (2, 9, 32, 32, 3)
    assert reader.arrays["masks"].shape == (2, 9, 32, 32)
    # The crop is centred on the lower face: every window's mask covers part of it, never all of it.
    covered = (reader.arrays["masks"] > 0).mean(axis=(1, 2, 3))
    assert np.all(covered > 0.02) and np.all(covered < 0.9)
    # A second of context on each side of the window's own audio.
    assert reader.arrays["audio"].shape[1] == 16_000 * 2 + round(9 / 25 * 16_000)


@pytest.mark.parametrize("boxes", [(2.0, 5.0), (1.6, 2.4)])
def test_crops_show_the_lower_face_at_the_configured_sizes(boxes: tuple[float, float]) -> None:
    masks = np.zeros((3, 400, 600), np.float32)
    masks[:, 200:250, 300:340] = 1.0  # a lower face 50 px tall, 40 px wide
    rng = np.random.default_rng(0)
    crop = 128
    faces = []
    for _ in range(200):
        top, left, side = crop_box(masks, rng, boxes)
        assert top <= 200 and top + side >= 250 and left <= 300 and left + side >= 340
        faces.append(50 * crop / side)  # the lower face's height once the crop is resized to 128
    low, high = crop / boxes[1], crop / boxes[0]
    assert low - 1 <= min(faces) and max(faces) <= high + 1
    assert max(faces) - min(faces) > 0.8 * (high - low)  # the whole range is drawn


def test_the_card_face_size_is_the_middle_of_the_trained_range() -> None:
    assert CorpusConfig().face_pixels == 40  # the first checkpoints' scale: 25 to 64 pixels
    assert CorpusConfig(face_boxes=[1.6, 2.4]).face_pixels == 65


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(corpus_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    pipeline = build_pipeline("mini", seed=0)
    path = tmp_path / "latents.safetensors"
    encode_corpus(pipeline, CorpusReader(corpus_dir), path, progress=False)
    latents = load_latents(path)
    config = small_config(audio_dropout=0.0, motion_probability=0.0)
    target, condition, _ = training_batch(latents, config, step_generator(0, "dit", 0))
    sigmas = torch.tensor([0.667, 0.333])
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1))
    transformer = pipeline.transformer.train()
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = flow_matching_loss(transformer, target, condition, sigmas, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_rollout_trains_from_the_samplers_own_states(corpus_dir: Path, tmp_path: Path) -> None:
    pipeline = build_pipeline("mini", seed=0)
    path = tmp_path / "latents.safetensors"
    encode_corpus(pipeline, CorpusReader(corpus_dir), path, progress=False)
    config = small_config(audio_dropout=0.0, motion_probability=0.0)
    target, condition, _ = training_batch(load_latents(path), config, step_generator(0, "dit", 0))
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1))
    sigmas = torch.tensor([0.9, 0.2])
    transformer = pipeline.transformer.eval()

    def rollout(fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(2)
        return rollout_inputs(transformer, target, noise, sigmas, condition, fraction, generator)

    noisy, new_sigmas, new_noise = rollout(0.0)
    assert torch.equal(noisy, noise_latents(target, noise, sigmas)) and torch.equal(new_sigmas, sigmas)
    noisy, new_sigmas, new_noise = rollout(1.0)
    # Every sample now stands after one or two of the sampler's steps, on a straight path to its truth.
    assert all(float(sigma) in (pytest.approx(0.667), pytest.approx(0.333)) for sigma in new_sigmas)
    assert torch.allclose(noise_latents(target, new_noise, new_sigmas), noisy, atol=1e-4)
    assert not torch.allclose(noisy, noise_latents(target, noise, new_sigmas), atol=1e-3)


def _state(run_dir: Path, stage: str) -> dict[str, torch.Tensor]:
    checkpoint = sorted((run_dir / "checkpoints" / stage).glob("step-*.pt"))[-1]
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    flat = {f"module.{name}": tensor for name, tensor in next(iter(state["modules"].values())).items()}
    if state["ema"] is not None:
        flat.update({f"ema.{index}": tensor for index, tensor in enumerate(state["ema"]["shadow_params"])})
    for index, group in state["optimizer"]["state"].items():
        flat.update({f"optimizer.{index}.{name}": value for name, value in group.items()})
    return flat


@pytest.mark.parametrize(
    ("stage", "dit"),
    [("vae", {}), ("dit", {}), ("dit", {"rollout_fraction": 1.0}), ("decoder", {})],
    ids=["vae", "dit", "dit-rollout", "decoder"],
)
def test_resume_after_a_kill_matches_an_uninterrupted_run(
    stage: str, dit: dict[str, float], corpus_dir: Path, tmp_path: Path
) -> None:
    stages = ("vae", "audio", "latents", "dit", "decoder")
    upto = stages[: stages.index(stage) + 1]
    config = small_config(**dit)
    whole = _run_dir(tmp_path, corpus_dir, "whole")
    train(config, whole, upto, progress=False)

    killed = _run_dir(tmp_path, corpus_dir, "killed")
    if stage != "vae":
        train(config, killed, upto[:-1], progress=False)  # the earlier stages, complete
    train(config, killed, upto, progress=False, stop_after=3)  # stopped after step 3 (checkpoint at 2)
    train(config, killed, upto, progress=False)  # resumed from step 2

    expected, resumed = _state(whole, stage), _state(killed, stage)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, resumed[name]), name


def test_a_run_folder_refuses_other_settings(corpus_dir: Path, tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, corpus_dir, "run")
    train(small_config(), run_dir, ("vae",), progress=False, stop_after=1)
    with pytest.raises(RunMismatch):
        train(small_config(learning_rate=1.0), run_dir, ("vae",), progress=False)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown \\[dit\\] settings: steps_typo"):
        TrainConfig.from_dict({"dit": {"steps_typo": 3}})
    assert CorpusConfig().window_frames == 25


def test_a_run_finished_early_ships_its_last_checkpoint_and_says_so(corpus_dir: Path, tmp_path: Path) -> None:
    from model.cards import read_model_card
    from model.checkpoints import load_pipeline

    config = small_config()
    run_dir = _run_dir(tmp_path, corpus_dir, "early")
    train(config, run_dir, ("vae", "audio", "latents"), progress=False)
    with pytest.raises(ValueError, match="no DiT checkpoint"):
        train(config, run_dir, ("dit",), progress=False, finish_now=True)
    train(config, run_dir, ("dit",), progress=False, stop_after=3)  # checkpoint at step 2
    pipeline_dir = train(config, run_dir, ("dit", "export"), progress=False, finish_now=True)
    card = read_model_card(pipeline_dir)
    assert card is not None and card.trained and card.steps == 2 and card.max_frames == 9
    assert card.face_pixels == 10  # crop 32 / sqrt(2 * 5 boxes)
    assert load_pipeline(pipeline_dir, device="cpu").transformer.config.num_layers == 4
