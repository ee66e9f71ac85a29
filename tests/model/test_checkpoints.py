from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoints import build_pipeline, load_pipeline, load_published_audio_encoder, main
from model.configs import CONFIGS


def test_the_command_writes_a_loadable_random_checkpoint(tmp_path: Path) -> None:
    assert main([str(tmp_path / "tiny"), "--config", "tiny", "--seed", "3"]) == 0
    pipeline = load_pipeline(tmp_path / "tiny", device="cpu")
    assert pipeline.transformer.config.num_layers == 2
    # The seed decides the weights: the same seed rebuilds them.
    rebuilt = build_pipeline("tiny", seed=3)
    for name, parameter in rebuilt.transformer.state_dict().items():
        assert torch.equal(parameter, pipeline.transformer.state_dict()[name]), name


def test_an_unknown_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x"), "--config", "huge"])
    assert not (tmp_path / "x").exists()


def test_named_configs_fit_their_components() -> None:
    # Building every size is too slow for CPU tests; the window width and the audio width must agree.
    for config in CONFIGS.values():
        assert config.transformer["audio_window_tokens"] == config.audio_window.window_tokens
        assert config.transformer["audio_dim"] == config.audio_encoder["d_model"]


def test_a_published_whisper_checkpoint_loads_its_encoder(tmp_path: Path) -> None:
    # A stand-in for a released checkpoint: a full WhisperModel saved the way the hub stores it.
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    whisper = WhisperModel(WhisperConfig(**CONFIGS["tiny"].audio_encoder))
    whisper.save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    encoder, feature_extractor = load_published_audio_encoder(tmp_path)
    for name, parameter in whisper.get_encoder().state_dict().items():
        assert torch.equal(encoder.state_dict()[name], parameter), name
    assert feature_extractor.sampling_rate == 16_000
    pipeline = build_pipeline("tiny", audio_encoder_path=tmp_path)
    assert pipeline.transformer.config.audio_dim == whisper.config.d_model


def test_a_published_wan_vae_loads_from_a_checkpoint_folder(tmp_path: Path) -> None:
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(**CONFIGS["tiny"].vae)
    vae.save_pretrained(tmp_path / "vae")  # the layout of a Wan pipeline checkpoint
    pipeline = build_pipeline("tiny", vae_path=tmp_path)
    for name, parameter in vae.state_dict().items():
        assert torch.equal(pipeline.vae.state_dict()[name], parameter), name
